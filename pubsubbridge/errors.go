package pubsubbridge

import (
	"errors"

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
