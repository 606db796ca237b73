// Package replicator mirrors source Kafka topics into the central cluster.
//
// A pipeline (config.Pipeline) is split into a fixed number of tasks. Task i owns
// the source partitions (topic, p) with (fnv32a(topic) + p) mod tasks == i, so the
// set of tasks never depends on which topics exist, a new topic adds partitions to
// existing tasks without moving any other partition, and whoever assigns tasks to
// nodes (one node runs them all, or the Raft leader in replicator/coord) only deals
// in stable task ids.
//
// A task reads its partitions with a read_committed consumer using assign (never a
// consumer group) and writes each record to the same partition number of the
// renamed target topic through its own transactional producer, whose
// transactional.id (tributary-<pipeline>-<task>) fences any zombie copy of the task.
// The next source offset of every partition is written to the target's compacted
// topic _tributary.checkpoints inside the same transaction, so data and progress
// commit or abort together; a task resumes from its checkpoints. With exactly_once
// off the producer is idempotent and checkpoints follow acknowledged data
// (at-least-once).
//
// Heartbeats: where the source is writable, the pipeline creates the source's
// _tributary.heartbeat (delete, 1 h, at least as many partitions as the largest
// task count of its pipelines) and mirrors it like data, although internal topics
// are otherwise never selected; each pipeline mirrors only its own heartbeats
// (keys "<pipeline>/<task>"), so pipelines sharing a target topic do not copy
// each other's. Every task owns at least one of its partitions and
// writes a heartbeat to the first one every heartbeat_interval with a plain
// producer; when a transaction holding the task's own heartbeat commits, the
// heartbeat's timestamp becomes the task's heartbeatAt, and
// tributary_heartbeat_age_seconds{pipeline} is computed from those at scrape
// time. Heartbeat records skip the transformers and count in no record, byte,
// latency or lag metric.
//
// Offset syncs: at most once per offset_sync_interval per partition, the first
// record a transaction sends to a target partition is produced with its own
// delivery channel (why the first: see syncSample); once that transaction has
// committed and the report has arrived, the pair (source offset, target offset)
// goes to the target's _tributary.offset-syncs in the next transaction, so a sync
// never names an uncommitted record. The topic is compacted and holds a sparse
// history per partition (syncHistory: one key per slot, exponentially spaced),
// which the task reads once per life on a node and extends. TranslateGroup
// uses them and the lineage headers to translate consumer group offsets; the
// group offset sync (groupsync.go) does so every groups.interval beside the
// pipeline's task 0 and commits the result in the target.
//
// Lag: each task keeps the progress of its partitions (committed next offset,
// oldest unreplicated timestamp) for its whole run on the node, not per session,
// and the pipeline reads the source partitions' last stable offsets every second
// (ListOffsets, read_committed) to set the lag gauges: they stay, and keep
// counting, while a task's sessions fail and restart (the target down) or wait in
// a commit.
//
// Poison records (poison.go): the pipeline reads the target topics' effective
// max.message.bytes on every refresh, before it publishes partitions; a task
// sizes its producer's batch.size below the smallest, quarantines records that
// cannot fit their topic before producing them, and finds a record the target
// refuses for good by producing the records of the failed batch one per
// transaction (Task.poison outlives the sessions).
//
// Locks: Pipeline.mu guards the topic table only and is never held while calling
// Kafka. Pipeline.running.mu guards the set of running tasks (lag watcher,
// heartbeat age); Task.lagMu guards a task's lagParts map; Pipeline.limits.mu
// guards the limit table and is taken alone. running.mu may be held
// while taking Task.lagMu (heartbeat age does not; lag reads a snapshot first) and
// while metrics.GaugeFuncs takes its lock (adding or removing the series), never
// the reverse: GaugeFuncs calls the age function without its own lock held. No
// lock is held with Pipeline.mu. Task has no other lock; its run loop owns its
// session state, and Status reads atomics.
package replicator
