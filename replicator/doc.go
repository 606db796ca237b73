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
// Locks: Pipeline.mu guards the topic table only and is never held while calling
// Kafka. Task has no lock; its run loop owns all its state, and Status reads atomics.
package replicator
