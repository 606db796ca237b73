package replicator

import (
	"fmt"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// kafkaCode returns the librdkafka error code of err, or ErrNoError.
func kafkaCode(err error) kafka.ErrorCode {
	var ke kafka.Error
	if err != nil && asKafkaError(err, &ke) {
		return ke.Code()
	}
	return kafka.ErrNoError
}

// txnID is the transactional.id of a task: stable across nodes so that a task
// moved to another node fences its previous owner.
func txnID(pipeline string, task int) string {
	return fmt.Sprintf("tributary-%s-%d", pipeline, task)
}

// redactedBootstrap is for log lines: bootstrap strings may hold credentials in
// exotic setups (sasl in URLs); keep only host:port lists.
func redactedBootstrap(s string) string {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return s[i+1:]
	}
	return s
}
