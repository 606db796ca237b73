package pubsubbridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/test/harness"
)

// target is a Kafka cluster with the test's target and quarantine topics.
type target struct {
	bootstrap   string
	topic       string
	quarantine  string
	partitions  int32
	qPartitions int32
}

// targetKinds are the clusters every end-to-end test runs against: the
// in-memory kfake always, and the real target brokers when the harness
// provides them (subtests skip otherwise).
var targetKinds = []string{"kfake", "brokers"}

func newTarget(t *testing.T, kind string, partitions int32) *target {
	t.Helper()
	tg := &target{partitions: partitions, qPartitions: 1}
	switch kind {
	case "kfake":
		tg.topic, tg.quarantine = "fleet.telemetry", QuarantineTopic
		tg.bootstrap = harness.KFake(t,
			kfake.SeedTopics(partitions, tg.topic), kfake.SeedTopics(tg.qPartitions, tg.quarantine),
			kfake.BrokerConfigs(map[string]string{"message.max.bytes": "16777216"}))
	case "brokers":
		_, tg.bootstrap = harness.Brokers(t)
		tg.topic = harness.UniqueName(t, "fleet.telemetry")
		tg.quarantine = harness.UniqueName(t, "_tributary.quarantine")
		createTopics(t, tg.bootstrap,
			kafka.TopicSpecification{Topic: tg.topic, NumPartitions: int(partitions), ReplicationFactor: 1},
			kafka.TopicSpecification{Topic: tg.quarantine, NumPartitions: int(tg.qPartitions), ReplicationFactor: 1,
				Config: map[string]string{"cleanup.policy": "compact", "max.message.bytes": "16777216"}})
	default:
		t.Fatalf("unknown target kind %q", kind)
	}
	return tg
}

func createTopics(t *testing.T, bootstrap string, specs ...kafka.TopicSpecification) {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "log_level": 3})
	if err != nil {
		t.Fatalf("NewAdminClient: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.CreateTopics(ctx, specs)
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			t.Fatalf("creating topic %s: %v", r.Topic, r.Error)
		}
	}
}

// kafkaSink is the Sink the lead wires in cmd, in miniature: one idempotent
// confluent-kafka-go producer, a delivery channel per Produce call.
type kafkaSink struct {
	p *kafka.Producer
}

func newKafkaSink(t testing.TB, bootstrap string) *kafkaSink {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers":   bootstrap,
		"enable.idempotence":  true,
		"acks":                "all",
		"linger.ms":           5,
		"message.max.bytes":   16 << 20,
		"partitioner":         "murmur2_random", // for PartitionAny records
		"enable.metrics.push": false,
		"log_level":           3,
	})
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	t.Cleanup(p.Close)
	return &kafkaSink{p: p}
}

func (s *kafkaSink) Produce(ctx context.Context, msgs []*kafka.Message) []error {
	dr := make(chan kafka.Event, len(msgs))
	errs := make([]error, len(msgs))
	reported := make([]bool, len(msgs))
	failed, pending := false, 0
	for i, m := range msgs {
		m.Opaque = i
		for {
			err := s.p.Produce(m, dr)
			var ke kafka.Error
			if errors.As(err, &ke) && ke.Code() == kafka.ErrQueueFull {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if err != nil {
				errs[i], reported[i], failed = err, true, true
			} else {
				pending++
			}
			break
		}
	}
	for pending > 0 {
		select {
		case ev := <-dr:
			m, ok := ev.(*kafka.Message)
			if !ok {
				continue
			}
			i := m.Opaque.(int)
			reported[i] = true
			pending--
			if m.TopicPartition.Error != nil {
				errs[i], failed = m.TopicPartition.Error, true
			}
		case <-ctx.Done():
			for i := range errs {
				if !reported[i] {
					errs[i] = ctx.Err()
				}
			}
			return errs
		}
	}
	if !failed {
		return nil
	}
	return errs
}

func (s *kafkaSink) Partitions(ctx context.Context, topic string) (int, error) {
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	md, err := s.p.GetMetadata(&topic, false, int(timeout.Milliseconds()))
	if err != nil {
		return 0, err
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() != kafka.ErrNoError {
		return 0, fmt.Errorf("topic %s: %v", topic, tm.Error)
	}
	return len(tm.Partitions), nil
}

// testSink wraps the Kafka sink: it records which message ids were written
// (so a test can check that nothing is acked before), and fails on demand.
type testSink struct {
	*kafkaSink
	down    atomic.Bool                // every Produce fails (the target is down)
	failFor func(*kafka.Message) error // per-record injected error, may be nil

	mu      sync.Mutex
	written map[string]int // pubsub-message-id → successful writes
	calls   int
}

var errTargetDown = kafka.NewError(kafka.ErrTransport, "test: target down", false)

func newTestSink(s *kafkaSink) *testSink { return &testSink{kafkaSink: s, written: map[string]int{}} }

func (s *testSink) Produce(ctx context.Context, msgs []*kafka.Message) []error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	if s.down.Load() {
		errs := make([]error, len(msgs))
		for i := range errs {
			errs[i] = errTargetDown
		}
		return errs
	}
	var injected []error
	pass := msgs
	if s.failFor != nil {
		injected = make([]error, len(msgs))
		pass = pass[:0:0]
		for i, m := range msgs {
			if injected[i] = s.failFor(m); injected[i] == nil {
				pass = append(pass, m)
			}
		}
	}
	errs := s.kafkaSink.Produce(ctx, pass)
	out := make([]error, len(msgs))
	j := 0
	for i, m := range msgs {
		if injected != nil && injected[i] != nil {
			out[i] = injected[i]
			continue
		}
		if errs != nil {
			out[i] = errs[j]
		}
		j++
		if out[i] == nil {
			if id := header(m, HeaderMessageID); id != "" {
				s.mu.Lock()
				s.written[id]++
				s.mu.Unlock()
			}
		}
	}
	return out
}

func (s *testSink) isWritten(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written[id] > 0
}

func header(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// readTopic reads a topic from the beginning until it holds at least want
// records (failing after timeout), then to its end, so that extra records
// (duplicates) are seen too.
func readTopic(t *testing.T, bootstrap, topic string, partitions int32, want int, timeout time.Duration) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "pubsubbridge-test-reader", "enable.auto.commit": false,
		"enable.partition.eof": true, "fetch.wait.max.ms": 10, "fetch.queue.backoff.ms": 10,
		"enable.metrics.push": false, "log_level": 3,
	})
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer c.Close()
	var tps []kafka.TopicPartition
	for p := range partitions {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.OffsetBeginning})
	}
	if err := c.Assign(tps); err != nil {
		t.Fatalf("Assign: %v", err)
	}
	var out []*kafka.Message
	eof := map[int32]bool{}
	deadline := time.Now().Add(timeout)
	for len(out) < want || len(eof) < int(partitions) {
		if time.Now().After(deadline) {
			t.Fatalf("reading %s: %d records within %v, want %d", topic, len(out), timeout, want)
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				t.Fatalf("reading %s: %v", topic, ev.TopicPartition.Error)
			}
			out = append(out, ev)
			delete(eof, ev.TopicPartition.Partition)
		case kafka.PartitionEOF:
			eof[ev.Partition] = true
		case kafka.Error:
			if !strings.Contains(ev.Error(), "Disconnected") {
				t.Logf("reading %s: %v", topic, ev)
			}
		}
	}
	return out
}
