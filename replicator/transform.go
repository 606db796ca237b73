package replicator

import (
	"context"
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Record is what a Transformer sees and changes: one source record on its way to
// the target topic.
type Record struct {
	SourceTopic string
	TargetTopic string
	Key, Value  []byte
	Headers     []kafka.Header
}

// Transformer rewrites records before they land: schema-id translation, and
// later PII masking. It is called from one task's goroutine at a time per
// pipeline task, so implementations shared by tasks must be safe for concurrent
// use. Transform changes rec in place.
//
// Errors: a *RejectError means the record must not land and goes to the source
// region's quarantine with its reason; any other error means the transformer
// cannot decide now (a registry outage): the task pauses, retries with backoff
// from its checkpoints, and quarantines nothing.
type Transformer interface {
	Transform(ctx context.Context, rec *Record) error
}

// RejectError is a record-level refusal: Reason is a stable code
// ("not-wire-format", "incompatible-schema", ...), Msg a human explanation that
// never contains record contents.
type RejectError struct {
	Reason string
	Msg    string
}

func (e *RejectError) Error() string { return e.Reason + ": " + e.Msg }

// Reject returns a *RejectError.
func Reject(reason, format string, a ...any) error {
	return &RejectError{Reason: reason, Msg: fmt.Sprintf(format, a...)}
}

func asReject(err error) (*RejectError, bool) {
	var re *RejectError
	ok := errors.As(err, &re)
	return re, ok
}

// Transformers chains transformers in order; the first rejection wins.
type Transformers []Transformer

// Transform applies each transformer in turn.
func (ts Transformers) Transform(ctx context.Context, rec *Record) error {
	for _, t := range ts {
		if err := t.Transform(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}
