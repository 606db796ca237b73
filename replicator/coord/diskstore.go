package coord

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// walStore is the Raft log and stable store (raft-wal) with its write errors
// watched: a write that fails because the file system of data_dir is full
// (ENOSPC, or EDQUOT under a quota) is reported to Deps.DiskFull, so that the
// node declines tasks at once instead of at its next free-space check. Raft
// itself survives such errors: a follower rejects the entries (the leader
// retries), a leader steps down, a vote is not cast.
type walStore interface {
	raft.LogStore
	raft.StableStore
	raft.MonotonicLogStore
}

type watchedStore struct {
	walStore
	full func(error)
}

// IsDiskFull reports whether err says a file system ran out of space or
// quota.
func IsDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func (s *watchedStore) check(err error) error {
	if err != nil && s.full != nil && IsDiskFull(err) {
		s.full(err)
	}
	return err
}

func (s *watchedStore) StoreLog(l *raft.Log) error    { return s.check(s.walStore.StoreLog(l)) }
func (s *watchedStore) StoreLogs(l []*raft.Log) error { return s.check(s.walStore.StoreLogs(l)) }
func (s *watchedStore) Set(k, v []byte) error         { return s.check(s.walStore.Set(k, v)) }
func (s *watchedStore) SetUint64(k []byte, v uint64) error {
	return s.check(s.walStore.SetUint64(k, v))
}

// lockName is the lock file of a data dir's Raft state (DataDir/raft): a
// running node holds an exclusive flock on it, as does `tributary raft
// recover`, so neither runs on a data dir the other uses. The kernel drops
// the lock when the process ends, however it ends.
const lockName = "tributary.lock"

// ErrDataDirInUse means another process (a running node, or a recovery)
// holds the data dir's lock.
var ErrDataDirInUse = errors.New("coord: data dir in use")

// lockDir takes the lock of the Raft dir, without waiting.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w: another process (a running tributary node?) holds %s; stop it first", dir, ErrDataDirInUse, path)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	// Nodes of versions before the lock file hold only raft-wal's lock on
	// its metadata (bolt's flock, which raft-wal waits for forever): probe it.
	if m, err := os.OpenFile(filepath.Join(dir, "wal-meta.db"), os.O_RDWR, 0); err == nil {
		err := syscall.Flock(int(m.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		_ = m.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, fmt.Errorf("%s: %w: another process (a running tributary node?) holds the raft log %s; stop it first", dir, ErrDataDirInUse, m.Name())
		}
	}
	return f, nil
}

// stores are the Raft log, stable store and snapshots of a data dir, as New
// and Recover open them.
type stores struct {
	lock  *os.File
	wal   *raftwal.WAL
	meta  *metadb.BoltMetaDB
	snaps *raft.FileSnapshotStore
}

// openStores locks dir (DataDir/raft) and opens its log (raft-wal) and
// snapshot store (raft's file store, 3 kept).
func openStores(dir string, hl hclog.Logger, segmentSize int) (*stores, error) {
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	// raft-wal v0.4.0's Close leaves its meta store open (and locked): own it.
	meta := &metadb.BoltMetaDB{}
	var wal *raftwal.WAL
	if segmentSize > 0 {
		wal, err = raftwal.Open(dir, raftwal.WithLogger(hl.Named("wal")), raftwal.WithMetaStore(meta), raftwal.WithSegmentSize(segmentSize))
	} else {
		wal, err = raftwal.Open(dir, raftwal.WithLogger(hl.Named("wal")), raftwal.WithMetaStore(meta))
	}
	if err != nil {
		_ = meta.Close()
		_ = lock.Close()
		return nil, fmt.Errorf("opening raft log in %s: %w", dir, err)
	}
	s := &stores{lock: lock, wal: wal, meta: meta}
	s.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 3, hl.Named("snapshot"))
	if err != nil {
		_ = s.close()
		return nil, fmt.Errorf("opening raft snapshots in %s: %w", dir, err)
	}
	return s, nil
}

// close closes the log and releases the lock.
func (s *stores) close() error {
	var errs []error
	if err := s.wal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing raft log: %w", err))
	}
	if err := s.meta.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing raft log metadata: %w", err))
	}
	_ = s.lock.Close() // releases the flock
	return errors.Join(errs...)
}
