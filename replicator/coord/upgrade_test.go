package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-dev/tributary/test/harness"
)

// entryVersion returns the command version of the log entry at index on tn.
func entryVersion(t *testing.T, tn *testNode, index uint64) (int, string) {
	t.Helper()
	var l raft.Log
	if err := tn.n.stores.wal.GetLog(index, &l); err != nil {
		t.Fatalf("%s: reading log entry %d: %v", tn.cfg.NodeID, index, err)
	}
	var head struct {
		V  int    `json:"v"`
		Op string `json:"op"`
	}
	if err := json.Unmarshal(l.Data, &head); err != nil {
		t.Fatalf("%s: entry %d: %v", tn.cfg.NodeID, index, err)
	}
	return head.V, head.Op
}

// lastCommand returns the index of the last command entry in tn's log.
func lastCommand(t *testing.T, tn *testNode) uint64 {
	t.Helper()
	last, err := tn.n.stores.wal.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	for i := last; i > 0; i-- {
		var l raft.Log
		if err := tn.n.stores.wal.GetLog(i, &l); err == nil && l.Type == raft.LogCommand {
			return i
		}
	}
	t.Fatalf("%s: no command entry", tn.cfg.NodeID)
	return 0
}

// A rolling upgrade seen from both sides, over TCP: two nodes of a future
// build (command and snapshot version 2) write version 2 entries while every
// member understands them. A node of this build (version 1) that joins meets
// those entries in the log it replicates and halts: it applies nothing more,
// reports itself unhealthy (the leader records the reason and gives it no
// tasks), is not ready, and its tributary_raft_apply_halted is 1. Once it is
// a member, the leader writes version 1 entries again and refuses a command
// that needs version 2, naming the member that lacks it.
func TestAnEntryOfANewerVersionHaltsAnOldNode(t *testing.T) {
	c := newCluster(t)
	future := versions{command: commandVersion + 1, snapshot: snapshotVersion + 1}
	a, b := c.config("a", "eu", nil, nil), c.config("b", "eu", nil, nil)
	boot := []Peer{{ID: "a", Addr: a.RaftAddr}, {ID: "b", Addr: b.RaftAddr}}
	a.Bootstrap, b.Bootstrap = boot, boot
	a.versions, b.versions = future, future
	tasks := []TaskSpec{{ID: "p/0", Pipeline: "p", Region: "eu"}, {ID: "p/1", Pipeline: "p", Region: "eu"}, {ID: "p/2", Pipeline: "p", Region: "eu"}}
	c.wantTasks = len(tasks)
	for _, cfg := range []Config{a, b} {
		if err := c.start(cfg).n.SetTasks(tasks); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 10*time.Second, "the future nodes run the tasks", func() error {
		return c.converged(map[string]bool{"a": true, "b": true})
	})
	l := c.waitLeader(5 * time.Second)
	if v := l.n.writeVersions(); v != future {
		t.Fatalf("write versions with future members only: %+v, want %+v", v, future)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pidx := proposePolicy(t, l, 1, "policy: x\n", "sha256:1")
	// Committed in a cluster of two: both store it.
	if v, op := entryVersion(t, c.nodes["a"], pidx); v != future.command || op != opPolicy {
		t.Fatalf("entry %d: %s at version %d, want policy at %d", pidx, op, v, future.command)
	}

	t0 := time.Now()
	old := c.start(c.config("old", "eu", nil, []string{l.cfg.HTTPAddr}))
	var halt *HaltedError
	harness.Eventually(t, 10*time.Second, "the old node halted", func() error {
		err := old.n.Halted()
		if !errors.As(err, &halt) {
			return fmt.Errorf("Halted() = %v", err)
		}
		return nil
	})
	t.Logf("join → halt: %v: %v", time.Since(t0).Round(time.Millisecond), halt)
	if halt.Version != future.command || halt.Newest != commandVersion {
		t.Errorf("halt %+v", halt)
	}
	if v, _ := entryVersion(t, old, halt.Index); v != future.command {
		t.Errorf("halted at entry %d of version %d", halt.Index, v)
	}
	for _, want := range []string{fmt.Sprintf("log index %d", halt.Index), "command version 2", "understands versions up to 1", "upgrade this node"} {
		if !strings.Contains(halt.Error(), want) {
			t.Errorf("halt error %q lacks %q", halt, want)
		}
	}
	harness.Eventually(t, 10*time.Second, "the leader records the old node as unhealthy, without tasks", func() error {
		l, err := c.leader()
		if err != nil {
			return err
		}
		var m Member
		var ok bool
		var mine []string
		l.n.fsm.view(func(s *state) { m, ok = s.Members["old"]; mine = s.tasksOf("old") })
		switch {
		case !ok:
			return errors.New("old is not a member")
		case !strings.Contains(m.Unhealthy, "raft apply halted") || m.CommandVersion != commandVersion:
			return fmt.Errorf("old recorded as %+v", m)
		case len(mine) != 0:
			return fmt.Errorf("old is assigned %v", mine)
		}
		if v := l.n.writeVersions(); v != buildVersions {
			return fmt.Errorf("write versions with an old member: %+v", v)
		}
		return nil
	})
	if got := old.tasks(); len(got) != 0 {
		t.Errorf("the halted node runs %v", got)
	}
	if old.n.Ready() {
		t.Error("the halted node is ready")
	}
	if v := testutil.ToFloat64(old.n.m.applyHalted); v != 1 {
		t.Errorf("old: tributary_raft_apply_halted = %v, want 1", v)
	}
	for _, tn := range []*testNode{c.nodes["a"], c.nodes["b"]} {
		if v := testutil.ToFloat64(tn.n.m.applyHalted); v != 0 {
			t.Errorf("%s: tributary_raft_apply_halted = %v, want 0", tn.cfg.NodeID, v)
		}
	}
	if st := old.n.Status(); !strings.Contains(st.ApplyHalted, "upgrade this node") {
		t.Errorf("old status apply_halted = %q", st.ApplyHalted)
	}
	// The state is frozen: nothing after the halt was applied.
	var applied uint64
	var members int
	old.n.fsm.view(func(s *state) { members = len(s.Members) })
	old.n.fsm.mu.RLock()
	applied = old.n.fsm.index
	old.n.fsm.mu.RUnlock()
	if applied != halt.Applied || applied >= halt.Index || old.n.raft.AppliedIndex() <= halt.Index {
		t.Errorf("old applied up to %d (halt %+v), raft up to %d", applied, halt, old.n.raft.AppliedIndex())
	}
	t.Logf("old's frozen state: %d members, applied up to %d", members, applied)

	// Entries written since the old node is a member are version 1.
	l = c.waitLeader(5 * time.Second)
	if v, op := entryVersion(t, l, lastCommand(t, l)); v != commandVersion {
		t.Errorf("the last entry (%s) has version %d, want %d", op, v, commandVersion)
	}
	opMinVersion["test_needs_v2"] = commandVersion + 1
	t.Cleanup(func() { delete(opMinVersion, "test_needs_v2") })
	_, err := l.n.propose(ctx, command{Op: "test_needs_v2"})
	var bad *badRequestError
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "needs command version 2") || !strings.Contains(err.Error(), "members old understand only 1") {
		t.Errorf("proposing a command that needs version 2: %v", err)
	}
}

// A node rolled back to an older build, whose data dir holds a snapshot the
// newer build wrote in a newer version, refuses to start with the halt.
func TestANodeWithANewerSnapshotRefusesToStart(t *testing.T) {
	c := newCluster(t)
	cfg := c.config("solo", "eu", nil, nil)
	cfg.Bootstrap = []Peer{{ID: "solo", Addr: cfg.RaftAddr}}
	cfg.versions = versions{command: commandVersion + 1, snapshot: snapshotVersion + 1}
	tn := c.start(cfg)
	harness.Eventually(t, 5*time.Second, "solo registered", func() error {
		if !tn.n.Ready() {
			return errors.New("not ready")
		}
		return nil
	})
	if err := tn.n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	c.shutdown("solo")
	cfg.versions = versions{}
	_, err := New(cfg, Deps{})
	var h *HaltedError
	if !errors.As(err, &h) || h.Version != snapshotVersion+1 || !strings.Contains(err.Error(), "upgrade this node") {
		t.Fatalf("New with a newer snapshot: %v, want a halt", err)
	}
}
