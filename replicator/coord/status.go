package coord

import (
	"strings"
	"time"
)

// Status is the node's view of the cluster for /v1/status and `tributary status`.
type Status struct {
	NodeID    string       `json:"node"`
	Leader    LeaderStatus `json:"leader"`
	RaftState string       `json:"raft_state"` // follower, candidate, leader, shutdown
	Term      uint64       `json:"term"`
	// Isolated: no contact with a leader for FailureTimeout; the node runs nothing.
	Isolated bool `json:"isolated"`
	// ApplyHalted is why the node stopped applying the Raft log (an entry of
	// a version it does not understand: upgrade it), empty while it applies.
	ApplyHalted string         `json:"apply_halted,omitempty"`
	Members     []MemberStatus `json:"members"`
	Tasks       []TaskStatus   `json:"tasks"`
	// Unassigned counts tasks not running on a live member (see Unassigned).
	Unassigned int          `json:"unassigned"`
	Policy     PolicyStatus `json:"policy"`
}

// LeaderStatus names the current leader; empty while none is known.
type LeaderStatus struct {
	ID       string `json:"id"`
	HTTPAddr string `json:"http_addr"`
}

// MemberStatus is one member.
type MemberStatus struct {
	ID       string `json:"id"`
	Region   string `json:"region"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Alive    bool   `json:"alive"`
	// Unhealthy is why the member declines tasks (data_dir short of space),
	// empty when it takes them.
	Unhealthy string `json:"unhealthy,omitempty"`
	// CommandVersion is the newest Raft command version the member
	// understands (1 for members that did not say).
	CommandVersion int `json:"command_version"`
}

// TaskStatus is one task and where it runs.
type TaskStatus struct {
	ID       string `json:"id"`
	Pipeline string `json:"pipeline"`
	Region   string `json:"region"`
	Node     string `json:"node"`
	Epoch    uint64 `json:"epoch"`
	// State is "assigned" (its node is a live member) or "unassigned".
	State string `json:"state"`
}

// PolicyStatus describes the active policy bundle (zero when there is none).
type PolicyStatus struct {
	Version      int64     `json:"version"`
	Hash         string    `json:"hash"`
	Source       string    `json:"source"`
	AppliedIndex uint64    `json:"applied_index"`
	AppliedAt    time.Time `json:"applied_at"`
}

// Task states of TaskStatus.State.
const (
	TaskAssigned   = "assigned"
	TaskUnassigned = "unassigned"
)

// Status returns the node's current view, from its replica of the state.
func (n *Node) Status() Status {
	st := Status{
		NodeID:    n.cfg.NodeID,
		RaftState: strings.ToLower(n.raft.State().String()),
		Term:      n.raft.CurrentTerm(),
	}
	st.Leader.ID, st.Leader.HTTPAddr = n.leaderHTTP()
	n.mu.Lock()
	st.Isolated = n.isolated
	if n.halt != nil {
		st.ApplyHalted = n.halt.Error()
	}
	n.mu.Unlock()
	n.fsm.view(func(s *state) {
		for _, id := range sortedKeys(s.Members) {
			m := s.Members[id]
			st.Members = append(st.Members, MemberStatus{ID: m.ID, Region: m.Region, RaftAddr: m.RaftAddr, HTTPAddr: m.HTTPAddr, Alive: m.Alive, Unhealthy: m.Unhealthy,
				CommandVersion: m.commandVersion()})
		}
		for _, id := range sortedKeys(s.Tasks) {
			t, a := s.Tasks[id], s.Assignments[id]
			ts := TaskStatus{ID: id, Pipeline: t.Pipeline, Region: t.Region, Node: a.Node, Epoch: a.Epoch, State: TaskAssigned}
			if !s.running(id) {
				ts.State = TaskUnassigned
				st.Unassigned++
			}
			st.Tasks = append(st.Tasks, ts)
		}
		if p := s.Policy; p != nil {
			st.Policy = PolicyStatus{Version: p.Version, Hash: p.Hash, Source: p.Source, AppliedIndex: p.AppliedIndex, AppliedAt: p.AppliedAt}
		}
	})
	return st
}
