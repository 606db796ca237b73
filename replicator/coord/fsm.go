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
	// CommandVersion and SnapshotVersion are the newest command and snapshot
	// versions the member understands, as it registered them; 0 (members
	// recorded before they existed) means 1.
	CommandVersion  int `json:"command_version,omitempty"`
	SnapshotVersion int `json:"snapshot_version,omitempty"`
}

func (m Member) commandVersion() int  { return max(1, m.CommandVersion) }
func (m Member) snapshotVersion() int { return max(1, m.SnapshotVersion) }

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

// writeVersions returns the versions the leader may write: the newest
// command and snapshot versions that every member understands, and own
// understands. Members marked dead count too: they may come back.
func (s *state) writeVersions(own versions) versions {
	v := own
	for _, m := range s.Members {
		v.command = min(v.command, m.commandVersion())
		v.snapshot = min(v.snapshot, m.snapshotVersion())
	}
	return v
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
		m.CommandVersion, m.SnapshotVersion = c.Member.CommandVersion, c.Member.SnapshotVersion
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

// snapshotVersion is the newest format version of persisted snapshots this
// build reads. A snapshot is written at the newest version every member reads
// (state.writeVersions), since the leader sends its snapshots to followers.
//
// History: 1 — first version (tributary 0.1).
const snapshotVersion = 1

type snapshotFile struct {
	Version int    `json:"version"`
	State   *state `json:"state"`
}

// HaltedError is why a node stopped applying the Raft log: it met an entry
// (or a snapshot) of a version it does not understand, written by a newer
// node. Misapplying it would make this replica diverge silently; instead the
// FSM applies nothing more, so its state stays frozen at Applied, and the
// node declines tasks until it is upgraded (a restart of the newer binary
// replays the log from its last snapshot).
type HaltedError struct {
	// Index is the log index of the entry; 0 for a snapshot.
	Index uint64
	// Op is the entry's command op, "" for a snapshot.
	Op string
	// Version is the entry's (or snapshot's) version, Newest the newest this
	// node understands.
	Version, Newest int
	// Applied is the last log index applied before the halt.
	Applied uint64
}

func (e *HaltedError) Error() string {
	if e.Index == 0 {
		return fmt.Sprintf("raft apply halted: a snapshot has version %d, this node reads snapshot versions up to %d; "+
			"its state is frozen at log index %d: upgrade this node", e.Version, e.Newest, e.Applied)
	}
	return fmt.Sprintf("raft apply halted at log index %d: the entry (%s) has command version %d, this node understands versions up to %d; "+
		"its state is frozen at log index %d: upgrade this node", e.Index, e.Op, e.Version, e.Newest, e.Applied)
}

// fsm is the raft.FSM over state. raft calls Apply, Snapshot and Restore from
// one goroutine; readers use view. After every change it closes the channel
// returned by changed and delivers a new policy bundle to onPolicy.
type fsm struct {
	onPolicy func(PolicyBundle)
	onHalt   func(*HaltedError)
	v        versions

	mu     sync.RWMutex
	st     *state
	index  uint64        // last applied log index
	ch     chan struct{} // closed on the next change
	halted *HaltedError  // set once; then nothing is applied any more
}

func newFSM(onPolicy func(PolicyBundle)) *fsm {
	return &fsm{st: newState(), ch: make(chan struct{}), onPolicy: onPolicy, v: buildVersions}
}

// Apply implements raft.FSM. The response is nil or an error. An entry of a
// command version this node does not understand halts the FSM: that entry
// and every later one return the *HaltedError and change nothing.
func (f *fsm) Apply(l *raft.Log) any {
	if h := f.haltErr(); h != nil {
		return h
	}
	c, err := decodeCommand(l.Data, f.v.command)
	if ve := (*versionError)(nil); errors.As(err, &ve) {
		f.mu.RLock()
		applied := f.index
		f.mu.RUnlock()
		return f.halt(&HaltedError{Index: l.Index, Op: ve.op, Version: ve.version, Newest: ve.newest, Applied: applied})
	}
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

// halt stops the FSM for good (the first halt wins) and returns its error.
func (f *fsm) halt(h *HaltedError) *HaltedError {
	f.mu.Lock()
	if f.halted != nil {
		h = f.halted
		f.mu.Unlock()
		return h
	}
	f.halted = h
	close(f.ch)
	f.ch = make(chan struct{})
	f.mu.Unlock()
	if f.onHalt != nil {
		f.onHalt(h)
	}
	return h
}

// haltErr returns why the FSM stopped applying, nil while it applies.
func (f *fsm) haltErr() *HaltedError {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.halted
}

// Snapshot implements raft.FSM: it captures a copy, Persist writes it.
// A halted FSM takes no snapshot: its state is older than the index raft
// would label it with, and the log it has not applied must not be compacted.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.halted != nil {
		return nil, f.halted
	}
	return &fsmSnapshot{st: f.st.clone(), version: f.st.writeVersions(f.v).snapshot}, nil
}

// Restore implements raft.FSM: it replaces all state.
// A snapshot of a version this node does not read halts the FSM.
func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	if h := f.haltErr(); h != nil {
		return h
	}
	st, err := readSnapshot(r, f.v.snapshot)
	if ve := (*versionError)(nil); errors.As(err, &ve) {
		f.mu.RLock()
		applied := f.index
		f.mu.RUnlock()
		return f.halt(&HaltedError{Version: ve.version, Newest: ve.newest, Applied: applied})
	}
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
func readSnapshot(r io.Reader, newest int) (*state, error) {
	// The version first: a newer snapshot's state may not decode into ours.
	var raw struct {
		Version int             `json:"version"`
		State   json.RawMessage `json:"state"`
	}
	dec := json.NewDecoder(r)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decoding snapshot: %w", err)
	}
	if raw.Version > newest {
		return nil, &versionError{op: "snapshot", version: raw.Version, newest: newest}
	}
	if raw.Version < 1 {
		return nil, fmt.Errorf("snapshot has version %d; versions start at 1", raw.Version)
	}
	if end := dec.InputOffset(); !errors.Is(eof(dec), io.EOF) {
		return nil, fmt.Errorf("decoding snapshot: data after the snapshot's JSON object at byte %d", end)
	}
	sf := snapshotFile{Version: raw.Version}
	if len(raw.State) > 0 {
		if err := json.Unmarshal(raw.State, &sf.State); err != nil {
			return nil, fmt.Errorf("decoding snapshot: %w", err)
		}
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

type fsmSnapshot struct {
	st      *state
	version int
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(snapshotFile{Version: max(1, s.version), State: s.st}); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("writing snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}
