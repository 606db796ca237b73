package pubsubbridge

import (
	"errors"
	"fmt"
	"time"

	"github.com/tributary-dev/tributary/config"
)

// QuarantineTopic is the target-cluster topic that receives messages that must
// not land (undecodable, rejected by governance, too large) when no Pub/Sub
// dead-letter topic is configured. Pub/Sub data already lives in the cloud, so
// unlike Kafka sources its quarantine is in the central cluster.
const QuarantineTopic = "_tributary.quarantine"

// Defaults of the BridgeConfig knobs. The names in parentheses are the YAML
// keys under pipelines[].pubsub that set them; the others are not in the
// config file.
const (
	DefaultStreams                = 4                // (streams)
	DefaultMaxOutstandingMessages = 1000             // (max_outstanding_messages)
	DefaultMaxOutstandingBytes    = 256 << 20        // (max_outstanding_bytes)
	DefaultMaxExtension           = 60 * time.Minute // (max_extension)
	DefaultDedupWindow            = 10 * time.Minute // (dedup_window)
	DefaultDedupMaxIDs            = 200_000          // (dedup_max_ids)
	DefaultMaxMessageBytes        = 1048588          // (max_message_bytes), Kafka's default max.message.bytes
	DefaultBatchMaxMessages       = 500
	DefaultLinger                 = time.Millisecond
	DefaultProduceConcurrency     = 4
	DefaultRetryTimeout           = 5 * time.Minute // (retry_timeout)
	DefaultRetryBackoff           = 100 * time.Millisecond
	DefaultRetryBackoffMax        = 5 * time.Second
	DefaultOrderingFenceTimeout   = time.Minute
	DefaultShutdownTimeout        = 20 * time.Second
	DefaultPartitionRefresh       = 30 * time.Second // pipelines[].refresh_interval
)

// BridgeConfig is what one Bridge (one pipeline reading one subscription) needs.
// FromConfig builds it from the node's config file; zero knobs get the Default*
// values in New. All fields need a restart of the Bridge to change.
type BridgeConfig struct {
	// Pipeline: pipelines[].name. Metric label and part of log lines.
	Pipeline string
	// Source: pipelines[].source.pubsub, the name of the Pub/Sub project entry.
	// Written to every record as the tributary-origin header.
	Source string
	// PubSub: pubsub.<source>: project, emulator_host, credentials_file, region.
	PubSub config.PubSub
	// Subscription: pipelines[].source.subscription, an ID in PubSub.Project or a
	// full "projects/P/subscriptions/S" name.
	Subscription string
	// Topic: pipelines[].topic, the target Kafka topic.
	Topic string
	// KeyAttribute: pipelines[].key_attribute. The Kafka key is this attribute when
	// the message has it, else the ordering key, else none.
	KeyAttribute string
	// Format: pipelines[].format, default "bytes". "json" messages must be valid
	// JSON (others are quarantined as undecodable) before the Transformer sees them.
	Format string

	// Streams is the number of StreamingPull streams (the client's NumGoroutines),
	// default DefaultStreams. More streams raise throughput; pstest delivers about
	// one message per stream every 10 ms.
	Streams int
	// MaxOutstandingMessages and MaxOutstandingBytes bound the messages held by the
	// bridge (received, not yet acked or nacked), defaults DefaultMaxOutstanding*.
	// Receive callbacks wait for their delivery report, so these also bound the
	// messages in flight to Kafka. Negative means no limit (not recommended).
	MaxOutstandingMessages int
	MaxOutstandingBytes    int
	// MaxExtension is how long the client keeps extending the ack deadline of a
	// message it holds (slow deliveries, a Kafka outage), default
	// DefaultMaxExtension. After it the message expires and Pub/Sub redelivers it.
	// Negative disables extension: a message then expires after the subscription's
	// ack deadline (or the client's 10 s receipt extension).
	MaxExtension time.Duration
	// MaxDurationPerAckExtension and MinDurationPerAckExtension bound each single
	// extension (10s..600s, 0 = the client's adaptive p99 of ack latency). A lower
	// maximum makes Pub/Sub redeliver sooner after this process dies.
	MaxDurationPerAckExtension time.Duration
	MinDurationPerAckExtension time.Duration

	// DedupWindow is how long the id of a handled (written or quarantined) message
	// is remembered to suppress redeliveries, default DefaultDedupWindow; negative
	// disables suppression. DedupMaxIDs bounds that memory (about 100 bytes per id),
	// default DefaultDedupMaxIDs: at a rate r the effective window is
	// min(DedupWindow, DedupMaxIDs/r).
	DedupWindow time.Duration
	DedupMaxIDs int

	// MaxMessageBytes is the target topic's max.message.bytes, default
	// DefaultMaxMessageBytes. Records whose estimated size exceeds it are
	// quarantined instead of being retried forever.
	MaxMessageBytes int
	// BatchMaxMessages is the most records handed to one Sink.Produce call, default
	// DefaultBatchMaxMessages. Linger is how long a batch waits for more records
	// once a produce slot is free, default DefaultLinger; negative means no wait.
	BatchMaxMessages int
	Linger           time.Duration
	// ProduceConcurrency is the number of Sink.Produce calls in flight at once,
	// default DefaultProduceConcurrency.
	ProduceConcurrency int

	// RetryTimeout is how long one message is retried in place (Sink errors,
	// transformer "cannot decide now" errors, quarantine write errors) before it is
	// nacked for redelivery, default DefaultRetryTimeout. Retrying in place keeps
	// the ordering key blocked, so order holds through a Kafka outage. It must be
	// shorter than MaxExtension. RetryBackoff and RetryBackoffMax shape the
	// exponential backoff between attempts.
	RetryTimeout    time.Duration
	RetryBackoff    time.Duration
	RetryBackoffMax time.Duration
	// OrderingFenceTimeout: after a message with an ordering key is nacked, later
	// messages of that key are nacked too until the nacked message comes back, or
	// this long, default DefaultOrderingFenceTimeout.
	OrderingFenceTimeout time.Duration

	// DeadLetterTopic is a Pub/Sub topic (ID in PubSub.Project or full name) that
	// receives quarantined messages. Empty means the Kafka topic QuarantineTopic in
	// the target, through the Sink.
	DeadLetterTopic string
	// QuarantineTopic overrides the Kafka quarantine topic (default QuarantineTopic).
	QuarantineTopic string

	// ShutdownTimeout is how long Run waits, after ctx is cancelled, for delivery
	// reports of records already handed to the Sink, so that they can still be
	// acked, default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// PartitionRefresh is how often the target topic's partition count is re-read
	// when the Sink is a PartitionCounter, default DefaultPartitionRefresh.
	PartitionRefresh time.Duration
}

// FromConfig returns the BridgeConfig of the named Pub/Sub pipeline of a loaded
// and validated node config, with the knobs the file does not carry at their
// defaults.
func FromConfig(c *config.Config, pipeline string) (BridgeConfig, error) {
	p := c.Pipeline(pipeline)
	if p == nil {
		return BridgeConfig{}, fmt.Errorf("pipeline %q not in the config", pipeline)
	}
	if p.Source.PubSub == "" {
		return BridgeConfig{}, fmt.Errorf("pipeline %q: source is not pubsub", pipeline)
	}
	ps := c.PubSub[p.Source.PubSub]
	if ps == nil {
		return BridgeConfig{}, fmt.Errorf("pipeline %q: pubsub.%s not in the config", pipeline, p.Source.PubSub)
	}
	bc := BridgeConfig{
		Pipeline:         p.Name,
		Source:           p.Source.PubSub,
		PubSub:           *ps,
		Subscription:     p.Source.Subscription,
		Topic:            p.TargetTopic(""),
		KeyAttribute:     p.KeyAttribute,
		Format:           p.Format,
		PartitionRefresh: p.RefreshInterval.D(),
	}
	if r := p.PubSub; r != nil {
		bc.Streams = r.Streams
		bc.MaxOutstandingMessages = r.MaxOutstandingMessages
		bc.MaxOutstandingBytes = r.MaxOutstandingBytes
		bc.MaxExtension = r.MaxExtension.D()
		bc.RetryTimeout = r.RetryTimeout.D()
		bc.DedupMaxIDs = r.DedupMaxIDs
		bc.MaxMessageBytes = r.MaxMessageBytes
		bc.DeadLetterTopic = r.DeadLetterTopic
		if w := r.DedupWindow; w != nil {
			bc.DedupWindow = w.D()
			if bc.DedupWindow == 0 {
				bc.DedupWindow = -1 // written as 0s: suppression off
			}
		}
	}
	bc.setDefaults()
	return bc, bc.Validate()
}

// setDefaults fills zero knobs with their defaults.
func (c *BridgeConfig) setDefaults() {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Format == "" {
		c.Format = "bytes"
	}
	setInt(&c.Streams, DefaultStreams)
	setInt(&c.MaxOutstandingMessages, DefaultMaxOutstandingMessages)
	setInt(&c.MaxOutstandingBytes, DefaultMaxOutstandingBytes)
	setDur(&c.MaxExtension, DefaultMaxExtension)
	setDur(&c.DedupWindow, DefaultDedupWindow)
	setInt(&c.DedupMaxIDs, DefaultDedupMaxIDs)
	setInt(&c.MaxMessageBytes, DefaultMaxMessageBytes)
	setInt(&c.BatchMaxMessages, DefaultBatchMaxMessages)
	setDur(&c.Linger, DefaultLinger)
	setInt(&c.ProduceConcurrency, DefaultProduceConcurrency)
	setDur(&c.RetryTimeout, DefaultRetryTimeout)
	setDur(&c.RetryBackoff, DefaultRetryBackoff)
	setDur(&c.RetryBackoffMax, DefaultRetryBackoffMax)
	setDur(&c.OrderingFenceTimeout, DefaultOrderingFenceTimeout)
	setDur(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDur(&c.PartitionRefresh, DefaultPartitionRefresh)
	if c.QuarantineTopic == "" {
		c.QuarantineTopic = QuarantineTopic
	}
}

// Validate reports every problem of a defaulted BridgeConfig at once; each
// message names the field and its value.
func (c *BridgeConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Pipeline == "" {
		bad("pipeline: required")
	}
	if c.PubSub.Project == "" {
		bad("pubsub.project: required")
	}
	if c.Subscription == "" {
		bad("subscription: required")
	}
	if c.Topic == "" {
		bad("topic: required")
	}
	switch c.Format {
	case "avro", "json", "protobuf", "bytes":
	default:
		bad("format (%q): must be one of avro, json, protobuf, bytes", c.Format)
	}
	if c.Streams < 1 {
		bad("streams (%d): must be >= 1", c.Streams)
	}
	if c.MaxMessageBytes < 1 {
		bad("max_message_bytes (%d): must be >= 1", c.MaxMessageBytes)
	}
	if c.BatchMaxMessages < 1 {
		bad("batch_max_messages (%d): must be >= 1", c.BatchMaxMessages)
	}
	if c.ProduceConcurrency < 1 {
		bad("produce_concurrency (%d): must be >= 1", c.ProduceConcurrency)
	}
	if c.DedupMaxIDs < 1 {
		bad("dedup_max_ids (%d): must be >= 1", c.DedupMaxIDs)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"max_duration_per_ack_extension", c.MaxDurationPerAckExtension},
		{"min_duration_per_ack_extension", c.MinDurationPerAckExtension},
	} {
		if d.v != 0 && (d.v < 10*time.Second || d.v > 600*time.Second) {
			bad("%s (%s): must be 0 or between 10s and 600s", d.name, d.v)
		}
	}
	if c.MinDurationPerAckExtension > 0 && c.MaxDurationPerAckExtension > 0 && c.MinDurationPerAckExtension > c.MaxDurationPerAckExtension {
		bad("min_duration_per_ack_extension (%s) must be <= max_duration_per_ack_extension (%s)",
			c.MinDurationPerAckExtension, c.MaxDurationPerAckExtension)
	}
	if c.RetryTimeout <= 0 {
		bad("retry_timeout (%s): must be > 0", c.RetryTimeout)
	}
	if c.MaxExtension > 0 && c.RetryTimeout >= c.MaxExtension {
		// Past MaxExtension Pub/Sub redelivers a message the bridge still retries.
		bad("retry_timeout (%s) must be < max_extension (%s)", c.RetryTimeout, c.MaxExtension)
	}
	if c.RetryBackoff <= 0 || c.RetryBackoffMax < c.RetryBackoff {
		bad("retry_backoff (%s) must be > 0 and <= retry_backoff_max (%s)", c.RetryBackoff, c.RetryBackoffMax)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ordering_fence_timeout", c.OrderingFenceTimeout},
		{"shutdown_timeout", c.ShutdownTimeout},
		{"partition_refresh", c.PartitionRefresh},
	} {
		if d.v <= 0 {
			bad("%s (%s): must be > 0", d.name, d.v)
		}
	}
	return errors.Join(errs...)
}
