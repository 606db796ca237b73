package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// diskCheckInterval is how often the free space of data_dir is read.
const diskCheckInterval = 2 * time.Second

// DiskStatus is the data_dir part of /v1/status.
type DiskStatus struct {
	DataDir      string `json:"data_dir"`
	FreeBytes    int64  `json:"free_bytes"`
	MinFreeBytes int64  `json:"min_free_bytes"`
	// Unhealthy says why the node declines tasks because of data_dir (short
	// of space, or a write that failed for want of it); empty otherwise.
	Unhealthy string `json:"unhealthy,omitempty"`
}

// diskGuard watches the file system of data_dir, which holds the Raft log,
// stable store and snapshots. While it has less than node.min_free_bytes
// free (or free inodes run out), or shortly after a Raft write failed with
// ENOSPC, the node declines tasks: set(reason) stops them locally and tells
// the leader, which moves them to other nodes of the region. The node stays
// a Raft member: it still votes and follows while the log can be written,
// and a node that cannot write simply falls behind until space returns (Raft
// survives such errors; see coord.Deps.DiskFull).
//
// The node takes tasks again once free space is back above min_free_bytes
// plus a tenth, so that a node hovering at the limit does not flap.
type diskGuard struct {
	dir  string
	min  int64
	log  *slog.Logger
	set  func(reason string)
	kick chan struct{} // buffered 1: check now (a write failed)

	mu        sync.Mutex
	free      int64
	reason    string    // "" while tasks are taken
	writeErr  error     // the last ENOSPC from a Raft write, until space is back
	writeErrT time.Time // when it happened
}

func newDiskGuard(dir string, minFree int64, log *slog.Logger) *diskGuard {
	return &diskGuard{dir: dir, min: minFree, log: log, kick: make(chan struct{}, 1), free: -1}
}

// writeFailed records a write to data_dir that failed for want of space. It
// is called from Raft's goroutines and does not block.
func (g *diskGuard) writeFailed(err error) {
	g.mu.Lock()
	g.writeErr, g.writeErrT = err, time.Now()
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// run checks data_dir every interval (and when a write failed) until ctx ends.
func (g *diskGuard) run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		g.check(time.Now(), interval)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-g.kick:
		}
	}
}

// check reads the free space of data_dir once and changes the node's health
// when the verdict changed.
func (g *diskGuard) check(now time.Time, interval time.Duration) {
	free, inodesOut, err := freeSpace(g.dir)
	g.mu.Lock()
	prev := g.reason
	if err != nil {
		// Keep the verdict: a file system that cannot be asked is no evidence
		// either way.
		g.mu.Unlock()
		g.log.Warn("reading the free space of data_dir failed", "data_dir", g.dir, "err", err)
		return
	}
	g.free = free
	resume := g.min + g.min/10
	if prev == "" {
		resume = g.min
	}
	var reason string
	switch {
	case g.writeErr != nil && (free < resume || now.Sub(g.writeErrT) < interval):
		reason = fmt.Sprintf("data_dir %s is full: a Raft write failed (%v); %s free, node.min_free_bytes is %s", g.dir, g.writeErr, bytesText(free), bytesText(g.min))
	case free < resume:
		reason = fmt.Sprintf("data_dir %s has %s free, below node.min_free_bytes %s", g.dir, bytesText(free), bytesText(g.min))
	case inodesOut:
		reason = fmt.Sprintf("data_dir %s has no free inodes", g.dir)
	default:
		g.writeErr = nil
	}
	if prev != "" && reason != "" {
		reason = prev // the figures in a standing reason stay as first reported
	}
	g.reason = reason
	g.mu.Unlock()
	switch {
	case prev == "" && reason != "":
		g.log.Warn("data_dir is short of free space: this node declines tasks until space returns", "data_dir", g.dir,
			"free_bytes", free, "min_free_bytes", g.min, "reason", reason)
	case prev != "" && reason == "":
		g.log.Info("data_dir has free space again: this node takes tasks again", "data_dir", g.dir, "free_bytes", free, "min_free_bytes", g.min)
	default:
		return
	}
	if g.set != nil {
		g.set(reason)
	}
}

// status returns the data_dir part of /v1/status.
func (g *diskGuard) status() DiskStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	return DiskStatus{DataDir: g.dir, FreeBytes: g.free, MinFreeBytes: g.min, Unhealthy: g.reason}
}

// unhealthy returns why the node declines tasks because of data_dir, "" when
// it does not.
func (g *diskGuard) unhealthy() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reason
}

// freeBytes is the last free space read, -1 before the first check.
func (g *diskGuard) freeBytes() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return float64(g.free)
}

// freeSpace returns the bytes of dir's file system available to the process
// (statfs f_bavail: without the blocks reserved for root, which a node
// running as root may still fill, but which are the operator's margin) and
// whether it has run out of inodes.
func freeSpace(dir string) (free int64, inodesOut bool, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	// Files == 0: a file system without an inode count (btrfs, some FUSE).
	return int64(st.Bavail) * int64(st.Bsize), st.Files > 0 && st.Ffree == 0, nil
}

// bytesText writes a byte count for people: "12.5 MiB".
func bytesText(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}
