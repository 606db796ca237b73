package governance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Headers tributary itself writes on mirrored records. The governance step
// never masks them (nor the schema-id headers): they are provenance, not the
// record's data. Any other header, tributary-* names a producer chose
// included, is the record's and header rules apply to it.
const (
	// HeaderPolicy names the policies that masked a record: "<policy>@<version>,...".
	HeaderPolicy = "tributary-policy"
	// HeaderOrigin names the cluster a record was first mirrored from.
	HeaderOrigin = "tributary-origin"
	// HeaderOriginTopic, HeaderOriginPartition and HeaderOriginOffset are the
	// lineage headers: the record's source coordinates.
	HeaderOriginTopic     = "tributary-origin-topic"
	HeaderOriginPartition = "tributary-origin-partition"
	HeaderOriginOffset    = "tributary-origin-offset"
)

// Record is one record on its way to a target topic, as a Transformer sees and
// changes it: a Kafka source record (replicator) or a mapped Pub/Sub message
// (pubsubbridge). Both paths hand the same type to the same governance steps, so
// a rule holds on one path exactly when it holds on the other.
type Record struct {
	// SourceTopic is the Kafka source topic, or the Pub/Sub subscription as the
	// pipeline names it; policies scope rules by it.
	SourceTopic string
	TargetTopic string
	// Key, Value and Headers are the record's own. A Transformer changes them by
	// assigning the fields; it must not write into the bytes of Key, Value or a
	// header value, which belong to the source record and are reused when a
	// failed attempt is retried.
	Key, Value []byte
	Headers    []kafka.Header

	// Timestamp is the Pub/Sub publish time; Kafka records keep theirs outside.
	Timestamp time.Time
	// Attributes are a Pub/Sub message's attributes (read-only, shared with the
	// message); nil for Kafka records. They are also in Headers.
	Attributes map[string]string
	// Schema is the Pub/Sub schema of the message (googclient_schema*
	// attributes) and the registry subject it maps to; zero for Kafka records.
	Schema PubSubSchema
	// Subscription (full name) and MessageID identify a Pub/Sub source message
	// in errors and logs; neither is PII. Empty for Kafka records.
	Subscription, MessageID string
}

// PubSubSchema is the Pub/Sub schema a message was validated against by
// Pub/Sub, and the registry subject and version it maps to. All empty when the
// topic has no schema.
type PubSubSchema struct {
	Name       string // googclient_schemaname
	RevisionID string // googclient_schemarevisionid
	Encoding   string // googclient_schemaencoding: JSON or BINARY
	// Subject and Version are set by the pipeline's schema mapping; "" and 0
	// when unmapped.
	Subject string
	Version int
}

// Transformer rewrites a record before it lands: schema-id translation, schema
// validation, PII masking.
//
// The replicator calls Transform from one task goroutine at a time per task;
// the Pub/Sub bridge from its receive callbacks, up to its outstanding-message
// limit at once. Implementations shared by tasks must therefore be safe for
// concurrent use. ctx ends when the caller stops or, on the Pub/Sub path, at
// the message's retry deadline; Transform must return promptly then.
//
// Errors: a *RejectError (found with errors.As) means the record must not land:
// it goes to the source region's quarantine with that reason. Any other error
// means the transformer cannot decide now (a registry outage, no policy bundle
// yet): the caller retries later and quarantines nothing.
type Transformer interface {
	Transform(ctx context.Context, rec *Record) error
}

// Chain applies transformers in order; the first error wins.
type Chain []Transformer

// Transform applies each transformer in turn.
func (c Chain) Transform(ctx context.Context, rec *Record) error {
	for _, t := range c {
		if err := t.Transform(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}

// RejectError is a record-level refusal: the record must not land. Reason is a
// stable code ("not-wire-format", "incompatible-schema", "blocked-by-policy",
// ...) used in the tributary-error header and metric labels, Msg a human
// explanation that never contains record contents.
type RejectError struct {
	Reason string
	Msg    string
}

func (e *RejectError) Error() string { return e.Reason + ": " + e.Msg }

// Reject returns a *RejectError with a formatted message.
func Reject(reason, format string, a ...any) error {
	return &RejectError{Reason: reason, Msg: fmt.Sprintf(format, a...)}
}

// AsReject returns the *RejectError in err's chain, if there is one.
func AsReject(err error) (*RejectError, bool) {
	var re *RejectError
	ok := errors.As(err, &re)
	return re, ok
}
