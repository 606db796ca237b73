package replicator

import (
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
