package coord

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Member is a node of the cluster as the replicated state records it.
type Member struct {
	ID       string `json:"id"`
	Region   string `json:"region"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// Alive is the leader's view: false once the leader has not reached the
	// member for FailureTimeout.
	Alive bool `json:"alive"`
	// Since is when Alive last changed (or the member joined).
	Since time.Time `json:"since"`
	// Session identifies the node's latest registration (see memberCmd); it is
	// cleared when the member is marked dead.
	Session string `json:"session,omitempty"`
	// Policies: the member has a policy folder (so the cluster uses policies).
	Policies bool `json:"policies,omitempty"`
	// Unhealthy is why the member declines tasks (its data_dir is short of
	// space, say), empty while it takes them. The member sets it by
	// registering again; it stays a Raft member and voter meanwhile.
	Unhealthy string `json:"unhealthy,omitempty"`
}

// eligible reports whether the member may run tasks: alive, registered since
// it was last marked dead (a node recovering from a crash or an isolation runs
// nothing until its registration is applied, so the leader waits for it too),
// and not declining tasks as unhealthy.
func (m Member) eligible() bool { return m.Alive && m.Session != "" && m.Unhealthy == "" }

// TaskSpec is one task of the desired task list.
type TaskSpec struct {
	// ID is "<pipeline>/<index>".
	ID       string `json:"id"`
	Pipeline string `json:"pipeline"`
	// Region is the data-residency region of the task's source: the task runs
	// only on nodes of this region.
	Region string `json:"region"`
	// Weight is the task's base weight (0 means 1). The assignment adds the
	// reported load: weight + records_per_sec/1000.
	Weight float64 `json:"weight,omitempty"`
}

// Assignment says which node runs a task.
type Assignment struct {
	// Node is the member running the task; "" means unassigned.
	Node string `json:"node"`
	// Epoch increases every time Node changes.
	Epoch uint64 `json:"epoch"`
}

// PolicyBundle is the active policy bundle, opaque to this package.
type PolicyBundle struct {
	Version int64  `json:"version"`
	Data    []byte `json:"data"`
	Hash    string `json:"hash"`
	Source  string `json:"source"`
	// AppliedIndex is the Raft log index the bundle was applied at: the same
	// on every node.
	AppliedIndex uint64 `json:"applied_index"`
	// AppliedAt is the proposer's clock when it proposed the bundle.
	AppliedAt time.Time `json:"applied_at"`
}

// state is the replicated state. Apply is its only writer.
type state struct {
	Members     map[string]Member     `json:"members"`
	Tasks       map[string]TaskSpec   `json:"tasks"`
	Assignments map[string]Assignment `json:"assignments"`
	Load        map[string]float64    `json:"load"`
	Policy      *PolicyBundle         `json:"policy,omitempty"`
}

func newState() *state {
	return &state{
		Members:     map[string]Member{},
		Tasks:       map[string]TaskSpec{},
		Assignments: map[string]Assignment{},
		Load:        map[string]float64{},
	}
}

func (s *state) clone() *state {
	c := &state{
		Members:     make(map[string]Member, len(s.Members)),
		Tasks:       make(map[string]TaskSpec, len(s.Tasks)),
		Assignments: make(map[string]Assignment, len(s.Assignments)),
		Load:        make(map[string]float64, len(s.Load)),
	}
	for k, v := range s.Members {
		c.Members[k] = v
	}
	for k, v := range s.Tasks {
		c.Tasks[k] = v
	}
	for k, v := range s.Assignments {
		c.Assignments[k] = v
	}
	for k, v := range s.Load {
		c.Load[k] = v
	}
	if s.Policy != nil {
		p := *s.Policy
		p.Data = append([]byte(nil), p.Data...)
		c.Policy = &p
	}
	return c
}

// running reports whether a task's assigned node is an eligible member.
func (s *state) running(task string) bool {
	a := s.Assignments[task]
	m, ok := s.Members[a.Node]
	return a.Node != "" && ok && m.eligible()
}

// unassigned counts tasks not assigned to a live member: unassigned ones, and
// those whose node died and that the leader has not moved yet.
func (s *state) unassigned() int {
	n := 0
	for id := range s.Tasks {
		if !s.running(id) {
			n++
		}
	}
	return n
}

// tasksOf lists the tasks assigned to node, sorted.
func (s *state) tasksOf(node string) []string {
	ids := []string{}
	for id := range s.Tasks {
		if s.Assignments[id].Node == node {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// apply changes the state by one command. It is deterministic: no clock, no
// randomness, no I/O. It returns the policy bundle when the command set one.
func (s *state) apply(c command, index uint64) (*PolicyBundle, error) {
	switch c.Op {
	case opJoin:
		if c.Member == nil || c.Member.ID == "" {
			return nil, fmt.Errorf("%s: member id missing", c.Op)
		}
		m, ok := s.Members[c.Member.ID]
		if !ok || !m.Alive {
			m.Since = c.At
		}
		m.ID, m.Region, m.RaftAddr, m.HTTPAddr = c.Member.ID, c.Member.Region, c.Member.RaftAddr, c.Member.HTTPAddr
		m.Session, m.Alive, m.Policies = c.Member.Session, true, c.Member.Policies
		m.Unhealthy = c.Member.Unhealthy
		s.Members[m.ID] = m
	case opUpdate:
		if c.Member == nil {
			return nil, fmt.Errorf("%s: member missing", c.Op)
		}
		m, ok := s.Members[c.Member.ID]
		if !ok {
			return nil, fmt.Errorf("%s %q: %w", c.Op, c.Member.ID, ErrUnknownMember)
		}
		if c.Member.Region != "" {
			m.Region = c.Member.Region
		}
		if c.Member.RaftAddr != "" {
			m.RaftAddr = c.Member.RaftAddr
		}
		if c.Member.HTTPAddr != "" {
			m.HTTPAddr = c.Member.HTTPAddr
		}
		s.Members[m.ID] = m
	case opLeave:
		if _, ok := s.Members[c.ID]; !ok {
			return nil, fmt.Errorf("%s %q: %w", c.Op, c.ID, ErrUnknownMember)
		}
		delete(s.Members, c.ID)
		for id, a := range s.Assignments {
			if a.Node == c.ID {
				s.Assignments[id] = Assignment{Node: "", Epoch: a.Epoch + 1}
			}
		}
	case opSetAlive:
		m, ok := s.Members[c.ID]
		if !ok {
			return nil, fmt.Errorf("%s %q: %w", c.Op, c.ID, ErrUnknownMember)
		}
		if c.Alive == nil {
			return nil, fmt.Errorf("%s %q: alive missing", c.Op, c.ID)
		}
		if m.Alive != *c.Alive {
			m.Alive, m.Since = *c.Alive, c.At
			if !m.Alive {
				// A dead member gets tasks again only once it has registered anew.
				m.Session = ""
			}
			s.Members[c.ID] = m
		}
	case opSetTasks:
		tasks := make(map[string]TaskSpec, len(c.Tasks))
		for _, t := range c.Tasks {
			if t.ID == "" {
				return nil, fmt.Errorf("%s: task without id", c.Op)
			}
			tasks[t.ID] = t
		}
		s.Tasks = tasks
		for id := range s.Assignments {
			if _, ok := tasks[id]; !ok {
				delete(s.Assignments, id)
			}
		}
		for id := range s.Load {
			if _, ok := tasks[id]; !ok {
				delete(s.Load, id)
			}
		}
	case opAssign:
		for task, node := range c.Assign {
			if _, ok := s.Tasks[task]; !ok {
				continue // the task list changed since the leader computed this
			}
			if _, ok := s.Members[node]; node != "" && !ok {
				continue // likewise for the member
			}
			if a := s.Assignments[task]; a.Node != node {
				s.Assignments[task] = Assignment{Node: node, Epoch: a.Epoch + 1}
			}
		}
	case opReportLoad:
		for task, v := range c.Load {
			if s.Assignments[task].Node == c.Node && c.Node != "" && v >= 0 && !math.IsInf(v, 0) {
				s.Load[task] = v
			}
		}
	case opPolicy:
		if c.Policy == nil {
			return nil, fmt.Errorf("%s: bundle missing", c.Op)
		}
		if c.Policy.Version < 1 {
			// The leader refuses these (checkBundle); a snapshot holding one
			// would not restore (check).
			return nil, fmt.Errorf("policy bundle version %d: versions start at 1", c.Policy.Version)
		}
		if s.Policy != nil && c.Policy.Version <= s.Policy.Version {
			return nil, fmt.Errorf("policy bundle version %d (active %d): %w", c.Policy.Version, s.Policy.Version, ErrStalePolicy)
		}
		s.Policy = &PolicyBundle{
			Version: c.Policy.Version, Data: c.Policy.Data, Hash: c.Policy.Hash, Source: c.Policy.Source,
			AppliedIndex: index, AppliedAt: c.At,
		}
		p := *s.Policy
		return &p, nil
	default:
		return nil, fmt.Errorf("unknown command op %q", c.Op)
	}
	return nil, nil
}

// snapshotVersion is the format version of persisted snapshots.
//
// History: 1 — first version (tributary 0.1).
const snapshotVersion = 1

type snapshotFile struct {
	Version int    `json:"version"`
	State   *state `json:"state"`
}

// fsm is the raft.FSM over state. raft calls Apply, Snapshot and Restore from
// one goroutine; readers use view. After every change it closes the channel
// returned by changed and delivers a new policy bundle to onPolicy.
type fsm struct {
	onPolicy func(PolicyBundle)

	mu    sync.RWMutex
	st    *state
	index uint64        // last applied log index
	ch    chan struct{} // closed on the next change
}

func newFSM(onPolicy func(PolicyBundle)) *fsm {
	return &fsm{st: newState(), ch: make(chan struct{}), onPolicy: onPolicy}
}

// Apply implements raft.FSM. The response is nil or an error.
func (f *fsm) Apply(l *raft.Log) any {
	c, err := decodeCommand(l.Data)
	if err != nil {
		return err
	}
	f.mu.Lock()
	p, err := f.st.apply(c, l.Index)
	f.index = l.Index
	close(f.ch)
	f.ch = make(chan struct{})
	f.mu.Unlock()
	if p != nil && f.onPolicy != nil {
		f.onPolicy(*p)
	}
	return err
}

// Snapshot implements raft.FSM: it captures a copy, Persist writes it.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return &fsmSnapshot{st: f.st.clone()}, nil
}

// Restore implements raft.FSM: it replaces all state.
func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	st, err := readSnapshot(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.st = st
	close(f.ch)
	f.ch = make(chan struct{})
	f.mu.Unlock()
	if st.Policy != nil && f.onPolicy != nil {
		f.onPolicy(*st.Policy)
	}
	return nil
}

// readSnapshot reads a snapshot written by Persist. What Persist cannot have
// written (trailing data, no state, a state no sequence of commands builds) is
// an error: a damaged or forged snapshot must fail the restore rather than
// replace the state with a corrupt one.
func readSnapshot(r io.Reader) (*state, error) {
	var sf snapshotFile
	dec := json.NewDecoder(r)
	if err := dec.Decode(&sf); err != nil {
		return nil, fmt.Errorf("decoding snapshot: %w", err)
	}
	if sf.Version < 1 || sf.Version > snapshotVersion {
		return nil, fmt.Errorf("snapshot has version %d; this node reads versions 1 to %d", sf.Version, snapshotVersion)
	}
	if end := dec.InputOffset(); !errors.Is(eof(dec), io.EOF) {
		return nil, fmt.Errorf("decoding snapshot: data after the snapshot's JSON object at byte %d", end)
	}
	if sf.State == nil {
		return nil, errors.New("decoding snapshot: no state")
	}
	st := newState()
	if sf.State != nil {
		// Keep the maps non-nil whatever the file omitted.
		for k, v := range sf.State.Members {
			st.Members[k] = v
		}
		for k, v := range sf.State.Tasks {
			st.Tasks[k] = v
		}
		for k, v := range sf.State.Assignments {
			st.Assignments[k] = v
		}
		for k, v := range sf.State.Load {
			st.Load[k] = v
		}
		st.Policy = sf.State.Policy
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	return st, nil
}

// eof returns io.EOF when dec holds nothing but white space any more.
func eof(dec *json.Decoder) error {
	_, err := dec.Token()
	return err
}

// check returns the first inconsistency of a state: every state Apply builds
// passes it (members and tasks under their own ids, assignments and load only
// of listed tasks, assigned nodes are members, finite non-negative load,
// bundle versions from 1).
func (s *state) check() error {
	for k, m := range s.Members {
		if k == "" || m.ID != k {
			return fmt.Errorf("member %q has id %q", k, m.ID)
		}
	}
	for k, t := range s.Tasks {
		if k == "" || t.ID != k {
			return fmt.Errorf("task %q has id %q", k, t.ID)
		}
	}
	for k, a := range s.Assignments {
		if _, ok := s.Tasks[k]; !ok {
			return fmt.Errorf("assignment of task %q: no such task", k)
		}
		if _, ok := s.Members[a.Node]; a.Node != "" && !ok {
			return fmt.Errorf("assignment of task %q: node %q is not a member", k, a.Node)
		}
	}
	for k, v := range s.Load {
		if _, ok := s.Tasks[k]; !ok {
			return fmt.Errorf("load of task %q: no such task", k)
		}
		if v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("load of task %q: %v records/s", k, v)
		}
	}
	if s.Policy != nil && s.Policy.Version < 1 {
		return fmt.Errorf("policy bundle version %d: versions start at 1", s.Policy.Version)
	}
	return nil
}

// view calls fn with the current state, which fn must not modify or keep.
// It returns the channel that is closed on the next change.
func (f *fsm) view(fn func(*state)) <-chan struct{} {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.st)
	return f.ch
}

type fsmSnapshot struct{ st *state }

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(snapshotFile{Version: snapshotVersion, State: s.st}); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("writing snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}
