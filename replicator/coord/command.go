package coord

import (
	"encoding/json"
	"fmt"
	"time"
)

// commandVersion is the format version of the commands written to the Raft
// log. A node applies every version up to its own; a command of a newer version
// (written by a newer leader during a rolling upgrade) is refused with an error
// response, which only that command's proposer sees.
//
// History: 1 — first version (tributary 0.1).
const commandVersion = 1

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
}

type policyCmd struct {
	Version int64  `json:"version"`
	Data    []byte `json:"data"`
	Hash    string `json:"hash"`
	Source  string `json:"source"`
}

func (c command) encode() ([]byte, error) {
	c.V = commandVersion
	return json.Marshal(c)
}

func decodeCommand(b []byte) (command, error) {
	var c command
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decoding command: %w", err)
	}
	if c.V < 1 || c.V > commandVersion {
		return c, fmt.Errorf("command %q has version %d; this node applies versions 1 to %d", c.Op, c.V, commandVersion)
	}
	return c, nil
}
