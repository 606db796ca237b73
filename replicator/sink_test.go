package replicator

import (
	"slices"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
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
