package coord

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/test/harness"
)

// proposePolicy proposes a bundle through tn, retrying while the leader
// changes (elections happen under -race on a loaded machine).
func proposePolicy(t *testing.T, tn *testNode, version int64, data, hash string) uint64 {
	t.Helper()
	var idx uint64
	harness.Eventually(t, 10*time.Second, fmt.Sprintf("policy bundle %d committed", version), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		idx, err = tn.n.ProposePolicy(ctx, version, []byte(data), hash, "payments.yaml")
		if p := tn.n.Status().Policy; errors.Is(err, ErrStalePolicy) && p.Version == version && p.Hash == hash {
			// An earlier try committed although its answer was lost.
			idx, err = p.AppliedIndex, nil
		}
		if err != nil && !IsRetryable(err) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("proposing bundle %d: %v", version, err)
		}
		return err
	})
	return idx
}

func writePeers(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "peers.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadPeersFile(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string // substrings of the error; none: valid
	}{
		{"v3 entries", `[{"id":"eu-1","address":"10.0.0.5:7400","non_voter":false},{"id":"eu-2","address":"10.0.0.6:7400","non_voter":true}]`, nil},
		{"bad JSON names line and column", "[\n {\"id\":\"eu-1\",\n  \"address\" \"x\"}]", []string{"peers.json:3:13", "invalid character"}},
		{"an old-style list of addresses", `["10.0.0.5:7400"]`, []string{"peers.json:1:", "want peers.json v3"}},
		{"an unknown field", `[{"id":"eu-1","adress":"10.0.0.5:7400"}]`, []string{`unknown field "adress"`}},
		{"duplicate ids", `[{"id":"eu-1","address":"10.0.0.5:7400"},{"id":"eu-1","address":"10.0.0.6:7400"}]`,
			[]string{`peers.json: entry 1 (id "eu-1"): duplicate id: entry 0 has it too`}},
		{"empty address and id", `[{"id":"eu-1","address":""},{"id":"","address":"10.0.0.6:7400"}]`,
			[]string{`entry 0 (id "eu-1"): address is empty`, `entry 1 (id ""): id is empty`}},
		{"a wildcard address", `[{"id":"eu-1","address":"0.0.0.0:7400"}]`, []string{`entry 0 (id "eu-1"): address "0.0.0.0:7400"`, "wildcard"}},
		{"duplicate addresses", `[{"id":"a","address":"10.0.0.5:7400"},{"id":"b","address":"10.0.0.5:7400"}]`, []string{"entry 1 (id \"b\"): duplicate address"}},
		{"no voter", `[{"id":"a","address":"10.0.0.5:7400","non_voter":true}]`, []string{"lists no voter"}},
		{"empty", `[]`, []string{"lists no peer"}},
		{"trailing data", `[{"id":"a","address":"10.0.0.5:7400"}] []`, []string{"data after the JSON array"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writePeers(t, tc.body)
			peers, err := ReadPeersFile(path)
			if tc.want == nil {
				if err != nil || len(peers) != 2 || !peers[1].NonVoter || peers[0].Address != "10.0.0.5:7400" {
					t.Fatalf("ReadPeersFile = %+v, %v", peers, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadPeersFile accepted %s", tc.body)
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := ReadPeersFile(filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("a missing file: %v", err)
	}
}

// A data dir is used by one process at a time: a second node on it, and a
// recovery while a node runs on it, are refused.
func TestADataDirInUseIsRefused(t *testing.T) {
	c := newCluster(t)
	cfg := c.config("solo", "eu", nil, nil)
	cfg.Bootstrap = []Peer{{ID: "solo", Addr: cfg.RaftAddr}}
	c.start(cfg)
	c.waitLeader(5 * time.Second)
	second := cfg
	second.RaftAddr, second.HTTPAddr = c.reserve(), c.reserve()
	second.Bootstrap = []Peer{{ID: "solo", Addr: second.RaftAddr}}
	if _, err := New(second, Deps{}); !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), lockName) {
		t.Errorf("a second node on the data dir: %v, want ErrDataDirInUse", err)
	}
	peers := []RecoverPeer{{ID: "solo", Address: cfg.RaftAddr}}
	if _, err := Recover(cfg.DataDir, peers, nil); !errors.Is(err, ErrDataDirInUse) {
		t.Errorf("Recover of a running node's data dir: %v, want ErrDataDirInUse", err)
	}
	c.shutdown("solo")
	if _, err := Recover(filepath.Join(t.TempDir(), "empty"), peers, nil); err == nil || !strings.Contains(err.Error(), "holds no raft state") {
		t.Errorf("Recover of an empty data dir: %v", err)
	}
}

// Quorum recovery: of three nodes with tasks, assignments and a policy
// bundle, two are destroyed (data dirs deleted). The survivor, stopped, is
// recovered with a peers file of itself and restarted: it leads a cluster of
// one with its state intact, marks the destroyed members dead and keeps their
// tasks in their regions (eu tasks move to it, us tasks wait); two new nodes
// join, get the state and take their regions' tasks; the destroyed members
// are removed through the ordinary DELETE.
func TestQuorumRecovery(t *testing.T) {
	c := newCluster(t)
	cfgs, alive := c.startThree(t, nil)
	// Part of the state in a snapshot, the bundle in the log after it.
	if err := c.nodes["eu-1"].n.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	pidx := proposePolicy(t, c.nodes["eu-1"], 1, "policy: payments-pii\n", "sha256:abc")
	harness.Eventually(t, 5*time.Second, "eu-1 applied the bundle", func() error {
		if p := c.nodes["eu-1"].n.Status().Policy; p.AppliedIndex != pidx {
			return fmt.Errorf("eu-1 policy %+v", p)
		}
		return nil
	})
	before := c.assignments()

	peersFile := writePeers(t, fmt.Sprintf(`[{"id":"eu-1","address":%q,"non_voter":false}]`, cfgs["eu-1"].RaftAddr))
	peers, err := ReadPeersFile(peersFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Recover(cfgs["eu-1"].DataDir, peers, nil); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("Recover while eu-1 runs: %v, want ErrDataDirInUse", err)
	}
	for _, id := range []string{"eu-2", "us-1"} {
		c.crash(id)
		if err := os.RemoveAll(cfgs[id].DataDir); err != nil {
			t.Fatal(err)
		}
	}
	c.crash("eu-1")

	t0 := time.Now()
	res, err := Recover(cfgs["eu-1"].DataDir, peers, nil)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	t.Logf("Recover took %v: %+v", time.Since(t0).Round(time.Millisecond), res)
	if res.Members != 3 || res.Tasks != len(taskSpecs()) || res.Assigned != len(taskSpecs()) || res.Policy != 1 ||
		!slices.Equal(res.MembersNotInPeers, []string{"eu-2", "us-1"}) || res.Index < pidx || res.Snapshot == "" {
		t.Errorf("Recover result %+v", res)
	}

	t0 = time.Now()
	eu1 := c.start(cfgs["eu-1"])
	l := c.waitLeader(5 * time.Second)
	t.Logf("restart → leader of one: %v", time.Since(t0).Round(time.Millisecond))
	if l != eu1 {
		t.Fatalf("leader %s", l.cfg.NodeID)
	}
	if servers := l.n.raft.GetConfiguration().Configuration().Servers; len(servers) != 1 || string(servers[0].ID) != "eu-1" {
		t.Errorf("raft configuration %+v, want eu-1 alone", servers)
	}
	st := l.n.Status()
	if st.Policy.Version != 1 || st.Policy.Hash != "sha256:abc" || st.Policy.AppliedIndex != pidx {
		t.Errorf("recovered policy %+v, want version 1 applied at %d", st.Policy, pidx)
	}
	select {
	case p := <-eu1.n.Policy():
		if p.Version != 1 || string(p.Data) != "policy: payments-pii\n" {
			t.Errorf("delivered bundle %+v", p)
		}
	case <-time.After(5 * time.Second):
		t.Error("the recovered node delivered no policy bundle")
	}
	got := map[string]TaskStatus{}
	for _, ts := range st.Tasks {
		got[ts.ID] = ts
	}
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(before))) {
		t.Errorf("recovered tasks %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(before)))
	}
	for id, b := range before {
		// Right after the restart: eu-1's tasks are where they were; the
		// others may already be moving.
		if b.Node == "eu-1" && (got[id].Node != "eu-1" || got[id].Epoch != b.Epoch) {
			t.Errorf("task %s: %s@%d after recovery, was on eu-1@%d", id, got[id].Node, got[id].Epoch, b.Epoch)
		}
	}

	alive = map[string]bool{"eu-1": true, "eu-2": false, "us-1": false}
	harness.Eventually(t, testFailure+5*time.Second, "destroyed members dead, eu tasks on eu-1, us tasks waiting", func() error {
		if err := c.converged(alive); err != nil {
			return err
		}
		if got := eu1.tasks(); len(got) != 6 {
			return fmt.Errorf("eu-1 runs %v, want the 6 eu tasks", got)
		}
		return nil
	})

	t0 = time.Now()
	c.start(c.config("eu-3", "eu", nil, []string{eu1.cfg.HTTPAddr}))
	c.start(c.config("us-2", "us", nil, []string{eu1.cfg.HTTPAddr}))
	alive["eu-3"], alive["us-2"] = true, true
	harness.Eventually(t, 15*time.Second, "new nodes joined and run their regions' tasks", func() error {
		if err := c.converged(alive); err != nil {
			return err
		}
		if got := c.nodes["us-2"].tasks(); len(got) != 2 {
			return fmt.Errorf("us-2 runs %v", got)
		}
		if got := c.nodes["eu-3"].tasks(); len(got) != 3 {
			return fmt.Errorf("eu-3 runs %v", got)
		}
		for _, id := range []string{"eu-3", "us-2"} {
			if p := c.nodes[id].n.Status().Policy; p.Version != 1 || p.AppliedIndex != pidx {
				return fmt.Errorf("%s has policy %+v", id, p)
			}
		}
		return nil
	})
	t.Logf("new nodes joined and run tasks: %v", time.Since(t0).Round(time.Millisecond))

	for _, id := range []string{"eu-2", "us-1"} {
		code, body := httpDo(t, "DELETE", "http://"+eu1.cfg.HTTPAddr+"/v1/cluster/members/"+id, "")
		if code != http.StatusOK {
			t.Fatalf("DELETE %s: %d %s", id, code, body)
		}
		delete(alive, id)
	}
	harness.Eventually(t, 5*time.Second, "destroyed members removed", func() error { return c.converged(alive) })
}

// A node of a version before the lock file holds only raft-wal's lock on its
// metadata: that counts as in use too (raft-wal would wait for it forever).
func TestADataDirLockedByAnOlderNodeIsRefused(t *testing.T) {
	dir, _ := readStoredLog(t)
	m, err := os.OpenFile(filepath.Join(dir, "raft", "wal-meta.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := syscall.Flock(int(m.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	_, err = Recover(dir, []RecoverPeer{{ID: "eu-1", Address: "127.0.0.1:1"}}, nil)
	if !errors.Is(err, ErrDataDirInUse) || !strings.Contains(err.Error(), "wal-meta.db") {
		t.Errorf("Recover of a data dir whose raft log is locked: %v, want ErrDataDirInUse", err)
	}
}

// startThree starts eu-1, eu-2 and us-1, bootstrapped together, with the
// task list of taskSpecs, and waits until every task is assigned. tune, when
// not nil, changes each node's config first. It returns the configs and the
// set of live nodes.
func (c *cluster) startThree(t *testing.T, tune func(*Config)) (map[string]Config, map[string]bool) {
	t.Helper()
	cfgs := map[string]Config{}
	var boot []Peer
	for _, nr := range [][2]string{{"eu-1", "eu"}, {"eu-2", "eu"}, {"us-1", "us"}} {
		cfg := c.config(nr[0], nr[1], nil, nil)
		if tune != nil {
			tune(&cfg)
		}
		cfgs[nr[0]] = cfg
		boot = append(boot, Peer{ID: cfg.NodeID, Addr: cfg.RaftAddr})
	}
	for _, id := range sortedKeys(cfgs) {
		cfg := cfgs[id]
		cfg.Bootstrap = boot
		cfgs[id] = cfg
		if err := c.start(cfg).n.SetTasks(taskSpecs()); err != nil {
			t.Fatal(err)
		}
	}
	c.wantTasks = len(taskSpecs())
	alive := map[string]bool{"eu-1": true, "eu-2": true, "us-1": true}
	harness.Eventually(t, 10*time.Second, "all tasks assigned", func() error { return c.converged(alive) })
	return cfgs, alive
}
