package daemon

import (
	"time"

	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/coord"
)

// Status is the JSON of /v1/status. With ?scope=cluster (see clusterstatus.go)
// the node also asks the other members and Scope, Unreachable and the cluster
// fields of each TaskView are set; the plain answer leaves them empty.
type Status struct {
	Node NodeInfo `json:"node"`
	// Security is "off" when security.insecure is set (nothing protects the
	// node), "loopback" when the node runs without TLS on loopback only.
	Security string                  `json:"security"`
	Cluster  coord.Status            `json:"cluster"`
	Policy   PolicyStatus            `json:"policy"`
	Local    []replicator.TaskStatus `json:"local_tasks"`
	Tasks    []TaskView              `json:"tasks"`
	// Pipelines are the configured pipelines with their governance: "none"
	// marks a pipeline whose records are never masked (shown as ungoverned).
	Pipelines []PipelineInfo `json:"pipelines"`
	// Disk is the free space of data_dir and, when the node declines tasks
	// for want of it, why.
	Disk DiskStatus `json:"disk"`
	// Scope is "cluster" in the cluster view, empty in the plain one.
	Scope string `json:"scope,omitempty"`
	// Unreachable lists the alive members that did not answer for the
	// cluster view (sorted by id): their tasks carry no figures.
	Unreachable []UnreachableMember `json:"unreachable,omitempty"`
}

// NodeInfo names the answering node.
type NodeInfo struct {
	ID      string `json:"id"`
	Region  string `json:"region"`
	Version string `json:"version"`
}

// TaskView is one task as the cluster assigns it, with this node's measurements
// when it runs here. In the cluster view the measurements come from the node
// that runs the task, named by MeasuredBy.
type TaskView struct {
	coord.TaskStatus
	Running    string `json:"running_state,omitempty"`
	Partitions int    `json:"partitions,omitempty"`
	Lag        *int64 `json:"lag_records,omitempty"`
	Replicated int64  `json:"replicated,omitempty"`
	Error      string `json:"error,omitempty"`

	// Set in the cluster view only, so that the plain answer stays as it was.

	// Quarantined counts the records the task quarantined.
	Quarantined int64 `json:"quarantined,omitempty"`
	// MeasuredBy is the node whose figures these are; empty when no node
	// reported the task (its node did not answer or has not started it).
	MeasuredBy string `json:"measured_by,omitempty"`
	// Source is the kind of the pipeline's source: "kafka" or "pubsub".
	// Pub/Sub tasks report their state only, so Lag stays nil for them.
	Source string `json:"source,omitempty"`
}

// PolicyStatus is the policy part of /v1/status: the audit trail of the active
// bundle and the last rejected change.
type PolicyStatus struct {
	Bundle      int64             `json:"bundle"`
	Hash        string            `json:"hash,omitempty"`
	Source      string            `json:"source,omitempty"`
	AppliedAt   time.Time         `json:"applied_at,omitzero"`
	AppliedIdx  uint64            `json:"applied_index,omitempty"`
	Policies    map[string]int64  `json:"policies,omitempty"`
	Files       map[string]string `json:"files,omitempty"`
	LastError   string            `json:"last_error,omitempty"`
	LastErrorAt time.Time         `json:"last_error_at,omitzero"`
	// Waiting says why this node's records wait instead of being governed
	// (no bundle yet, a bundle it cannot apply); empty when they flow.
	Waiting string `json:"waiting,omitempty"`
}

// PipelineInfo is one configured pipeline in /v1/status.
type PipelineInfo struct {
	Name   string `json:"name"`
	Source string `json:"source"` // "kafka" or "pubsub"
	Format string `json:"format"`
	// Governance is "enforced", or "none" for a pipeline that runs
	// ungoverned (governance: none): its records are never masked.
	Governance string `json:"governance"`
}
