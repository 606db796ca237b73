package pubsubbridge

import (
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ErrTooLarge is what a Sink wraps (or a Transformer returns) when a record can
// never be written because of its size. The bridge quarantines such a message
// instead of retrying it; a kafka.Error with code kafka.ErrMsgSizeTooLarge
// (librdkafka's local check against message.max.bytes, or the broker's
// MESSAGE_TOO_LARGE) means the same.
var ErrTooLarge = errors.New("pubsubbridge: record too large")

// errAbandoned is the outcome of a produce request whose delivery report did
// not arrive within ShutdownTimeout after shutdown began: unknown, so not acked.
var errAbandoned = errors.New("pubsubbridge: delivery report not received before shutdown")

// RejectError is a record-level refusal by a Transformer or SchemaMapper: the
// message must not land and goes to the quarantine with this reason. Reason is a
// stable code ("undecodable", "blocked-by-policy", ...), Msg a human explanation
// that never contains message contents. It has the shape of replicator's
// RejectError, so an adapter converts one into the other field by field.
type RejectError struct {
	Reason string
	Msg    string
}

func (e *RejectError) Error() string { return e.Reason + ": " + e.Msg }

// Reject returns a *RejectError.
func Reject(reason, format string, a ...any) error {
	return &RejectError{Reason: reason, Msg: fmt.Sprintf(format, a...)}
}

// Quarantine reasons the bridge itself uses (header tributary-error, and the
// reason label of tributary_pubsub_quarantined_total: undecodable, rejected or
// too_large).
const (
	reasonUndecodable = "undecodable"
	reasonTooLarge    = "too-large"
)

// isTooLarge reports whether a produce error means the record can never fit.
func isTooLarge(err error) bool {
	if errors.Is(err, ErrTooLarge) {
		return true
	}
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Code() == kafka.ErrMsgSizeTooLarge
}
