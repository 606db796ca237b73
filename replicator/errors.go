package replicator

import (
	"errors"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ErrFenced reports that a newer instance of a task (on this or another node)
// took over its transactional id. The fenced session ends; Task.Run stands by
// for a while and then, if this node still runs the task, takes it back.
var ErrFenced = errors.New("replicator: task fenced by a newer instance")

func asKafkaError(err error, ke *kafka.Error) bool { return errors.As(err, ke) }

// IsRetryable reports whether an error of a task or pipeline is worth retrying
// with backoff: broker and network trouble, timeouts, aborted transactions. Fencing
// (which Task.Run answers by standing by instead) and configuration errors are not.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrFenced) {
		return false
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		switch ke.Code() {
		case kafka.ErrFenced, kafka.ErrProducerFenced, kafka.ErrInvalidArg, kafka.ErrUnknownProtocol,
			kafka.ErrTopicAuthorizationFailed, kafka.ErrClusterAuthorizationFailed,
			kafka.ErrTransactionalIDAuthorizationFailed, kafka.ErrSaslAuthenticationFailed:
			return false
		}
		if ke.IsFatal() {
			// A fatal producer error (other than fencing) needs a new producer, which
			// a task restart creates.
			return true
		}
	}
	return true
}
