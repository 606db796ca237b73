package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Node is this process's member of the Raft cluster: it holds a replica of the
// state (members, tasks, assignments, load, policy bundle), tells its worker
// which tasks to run (Assigned), and, while it leads, keeps the assignment and
// the members' liveness up to date.
type Node struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	m       *metrics
	fsm     *fsm
	raft    *raft.Raft
	stores  *stores
	trans   *raft.NetworkTransport
	obsCh   chan raft.Observation
	obs     *raft.Observer
	tracker *tracker
	client  *http.Client

	assigned chan []string     // latest value, buffered 1; written by the main loop only
	policy   chan PolicyBundle // latest value, buffered 1; written by the FSM only
	policyMu sync.Mutex
	wake     chan struct{} // main loop: re-evaluate now
	lwake    chan struct{} // leader loop: re-evaluate now
	rwake    chan struct{} // registration loop: re-evaluate now
	bg       sync.WaitGroup

	// Main loop only.
	lastAssigned []string
	delivered    bool

	mu           sync.Mutex
	desired      []TaskSpec // sorted by id
	desiredSet   bool
	load         map[string]float64
	loadSeq      uint64
	session      string
	registered   bool // the FSM holds this node with session
	removed      bool // the cluster removed this node while it ran
	leaving      bool // Leave was called
	isolated     bool
	contacted    bool // heard from a leader (or led) since start
	lastLeaderAt time.Time
	leaderID     string
	running      bool
	// unhealthy is why this node declines tasks (SetUnhealthy), "" when it
	// takes them; healthSent is the value of the last registration the
	// leader accepted, at healthSentAt.
	unhealthy    string
	healthSent   string
	healthSentAt time.Time
	// halt is the FSM's halt (an entry of a version this node does not
	// understand); it makes the node unhealthy for good.
	halt             *HaltedError
	transferring     bool // a halted leader is handing leadership over
	transferFailedAt time.Time

	closing      chan struct{}
	closeOnce    sync.Once
	runDone      chan struct{}
	stopOnce     sync.Once
	stopErr      error
	skipTransfer bool // tests: shut down like a crash, without handing leadership over
}

// New validates cfg, opens (or creates) the Raft log and snapshots under
// cfg.DataDir/raft, binds cfg.RaftAddr and starts Raft. A node whose data dir is
// empty and whose id is in cfg.Bootstrap bootstraps the cluster with all the
// bootstrap peers; a node with state resumes from it. Run does the rest.
func New(cfg Config, deps Deps) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Client == nil && cfg.TLS != nil {
		// Calls to the other members present this node's certificate.
		deps.Client = newHTTPClient(cfg.TLS, cfg.RaftAddr)
	}
	deps = deps.withDefaults()
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering coord metrics: %w", err)
	}
	n := &Node{
		cfg:      cfg,
		deps:     deps,
		log:      deps.Logger,
		m:        m,
		tracker:  newTracker(cfg.FailureTimeout, cfg.transportTimeout()+2*cfg.HeartbeatTimeout),
		client:   deps.Client,
		assigned: make(chan []string, 1),
		policy:   make(chan PolicyBundle, 1),
		wake:     make(chan struct{}, 1),
		lwake:    make(chan struct{}, 1),
		rwake:    make(chan struct{}, 1),
		obsCh:    make(chan raft.Observation, 1024),
		load:     map[string]float64{},
		session:  newSession(),
		closing:  make(chan struct{}),
		runDone:  make(chan struct{}),
	}
	n.fsm = newFSM(n.deliverPolicy)
	n.fsm.v = cfg.versions.orBuild()
	n.fsm.onHalt = n.halted
	if host, _, _ := net.SplitHostPort(trimScheme(cfg.HTTPAddr)); host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified() {
		n.log.Warn("node.http_addr is a wildcard address: other nodes cannot forward requests to this node", "http_addr", cfg.HTTPAddr)
	}

	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating raft dir: %w", err)
	}
	hl := newHCLogAdapter(n.log.With("component", "raft"), deps.Now)
	st, err := openStores(dir, hl, cfg.segmentSize)
	if err != nil {
		return nil, err
	}
	n.stores = st
	wal, snaps := st.wal, st.snaps
	fail := func(err error) (*Node, error) {
		_ = st.close()
		return nil, err
	}
	existing, err := raft.HasExistingState(wal, wal, snaps)
	if err != nil {
		return fail(fmt.Errorf("reading raft state in %s: %w", dir, err))
	}
	if !existing && !cfg.inBootstrap() && len(cfg.Join) == 0 {
		return fail(fmt.Errorf("node %s has no raft state, is not in cluster.bootstrap and cluster.join is empty: it cannot become a member", cfg.NodeID))
	}
	trans, err := newTransport(cfg, &raft.NetworkTransportConfig{
		MaxPool: 3,
		Timeout: cfg.transportTimeout(),
		Logger:  hl.Named("transport"),
	})
	if err != nil {
		return fail(err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.Logger = hl
	rc.NoLegacyTelemetry = true
	if err := raft.ValidateConfig(rc); err != nil {
		_ = trans.Close()
		return fail(fmt.Errorf("raft config: %w", err))
	}
	store := &watchedStore{walStore: wal, full: deps.DiskFull}
	r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, trans)
	if err != nil {
		_ = trans.Close()
		if h := n.fsm.haltErr(); h != nil {
			// Its snapshots are of a newer version (a node rolled back).
			return fail(fmt.Errorf("starting raft: %w", h))
		}
		return fail(fmt.Errorf("starting raft: %w", err))
	}
	n.raft, n.trans = r, trans
	n.obs = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState, raft.PeerObservation,
			raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	r.RegisterObserver(n.obs)
	if !existing && cfg.inBootstrap() {
		var servers []raft.Server
		for _, p := range cfg.Bootstrap {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			_ = r.Shutdown().Error()
			return fail(fmt.Errorf("bootstrapping raft cluster: %w", err))
		}
		n.log.Info("bootstrapped raft cluster", "voters", len(servers))
	}
	return n, nil
}

func newSession() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (n *Node) now() time.Time { return n.deps.Now() }

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Run runs the node until ctx is cancelled or Close is called: it registers the
// node with the cluster (joining through cluster.join when it is new), watches
// Raft, tells the worker its tasks through Assigned, reports load, and leads
// when elected. On the way out a leader hands leadership over when it can, then
// Raft shuts down. Run may be called once.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.running {
		n.mu.Unlock()
		return errors.New("coord: Run called twice")
	}
	n.running = true
	n.mu.Unlock()
	defer close(n.runDone)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-n.closing:
			cancel()
		case <-ctx.Done():
		}
	})
	wg.Go(func() { n.observe(ctx) })
	wg.Go(func() { n.registerLoop(ctx) })
	wg.Go(func() { n.reportLoop(ctx) })
	n.mainLoop(ctx)
	cancel()
	wg.Wait()
	return n.stop()
}

// Close stops Run (waiting for it) or, when Run was never called, shuts Raft
// down. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { close(n.closing) })
	n.mu.Lock()
	running := n.running
	n.mu.Unlock()
	if running {
		<-n.runDone
	}
	return n.stop()
}

func (n *Node) stop() error {
	n.stopOnce.Do(func() {
		n.raft.DeregisterObserver(n.obs)
		if n.raft.State() == raft.Leader && !n.skipTransfer {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.log.Info("could not hand leadership over before shutting down", "err", err)
			} else {
				n.log.Info("handed leadership over before shutting down")
			}
		}
		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil { // also closes the transport
			errs = append(errs, fmt.Errorf("shutting raft down: %w", err))
		}
		// Raft closes the transport only when this Shutdown call is the first
		// (not after ShutdownOnRemove), and Close leaves pooled connections open.
		_ = n.trans.Close()
		n.trans.CloseStreams()
		n.bg.Wait()
		if err := n.stores.close(); err != nil {
			errs = append(errs, err)
		}
		n.m.state.Set(stateValue(raft.Shutdown))
		n.stopErr = errors.Join(errs...)
	})
	return n.stopErr
}

// observe turns raft observations into metrics, liveness evidence and wake-ups.
func (n *Node) observe(ctx context.Context) {
	for {
		var o raft.Observation
		select {
		case <-ctx.Done():
			return
		case o = <-n.obsCh:
		}
		switch d := o.Data.(type) {
		case raft.LeaderObservation:
			n.mu.Lock()
			changed := d.LeaderID != "" && string(d.LeaderID) != n.leaderID
			if changed {
				n.leaderID = string(d.LeaderID)
			}
			n.mu.Unlock()
			if changed {
				n.m.leaderChanges.Inc()
				n.log.Info("raft leader changed", "leader", string(d.LeaderID), "term", n.raft.CurrentTerm())
			}
			notify(n.wake)
			notify(n.rwake)
		case raft.RaftState:
			n.m.state.Set(stateValue(d))
			notify(n.wake)
		case raft.PeerObservation:
			if d.Removed {
				n.tracker.removed(string(d.Peer.ID))
			} else {
				n.tracker.added(string(d.Peer.ID), n.now())
			}
		case raft.FailedHeartbeatObservation:
			n.tracker.failed(string(d.PeerID), d.LastContact, n.now())
		case raft.ResumedHeartbeatObservation:
			n.tracker.resumed(string(d.PeerID), n.now())
		}
	}
}

type leaderRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *leaderRun) stop() {
	l.cancel()
	<-l.done
}

// mainLoop re-evaluates the node's situation on every change of the state, of
// Raft, and every tick.
func (n *Node) mainLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.tick())
	defer tick.Stop()
	var lead *leaderRun
	defer func() {
		if lead != nil {
			lead.stop()
		}
	}()
	for {
		changed := n.step(ctx, &lead)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.wake:
		case <-changed:
		}
	}
}

// step starts or stops the leader loop, decides whether the node is isolated
// and registered, and delivers its tasks. It returns the channel closed on the
// next state change.
func (n *Node) step(ctx context.Context, lead **leaderRun) <-chan struct{} {
	now := n.now()
	st := n.raft.State()
	n.m.state.Set(stateValue(st))
	n.m.term.Set(float64(n.raft.CurrentTerm()))
	n.mu.Lock()
	halted := n.halt != nil
	n.mu.Unlock()
	if st == raft.Leader && halted {
		// Its replica is frozen: it must not decide anything from it.
		n.handOver()
	}
	leader := st == raft.Leader && !halted
	if leader && *lead == nil {
		lctx, cancel := context.WithCancel(ctx)
		l := &leaderRun{cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(l.done)
			n.lead(lctx)
		}()
		*lead = l
	} else if !leader && *lead != nil {
		(*lead).stop()
		*lead = nil
		n.log.Info("no longer the raft leader", "state", st.String())
	}

	var self Member
	var member bool
	var mine []string
	changed := n.fsm.view(func(s *state) {
		self, member = s.Members[n.cfg.NodeID]
		mine = s.tasksOf(n.cfg.NodeID)
	})
	lastContact := n.raft.LastContact()

	n.mu.Lock()
	if leader {
		n.lastLeaderAt = now
	}
	contact := lastContact
	if n.lastLeaderAt.After(contact) {
		contact = n.lastLeaderAt
	}
	isolated := !leader && (contact.IsZero() || now.Sub(contact) > n.cfg.FailureTimeout)
	if isolated != n.isolated {
		switch {
		case isolated && n.contacted:
			n.log.Warn("no contact with a raft leader: stopping this node's tasks", "last_contact", contact, "failure_timeout", n.cfg.FailureTimeout)
		case !isolated && n.contacted:
			n.log.Info("in contact with the raft leader again")
		}
		n.isolated = isolated
		notify(n.rwake)
	}
	if !isolated {
		n.contacted = true
	}
	if isolated && n.registered {
		// Whatever the state says now may be stale: run nothing until a new
		// registration has gone through the log.
		n.session, n.registered = newSession(), false
	}
	switch {
	case n.registered && !member && !n.removed:
		n.removed = true
		n.log.Warn("this node was removed from the cluster: it runs no tasks until restarted")
	case n.registered && member && self.Session != n.session:
		// The leader marked this node dead although it hears from it.
		n.session, n.registered = newSession(), false
		n.log.Warn("the leader marked this node dead: stopping its tasks and registering again")
		notify(n.rwake)
	}
	if !n.registered && member && self.Session == n.session {
		n.registered = true
		n.log.Info("registered with the cluster", "region", n.cfg.Region)
	}
	run := !isolated && n.registered && !n.removed && !n.leaving && self.Alive && n.healthLocked() == ""
	n.mu.Unlock()
	if !run {
		mine = []string{}
	}
	n.deliverAssigned(mine)
	return changed
}

func (n *Node) deliverAssigned(ids []string) {
	if n.delivered && slices.Equal(ids, n.lastAssigned) {
		return
	}
	n.delivered, n.lastAssigned = true, ids
	select { // drop a value the worker has not read yet
	case <-n.assigned:
	default:
	}
	n.assigned <- slices.Clone(ids)
}

func (n *Node) deliverPolicy(p PolicyBundle) {
	n.policyMu.Lock()
	defer n.policyMu.Unlock()
	select {
	case <-n.policy:
	default:
	}
	n.policy <- p
}

// Assigned delivers the ids ("<pipeline>/<index>", sorted) of the tasks this
// node must run, whenever that set changes. It holds the latest value only: a
// set the reader has not taken yet is replaced. The set is empty while the node
// is isolated (no leader contact for FailureTimeout), not yet registered with
// its current session, marked dead, or removed. The same channel is returned
// every time; there must be one reader.
func (n *Node) Assigned() <-chan []string { return n.assigned }

// PolicyView is what a node's replica says about the cluster's policy bundle.
type PolicyView struct {
	// Bundle is the active bundle when HasBundle.
	Bundle    PolicyBundle
	HasBundle bool
	// Current: a leader is known and every entry the leader had committed when
	// this node last heard from it is applied. Before that, a node that holds
	// no bundle (or an older one) may only not have received the newest yet.
	Current bool
	// Expected: a registered member has a policy folder, so the cluster uses
	// policies even while it has no bundle yet.
	Expected bool
}

// PolicyState returns this node's view of the cluster's policy bundle.
func (n *Node) PolicyState() PolicyView {
	var v PolicyView
	if _, id := n.raft.LeaderWithID(); id != "" {
		commit := n.raft.CommitIndex()
		v.Current = commit > 0 && n.raft.AppliedIndex() >= commit
	}
	n.fsm.view(func(s *state) {
		if s.Policy != nil {
			v.Bundle, v.HasBundle = *s.Policy, true
		}
		for _, m := range s.Members {
			v.Expected = v.Expected || m.Policies
		}
	})
	return v
}

// Policy delivers policy bundles as the log applies them (and the active bundle
// when a snapshot is restored), latest value only. AppliedIndex is the log
// index: the same on every node. The same channel is returned every time.
func (n *Node) Policy() <-chan PolicyBundle { return n.policy }

// SetTasks records this node's view of the desired task list (from its config).
// The leader proposes its own view whenever the replicated list differs;
// followers only keep theirs for when they lead.
func (n *Node) SetTasks(specs []TaskSpec) error {
	seen := map[string]bool{}
	var errs []error
	for i, t := range specs {
		switch {
		case t.ID == "":
			errs = append(errs, fmt.Errorf("task %d: id missing", i))
		case seen[t.ID]:
			errs = append(errs, fmt.Errorf("task %s: duplicate id", t.ID))
		case t.Region == "":
			errs = append(errs, fmt.Errorf("task %s: region missing", t.ID))
		case t.Weight < 0:
			errs = append(errs, fmt.Errorf("task %s: negative weight %v", t.ID, t.Weight))
		}
		seen[t.ID] = true
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("setting tasks: %w", err)
	}
	sorted := slices.Clone(specs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	n.mu.Lock()
	n.desired, n.desiredSet = sorted, true
	n.mu.Unlock()
	notify(n.lwake)
	return nil
}

// ReportLoad records the records/s of the tasks this node runs. The node sends
// the latest figures to the leader every LoadInterval (when they changed); the
// leader weighs tasks by them.
func (n *Node) ReportLoad(load map[string]float64) {
	c := make(map[string]float64, len(load))
	for k, v := range load {
		c[k] = v
	}
	n.mu.Lock()
	n.load = c
	n.loadSeq++
	n.mu.Unlock()
}

// healthResend is how often a health change is registered again while the
// node's replica does not show it.
const healthResend = 30 * time.Second

// SetUnhealthy makes this node decline tasks (reason not empty) or take them
// again (reason ""). A node that declines stops its tasks at once, whatever
// its replica says, and registers the reason with the leader, which moves its
// tasks to other members of its region as it would a dead member's; the node
// stays a Raft member (and voter). The reason shows in /v1/cluster/status and
// /v1/status. Safe for concurrent use.
func (n *Node) SetUnhealthy(reason string) {
	n.mu.Lock()
	changed := n.unhealthy != reason
	n.unhealthy = reason
	n.mu.Unlock()
	if changed {
		notify(n.wake)
		notify(n.rwake)
	}
}

// Ready reports whether the node has a leader, is not isolated and is
// registered with its current session, i.e. whether Assigned can be trusted.
func (n *Node) Ready() bool {
	if _, id := n.raft.LeaderWithID(); id == "" {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.isolated && n.registered && !n.removed && n.halt == nil
}

// Unassigned returns the number of tasks not running on a live member (no node
// of their region is alive, or their node died and the leader has not moved
// them yet), from this node's replica. cmd sets tributary_tasks{state="unassigned"}
// from it.
func (n *Node) Unassigned() int {
	var u int
	n.fsm.view(func(s *state) { u = s.unassigned() })
	return u
}

// Leave removes this node from the cluster through the leader (retrying while
// the leader changes, until ctx ends). The node runs no tasks afterwards. cmd
// calls it on shutdown only when configured to: by default a node stays a
// member, and a restart rejoins.
func (n *Node) Leave(ctx context.Context) error {
	n.mu.Lock()
	n.leaving = true
	n.mu.Unlock()
	notify(n.wake)
	path := "/v1/cluster/members/" + n.cfg.NodeID
	for {
		err := n.callLeader(ctx, http.MethodDelete, path, nil, nil, func(ctx context.Context) (uint64, error) {
			return n.removeMember(ctx, n.cfg.NodeID)
		})
		if err == nil {
			return nil
		}
		if !IsRetryable(err) {
			n.mu.Lock()
			n.leaving = false
			n.mu.Unlock()
			return fmt.Errorf("leaving the cluster: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("leaving the cluster: %w", err)
		case <-time.After(n.cfg.tick()):
		}
	}
}

// ProposePolicy commits a new policy bundle through the Raft log (via the
// leader when this node is not it) and returns the log index it was applied
// at. ErrStalePolicy: version is not greater than the active bundle's. Any
// other refusal by the leader's checks is a *BundleRefusedError when this node
// leads, and an error with the leader's answer otherwise.
func (n *Node) ProposePolicy(ctx context.Context, version int64, data []byte, hash, source string) (uint64, error) {
	pc := &policyCmd{Version: version, Data: data, Hash: hash, Source: source}
	var out indexResponse
	err := n.callLeader(ctx, http.MethodPost, "/v1/cluster/policy", pc, &out, func(ctx context.Context) (uint64, error) {
		return n.proposePolicy(ctx, pc, n.cfg.NodeID)
	})
	if err != nil {
		return 0, fmt.Errorf("proposing policy bundle %d: %w", version, err)
	}
	return out.Index, nil
}

// propose commits a command through raft.Apply, waiting at most until ctx ends
// (when it may still commit later). It returns the command's log index.
func (n *Node) propose(ctx context.Context, c command) (uint64, error) {
	if h := n.fsm.haltErr(); h != nil {
		return 0, fmt.Errorf("proposing %s: %w", c.Op, h)
	}
	v := n.writeVersions()
	if need := c.minVersion(); need > v.command {
		return 0, &badRequestError{fmt.Errorf("proposing %s: it needs command version %d, and members %s understand only %d: upgrade them first",
			c.Op, need, strings.Join(n.membersBelow(need), ", "), v.command)}
	}
	b, err := c.encode(v.command)
	if err != nil {
		return 0, fmt.Errorf("encoding %s command: %w", c.Op, err)
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return 0, fmt.Errorf("proposing %s: %w", c.Op, context.DeadlineExceeded)
		}
	}
	f := n.raft.Apply(b, timeout)
	done := make(chan error, 1)
	n.bg.Go(func() { done <- f.Error() }) // raft answers every future, at the latest on shutdown
	select {
	case err := <-done:
		if err != nil {
			return 0, fmt.Errorf("proposing %s: %w", c.Op, raftErr(err))
		}
		if err, ok := f.Response().(error); ok && err != nil {
			return f.Index(), err
		}
		return f.Index(), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("proposing %s: %w", c.Op, ctx.Err())
	}
}

// writeVersions returns the command and snapshot versions this node may write
// as the leader: the newest that it and every member understand.
func (n *Node) writeVersions() versions {
	var v versions
	n.fsm.view(func(s *state) { v = s.writeVersions(n.fsm.v) })
	return v
}

// membersBelow lists the members that do not understand command version v.
func (n *Node) membersBelow(v int) []string {
	var ids []string
	n.fsm.view(func(s *state) {
		for _, id := range sortedKeys(s.Members) {
			if s.Members[id].commandVersion() < v {
				ids = append(ids, id)
			}
		}
	})
	return ids
}

// halted is the FSM's onHalt: from now on the node declines tasks, reports
// itself unhealthy to the leader and in /readyz, and does not lead.
func (n *Node) halted(h *HaltedError) {
	n.mu.Lock()
	n.halt = h
	n.mu.Unlock()
	n.m.applyHalted.Set(1)
	n.log.Error("stopped applying the raft log: upgrade this node", "err", h, "index", h.Index, "version", h.Version, "supported_version", h.Newest)
	notify(n.wake)
	notify(n.rwake)
}

// Halted returns why this node stopped applying the Raft log (a
// *HaltedError: an entry or snapshot of a version it does not understand),
// nil while it applies. A halted node declines tasks and does not lead; only
// an upgrade (and restart) ends it.
func (n *Node) Halted() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.halt == nil {
		return nil
	}
	return n.halt
}

// healthLocked is why the node declines tasks, "" when it takes them: a halt
// first, then the reason SetUnhealthy gave. n.mu is held.
func (n *Node) healthLocked() string {
	if n.halt != nil {
		return n.halt.Error()
	}
	return n.unhealthy
}

// handOver makes a halted leader give leadership to another voter: one
// attempt at a time, and after a failure (no other voter, say) not again for
// handOverRetry.
func (n *Node) handOver() {
	n.mu.Lock()
	if n.transferring || n.now().Sub(n.transferFailedAt) < handOverRetry {
		n.mu.Unlock()
		return
	}
	n.transferring = true
	n.mu.Unlock()
	n.bg.Go(func() {
		err := n.raft.LeadershipTransfer().Error()
		if err != nil {
			n.log.Warn("this node leads although it stopped applying the raft log, and could not hand leadership over", "err", err)
		} else {
			n.log.Info("handed leadership over: this node stopped applying the raft log")
		}
		n.mu.Lock()
		n.transferring = false
		if err != nil {
			n.transferFailedAt = n.now()
		}
		n.mu.Unlock()
	})
}

const handOverRetry = 10 * time.Second

func raftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return ErrNotLeader
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	}
	return err
}

// raftTimeout turns ctx's deadline into raft's enqueue timeout (0: none).
func raftTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 0
}

// leaderHTTP returns the HTTP address of the current leader, "" when unknown.
func (n *Node) leaderHTTP() (id, addr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	n.fsm.view(func(s *state) { addr = s.Members[string(lid)].HTTPAddr })
	return string(lid), addr
}
