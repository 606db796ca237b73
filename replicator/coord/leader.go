package coord

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"
)

// lead runs while this node is the Raft leader: it keeps the task list, the
// members' liveness and the assignment in the log up to date. The main loop
// starts it on becoming leader and cancels it on losing leadership.
func (n *Node) lead(ctx context.Context) {
	n.tracker.reset(n.now())
	n.log.Info("leading the cluster", "term", n.raft.CurrentTerm())
	tick := time.NewTicker(n.cfg.tick())
	defer tick.Stop()
	// Apply everything committed by earlier leaders before deciding from it.
	for {
		err := n.raft.Barrier(n.cfg.ElectionTimeout).Error()
		if err == nil {
			break
		}
		n.log.Debug("waiting for the log to be applied", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	notify(n.rwake) // register this node directly
	ls := &leaderState{lastBalance: n.now()}
	for {
		changed := n.reconcile(ctx, ls)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-changed:
		case <-n.tracker.wake:
		case <-n.lwake:
		}
	}
}

// leaderState is what the leader loop remembers between rounds.
type leaderState struct {
	unassigned  map[string]int // region → tasks unassigned for want of a live node
	lastBalance time.Time      // when load last moved tasks between live nodes
	eligible    string         // the eligible members at the last balance
}

// balanceCooldown spaces out moves made only for load balance. A moved task
// restarts and reports a misleading rate for a while; without a pause the
// leader would chase its own moves back and forth. Moves forced by a dead or
// departed node are never delayed.
const balanceCooldown = 30 * time.Second

// reconcile makes one change (or none) towards the desired state and returns
// the channel closed when the state changes next. Each proposal waits for its
// entry to be applied, so the next round sees its effect.
func (n *Node) reconcile(ctx context.Context, ls *leaderState) <-chan struct{} {
	now := n.now()
	var (
		members map[string]Member
		tasks   map[string]TaskSpec
		current map[string]Assignment
		load    map[string]float64
	)
	changed := n.fsm.view(func(s *state) {
		c := s.clone()
		members, tasks, current, load = c.Members, c.Tasks, c.Assignments, c.Load
	})
	pctx, cancel := context.WithTimeout(ctx, max(5*n.cfg.ElectionTimeout, 5*time.Second))
	defer cancel()
	report := func(what string, err error) {
		if err != nil && ctx.Err() == nil && !IsRetryable(err) {
			n.log.Warn("leader could not commit "+what, "err", err)
		}
	}

	// 1. The task list, from the leader's config.
	n.mu.Lock()
	desired, set := n.desired, n.desiredSet
	n.mu.Unlock()
	if set && !sameTasks(desired, tasks) {
		_, err := n.propose(pctx, command{Op: opSetTasks, Tasks: desired})
		report("the task list", err)
		if err == nil {
			n.log.Info("task list updated", "tasks", len(desired))
		}
		return changed
	}

	// 2. Liveness.
	voters := map[string]bool{}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			voters[string(s.ID)] = true
		}
	}
	for _, id := range sortedKeys(members) {
		m := members[id]
		alive, decided := true, true
		if id != n.cfg.NodeID {
			alive, decided = n.tracker.verdict(id, voters[id], now)
		}
		if !decided || alive == m.Alive {
			continue
		}
		_, err := n.propose(pctx, command{Op: opSetAlive, ID: id, Alive: &alive, At: now.UTC()})
		report("a liveness change", err)
		if err == nil {
			if alive {
				n.log.Info("member alive again", "member", id, "region", m.Region)
			} else {
				n.log.Warn("member dead: no contact for the failure timeout", "member", id, "region", m.Region, "failure_timeout", n.cfg.FailureTimeout)
			}
		}
		return changed
	}

	// 3. Voters: promote a reachable non-voter while there are too few.
	if n.promote(pctx, members, now) {
		return changed
	}

	// 4. The assignment.
	weighted := make(map[string]TaskSpec, len(tasks))
	for id, t := range tasks {
		t.Weight = effectiveWeight(t.Weight, load[id])
		weighted[id] = t
	}
	targets := make(map[string]Member, len(members))
	for id, m := range members {
		m.Alive = m.eligible()
		targets[id] = m
	}
	// First only what must change (dead nodes, unplaced tasks); balance moves
	// only when the cooldown has passed.
	next, moved, unassigned := Assign(weighted, targets, current, math.Inf(1))
	var eligible []string
	for _, id := range sortedKeys(targets) {
		if targets[id].Alive {
			eligible = append(eligible, id)
		}
	}
	sig := strings.Join(eligible, ",")
	balancing := false
	// A node that joins or comes back gets its share at once; otherwise load
	// moves wait for the cooldown.
	if len(moved) == 0 && (sig != ls.eligible || now.Sub(ls.lastBalance) >= balanceCooldown) {
		ls.eligible = sig
		next, moved, unassigned = Assign(weighted, targets, current, n.cfg.RebalanceMargin)
		balancing = len(moved) > 0
	}
	changes := map[string]string{}
	for id, a := range next {
		if current[id].Node != a.Node {
			changes[id] = a.Node
		}
	}
	byRegion := map[string]int{}
	for _, id := range unassigned {
		byRegion[tasks[id].Region]++
	}
	for _, r := range sortedKeys(byRegion) {
		if ls.unassigned[r] != byRegion[r] {
			n.log.Warn("tasks unassigned: no live node in region "+r, "region", r, "tasks", byRegion[r])
		}
	}
	for _, r := range sortedKeys(ls.unassigned) {
		if _, ok := byRegion[r]; !ok {
			n.log.Info("tasks of region "+r+" have live nodes again", "region", r)
		}
	}
	ls.unassigned = byRegion
	if len(changes) > 0 {
		_, err := n.propose(pctx, command{Op: opAssign, Assign: changes})
		report("an assignment", err)
		if err == nil && balancing {
			ls.lastBalance = now
		}
		if err == nil {
			placed := 0
			for id, node := range changes {
				if current[id].Node == "" && node != "" {
					placed++
				}
			}
			n.log.Info("assignment changed", "moved", len(moved), "placed", placed, "unassigned", len(unassigned), "moved_tasks", strings.Join(moved, ","))
		}
	}
	return changed
}

// promote makes one non-voter a voter when the configuration has fewer voters
// than the target and a non-voter is caught up: a registered, alive member
// that the leader has replicated to without a failed heartbeat for the
// tracker's confirmation period. It reports whether it changed anything.
func (n *Node) promote(ctx context.Context, members map[string]Member, now time.Time) bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	servers := f.Configuration().Servers
	voters := 0
	var cands []raft.Server
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
		} else if m, ok := members[string(s.ID)]; ok && m.Alive && m.Session != "" && n.tracker.steady(string(s.ID), now) {
			cands = append(cands, s)
		}
	}
	// Members that cannot vote yet (unreachable, or still catching up) do not
	// count towards the size that decides between 3 and 5 voters.
	if voters >= n.cfg.voterTarget(voters+len(cands)) || len(cands) == 0 {
		return false
	}
	slices.SortFunc(cands, func(a, b raft.Server) int { return strings.Compare(string(a.ID), string(b.ID)) })
	s := cands[0]
	if err := n.raft.AddVoter(s.ID, s.Address, f.Index(), raftTimeout(ctx)).Error(); err != nil {
		if ctx.Err() == nil && !IsRetryable(raftErr(err)) {
			n.log.Warn("could not promote a member to raft voter", "member", string(s.ID), "err", err)
		}
		return false
	}
	n.log.Info("promoted member to raft voter", "member", string(s.ID), "voters", voters+1)
	return true
}

// effectiveWeight is the weight Assign uses: the base weight (0 means 1) plus
// one per thousand records/s measured.
func effectiveWeight(base, recordsPerSec float64) float64 {
	if base <= 0 {
		base = 1
	}
	if recordsPerSec > 0 {
		base += recordsPerSec / 1000
	}
	return base
}

func sameTasks(desired []TaskSpec, have map[string]TaskSpec) bool {
	if len(desired) != len(have) {
		return false
	}
	for _, t := range desired {
		if h, ok := have[t.ID]; !ok || h != t {
			return false
		}
	}
	return true
}

// joinRequest is the body of POST /v1/cluster/join.
type joinRequest struct {
	ID       string `json:"id"`
	Region   string `json:"region"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// Session is set by tributary nodes registering themselves; an operator's
	// join may omit it.
	Session string `json:"session,omitempty"`
	// Policies says the node has a policy folder: once such a member is
	// registered, no node governs records without the cluster's bundle.
	Policies bool `json:"policies,omitempty"`
	// Unhealthy says why the node declines tasks (see Node.SetUnhealthy).
	Unhealthy string `json:"unhealthy,omitempty"`
	// CommandVersion and SnapshotVersion: the newest versions the node
	// understands (absent: 1).
	CommandVersion  int `json:"command_version,omitempty"`
	SnapshotVersion int `json:"snapshot_version,omitempty"`
}

func (r joinRequest) validate() error {
	var errs []error
	if r.ID == "" {
		errs = append(errs, errors.New("id: required"))
	}
	if r.Region == "" {
		errs = append(errs, errors.New("region: required"))
	}
	if err := advertisable(r.RaftAddr); err != nil {
		errs = append(errs, fmt.Errorf("raft_addr (%q): %w", r.RaftAddr, err))
	}
	if r.HTTPAddr == "" {
		errs = append(errs, errors.New("http_addr: required"))
	}
	return errors.Join(errs...)
}

// join admits a member, on the leader: a node new to the Raft configuration
// enters as a non-voter (reconcile promotes it once the leader reaches it, up
// to the voter count), one already there keeps its suffrage (its address is
// updated), and the member is recorded as alive.
//
// Adding a voter at once let one join naming an unreachable address take a
// one-node cluster's quorum away; a non-voter costs the leader nothing.
func (n *Node) join(ctx context.Context, req joinRequest) (uint64, error) {
	if err := req.validate(); err != nil {
		return 0, &badRequestError{fmt.Errorf("join request: %w", err)}
	}
	if n.raft.State() != raft.Leader {
		return 0, fmt.Errorf("joining %s: %w", req.ID, ErrNotLeader)
	}
	if req.ID == n.cfg.NodeID {
		if req.RaftAddr != n.cfg.raftAdvertised() || req.HTTPAddr != n.cfg.HTTPAddr || req.Region != n.cfg.Region {
			return 0, &badRequestError{fmt.Errorf("joining %s: that is the leader's id, with raft address %s, http address %s, region %s",
				req.ID, n.cfg.raftAdvertised(), n.cfg.HTTPAddr, n.cfg.Region)}
		}
	} else {
		f := n.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return 0, fmt.Errorf("joining %s: reading raft configuration: %w", req.ID, raftErr(err))
		}
		present := false
		for _, s := range f.Configuration().Servers {
			switch {
			case string(s.ID) == req.ID:
				present = string(s.Address) == req.RaftAddr
			case string(s.Address) == req.RaftAddr:
				return 0, &badRequestError{fmt.Errorf("joining %s: raft address %s is already used by member %s", req.ID, req.RaftAddr, s.ID)}
			}
		}
		if !present {
			// AddNonvoter keeps a voter's suffrage and changes only its address.
			if err := n.raft.AddNonvoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, raftTimeout(ctx)).Error(); err != nil {
				return 0, fmt.Errorf("adding %s to raft: %w", req.ID, raftErr(err))
			}
			n.log.Info("added raft member", "member", req.ID, "raft_addr", req.RaftAddr)
		}
		n.tracker.resumed(req.ID, n.now())
	}
	idx, err := n.propose(ctx, command{Op: opJoin, At: n.now().UTC(), Member: &memberCmd{
		ID: req.ID, Region: req.Region, RaftAddr: req.RaftAddr, HTTPAddr: req.HTTPAddr, Session: req.Session, Policies: req.Policies,
		Unhealthy: req.Unhealthy, CommandVersion: req.CommandVersion, SnapshotVersion: req.SnapshotVersion,
	}})
	if err != nil {
		return 0, fmt.Errorf("joining %s: %w", req.ID, err)
	}
	return idx, nil
}

// removeMember removes a member, on the leader: first from the state (its tasks
// become unassigned and move), then from the Raft voters.
func (n *Node) removeMember(ctx context.Context, id string) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, fmt.Errorf("removing %s: %w", id, ErrNotLeader)
	}
	var member bool
	n.fsm.view(func(s *state) { _, member = s.Members[id] })
	inConfig, voter, voters := false, false, 0
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			inConfig = inConfig || string(s.ID) == id
			if s.Suffrage == raft.Voter {
				voters++
				voter = voter || string(s.ID) == id
			}
		}
	}
	if !member && !inConfig {
		return 0, fmt.Errorf("removing %s: %w", id, ErrUnknownMember)
	}
	if voter && voters == 1 {
		return 0, &badRequestError{fmt.Errorf("removing %s: it is the last raft voter", id)}
	}
	var idx uint64
	if member {
		var err error
		if idx, err = n.propose(ctx, command{Op: opLeave, ID: id}); err != nil {
			return 0, fmt.Errorf("removing %s: %w", id, err)
		}
	}
	if inConfig {
		// Voter or non-voter: either leaves the Raft configuration.
		f := n.raft.RemoveServer(raft.ServerID(id), 0, raftTimeout(ctx))
		if err := n.awaitRemoval(ctx, f, id); err != nil {
			return idx, fmt.Errorf("removing raft server %s: %w", id, err)
		}
		idx = max(idx, f.Index())
	}
	n.log.Info("removed member", "member", id)
	return idx, nil
}

// awaitRemoval waits for the configuration change that removes server id,
// at most until ctx is done. raft's future has no deadline of its own, and a
// leader that removes itself may step down before it answers (seen once in a
// full suite run: the future of a leaving leader was still unanswered after
// 13 minutes); so once ctx is done the latest configuration decides: without
// id the removal is in the log (a later leader commits it with the entries
// around it, or the removal is asked again), with id it failed.
func (n *Node) awaitRemoval(ctx context.Context, f raft.IndexFuture, id string) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return raftErr(err)
	case <-ctx.Done():
	}
	if c := n.raft.GetConfiguration(); c.Error() == nil {
		for _, s := range c.Configuration().Servers {
			if string(s.ID) == id {
				return fmt.Errorf("not committed: %w", ctx.Err())
			}
		}
		return nil
	}
	return fmt.Errorf("not confirmed: %w", ctx.Err())
}

// registerLoop keeps this node registered: after start-up, and after every
// isolation, it sends a join with a new session to the leader (directly when
// it leads, else over HTTP to the leader, or to the cluster.join addresses and
// known members when no leader is known; any member forwards). It stops trying
// once the node was removed or Leave was called.
func (n *Node) registerLoop(ctx context.Context) {
	const (
		minWait = 100 * time.Millisecond
		maxWait = 5 * time.Second
	)
	wait := minWait
	var lastOK time.Time
	var tries int
	for {
		var changed <-chan struct{}
		req, need := n.needsRegistration()
		if need {
			// The leader's address, or the member list, may arrive with the log.
			changed = n.fsm.view(func(*state) {})
		}
		if need && time.Since(lastOK) > 2*time.Second {
			err := n.register(ctx, req, tries)
			tries++
			switch {
			case err == nil:
				lastOK, wait = time.Now(), minWait
				n.mu.Lock()
				n.healthSent, n.healthSentAt = req.Unhealthy, lastOK
				n.mu.Unlock()
			case ctx.Err() != nil:
				return
			default:
				if tries%10 == 5 {
					n.log.Info("registering with the cluster failed; retrying", "err", err)
				}
				wait = min(2*wait, maxWait)
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-n.rwake:
			timer.Stop()
		case <-changed:
			timer.Stop()
		}
	}
}

func (n *Node) needsRegistration() (joinRequest, bool) {
	inConfig := false
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		inConfig = slices.ContainsFunc(f.Configuration().Servers, func(s raft.Server) bool { return string(s.ID) == n.cfg.NodeID })
	}
	var recorded string
	n.fsm.view(func(s *state) { recorded = s.Members[n.cfg.NodeID].Unhealthy })
	n.mu.Lock()
	defer n.mu.Unlock()
	req := joinRequest{ID: n.cfg.NodeID, Region: n.cfg.Region, RaftAddr: n.cfg.raftAdvertised(), HTTPAddr: n.cfg.HTTPAddr, Session: n.session, Policies: n.cfg.HasPolicies,
		Unhealthy: n.healthLocked(), CommandVersion: n.fsm.v.command, SnapshotVersion: n.fsm.v.snapshot}
	if n.halt != nil {
		// Its replica is frozen: it never sees its registration applied, so
		// one accepted registration per healthResend tells the leader.
		return req, (n.healthSent != req.Unhealthy || n.now().Sub(n.healthSentAt) > healthResend) && !n.removed && !n.leaving
	}
	// A registered node whose health changed registers again with the same
	// session. Its own replica may not show the change (a follower whose log
	// cannot be written to learns nothing new), so one accepted registration
	// per change is enough; it is repeated every healthResend in case the
	// leader changed before committing it.
	healthChanged := n.registered && recorded != req.Unhealthy &&
		(n.healthSent != req.Unhealthy || n.now().Sub(n.healthSentAt) > healthResend)
	// An isolated voter waits for the leader's contact: the leader cannot reach
	// it, so admitting it again would only make it flap.
	return req, (!n.registered || healthChanged) && !n.removed && !n.leaving && (!n.isolated || !inConfig || !n.contacted)
}

func (n *Node) register(ctx context.Context, req joinRequest, try int) error {
	if n.raft.State() == raft.Leader {
		_, err := n.join(ctx, req)
		return err
	}
	_, addr := n.leaderHTTP()
	if addr == "" {
		var cands []string
		cands = append(cands, n.cfg.Join...)
		n.fsm.view(func(s *state) {
			for _, id := range sortedKeys(s.Members) {
				if m := s.Members[id]; id != n.cfg.NodeID && m.HTTPAddr != "" && !slices.Contains(cands, m.HTTPAddr) {
					cands = append(cands, m.HTTPAddr)
				}
			}
		})
		if len(cands) == 0 {
			return fmt.Errorf("registering: %w (and no member address known)", ErrNotLeader)
		}
		addr = cands[try%len(cands)]
	}
	rctx, cancel := context.WithTimeout(ctx, max(2*n.cfg.ElectionTimeout, 5*time.Second))
	defer cancel()
	return n.call(rctx, addr, "POST", "/v1/cluster/join", req, nil, false)
}

// reportLoop sends this node's task load to the leader every LoadInterval when
// it changed.
func (n *Node) reportLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.LoadInterval)
	defer tick.Stop()
	var sent uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n.mu.Lock()
		seq, ok := n.loadSeq, n.registered && !n.isolated && !n.removed
		lr := loadRequest{Node: n.cfg.NodeID, Load: n.load}
		n.mu.Unlock()
		if !ok || seq == sent || len(lr.Load) == 0 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, n.cfg.LoadInterval)
		err := n.callLeader(rctx, "POST", "/v1/cluster/load", lr, nil, func(ctx context.Context) (uint64, error) {
			return n.propose(ctx, command{Op: opReportLoad, Node: lr.Node, Load: lr.Load})
		})
		cancel()
		if err == nil {
			sent = seq
		} else if ctx.Err() == nil {
			n.log.Debug("reporting task load failed", "err", err)
		}
	}
}

// loadRequest is the body of POST /v1/cluster/load.
type loadRequest struct {
	Node string             `json:"node"`
	Load map[string]float64 `json:"load"`
}
