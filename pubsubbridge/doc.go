// Package pubsubbridge mirrors Google Cloud Pub/Sub subscriptions into the
// central Kafka cluster. It never produces to Kafka itself: records leave
// through a Sink, governance comes in through a Transformer, and the Raft
// assignment (who runs which subscription) stays in cmd and replicator/coord,
// which this package does not import.
//
// # Data path
//
// One Bridge per pipeline runs a streaming pull (BridgeConfig.Streams streams)
// with flow control (MaxOutstandingMessages/Bytes). Each received message is
// mapped as Google's Pub/Sub source connector for Kafka Connect does (value =
// data; key = key_attribute, else the ordering key, else null; attributes →
// headers; pubsub-message-id, pubsub-publish-time, pubsub-ordering-key,
// pubsub-delivery-attempt and tributary-origin headers; timestamp = publish
// time), checked (format json: valid JSON), mapped to a registry subject
// (SchemaMapper), transformed (Transformer), partitioned as the Java producer
// does (toPositive(murmur2(key)) % partitions; null keys sticky per batch) and
// handed to a batcher that gathers records of many callbacks into
// Sink.Produce calls. The receive callback waits for its record's delivery
// report and only then acks. It has to wait: the v2 client frees the
// flow-control slot, and dispatches the next message of the ordering key, when
// the callback returns, not on ack. So ordering keys stay in order within a
// partition, and flow control bounds what is in flight to Kafka.
//
// # Guarantees
//
//   - Nothing is acked that is not written: a message is acked only after the
//     Sink reported its record written (acks=all), or after its quarantine
//     write was acknowledged, or when it is a duplicate of such a message.
//   - Nothing is lost or redelivered forever: write failures are retried in
//     place with backoff (the client keeps extending the ack deadline up to
//     MaxExtension, so order holds through a Kafka outage) for RetryTimeout,
//     then the message is nacked and Pub/Sub redelivers it. Undecodable,
//     rejected and oversize messages are quarantined and acked. The only
//     message that can come back indefinitely is one whose quarantine write
//     itself keeps failing (quarantine topic missing or too small a
//     max.message.bytes: it must allow 10 MB, Pub/Sub's limit); a subscription
//     dead-letter policy bounds even that.
//   - Ordering: after a nack of a message with an ordering key, the key's later
//     messages are nacked until that message comes back (OrderingFenceTimeout).
//   - Duplicates: Pub/Sub delivers at least once. With exactly-once delivery
//     on the subscription, acks use AckWithResult and the callback waits for
//     the result: a successful ack is never redelivered. In every mode, the ids
//     of handled messages are remembered for DedupWindow (at most DedupMaxIDs),
//     and a delivery of an id being processed waits for that processing, so a
//     redelivery to this process within the window (ack deadline expiry, a
//     lost or failed ack) is acked without writing. The result is effectively
//     once per process and window, at least once overall: a duplicate can
//     still land when the redelivery goes to another node or comes after the
//     window or a restart, when a record was written but its delivery report
//     was lost (shutdown past ShutdownTimeout), or when the publisher
//     published the same data twice (different message ids). The producer's
//     idempotence removes duplicates from its own retries.
//
// # Ack deadlines
//
// While a message is held (a slow Kafka, an outage, a slow transformer) the
// client extends its ack deadline, up to MaxExtension in total, by the p99 of
// the observed ack latency per extension, clamped to
// [MinDurationPerAckExtension, MaxDurationPerAckExtension] and at least 10 s
// (60 s on exactly-once subscriptions). MaxDurationPerAckExtension therefore
// bounds how long Pub/Sub waits before redelivering the messages of a bridge
// that died. One exception: a new stream starts with a 600 s stream ack
// deadline (the v2 client's constant), lowered only by the client's first ping
// after 30 s, so messages Pub/Sub had sent on a stream that dies young (not
// yet read by the client) come back after up to 10 minutes. pstest never
// lowers it (it ignores deadlines sent with pings), so tests that stop a
// bridge mid-stream expire those leases themselves (see expireLeases).
//
// # Metrics
//
// tributary_pubsub_{messages_received,received_bytes,acks,ack_errors,
// sink_errors}_total{pipeline}, tributary_pubsub_nacks_total{pipeline,reason},
// tributary_pubsub_redeliveries_total{pipeline,kind},
// tributary_pubsub_records_total{pipeline,outcome},
// tributary_pubsub_quarantined_total{pipeline,reason},
// tributary_pubsub_latency_seconds{pipeline} (publish → ack),
// tributary_pubsub_outstanding_messages, tributary_pubsub_dedup_ids and
// tributary_pubsub_oldest_unacked_age_seconds{pipeline}. The Pub/Sub API does
// not expose a subscription's backlog (num_undelivered_messages,
// oldest_unacked_message_age are Cloud Monitoring metrics), so the age is that
// of the oldest message this bridge holds; dashboards that need the backlog
// read Cloud Monitoring. Bridges of different pipelines share the metric
// vectors of one Registerer; two bridges of the same pipeline on one
// Registerer need prometheus.WrapRegistererWith (e.g. a task label).
//
// # Locks
//
// Bridge.mu guards the shutdown flag only. tracker.mu and fence.mu are leaves:
// no lock is held while another is taken, nor while calling the Sink,
// Transformer or Pub/Sub.
package pubsubbridge
