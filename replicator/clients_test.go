package replicator

import (
	"fmt"
	"slices"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/kafkaclient"
)

// The queue limits derived from pipelines[].buffer_bytes must be values
// librdkafka accepts at both ends of the allowed range, must keep a record
// that fits message.max.bytes within the producer queue, and must yield to a
// cluster's own properties.
func TestQueueSizingFromBufferBytes(t *testing.T) {
	for _, buffer := range []int64{4 << 20, config.DefaultBufferBytes, 4 << 30} {
		k := &config.Kafka{Bootstrap: "127.0.0.1:1"}
		pt := producerQueues(buffer, kafkaclient.Tuning{"message.max.bytes": 64 << 20})
		if got, want := pt["queue.buffering.max.kbytes"], int(buffer/2>>10); got != want {
			t.Errorf("buffer %d: queue.buffering.max.kbytes = %v, want %d", buffer, got, want)
		}
		if m := int64(pt["message.max.bytes"].(int)); m > buffer/2 {
			t.Errorf("buffer %d: message.max.bytes %d exceeds the producer queue %d", buffer, m, buffer/2)
		}
		pc, _ := kafkaclient.Config(k, kafkaclient.TransactionalProducer, kafkaclient.Required{"transactional.id": "x"}, pt)
		p, err := kafka.NewProducer(pc)
		if err != nil {
			t.Fatalf("buffer %d: librdkafka refuses the producer queue limits: %v", buffer, err)
		}
		p.Close()

		ct := consumerQueues(buffer, kafkaclient.Tuning{})
		if got, want := ct["queued.max.messages.kbytes"], int(buffer/4>>10); got != want {
			t.Errorf("buffer %d: queued.max.messages.kbytes = %v, want %d", buffer, got, want)
		}
		cc, _ := kafkaclient.Config(k, kafkaclient.Consumer, kafkaclient.Required{"group.id": "g"}, ct)
		c, err := kafka.NewConsumer(cc)
		if err != nil {
			t.Fatalf("buffer %d: librdkafka refuses the consumer queue limits: %v", buffer, err)
		}
		c.Close()
	}

	t.Run("a cluster's properties override the derived limits", func(t *testing.T) {
		k := &config.Kafka{Bootstrap: "127.0.0.1:1", Properties: map[string]string{"queued.max.messages.kbytes": "1024"}}
		cc, over := kafkaclient.Config(k, kafkaclient.Consumer, nil, consumerQueues(config.DefaultBufferBytes, kafkaclient.Tuning{}))
		if v, _ := cc.Get("queued.max.messages.kbytes", nil); v != "1024" || len(over) != 0 {
			t.Errorf("queued.max.messages.kbytes = %v (overridden %v), want the user's 1024", v, over)
		}
	})
}

// The exported client configurations are what a task runs with: the
// benchmark suite's ceiling loop relies on it.
func TestTaskClientConfigs(t *testing.T) {
	k := &config.Kafka{Bootstrap: "b:9092", Properties: map[string]string{"linger.ms": "5", "isolation.level": "read_uncommitted"}}
	role, pc, pover := ProducerConfig(k, "p", 2, true, 16<<20, 500_000)
	if role != kafkaclient.TransactionalProducer {
		t.Errorf("exactly-once producer role = %v", role)
	}
	want := map[string]any{
		"transactional.id": "tributary-p-2", "client.id": "tributary-p-2", "batch.size": 500_000,
		"linger.ms": "5", "queue.buffering.max.kbytes": 8 << 10, "message.max.bytes": 8 << 20,
		"go.delivery.reports": false, "allow.auto.create.topics": false, "acks": "all",
	}
	for key, v := range want {
		if got := (*pc)[key]; fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("producer %s = %v, want %v", key, got, v)
		}
	}
	if len(pover) != 0 {
		t.Errorf("producer overrode %v", pover)
	}
	role, pc, _ = ProducerConfig(k, "p", 2, false, 16<<20, 500_000)
	if _, ok := (*pc)["transactional.id"]; ok || role != kafkaclient.IdempotentProducer || (*pc)["go.delivery.reports"] != true || (*pc)["linger.ms"] != "5" {
		t.Errorf("at-least-once producer: role %v, config %v", role, *pc)
	}
	cc, cover := ConsumerConfig(k, "p", 2, 16<<20)
	for key, v := range map[string]any{
		"isolation.level": "read_committed", "group.id": "tributary-p", "client.id": "tributary-p-2",
		"auto.offset.reset": "error", "fetch.max.bytes": 4 << 20, "queued.max.messages.kbytes": 4 << 10,
	} {
		if got := (*cc)[key]; fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("consumer %s = %v, want %v", key, got, v)
		}
	}
	if !slices.Equal(cover, []string{"isolation.level"}) {
		t.Errorf("consumer overrode %v, want [isolation.level]", cover)
	}
}
