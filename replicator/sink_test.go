package replicator

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/governance"
)

func TestSinkConfig(t *testing.T) {
	target := &config.Kafka{Bootstrap: "127.0.0.1:1", Properties: map[string]string{
		"security.protocol":  "plaintext",
		"acks":               "1",
		"enable.idempotence": "false",
		"linger.ms":          "50",
		"partitioner":        "consistent_random",
	}}
	cm, over := sinkConfig(target)
	for key, want := range map[string]any{
		"bootstrap.servers": "127.0.0.1:1", "security.protocol": "plaintext",
		"acks": "all", "enable.idempotence": true,
		"linger.ms": "50", "partitioner": "consistent_random", "message.max.bytes": 64 << 20,
		"go.delivery.report.fields": "none",
	} {
		if got := (*cm)[key]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	if want := []string{"acks", "enable.idempotence"}; !slices.Equal(over, want) {
		t.Errorf("overridden = %q, want %q", over, want)
	}
	cm, _ = sinkConfig(&config.Kafka{Bootstrap: "127.0.0.1:1", Properties: map[string]string{"log_level": "0"}})
	if got := (*cm)["partitioner"]; got != "murmur2_random" {
		t.Errorf("partitioner = %v by default, want murmur2_random", got)
	}
	p, err := kafka.NewProducer(cm)
	if err != nil {
		t.Fatalf("librdkafka refused the configuration: %v", err)
	}
	p.Close()
}

// TestProduceLoopsStopWhenTheirContextEnds fills librdkafka's queue (room for
// one message, no broker to drain it) and checks that the produce loops give
// up when their context ends instead of waiting for room for ever, as a node
// shutting down or handing its tasks over needs.
func TestProduceLoopsStopWhenTheirContextEnds(t *testing.T) {
	target := &config.Kafka{Bootstrap: "127.0.0.1:1", Properties: map[string]string{
		"queue.buffering.max.messages": "1",
		"log_level":                    "0",
	}}
	topic := "central.payments"
	msg := func() *kafka.Message {
		return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Value: []byte("v")}
	}
	t.Run("the Pub/Sub sink", func(t *testing.T) {
		s, err := NewSink("central", target, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		done := make(chan []error, 1)
		go func() { done <- s.Produce(ctx, []*kafka.Message{msg(), msg(), msg()}) }()
		select {
		case errs := <-done:
			for i, err := range errs {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("message %d: %v, want the context's error", i, err)
				}
			}
			if len(errs) != 3 {
				t.Errorf("%d errors, want 3", len(errs))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Produce still waits for room 10s after its context ended")
		}
	})
	t.Run("the quarantine", func(t *testing.T) {
		cm, _ := sinkConfig(target)
		p, err := kafka.NewProducer(cm)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		q := &quarantine{prod: p}
		src := "eu.payments"
		rec := func() *kafka.Message {
			return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &src, Partition: 0, Offset: 7}, Value: []byte("v")}
		}
		reject := &governance.RejectError{Reason: "schema", Msg: "not valid"}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			var err error
			for i := 0; i < 3 && err == nil; i++ {
				err = q.add(ctx, rec(), reject)
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("add = %v, want the context's error", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("add still waits for room 10s after its context ended")
		}
	})
}
