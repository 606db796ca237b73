package replicator

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/kafkaclient"
)

// kafkaCode returns the librdkafka error code of err, or ErrNoError.
func kafkaCode(err error) kafka.ErrorCode {
	if err == nil {
		return kafka.ErrNoError // without the escaping kafka.Error below: it is on every record's path
	}
	var ke kafka.Error
	if asKafkaError(err, &ke) {
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

// Queue sizing. librdkafka's defaults let one task's clients hold about 1 GiB
// in the producer queue (queue.buffering.max.kbytes) and 64 MiB plus a 50 MB
// fetch per broker in the consumer: while the target is down, a node with a
// few tasks would grow until the kernel killed it. Each task's clients are
// instead sized from pipelines[].buffer_bytes (B): half for the producer
// queue, a quarter for the consumer's prefetch queue and a quarter for the
// fetch responses in flight. Counts are capped as well, at one record per KiB
// of the share: librdkafka counts only key and value bytes against the kbytes
// limits, and a small record costs a few hundred bytes of bookkeeping more.
// These are tuning defaults: a cluster's properties override them.

// producerQueues adds the producer queue limits for buffer bytes to t. A
// record larger than the queue would never fit in it (librdkafka answers
// "queue full" for ever), so message.max.bytes stays within the share: such a
// record fails at once as too large.
func producerQueues(buffer int64, t kafkaclient.Tuning) kafkaclient.Tuning {
	share := buffer / 2
	if m, ok := t["message.max.bytes"].(int); !ok || int64(m) > share {
		t["message.max.bytes"] = int(share)
	}
	t["queue.buffering.max.kbytes"] = int(share >> 10)
	t["queue.buffering.max.messages"] = int(max(share>>10, 1000))
	return t
}

// consumerQueues adds the consumer queue limits for buffer bytes to t.
func consumerQueues(buffer int64, t kafkaclient.Tuning) kafkaclient.Tuning {
	share := buffer / 4
	t["queued.max.messages.kbytes"] = int(share >> 10)
	t["queued.min.messages"] = int(max(share>>10, 1000))
	t["fetch.max.bytes"] = int(share)
	return t
}

// ProducerConfig is the configuration of the target producer of task task of
// pipeline pipeline, for target cluster k (its properties included, see
// kafkaclient.Config): transactional when eos, queues from buffer bytes
// (producerQueues), batches of batchSize (poison.go). It returns the role the
// configuration is for and the user's keys it overrode. Exported so that the
// benchmark suite's ceiling loop runs with exactly these settings.
func ProducerConfig(k *config.Kafka, pipeline string, task int, eos bool, buffer int64, batchSize int) (kafkaclient.Role, *kafka.ConfigMap, []string) {
	role, req := kafkaclient.IdempotentProducer, kafkaclient.Required{
		"go.delivery.reports":       !eos,
		"go.delivery.report.fields": "none",
		// At least once, checkpoints follow the reports of successful
		// deliveries (acks.go): none may be left out.
		"delivery.report.only.error": false,
		// Every batch fits the smallest max.message.bytes of the topics this
		// producer writes to: librdkafka never splits a batch the broker
		// refuses (poison.go).
		"batch.size": batchSize,
		// A target topic deleted while mirrored must not come back with the
		// broker's defaults: the pipeline creates it again with the source's
		// settings, and counts it.
		"allow.auto.create.topics": false,
	}
	// At least once, records leave as their batches fill or linger.ms
	// passes. Exactly once, a transaction's commit sends what it holds at
	// once (librdkafka's flush ignores linger.ms), so a linger longer than
	// any transaction lets each partition's records of a transaction go in
	// as few batches as batch.size allows: a shorter one cost a third more
	// CPU at 10,000 records/s and up to 5× the p99 latency, from many small
	// produce requests on a shared machine (README, "Benchmarks").
	linger := 20
	if eos {
		role = kafkaclient.TransactionalProducer
		req["transactional.id"] = txnID(pipeline, task)
		req["transaction.timeout.ms"] = int(transactionTimeout / time.Millisecond)
		linger = 1000
	}
	cm, over := kafkaclient.Config(k, role, req, producerQueues(buffer, kafkaclient.Tuning{
		"client.id":                          txnID(pipeline, task),
		"linger.ms":                          linger,
		"message.max.bytes":                  64 << 20,
		"reconnect.backoff.max.ms":           5000,
		"socket.connection.setup.timeout.ms": 10000,
	}))
	return role, cm, over
}

// ConsumerConfig is the configuration of the source consumer of task task of
// pipeline pipeline, for source cluster k (its properties included): it reads
// read_committed, is assigned partitions (never subscribes), never commits or
// stores offsets, and has queues from buffer bytes (consumerQueues). It
// returns the user's keys it overrode.
func ConsumerConfig(k *config.Kafka, pipeline string, task int, buffer int64) (*kafka.ConfigMap, []string) {
	return kafkaclient.Config(k, kafkaclient.Consumer, kafkaclient.Required{
		"group.id":             "tributary-" + pipeline, // required by librdkafka; partitions are assigned, never subscribed
		"enable.partition.eof": true,
		// A checkpoint below the log start means the source deleted records
		// before they were mirrored: librdkafka reports it instead of jumping
		// silently, and the task counts and logs the loss (resetOffset).
		"auto.offset.reset":        "error",
		"allow.auto.create.topics": false,
	}, consumerQueues(buffer, kafkaclient.Tuning{
		"client.id":                "tributary-" + pipeline + "-" + strconv.Itoa(task),
		"fetch.queue.backoff.ms":   10,
		"reconnect.backoff.max.ms": 5000,
	}))
}
