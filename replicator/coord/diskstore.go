package coord

import (
	"errors"
	"syscall"

	"github.com/hashicorp/raft"
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
