package replicator

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/internal/kafkaclient"
)

// QuarantineTopic is the compacted topic in each source cluster that receives
// records that must not land: raw data stays in its region.
const QuarantineTopic = "_tributary.quarantine"

// Quarantine record headers, as the README's "Schema governance" lists them.
const (
	HeaderError           = "tributary-error"
	HeaderSourceTopic     = "tributary-source-topic"
	HeaderSourcePartition = "tributary-source-partition"
	HeaderSourceOffset    = "tributary-source-offset"
	// HeaderSourceKey carries the original key: the quarantine record's own key
	// is its source coordinates, so that a retry overwrites instead of adding.
	HeaderSourceKey = "tributary-source-key"
)

// quarantine writes rejected records to the source cluster. No target
// transaction can cover that write, so the task flushes the quarantine (and
// checks every delivery) before it commits the transaction that moves the
// checkpoint past the quarantined offsets: a crash in between re-quarantines
// the same records under the same keys, which compaction collapses.
type quarantine struct {
	prod     *kafka.Producer
	failures atomic.Int64
	firstErr atomic.Value
	done     chan struct{}
	pending  int
}

func newQuarantine(ctx context.Context, source *config.Kafka, sourceName, clientID string, logs *kafkaclient.Logs) (*quarantine, error) {
	if source.ReadOnly {
		return nil, fmt.Errorf("source cluster is read_only: records that must not land cannot be quarantined in their region")
	}
	if err := ensureQuarantineTopic(ctx, source, sourceName, logs); err != nil {
		return nil, err
	}
	cm, over := kafkaclient.Config(source, kafkaclient.IdempotentProducer, kafkaclient.Required{
		"go.delivery.report.fields": "none",
	}, kafkaclient.Tuning{
		"client.id":         clientID,
		"linger.ms":         5,
		"message.max.bytes": 64 << 20,
	})
	logs.WarnOverridden(sourceName, kafkaclient.IdempotentProducer, over)
	p, err := kafka.NewProducer(logs.Attach(cm))
	if err != nil {
		return nil, fmt.Errorf("creating quarantine producer: %w", err)
	}
	q := &quarantine{prod: p, done: make(chan struct{})}
	go func() {
		defer close(q.done)
		for ev := range p.Events() {
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				if q.failures.Add(1) == 1 {
					q.firstErr.Store(m.TopicPartition.Error)
				}
			}
		}
	}()
	return q, nil
}

// add enqueues one rejected record, waiting while the queue is full and ctx is
// not done.
func (q *quarantine) add(ctx context.Context, m *kafka.Message, reject *governance.RejectError) error {
	src := m.TopicPartition
	off := strconv.FormatInt(int64(src.Offset), 10)
	part := strconv.Itoa(int(src.Partition))
	hs := make([]kafka.Header, 0, len(m.Headers)+5)
	hs = append(hs,
		kafka.Header{Key: HeaderError, Value: []byte(reject.Reason + ": " + reject.Msg)},
		kafka.Header{Key: HeaderSourceTopic, Value: []byte(*src.Topic)},
		kafka.Header{Key: HeaderSourcePartition, Value: []byte(part)},
		kafka.Header{Key: HeaderSourceOffset, Value: []byte(off)},
	)
	if m.Key != nil {
		hs = append(hs, kafka.Header{Key: HeaderSourceKey, Value: m.Key})
	}
	hs = append(hs, m.Headers...)
	topic := QuarantineTopic
	qm := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte(*src.Topic + "/" + part + "/" + off),
		Value:          m.Value,
		Timestamp:      m.Timestamp,
		Headers:        hs,
	}
	for {
		err := q.prod.Produce(qm, nil)
		if kafkaCode(err) != kafka.ErrQueueFull {
			if err == nil {
				q.pending++
			}
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("local quarantine queue full: %w", ctx.Err())
		}
		q.prod.Flush(100)
	}
}

// flush waits until every quarantined record is acknowledged.
func (q *quarantine) flush(timeout time.Duration) error {
	if q.pending == 0 {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for q.prod.Flush(500) > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("quarantine writes to %s not acknowledged within %s", QuarantineTopic, timeout)
		}
	}
	if n := q.failures.Swap(0); n > 0 {
		err, _ := q.firstErr.Load().(error)
		return fmt.Errorf("%d records not written to %s: %w", n, QuarantineTopic, err)
	}
	q.pending = 0
	return nil
}

func (q *quarantine) close() {
	q.prod.Close()
	<-q.done
}

// ensureQuarantineTopic creates _tributary.quarantine in the source cluster:
// compacted (keyed by source coordinates) and kept a long time, since it holds
// what operators must still look at.
func ensureQuarantineTopic(ctx context.Context, source *config.Kafka, sourceName string, logs *kafkaclient.Logs) error {
	cm, over := kafkaclient.Config(source, kafkaclient.Admin, nil, kafkaclient.Tuning{"client.id": "tributary-quarantine-admin"})
	logs.WarnOverridden(sourceName, kafkaclient.Admin, over)
	admin, err := kafkaclient.NewAdmin(cm, logs)
	if err != nil {
		return fmt.Errorf("creating admin client for the quarantine: %w", err)
	}
	defer admin.Close()
	return CreateQuarantineTopic(ctx, admin.AdminClient)
}

// CreateQuarantineTopic creates _tributary.quarantine in admin's cluster
// unless it exists: compacted (a record rewritten after a crash replaces
// itself) and kept a long time. Kafka sources keep it in their region; the
// Pub/Sub bridge, whose data is in the cloud already, in the target.
func CreateQuarantineTopic(ctx context.Context, admin *kafka.AdminClient) error {
	return createTopic(ctx, admin, kafka.TopicSpecification{
		Topic: QuarantineTopic, NumPartitions: 1, ReplicationFactor: -1,
		Config: map[string]string{"cleanup.policy": "compact", "max.message.bytes": strconv.Itoa(64 << 20)},
	})
}
