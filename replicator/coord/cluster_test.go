package coord

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-dev/tributary/test/harness"
)

// Raft settings of the cluster tests: the FACTS.md WAN-less loopback figures.
const (
	testHeartbeat = 200 * time.Millisecond
	testElection  = 200 * time.Millisecond
	testFailure   = 1500 * time.Millisecond
)

// syncBuffer collects a test's logs; they are printed when the test fails.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// reserve listens on a free loopback port and keeps it until start needs it,
// so that other tests running in parallel cannot take it meanwhile.
func (c *cluster) reserve() string {
	c.t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	c.reserved[l.Addr().String()] = l
	c.t.Cleanup(func() { _ = l.Close() })
	return l.Addr().String()
}

// listener returns the reserved listener of addr, or listens on it again (a restart).
func (c *cluster) listener(addr string) net.Listener {
	c.t.Helper()
	if l, ok := c.reserved[addr]; ok {
		delete(c.reserved, addr)
		return l
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatalf("listening on %s: %v", addr, err)
	}
	return l
}

// testNode is one in-process node with its HTTP API and a reader of Assigned.
type testNode struct {
	cfg    Config
	n      *Node
	reg    *prometheus.Registry
	srv    *http.Server
	cancel context.CancelFunc
	done   chan error

	mu       sync.Mutex
	assigned []string
	changes  int
}

type cluster struct {
	t         *testing.T
	wantTasks int // tasks the leader's replica must hold for converged
	logs      *syncBuffer
	nodes     map[string]*testNode
	reserved  map[string]net.Listener
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, logs: &syncBuffer{}, nodes: map[string]*testNode{}, reserved: map[string]net.Listener{}}
	t.Cleanup(func() {
		for _, tn := range c.nodes {
			tn.stop(t)
		}
		if t.Failed() || os.Getenv("COORD_TEST_LOGS") != "" {
			t.Logf("node logs:\n%s", c.logs.String())
		}
	})
	return c
}

func (c *cluster) config(id, region string, bootstrap []Peer, join []string) Config {
	return Config{
		NodeID: id, Region: region,
		RaftAddr: c.reserve(), HTTPAddr: c.reserve(),
		DataDir:          filepath.Join(c.t.TempDir(), id),
		Bootstrap:        bootstrap,
		Join:             join,
		HeartbeatTimeout: testHeartbeat, ElectionTimeout: testElection, FailureTimeout: testFailure,
		LoadInterval: 100 * time.Millisecond,
	}
}

// start runs a node with cfg (a new one, or a restart from its data dir).
func (c *cluster) start(cfg Config) *testNode {
	c.t.Helper()
	logger := slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", cfg.NodeID)
	reg := prometheus.NewRegistry()
	if l, ok := c.reserved[cfg.RaftAddr]; ok {
		delete(c.reserved, cfg.RaftAddr)
		_ = l.Close() // for New to bind
	}
	n, err := New(cfg, Deps{Logger: logger, Registerer: reg})
	if err != nil {
		c.t.Fatalf("starting %s: %v", cfg.NodeID, err)
	}
	l := c.listener(cfg.HTTPAddr)
	ctx, cancel := context.WithCancel(context.Background())
	tn := &testNode{cfg: cfg, n: n, reg: reg, srv: &http.Server{Handler: n.Handler()}, cancel: cancel, done: make(chan error, 1)}
	if cfg.TLS != nil {
		tn.srv.TLSConfig = cfg.TLS.ServerConfig(false)
		go func() { _ = tn.srv.ServeTLS(l, "", "") }()
	} else {
		go func() { _ = tn.srv.Serve(l) }()
	}
	go func() { tn.done <- n.Run(ctx) }()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ids := <-n.Assigned():
				tn.mu.Lock()
				tn.assigned, tn.changes = ids, tn.changes+1
				tn.mu.Unlock()
			}
		}
	}()
	c.nodes[cfg.NodeID] = tn
	return tn
}

func (tn *testNode) stop(t *testing.T) {
	if tn.cancel == nil {
		return
	}
	tn.cancel()
	if err := <-tn.done; err != nil {
		t.Errorf("%s: Run: %v", tn.cfg.NodeID, err)
	}
	_ = tn.srv.Close()
	tn.cancel = nil
}

// crash stops a node without handing leadership over, as a killed process would.
func (c *cluster) crash(id string) {
	tn := c.nodes[id]
	tn.n.skipTransfer = true
	tn.stop(c.t)
	delete(c.nodes, id)
}

func (c *cluster) shutdown(id string) {
	c.nodes[id].stop(c.t)
	delete(c.nodes, id)
}

func (tn *testNode) tasks() []string {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.assigned
}

func (c *cluster) live() []*testNode {
	var out []*testNode
	for _, id := range sortedKeys(c.nodes) {
		out = append(out, c.nodes[id])
	}
	return out
}

func (c *cluster) leader() (*testNode, error) {
	var found *testNode
	for _, tn := range c.live() {
		if tn.n.raft.State() == raft.Leader {
			if found != nil {
				return nil, fmt.Errorf("two leaders: %s and %s", found.cfg.NodeID, tn.cfg.NodeID)
			}
			found = tn
		}
	}
	if found == nil {
		return nil, errors.New("no leader")
	}
	return found, nil
}

func (c *cluster) waitLeader(timeout time.Duration) *testNode {
	c.t.Helper()
	var l *testNode
	harness.Eventually(c.t, timeout, "a leader", func() (err error) {
		l, err = c.leader()
		return err
	})
	return l
}

func (c *cluster) follower() *testNode {
	for _, tn := range c.live() {
		if tn.n.raft.State() == raft.Follower {
			return tn
		}
	}
	c.t.Fatal("no follower")
	return nil
}

// converged checks that every live node agrees with the leader's replica: all
// members alive or not as expected, every task where residency allows, and
// every node running exactly its tasks.
func (c *cluster) converged(wantMembers map[string]bool) error {
	l, err := c.leader()
	if err != nil {
		return err
	}
	st := l.n.Status()
	got := map[string]bool{}
	regionOf := map[string]string{}
	for _, m := range st.Members {
		got[m.ID] = m.Alive
		regionOf[m.ID] = m.Region
	}
	if !mapsEqual(got, wantMembers) {
		return fmt.Errorf("members (id → alive) = %v, want %v", got, wantMembers)
	}
	if len(st.Tasks) != c.wantTasks {
		return fmt.Errorf("the leader knows %d tasks, want %d", len(st.Tasks), c.wantTasks)
	}
	liveRegions := map[string]bool{}
	for id, alive := range wantMembers {
		if alive {
			liveRegions[regionOf[id]] = true
		}
	}
	byNode := map[string][]string{}
	for _, ts := range st.Tasks {
		switch {
		case liveRegions[ts.Region] && ts.State != TaskAssigned:
			return fmt.Errorf("task %s (region %s) is %s", ts.ID, ts.Region, ts.State)
		case !liveRegions[ts.Region] && ts.Node != "":
			return fmt.Errorf("task %s (region %s) is on %s although its region has no live node", ts.ID, ts.Region, ts.Node)
		case ts.Node != "" && regionOf[ts.Node] != ts.Region:
			return fmt.Errorf("task %s (region %s) is on %s (region %s)", ts.ID, ts.Region, ts.Node, regionOf[ts.Node])
		}
		if ts.Node != "" {
			byNode[ts.Node] = append(byNode[ts.Node], ts.ID)
		}
	}
	for _, tn := range c.live() {
		if wantMembers[tn.cfg.NodeID] && !tn.n.Ready() {
			return fmt.Errorf("%s is not ready", tn.cfg.NodeID)
		}
		want := byNode[tn.cfg.NodeID]
		if want == nil {
			want = []string{}
		}
		if got := tn.tasks(); !slices.Equal(got, want) {
			return fmt.Errorf("%s runs %v, want %v", tn.cfg.NodeID, got, want)
		}
		if u := tn.n.Unassigned(); u != st.Unassigned {
			return fmt.Errorf("%s counts %d unassigned tasks, the leader %d", tn.cfg.NodeID, u, st.Unassigned)
		}
	}
	return nil
}

func mapsEqual[V comparable](a, b map[string]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (c *cluster) assignments() map[string]TaskStatus {
	l := c.waitLeader(5 * time.Second)
	out := map[string]TaskStatus{}
	for _, ts := range l.n.Status().Tasks {
		out[ts.ID] = ts
	}
	return out
}

func taskSpecs() []TaskSpec {
	var specs []TaskSpec
	for i := range 6 {
		specs = append(specs, TaskSpec{ID: fmt.Sprintf("eu-pay/%d", i), Pipeline: "eu-pay", Region: "eu"})
	}
	for i := range 2 {
		specs = append(specs, TaskSpec{ID: fmt.Sprintf("us-pay/%d", i), Pipeline: "us-pay", Region: "us"})
	}
	return specs
}

func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCluster runs one three-node cluster over TCP on loopback through joins,
// failures, restarts, a removal and a snapshot, in order.
func TestCluster(t *testing.T) {
	c := newCluster(t)
	var boot []Peer
	cfgs := map[string]Config{}
	for _, nr := range [][2]string{{"eu-1", "eu"}, {"eu-2", "eu"}, {"us-1", "us"}} {
		cfg := c.config(nr[0], nr[1], nil, nil)
		cfgs[nr[0]] = cfg
		boot = append(boot, Peer{ID: cfg.NodeID, Addr: cfg.RaftAddr})
	}
	start := time.Now()
	for _, id := range sortedKeys(cfgs) {
		cfg := cfgs[id]
		cfg.Bootstrap = boot
		cfgs[id] = cfg
		c.start(cfg)
	}
	alive := map[string]bool{"eu-1": true, "eu-2": true, "us-1": true}

	if !t.Run("bootstrapped nodes elect a leader and assign every task in its region", func(t *testing.T) {
		c.waitLeader(5 * time.Second)
		t.Logf("first leader after %v", time.Since(start).Round(time.Millisecond))
		c.wantTasks = len(taskSpecs())
		for _, tn := range c.live() {
			if err := tn.n.SetTasks(taskSpecs()); err != nil {
				t.Fatal(err)
			}
		}
		harness.Eventually(t, 10*time.Second, "all tasks assigned", func() error { return c.converged(alive) })
		t.Logf("converged after %v", time.Since(start).Round(time.Millisecond))
		counts := map[string]int{}
		for _, ts := range c.assignments() {
			counts[ts.Node]++
		}
		if want := map[string]int{"eu-1": 3, "eu-2": 3, "us-1": 2}; !mapsEqual(counts, want) {
			t.Errorf("tasks per node = %v, want %v", counts, want)
		}
		l, _ := c.leader()
		if v := testutil.ToFloat64(l.n.m.state); v != 2 {
			t.Errorf("leader's tributary_raft_state = %v, want 2", v)
		}
		for _, tn := range c.live() {
			if !tn.n.Ready() {
				t.Errorf("%s not ready", tn.cfg.NodeID)
			}
			if tn != l && testutil.ToFloat64(tn.n.m.state) != 0 {
				t.Errorf("%s: tributary_raft_state = %v, want 0", tn.cfg.NodeID, testutil.ToFloat64(tn.n.m.state))
			}
			if testutil.ToFloat64(tn.n.m.leaderChanges) < 1 {
				t.Errorf("%s saw no leader change", tn.cfg.NodeID)
			}
		}
	}) {
		return
	}

	t.Run("a bad join request is refused with 400 even through a follower", func(t *testing.T) {
		f := c.follower()
		code, body := httpDo(t, "POST", "http://"+f.cfg.HTTPAddr+"/v1/cluster/join", `{"id":"x","raft_addr":"0.0.0.0:1"}`)
		if code != http.StatusBadRequest || !strings.Contains(body, "region: required") {
			t.Errorf("got %d %s, want 400 naming region", code, body)
		}
		code, body = httpDo(t, "DELETE", "http://"+f.cfg.HTTPAddr+"/v1/cluster/members/nobody", "")
		if code != http.StatusNotFound {
			t.Errorf("DELETE of an unknown member: got %d %s, want 404", code, body)
		}
	})

	if !t.Run("a fourth node joins through a follower and takes a share of its region", func(t *testing.T) {
		f := c.follower()
		cfg := c.config("us-2", "us", boot, []string{f.cfg.HTTPAddr})
		cfgs["us-2"] = cfg
		t0 := time.Now()
		c.start(cfg)
		alive["us-2"] = true
		harness.Eventually(t, 10*time.Second, "us-2 joined with one us task", func() error {
			if err := c.converged(alive); err != nil {
				return err
			}
			if got := c.nodes["us-2"].tasks(); len(got) != 1 {
				return fmt.Errorf("us-2 runs %v", got)
			}
			return nil
		})
		t.Logf("join → running a task: %v", time.Since(t0).Round(time.Millisecond))
		l, _ := c.leader()
		servers := l.n.raft.GetConfiguration().Configuration().Servers
		if len(servers) != 4 {
			t.Errorf("raft has %d voters, want 4", len(servers))
		}
	}) {
		return
	}

	t.Run("task load reports reach the replicated state", func(t *testing.T) {
		for _, tn := range c.live() {
			load := map[string]float64{}
			for _, id := range tn.tasks() {
				load[id] = 100
			}
			tn.n.ReportLoad(load)
		}
		harness.Eventually(t, 5*time.Second, "load of every task recorded", func() error {
			l, err := c.leader()
			if err != nil {
				return err
			}
			var n int
			l.n.fsm.view(func(s *state) { n = len(s.Load) })
			if n != len(taskSpecs()) {
				return fmt.Errorf("%d tasks have a load", n)
			}
			return nil
		})
	})

	t.Run("a policy bundle proposed on a follower reaches every node at one index", func(t *testing.T) {
		f := c.follower()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		idx, err := f.n.ProposePolicy(ctx, 1, []byte("policy: payments-pii\n"), "sha256:abc", "payments.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range c.live() {
			select {
			case p := <-tn.n.Policy():
				if p.Version != 1 || p.AppliedIndex != idx || p.Hash != "sha256:abc" {
					t.Errorf("%s got bundle %+v, want version 1 at index %d", tn.cfg.NodeID, p, idx)
				}
			case <-ctx.Done():
				t.Fatalf("%s got no policy bundle", tn.cfg.NodeID)
			}
			if st := tn.n.Status(); st.Policy.Version != 1 || st.Policy.AppliedIndex != idx {
				t.Errorf("%s status policy = %+v", tn.cfg.NodeID, st.Policy)
			}
		}
		if _, err := f.n.ProposePolicy(ctx, 1, nil, "x", "y"); !errors.Is(err, ErrStalePolicy) {
			t.Errorf("re-proposing version 1: %v, want ErrStalePolicy", err)
		}
	})

	if !t.Run("the tasks of the node with most tasks move to survivors of its region", func(t *testing.T) {
		before := c.assignments()
		counts := map[string]int{}
		for _, ts := range before {
			counts[ts.Node]++
		}
		l, _ := c.leader()
		victim := ""
		for _, tn := range c.live() { // the most tasks; a follower among equals
			id := tn.cfg.NodeID
			if victim == "" || counts[id] > counts[victim] || counts[id] == counts[victim] && victim == l.cfg.NodeID {
				victim = id
			}
		}
		t0 := time.Now()
		c.crash(victim)
		alive[victim] = false
		harness.Eventually(t, testFailure+5*time.Second, "the victim's tasks running elsewhere", func() error { return c.converged(alive) })
		took := time.Since(t0)
		t.Logf("crash of %s (%d tasks) → tasks running on survivors: %v (failure timeout %v)", victim, counts[victim], took.Round(time.Millisecond), testFailure)
		if took > testFailure+3*time.Second {
			t.Errorf("takeover took %v", took)
		}
		for id, ts := range c.assignments() {
			if b := before[id]; b.Node != victim && (b.Node != ts.Node || b.Epoch != ts.Epoch) {
				t.Errorf("%s moved from %s@%d to %s@%d although its node lives", id, b.Node, b.Epoch, ts.Node, ts.Epoch)
			}
		}

		t0 = time.Now()
		c.start(cfgs[victim])
		alive[victim] = true
		harness.Eventually(t, 10*time.Second, victim+" back with tasks", func() error {
			if err := c.converged(alive); err != nil {
				return err
			}
			if len(c.nodes[victim].tasks()) == 0 {
				return fmt.Errorf("%s runs nothing", victim)
			}
			return nil
		})
		t.Logf("restart of %s from its data dir → running tasks again: %v", victim, time.Since(t0).Round(time.Millisecond))
	}) {
		return
	}

	if !t.Run("a new leader keeps the assignment of live nodes", func(t *testing.T) {
		before := c.assignments()
		old, _ := c.leader()
		oldID := old.cfg.NodeID
		t0 := time.Now()
		c.crash(oldID)
		alive[oldID] = false
		var nl *testNode
		harness.Eventually(t, 5*time.Second, "a new leader", func() (err error) {
			nl, err = c.leader()
			return err
		})
		t.Logf("crash of leader %s → %s leads: %v", oldID, nl.cfg.NodeID, time.Since(t0).Round(time.Millisecond))
		harness.Eventually(t, testFailure+5*time.Second, "the old leader's tasks running elsewhere", func() error { return c.converged(alive) })
		t.Logf("crash of leader %s → its tasks running elsewhere: %v", oldID, time.Since(t0).Round(time.Millisecond))
		for id, ts := range c.assignments() {
			if b := before[id]; b.Node != oldID && (b.Node != ts.Node || b.Epoch != ts.Epoch) {
				t.Errorf("%s moved from %s@%d to %s@%d after the election", id, b.Node, b.Epoch, ts.Node, ts.Epoch)
			}
		}
		c.start(cfgs[oldID])
		alive[oldID] = true
		harness.Eventually(t, 10*time.Second, oldID+" back", func() error { return c.converged(alive) })
	}) {
		return
	}

	t.Run("a graceful leader shutdown hands leadership over", func(t *testing.T) {
		old, _ := c.leader()
		oldID := old.cfg.NodeID
		t0 := time.Now()
		c.shutdown(oldID)
		nl := c.waitLeader(5 * time.Second)
		t.Logf("graceful shutdown of leader %s → %s leads: %v", oldID, nl.cfg.NodeID, time.Since(t0).Round(time.Millisecond))
		c.start(cfgs[oldID])
		harness.Eventually(t, 10*time.Second, oldID+" back", func() error { return c.converged(alive) })
	})

	if !t.Run("DELETE on a follower removes a member and its tasks move", func(t *testing.T) {
		f := c.follower()
		if f.cfg.NodeID == "us-2" {
			for _, tn := range c.live() {
				if tn.cfg.NodeID != "us-2" && tn.n.raft.State() == raft.Follower {
					f = tn
				}
			}
		}
		code, body := httpDo(t, "DELETE", "http://"+f.cfg.HTTPAddr+"/v1/cluster/members/us-2", "")
		if code != http.StatusOK {
			t.Fatalf("DELETE us-2 via %s: %d %s", f.cfg.NodeID, code, body)
		}
		delete(alive, "us-2")
		removed := c.nodes["us-2"]
		harness.Eventually(t, 5*time.Second, "us-2 gone", func() error {
			if got := removed.tasks(); len(got) != 0 {
				return fmt.Errorf("removed node still runs %v", got)
			}
			l, err := c.leader()
			if err != nil {
				return err
			}
			if n := len(l.n.raft.GetConfiguration().Configuration().Servers); n != 3 {
				return fmt.Errorf("%d voters", n)
			}
			delete(c.nodes, "us-2")
			defer func() { c.nodes["us-2"] = removed }()
			return c.converged(alive)
		})
		c.shutdown("us-2")
	}) {
		return
	}

	if !t.Run("with no live us node the us tasks wait unassigned and eu keeps running", func(t *testing.T) {
		before := c.assignments()
		c.crash("us-1")
		alive["us-1"] = false
		harness.Eventually(t, testFailure+5*time.Second, "us tasks unassigned", func() error {
			if err := c.converged(alive); err != nil {
				return err
			}
			for _, tn := range c.live() {
				if u := tn.n.Unassigned(); u != 2 {
					return fmt.Errorf("%s counts %d unassigned", tn.cfg.NodeID, u)
				}
			}
			return nil
		})
		for id, ts := range c.assignments() {
			if strings.HasPrefix(id, "eu-") && (before[id].Node != ts.Node || before[id].Epoch != ts.Epoch) {
				t.Errorf("eu task %s moved", id)
			}
			if strings.HasPrefix(id, "us-") && (ts.Node != "" || ts.State != TaskUnassigned) {
				t.Errorf("us task %s is %s on %q", id, ts.State, ts.Node)
			}
		}
		if !strings.Contains(c.logs.String(), "tasks unassigned: no live node in region us") {
			t.Error("the leader did not log the unassigned us tasks")
		}
		c.start(cfgs["us-1"])
		alive["us-1"] = true
		harness.Eventually(t, 10*time.Second, "us tasks back on us-1", func() error { return c.converged(alive) })
		if got := c.nodes["us-1"].tasks(); len(got) != 2 {
			t.Errorf("us-1 runs %v, want both us tasks", got)
		}
	}) {
		return
	}

	t.Run("a node restarted from a snapshot restores the state before contacting anyone", func(t *testing.T) {
		f := c.follower()
		id := f.cfg.NodeID
		if err := f.n.raft.Snapshot().Error(); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
		var want *state
		f.n.fsm.view(func(s *state) { want = s.clone() })
		c.shutdown(id)
		snaps, _ := filepath.Glob(filepath.Join(cfgs[id].DataDir, "raft", "snapshots", "*", "state.bin"))
		if len(snaps) == 0 {
			t.Errorf("no snapshot under %s", filepath.Join(cfgs[id].DataDir, "raft", "snapshots"))
		}
		n, err := New(cfgs[id], Deps{})
		if err != nil {
			t.Fatal(err)
		}
		var got *state
		n.fsm.view(func(s *state) { got = s.clone() })
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		// The snapshot may be older than the last entries; compare what it holds.
		if !mapsEqual(got.Tasks, want.Tasks) || len(got.Members) != len(want.Members) || got.Policy == nil || got.Policy.Version != 1 {
			t.Errorf("restored state:\n got %+v\nwant %+v", got, want)
		}
		c.start(cfgs[id])
		harness.Eventually(t, 10*time.Second, id+" back", func() error { return c.converged(alive) })
		select {
		case p := <-c.nodes[id].n.Policy():
			if p.Version != 1 {
				t.Errorf("restored policy bundle version %d, want 1", p.Version)
			}
		default:
			t.Error("no policy bundle delivered after restart")
		}
	})
}

func TestNewRefusesANodeThatCannotBecomeAMember(t *testing.T) {
	cfg := Config{NodeID: "a", Region: "eu", RaftAddr: "127.0.0.1:1", HTTPAddr: "127.0.0.1:2", DataDir: t.TempDir()}
	_, err := New(cfg, Deps{})
	if err == nil || !strings.Contains(err.Error(), "cluster.join is empty") {
		t.Errorf("New = %v, want an error about bootstrap and join", err)
	}
}

func TestTheLastVoterCannotLeave(t *testing.T) {
	c := newCluster(t)
	cfg := c.config("solo", "eu", nil, nil)
	cfg.Bootstrap = []Peer{{ID: "solo", Addr: cfg.RaftAddr}}
	tn := c.start(cfg)
	c.waitLeader(5 * time.Second)
	if err := tn.n.SetTasks([]TaskSpec{{ID: "p/0", Region: "eu"}, {ID: "p/0", Region: "eu"}}); err == nil {
		t.Error("SetTasks accepted a duplicate id")
	}
	if err := tn.n.SetTasks([]TaskSpec{{ID: "p/0", Pipeline: "p", Region: "eu"}}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 5*time.Second, "the task on solo", func() error {
		if got := tn.tasks(); !slices.Equal(got, []string{"p/0"}) {
			return fmt.Errorf("runs %v", got)
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tn.n.Leave(ctx); err == nil || !strings.Contains(err.Error(), "last raft voter") {
		t.Fatalf("Leave of the last voter = %v, want an error", err)
	}
	if st := tn.n.Status(); len(st.Members) != 1 || st.Unassigned != 0 {
		t.Errorf("after a refused Leave: %+v", st)
	}
	c.shutdown("solo")
	if err := tn.n.Close(); err != nil {
		t.Errorf("Close after Run: %v", err)
	}
}

func TestALeaderThatLeavesHandsItsTasksOver(t *testing.T) {
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
	harness.Eventually(t, 10*time.Second, "one task each", func() error {
		return c.converged(map[string]bool{"a": true, "b": true})
	})
	l := c.waitLeader(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.n.Leave(ctx); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	other := "a"
	if l.cfg.NodeID == "a" {
		other = "b"
	}
	harness.Eventually(t, 10*time.Second, other+" runs both tasks", func() error {
		if got := l.tasks(); len(got) != 0 {
			return fmt.Errorf("%s still runs %v", l.cfg.NodeID, got)
		}
		if got := c.nodes[other].tasks(); len(got) != 2 {
			return fmt.Errorf("%s runs %v", other, got)
		}
		return nil
	})
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := harness.LeakedGoroutines(5*time.Second, "replicator/coord.", "hashicorp/raft"); leaked != "" {
			fmt.Fprintf(os.Stderr, "goroutines left running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}
