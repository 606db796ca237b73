package coord

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/tributary-dev/tributary/test/harness"
)

// The stored Raft log: testdata/raft-v1 holds the Raft dir (raft-wal log,
// stable store, a snapshot) of node eu-1 of a three-node cluster run by this
// generator with version 1 of the commands and snapshots, and the state it
// had applied (expected.json). Every later version must still read it and
// build the same state: that is what lets a node of version N+1 start from
// the data dir of a node of version N. Regenerate it only on purpose (the
// old one is the contract) with
//
//	TRIBUTARY_REGEN_RAFT_FIXTURE=1 go test ./replicator/coord/ -run TestGenerateStoredRaftLog
const (
	regenFixtureEnv = "TRIBUTARY_REGEN_RAFT_FIXTURE"
	storedLogDir    = "testdata/raft-v1"
	// fixtureSegment keeps the fixture's raft-wal segment small (the
	// default, 64 MiB, is preallocated); raft-wal records each segment's
	// size, so a node with the default reads it.
	fixtureSegment = 32 << 10
)

// storedLog is expected.json.
type storedLog struct {
	// AppliedIndex is the last log index eu-1 had applied.
	AppliedIndex uint64 `json:"applied_index"`
	// RaftAddr is eu-1's Raft address in the stored configuration.
	RaftAddr string          `json:"raft_addr"`
	State    json.RawMessage `json:"state"`
}

func TestGenerateStoredRaftLog(t *testing.T) {
	if os.Getenv(regenFixtureEnv) != "1" {
		t.Skipf("set %s=1 to regenerate %s (then review and commit the diff)", regenFixtureEnv, storedLogDir)
	}
	c := newCluster(t)
	cfgs, alive := c.startThree(t, func(cfg *Config) { cfg.segmentSize = fixtureSegment })
	for _, tn := range c.live() {
		load := map[string]float64{}
		for _, id := range tn.tasks() {
			load[id] = 250
		}
		tn.n.ReportLoad(load)
	}
	eu1 := c.nodes["eu-1"]
	harness.Eventually(t, 5*time.Second, "load recorded", func() error {
		var n int
		eu1.n.fsm.view(func(s *state) { n = len(s.Load) })
		if n != len(taskSpecs()) {
			return fmt.Errorf("%d tasks have a load", n)
		}
		return nil
	})
	// A snapshot, then more entries after it: a bundle, a changed task list
	// (one task gone, one new) and a second bundle.
	if err := eu1.n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	proposePolicy(t, eu1, 1, "policy: payments-pii\nversion: 1\n", "sha256:v1")
	specs := append(taskSpecs()[:len(taskSpecs())-1], TaskSpec{ID: "eu-pay/6", Pipeline: "eu-pay", Region: "eu", Weight: 2})
	c.wantTasks = len(specs)
	for _, tn := range c.live() {
		if err := tn.n.SetTasks(specs); err != nil {
			t.Fatal(err)
		}
	}
	harness.Eventually(t, 10*time.Second, "the new task list assigned", func() error { return c.converged(alive) })
	proposePolicy(t, eu1, 2, "policy: payments-pii\nversion: 2\n", "sha256:v2")
	// Quiet: eu-1 has applied its whole log, which stays put for a second.
	var last uint64
	harness.Eventually(t, 10*time.Second, "a quiet, applied log", func() error {
		li, err := eu1.n.stores.wal.LastIndex()
		if err != nil {
			return err
		}
		if li != last || eu1.n.raft.AppliedIndex() != li {
			last = li
			return fmt.Errorf("log at %d, applied %d", li, eu1.n.raft.AppliedIndex())
		}
		return nil
	})
	time.Sleep(time.Second)
	var want storedLog
	want.State = stateJSON(t, eu1.n.fsm)
	eu1.n.fsm.mu.RLock()
	want.AppliedIndex = eu1.n.fsm.index
	eu1.n.fsm.mu.RUnlock()
	want.RaftAddr = cfgs["eu-1"].RaftAddr
	if want.AppliedIndex != last {
		t.Fatalf("applied %d, log at %d", want.AppliedIndex, last)
	}
	// eu-1 first, so that no entry it did not apply reaches its log.
	c.crash("eu-1")

	if err := os.RemoveAll(storedLogDir); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(cfgs["eu-1"].DataDir, "raft")
	if err := copyDir(src, filepath.Join(storedLogDir, "raft"), func(rel string) bool { return rel != lockName }); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(storedLogDir, "expected.json"), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: log up to index %d", storedLogDir, last)
}

// copyDir copies the files of src that keep accepts (by path relative to
// src) to dst.
func copyDir(src, dst string, keep func(rel string) bool) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if !keep(rel) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

// readStoredLog copies the stored Raft dir into a fresh data dir.
func readStoredLog(t *testing.T) (dataDir string, want storedLog) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(storedLogDir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	dataDir = t.TempDir()
	if err := copyDir(filepath.Join(storedLogDir, "raft"), filepath.Join(dataDir, "raft"), func(string) bool { return true }); err != nil {
		t.Fatal(err)
	}
	return dataDir, want
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// This build reads the stored v1 Raft dir as Raft does at start (the newest
// snapshot, then every log entry after it) and builds exactly the state the
// v1 node had applied.
func TestStoredRaftLogReplays(t *testing.T) {
	dataDir, want := readStoredLog(t)
	st, err := openStores(filepath.Join(dataDir, "raft"), hclog.NewNullLogger(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	snaps, err := st.snaps.List()
	if err != nil || len(snaps) == 0 {
		t.Fatalf("snapshots: %v, %v", snaps, err)
	}
	f := newFSM(nil)
	meta, rc, err := st.snaps.Open(snaps[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(io.NopCloser(rc)); err != nil {
		t.Fatalf("restoring stored snapshot %s: %v", meta.ID, err)
	}
	rc.Close()
	last, err := st.wal.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if last != want.AppliedIndex || meta.Index >= last {
		t.Fatalf("stored log ends at %d, snapshot at %d; expected.json says %d", last, meta.Index, want.AppliedIndex)
	}
	commands := 0
	for i := meta.Index + 1; i <= last; i++ {
		var l raft.Log
		if err := st.wal.GetLog(i, &l); err != nil {
			t.Fatalf("stored entry %d: %v", i, err)
		}
		if l.Type != raft.LogCommand {
			continue
		}
		commands++
		if resp := f.Apply(&l); resp != nil {
			// A refused command is part of the history; a halt is not.
			if _, ok := resp.(*HaltedError); ok {
				t.Fatalf("stored entry %d halts this build: %v", i, resp)
			}
			t.Logf("stored entry %d was refused, as it was then: %v", i, resp)
		}
	}
	if got, w := compactJSON(t, stateJSON(t, f)), compactJSON(t, want.State); got != w {
		t.Errorf("state from the stored log differs from expected.json:\n got %s\nwant %s", got, w)
	}
	t.Logf("stored log: snapshot at %d, %d commands after it, up to %d", meta.Index, commands, last)
}

// A node of this build starts from the stored v1 data dir, recovered as a
// cluster of one at a new address (its old peers are gone): it leads with the
// stored tasks, assignments and policy bundle.
func TestStoredRaftLogStartsANode(t *testing.T) {
	dataDir, want := readStoredLog(t)
	var st state
	if err := json.Unmarshal(want.State, &st); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	cfg := c.config("eu-1", "eu", nil, nil)
	cfg.DataDir = dataDir
	res, err := Recover(dataDir, []RecoverPeer{{ID: "eu-1", Address: cfg.RaftAddr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Index != want.AppliedIndex || res.Tasks != len(st.Tasks) || res.Policy != st.Policy.Version {
		t.Errorf("Recover of the stored log: %+v, want index %d, %d tasks, bundle %d", res, want.AppliedIndex, len(st.Tasks), st.Policy.Version)
	}
	// New restores the recovered snapshot before it contacts anyone: the
	// stored state exactly.
	_ = c.reserved[cfg.RaftAddr].Close()
	delete(c.reserved, cfg.RaftAddr)
	n, err := New(cfg, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if got, w := compactJSON(t, stateJSON(t, n.fsm)), compactJSON(t, want.State); got != w {
		t.Errorf("state of a node started from the recovered stored log:\n got %s\nwant %s", got, w)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	tn := c.start(cfg)
	c.waitLeader(5 * time.Second)
	s := tn.n.Status()
	if s.Policy.Version != st.Policy.Version || s.Policy.AppliedIndex != st.Policy.AppliedIndex || s.Policy.Hash != st.Policy.Hash {
		t.Errorf("policy %+v, want %+v", s.Policy, st.Policy)
	}
	var ids []string
	for _, ts := range s.Tasks {
		ids = append(ids, ts.ID)
	}
	if want := strings.Join(sortedKeys(st.Tasks), ","); strings.Join(ids, ",") != want {
		t.Errorf("tasks %v, want %s", ids, want)
	}
}
