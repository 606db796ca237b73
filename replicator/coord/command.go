package coord

import (
	"encoding/json"
	"fmt"
	"time"
)

// commandVersion is the newest format version of the commands written to the
// Raft log that this build understands. Nodes of two versions coexist during a
// rolling upgrade, so:
//   - every member advertises the newest command and snapshot versions it
//     understands when it registers (memberCmd.CommandVersion and
//     SnapshotVersion; absent means 1);
//   - the leader writes an entry of version v only when every member
//     understands v (writeVersion), and refuses a command that needs a newer
//     version than that (opMinVersion);
//   - a node that meets an entry or a snapshot of a version it does not know
//     stops applying the log (fsm.halted): it never misapplies it.
//
// History: 1 — first version (tributary 0.1).
const commandVersion = 1

// versions are the newest command and snapshot versions a node understands:
// those of this build (buildVersions), or another's in tests.
type versions struct {
	command  int
	snapshot int
}

var buildVersions = versions{command: commandVersion, snapshot: snapshotVersion}

func (v versions) orBuild() versions {
	if v.command < 1 || v.snapshot < 1 {
		return buildVersions
	}
	return v
}

// opMinVersion is the command version an op (or a field of it) needs, for the
// ops added after version 1. The leader refuses to propose such a command
// while a member does not understand that version. Tests add fake ops.
var opMinVersion = map[string]int{}

// minVersion is the command version c needs.
func (c command) minVersion() int { return max(1, opMinVersion[c.Op]) }

// Command ops. The log holds JSON objects {"v":1,"op":OP,...}; only the fields
// of OP are set.
const (
	opJoin       = "join"        // member: add or replace a member; it is alive
	opUpdate     = "update"      // member: change an existing member's region or addresses
	opLeave      = "leave"       // id: remove a member; its tasks become unassigned
	opSetAlive   = "set_alive"   // id, alive, at: liveness as seen by the leader
	opSetTasks   = "set_tasks"   // tasks: replace the desired task list
	opAssign     = "assign"      // assign: task id → node id ("" unassigns)
	opReportLoad = "report_load" // node, load: task id → records/s measured by node
	opPolicy     = "policy"      // policy, at: the new active policy bundle
)

// command is one entry of the Raft log.
type command struct {
	V  int       `json:"v"`
	Op string    `json:"op"`
	At time.Time `json:"at,omitzero"` // the proposer's clock: Apply reads no clock

	Member *memberCmd         `json:"member,omitempty"`
	ID     string             `json:"id,omitempty"`
	Alive  *bool              `json:"alive,omitempty"`
	Tasks  []TaskSpec         `json:"tasks,omitempty"`
	Assign map[string]string  `json:"assign,omitempty"`
	Node   string             `json:"node,omitempty"`
	Load   map[string]float64 `json:"load,omitempty"`
	Policy *policyCmd         `json:"policy,omitempty"`
}

// memberCmd is a member as a node registers it. Session changes every time the
// node starts or recovers from isolation: seeing its own session applied tells
// the node that its replica of the state is at least as recent as its
// registration.
type memberCmd struct {
	ID       string `json:"id"`
	Region   string `json:"region,omitempty"`
	RaftAddr string `json:"raft_addr,omitempty"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Session  string `json:"session,omitempty"`
	// Policies: the node has a policy folder (absent in entries written before
	// it existed, which reads as false).
	Policies bool `json:"policies,omitempty"`
	// Unhealthy: why the node declines tasks, empty when it takes them.
	// Added without a version change: a node that does not know the field
	// ignores it (and keeps assigning tasks to the member), as before.
	Unhealthy string `json:"unhealthy,omitempty"`
	// CommandVersion and SnapshotVersion: the newest command and snapshot
	// versions the node understands; absent (entries of nodes that predate
	// them) means 1.
	CommandVersion  int `json:"command_version,omitempty"`
	SnapshotVersion int `json:"snapshot_version,omitempty"`
}

type policyCmd struct {
	Version int64  `json:"version"`
	Data    []byte `json:"data"`
	Hash    string `json:"hash"`
	Source  string `json:"source"`
}

// encode writes c at version v (writeVersion's choice).
func (c command) encode(v int) ([]byte, error) {
	c.V = v
	return json.Marshal(c)
}

// versionError is a command whose version this node does not understand:
// the FSM halts on it (see fsm.Apply).
type versionError struct {
	op      string
	version int
	newest  int
}

func (e *versionError) Error() string {
	return fmt.Sprintf("command %q has version %d; this node understands versions 1 to %d", e.op, e.version, e.newest)
}

// decodeCommand decodes an entry of a version up to newest. The version is
// read first, so that an entry of a newer version is reported as such even
// when its fields no longer decode into command.
func decodeCommand(b []byte, newest int) (command, error) {
	var head struct {
		V  int    `json:"v"`
		Op string `json:"op"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return command{}, fmt.Errorf("decoding command: %w", err)
	}
	if head.V > newest {
		return command{}, &versionError{op: head.Op, version: head.V, newest: newest}
	}
	if head.V < 1 {
		return command{}, fmt.Errorf("command %q has version %d; versions start at 1", head.Op, head.V)
	}
	var c command
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decoding command: %w", err)
	}
	return c, nil
}
