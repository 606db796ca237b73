// Package kafkaclient builds the configuration of every Kafka client the
// daemon makes (producers, consumers and admin clients, in replicator and the
// Pub/Sub bridge) by one rule, and forwards librdkafka's log into slog.
//
// # Precedence
//
// A client's properties come from three layers; a later layer wins:
//
//  1. Tuning: our defaults for throughput and latency (linger.ms,
//     fetch.queue.backoff.ms, message.max.bytes, partitioner, client.id...).
//  2. The user's kafka.<cluster>.properties: security (security.protocol,
//     sasl.*, ssl.*) and any tuning the operator knows better.
//  3. What correctness needs, which always wins: bootstrap.servers from
//     kafka.<cluster>.bootstrap, enable.metrics.push=false, the go.* settings
//     of the Go client, the settings the Role pins (acks=all, idempotence,
//     read_committed, no auto commit...) and the caller's Required.
//
// Config returns the keys of the user's properties that layer 3 replaced,
// never their values (sasl.password and friends are properties too); the
// caller logs them once with Logs.WarnOverridden. librdkafka spells some
// properties two ways (acks and request.required.acks, linger.ms and
// queue.buffering.max.ms...): the layers are merged by property, not by
// spelling, so an alias cannot slip past a pinned key, and which spelling wins
// never depends on map order.
//
// # Logs
//
// One Logs per component (a replicator task, a pipeline, the Pub/Sub sink)
// forwards the librdkafka log of every client attached to it into that
// component's slog.Logger, with one mapping of syslog levels. Admin clients
// reach it through NewAdmin, since confluent-kafka-go forwards logs only for
// producers and consumers.
//
// It imports config and confluent-kafka-go only, so that replicator, the
// Pub/Sub bridge and cmd can all use it.
package kafkaclient
