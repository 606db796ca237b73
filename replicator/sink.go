package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/kafkaclient"
)

// Sink writes records that do not come from a Kafka source (Pub/Sub messages)
// into the target cluster: one idempotent producer shared by all of a node's
// Pub/Sub receivers, a delivery channel per batch. It implements
// pubsubbridge.Sink and pubsubbridge.PartitionCounter.
type Sink struct {
	p     *kafka.Producer
	admin *kafka.AdminClient
	log   *slog.Logger
	mu    sync.Mutex
	ready map[string]bool // target topics known to exist
	done  chan struct{}
	logs  *kafkaclient.Logs
}

// sinkConfig is the configuration of the Sink's producer, and the keys of
// target's properties that correctness replaced (never their values). It
// follows kafkaclient's rule like every other client of the daemon: the
// producer is idempotent with acks=all whatever target's properties say, since
// a Pub/Sub message is acked once its record is written; linger.ms,
// partitioner=murmur2_random (keys land where Java producers put them, for
// records sent with kafka.PartitionAny) and message.max.bytes are tuning that
// the properties may override.
func sinkConfig(target *config.Kafka) (*kafka.ConfigMap, []string) {
	return kafkaclient.Config(target, kafkaclient.IdempotentProducer, kafkaclient.Required{
		// Produce reads only the error and Opaque of a delivery report.
		"go.delivery.report.fields": "none",
	}, kafkaclient.Tuning{
		"linger.ms":         5,
		"partitioner":       "murmur2_random",
		"message.max.bytes": 64 << 20,
	})
}

// NewSink makes the sink of the target cluster, which the config names name.
func NewSink(name string, target *config.Kafka, log *slog.Logger) (*Sink, error) {
	logs := kafkaclient.NewLogs(log)
	cm, overridden := sinkConfig(target)
	logs.WarnOverridden(name, kafkaclient.IdempotentProducer, overridden)
	p, err := kafka.NewProducer(logs.Attach(cm))
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("creating the Pub/Sub bridge's producer: %w", err)
	}
	admin, err := kafka.NewAdminClientFromProducer(p)
	if err != nil {
		p.Close()
		logs.Close()
		return nil, err
	}
	s := &Sink{p: p, admin: admin, log: log, logs: logs, ready: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ev := range p.Events() {
			if e, ok := ev.(kafka.Error); ok {
				log.Warn("pubsub bridge producer error", "err", e)
			}
		}
	}()
	return s, nil
}

// Close flushes nothing: callers have their delivery reports. It closes the
// producer and the admin client.
func (s *Sink) Close() {
	s.admin.Close()
	s.p.Close()
	<-s.done
	s.logs.Close()
}

// Produce writes a batch and waits for every delivery report; see
// pubsubbridge.Sink for the contract.
func (s *Sink) Produce(ctx context.Context, msgs []*kafka.Message) []error {
	errs := make([]error, len(msgs))
	for _, m := range msgs {
		if t := m.TopicPartition.Topic; t != nil && *t == QuarantineTopic {
			if err := s.ensureQuarantine(ctx); err != nil {
				for i := range errs {
					errs[i] = err
				}
				return errs
			}
			break
		}
	}
	dr := make(chan kafka.Event, len(msgs))
	pending := 0
	for i, m := range msgs {
		m.Opaque = i
		for {
			err := s.p.Produce(m, dr)
			if kafkaCode(err) == kafka.ErrQueueFull {
				// Wait for room, but not past ctx: shutdown and hand-over
				// must not hang on a queue that does not drain (the target
				// is down). The rest of the batch is not enqueued.
				if ctx.Err() != nil {
					for j := i; j < len(msgs); j++ {
						errs[j] = fmt.Errorf("local produce queue full: %w", ctx.Err())
					}
					break
				}
				s.p.Flush(50)
				continue
			}
			if err != nil {
				errs[i] = err
			} else {
				pending++
			}
			break
		}
		if errs[i] != nil && ctx.Err() != nil {
			break
		}
	}
	for pending > 0 {
		select {
		case ev := <-dr:
			m := ev.(*kafka.Message)
			i := m.Opaque.(int)
			pending--
			if m.TopicPartition.Error != nil {
				errs[i] = m.TopicPartition.Error
			}
		case <-ctx.Done():
			// Unknown outcome: report an error, so the message is redelivered
			// (a possible duplicate), never acked unwritten. Late reports land in
			// dr, which nobody reads; it is buffered for all of them.
			for i := range errs {
				if errs[i] == nil {
					errs[i] = ctx.Err()
				}
			}
			return errs
		}
	}
	for _, e := range errs {
		if e != nil {
			return errs
		}
	}
	return nil
}

// ensureQuarantine creates the target's _tributary.quarantine (compacted: a
// message rewritten after a crash replaces itself) before the first record
// goes there; brokers usually do not create topics on produce.
func (s *Sink) ensureQuarantine(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready[QuarantineTopic] {
		return nil
	}
	if err := CreateQuarantineTopic(ctx, s.admin); err != nil {
		return fmt.Errorf("target cluster: %w", err)
	}
	s.ready[QuarantineTopic] = true
	return nil
}

// Partitions returns a target topic's partition count, creating the topic
// (with the target's default partitions and replication) when missing.
func (s *Sink) Partitions(ctx context.Context, topic string) (int, error) {
	md, err := s.admin.GetMetadata(&topic, false, 10000)
	if err == nil {
		if t, ok := md.Topics[topic]; ok && t.Error.Code() == kafka.ErrNoError && len(t.Partitions) > 0 {
			return len(t.Partitions), nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := s.admin.CreateTopics(cctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: -1, ReplicationFactor: -1}})
	if err != nil {
		return 0, fmt.Errorf("creating target topic %s: %w", topic, err)
	}
	if c := res[0].Error.Code(); c != kafka.ErrNoError && c != kafka.ErrTopicAlreadyExists {
		return 0, fmt.Errorf("creating target topic %s: %w", topic, res[0].Error)
	}
	s.log.Info("created target topic for a Pub/Sub pipeline", "topic", topic)
	return 0, fmt.Errorf("target topic %s just created; its metadata follows", topic)
}
