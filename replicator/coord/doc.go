// Package coord is tributary's cluster coordinator: a hashicorp/raft node whose
// replicated state says which node runs which task, and whose leader keeps that
// assignment balanced, sticky and within each task's data-residency region.
// It never moves records and never imports package replicator: cmd feeds a
// node's Assigned() into replicator.Worker.Assign.
//
// # Storage and transport
//
// The Raft log and stable store are raft-wal files in DataDir/raft, snapshots a
// FileSnapshotStore in DataDir/raft/snapshots (3 kept), the transport TCP on
// RaftAddr. A node with an empty data dir whose id is in Bootstrap bootstraps
// the cluster with all the bootstrap peers; any other new node asks to join
// through the HTTP API of a member (Join), which forwards to the leader, which
// adds it as a voter. A node restarted from its data dir simply resumes.
//
// # Replicated state
//
// The FSM (fsm.go) holds members (region, addresses, alive, session), the
// desired task list, assignments (task → node, with an epoch that grows on
// every change of node), the measured load per task, and the active policy
// bundle. Commands are JSON objects {"v":1,"op":...} (command.go: join, update,
// leave, set_alive, set_tasks, assign, report_load, policy). Apply is
// deterministic: timestamps travel inside commands, a refused command returns
// an error response and changes nothing. Snapshots are {"version":1,"state":...}.
// testdata/v1 keeps a snapshot and commands in the v1 format with the state
// they must produce, and testdata/raft-v1 a whole Raft dir written by a v1
// node: a change of format must keep reading them.
//
// # Versions and rolling upgrades
//
// Members register the newest command and snapshot versions they understand;
// the leader writes the newest version all members understand (writeVersions)
// and refuses commands that need a newer one (opMinVersion). An FSM that
// meets an entry or snapshot of a version it does not know halts for good
// (HaltedError): it applies nothing more and takes no snapshots, and the node
// declines tasks, reports the halt (Halted, /readyz, tributary_raft_apply_halted)
// and hands leadership over if it gets it.
//
// # Quorum recovery
//
// Recover rewrites a stopped node's Raft dir with a new configuration from a
// peers.json (raft.RecoverCluster over this FSM). The data dir's lock file
// (data_dir/raft/tributary.lock) keeps a node and a recovery apart.
//
// # Sessions: when a node may trust its replica
//
// A node's replica can be stale: after a restart it holds the last snapshot,
// after a partition whatever it had seen. So every node registers itself with
// a fresh random session whenever it starts or recovers from isolation (a join
// command through the leader), and runs tasks only once its replica shows that
// session: everything the leader decided before the registration is then
// applied. A member marked dead loses its session, so the leader places tasks
// on it only after it has registered again (Member.eligible).
//
// # Declining tasks
//
// A node that should not run tasks although it is alive (its data_dir is
// short of space: cmd's disk guard calls SetUnhealthy) stops them at once and
// registers again, with the same session and the reason (Member.Unhealthy).
// The leader treats it as not eligible and moves its tasks as it would a dead
// member's; it stays a Raft member and voter. Its own replica may not show the
// change (a follower whose log store cannot write learns nothing new), so the
// node does not wait for it: one registration accepted by the leader per
// change, repeated every healthResend while the replica disagrees. Raft store
// writes that fail with ENOSPC or EDQUOT reach Deps.DiskFull (diskstore.go).
//
// # Liveness
//
// The leader registers a raft Observer and feeds FailedHeartbeatObservation,
// ResumedHeartbeatObservation and PeerObservation into a tracker (liveness.go):
// a member whose heartbeats keep failing and whose last contact is older than
// FailureTimeout is proposed dead (set_alive), alive again when heartbeats
// resume or its failures stop. A new leader starts a fresh tracker that
// counts every member as reached at the election. On the other side a node
// that has not heard from a leader (raft.LastContact, or its own leadership)
// for FailureTimeout is isolated: it delivers an empty assignment, so its
// worker stops producing before the leader gives its tasks away.
//
// # Assignment
//
// Assign (assign.go) is a pure function the leader runs after every change of
// the state and every tick: residency is absolute, placement is sticky, new or
// orphaned tasks go to the least loaded eligible node of their region, and
// tasks move between live nodes only when a region's load is off balance by
// more than RebalanceMargin. The leader proposes only the tasks whose node
// changes.
//
// # Identity and membership
//
// With Config.TLS (security.tls), Raft runs over mutual TLS (tls.go: a
// StreamLayer under raft.NetworkTransport; both ends must present a
// certificate of the cluster CA with a tributary://<region>/<id> URI), and
// calls to other members use HTTPS with the node certificate. The leader
// accepts a join only from the node its certificate names (id and region), a
// load report only from the node it is about, and a policy proposal only from
// a node. A member forwarding a request to the leader vouches for the sender
// it verified in Tributary-Forwarded-For; the leader believes that header only
// from the node named in Tributary-Forwarded-By. PeerIdentity exposes the
// verified identity to auth middleware. Without TLS (loopback setups) no
// identity is checked.
//
// A join adds a non-voter; the leader promotes a non-voter it has reached
// without a failed heartbeat for the tracker's confirmation period, while
// there are fewer voters than Config.Voters (default 3, or 5 once 5 members
// could vote). A join naming an unreachable address therefore never counts
// towards the quorum. A join with the leader's own id must carry the
// leader's own addresses and region.
//
// # Goroutines
//
// Run owns every goroutine: the main loop (isolation, registration state,
// Assigned, starting and stopping the leader loop), the observer loop, the
// registration loop and the load reporter; the leader loop runs while this
// node leads. propose starts one goroutine per proposal to wait for raft's
// answer; stop waits for them after raft has shut down (which answers all).
//
// # Lock order
//
// Node.mu, then fsm.mu (through fsm.view); tracker.mu and Node.policyMu are
// leaves, never held while taking another lock. The FSM never calls into the
// Node while holding fsm.mu: it closes a change channel and calls the policy
// callback (which takes only policyMu) after unlocking. No lock is held across
// a raft call that waits for the log.
package coord
