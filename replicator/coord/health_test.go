package coord

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tributary-dev/tributary/test/harness"
)

// A member that declines tasks (SetUnhealthy) stops them at once and the
// leader moves them to the others, while it stays an alive member; cleared,
// it gets its share back. Both as a follower and as the leader.
func TestAnUnhealthyMemberGivesUpItsTasks(t *testing.T) {
	c := newCluster(t)
	a, b := c.config("a", "eu", nil, nil), c.config("b", "eu", nil, nil)
	boot := []Peer{{ID: "a", Addr: a.RaftAddr}, {ID: "b", Addr: b.RaftAddr}}
	a.Bootstrap, b.Bootstrap = boot, boot
	c.start(a)
	c.start(b)
	tasks := []TaskSpec{{ID: "p/0", Pipeline: "p", Region: "eu"}, {ID: "p/1", Pipeline: "p", Region: "eu"}}
	c.wantTasks = len(tasks)
	for _, tn := range c.live() {
		if err := tn.n.SetTasks(tasks); err != nil {
			t.Fatal(err)
		}
	}
	both := map[string]bool{"a": true, "b": true}
	harness.Eventually(t, 10*time.Second, "one task each", func() error { return c.converged(both) })

	for _, role := range []string{"follower", "leader"} {
		sick := c.follower()
		if role == "leader" {
			sick = c.waitLeader(5 * time.Second)
		}
		other := c.nodes["a"]
		if sick.cfg.NodeID == "a" {
			other = c.nodes["b"]
		}
		const reason = "data_dir /x has 1.0 MiB free, below node.min_free_bytes 256.0 MiB"
		sick.n.SetUnhealthy(reason)
		harness.Eventually(t, 10*time.Second, "the unhealthy "+role+"'s tasks on "+other.cfg.NodeID, func() error {
			if got := sick.tasks(); len(got) != 0 {
				return fmt.Errorf("%s still runs %v", sick.cfg.NodeID, got)
			}
			if got := other.tasks(); len(got) != 2 {
				return fmt.Errorf("%s runs %v", other.cfg.NodeID, got)
			}
			l, err := c.leader()
			if err != nil {
				return err
			}
			for _, m := range l.n.Status().Members {
				if m.ID == sick.cfg.NodeID && (m.Unhealthy != reason || !m.Alive) {
					return fmt.Errorf("the leader shows %+v, want alive and unhealthy", m)
				}
			}
			return nil
		})
		sick.n.SetUnhealthy("")
		harness.Eventually(t, 10*time.Second, "one task each again", func() error {
			if err := c.converged(both); err != nil {
				return err
			}
			l, _ := c.leader()
			for _, m := range l.n.Status().Members {
				if m.Unhealthy != "" {
					return fmt.Errorf("%s still unhealthy: %q", m.ID, m.Unhealthy)
				}
			}
			return nil
		})
	}
	if !strings.Contains(c.logs.String(), "assignment changed") {
		t.Error("no assignment change logged")
	}
}

// failingStore fails every write with err.
type failingStore struct {
	walStore
	err error
}

func (f failingStore) StoreLogs([]*raft.Log) error    { return f.err }
func (f failingStore) SetUint64([]byte, uint64) error { return f.err }

// Raft store writes that fail for want of space are reported; other write
// errors are not.
func TestRaftStoreReportsAFullDisk(t *testing.T) {
	for _, tc := range []struct {
		err  error
		full bool
	}{
		{&fs.PathError{Op: "write", Path: "/data/raft/00001.wal", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("preallocating segment: %w", syscall.EDQUOT), true},
		{errors.New("segment corrupt"), false},
	} {
		var got []error
		s := &watchedStore{walStore: failingStore{err: tc.err}, full: func(err error) { got = append(got, err) }}
		if err := s.StoreLogs(nil); !errors.Is(err, tc.err) {
			t.Errorf("StoreLogs returned %v, want %v", err, tc.err)
		}
		if err := s.SetUint64([]byte("CurrentTerm"), 2); !errors.Is(err, tc.err) {
			t.Errorf("SetUint64 returned %v, want %v", err, tc.err)
		}
		if tc.full && len(got) != 2 || !tc.full && len(got) != 0 {
			t.Errorf("%v: reported %d times, want %v", tc.err, len(got), tc.full)
		}
	}
}
