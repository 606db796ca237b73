package kafkaclient

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
)

// Every user value in these tests contains "VALUE-", so a test can check that
// no report leaks one, whatever the key.
func TestConfig(t *testing.T) {
	security := map[string]string{
		"security.protocol": "SASL_SSL-VALUE-",
		"sasl.mechanism":    "PLAIN-VALUE-",
		"sasl.username":     "user-VALUE-",
		"sasl.password":     "hunter2-VALUE-",
		"ssl.ca.location":   "/etc/ca-VALUE-.pem",
	}
	tests := []struct {
		name   string
		role   Role
		props  map[string]string
		req    Required
		tuning Tuning
		want   map[string]any // properties of the result, compared as strings
		absent []string       // keys that must not be in the result
		over   []string       // the report
	}{
		{
			name:  "user security keys are kept for every role",
			role:  TransactionalProducer,
			props: security,
			req:   Required{"transactional.id": "ours"},
			want: map[string]any{
				"security.protocol": "SASL_SSL-VALUE-", "sasl.mechanism": "PLAIN-VALUE-",
				"sasl.username": "user-VALUE-", "sasl.password": "hunter2-VALUE-", "ssl.ca.location": "/etc/ca-VALUE-.pem",
				"bootstrap.servers": "b:9092", "enable.metrics.push": false,
				"enable.idempotence": true, "acks": "all", "transactional.id": "ours",
			},
		},
		{
			name:  "user security keys are kept for consumers",
			role:  Consumer,
			props: security,
			want:  map[string]any{"sasl.password": "hunter2-VALUE-", "security.protocol": "SASL_SSL-VALUE-"},
		},
		{
			name:   "user tuning keys override our defaults",
			role:   IdempotentProducer,
			props:  map[string]string{"linger.ms": "50-VALUE-", "client.id": "theirs-VALUE-", "compression.type": "zstd-VALUE-", "message.max.bytes": "1000-VALUE-"},
			tuning: Tuning{"linger.ms": 20, "client.id": "ours", "message.max.bytes": 64 << 20, "partitioner": "murmur2_random"},
			want: map[string]any{
				"linger.ms": "50-VALUE-", "client.id": "theirs-VALUE-", "compression.type": "zstd-VALUE-",
				"message.max.bytes": "1000-VALUE-", "partitioner": "murmur2_random",
			},
		},
		{
			name:   "a user's second spelling of a tuning key replaces ours",
			role:   Producer,
			props:  map[string]string{"queue.buffering.max.ms": "50-VALUE-", "delivery.timeout.ms": "9-VALUE-"},
			tuning: Tuning{"linger.ms": 20, "message.timeout.ms": 10000},
			want:   map[string]any{"queue.buffering.max.ms": "50-VALUE-", "delivery.timeout.ms": "9-VALUE-"},
			absent: []string{"linger.ms", "message.timeout.ms"},
		},
		{
			name:  "a user's enable.idempotence=false and acks=1 are overridden on an idempotent producer",
			role:  IdempotentProducer,
			props: map[string]string{"enable.idempotence": "false-VALUE-", "acks": "1-VALUE-"},
			want:  map[string]any{"enable.idempotence": true, "acks": "all"},
			over:  []string{"acks", "enable.idempotence"},
		},
		{
			name:   "a user's request.required.acks cannot slip past acks=all",
			role:   TransactionalProducer,
			props:  map[string]string{"request.required.acks": "1-VALUE-"},
			req:    Required{"transactional.id": "ours"},
			want:   map[string]any{"acks": "all"},
			absent: []string{"request.required.acks"},
			over:   []string{"request.required.acks"},
		},
		{
			name:  "a user's acks=1 is overridden on a plain producer",
			role:  Producer,
			props: map[string]string{"acks": "1-VALUE-"},
			want:  map[string]any{"acks": "all"},
			over:  []string{"acks"},
		},
		{
			name:  "a user's values that agree with ours are not reported",
			role:  IdempotentProducer,
			props: map[string]string{"acks": "-1", "enable.idempotence": "True", "enable.metrics.push": "false"},
			want:  map[string]any{"acks": "all", "enable.idempotence": true},
		},
		{
			name:   "a user's max.in.flight above 5 is lowered on an idempotent producer",
			role:   IdempotentProducer,
			props:  map[string]string{"max.in.flight.requests.per.connection": "100-VALUE-"},
			want:   map[string]any{"max.in.flight": 5},
			absent: []string{"max.in.flight.requests.per.connection"},
			over:   []string{"max.in.flight.requests.per.connection"},
		},
		{
			name:  "a user's max.in.flight up to 5 stays",
			role:  TransactionalProducer,
			props: map[string]string{"max.in.flight": "3"},
			req:   Required{"transactional.id": "ours"},
			want:  map[string]any{"max.in.flight": "3"},
		},
		{
			name:  "a user's max.in.flight is theirs on a consumer",
			role:  Consumer,
			props: map[string]string{"max.in.flight": "100"},
			want:  map[string]any{"max.in.flight": "100"},
		},
		{
			name:  "a user's transactional.id is replaced on a transactional producer",
			role:  TransactionalProducer,
			props: map[string]string{"transactional.id": "theirs-VALUE-"},
			req:   Required{"transactional.id": "tributary-p-0", "transaction.timeout.ms": 20000},
			want:  map[string]any{"transactional.id": "tributary-p-0", "transaction.timeout.ms": 20000},
			over:  []string{"transactional.id"},
		},
		{
			name:   "a user's transactional.id is dropped elsewhere",
			role:   IdempotentProducer,
			props:  map[string]string{"transactional.id": "theirs-VALUE-"},
			absent: []string{"transactional.id"},
			over:   []string{"transactional.id"},
		},
		{
			name: "a user's consumer settings that would break exactly-once reads are overridden",
			role: Consumer,
			props: map[string]string{
				"isolation.level": "read_uncommitted-VALUE-", "enable.auto.commit": "true-VALUE-",
				"enable.auto.offset.store": "true-VALUE-", "auto.offset.reset": "latest-VALUE-",
				"enable.partition.eof": "false-VALUE-", "group.id": "theirs-VALUE-", "auto.commit.enable": "true-VALUE-",
			},
			req: Required{"auto.offset.reset": "error", "enable.partition.eof": true, "group.id": "tributary-p"},
			want: map[string]any{
				"isolation.level": "read_committed", "enable.auto.commit": false, "enable.auto.offset.store": false,
				"auto.offset.reset": "error", "enable.partition.eof": true, "group.id": "tributary-p",
			},
			absent: []string{"auto.commit.enable"},
			over: []string{"auto.commit.enable", "auto.offset.reset", "enable.auto.commit", "enable.auto.offset.store",
				"enable.partition.eof", "group.id", "isolation.level"},
		},
		{
			name:  "producer settings are the user's on a consumer, and consumer settings on a producer",
			role:  Consumer,
			props: map[string]string{"acks": "1", "enable.idempotence": "false"},
			want:  map[string]any{"acks": "1", "enable.idempotence": "false"},
		},
		{
			name:  "consumer settings are the user's on an admin client",
			role:  Admin,
			props: map[string]string{"isolation.level": "read_uncommitted", "acks": "1"},
			want:  map[string]any{"isolation.level": "read_uncommitted", "acks": "1"},
		},
		{
			name: "bootstrap, metrics push and go.* settings are always ours",
			role: Admin,
			props: map[string]string{
				"metadata.broker.list": "evil:1-VALUE-", "enable.metrics.push": "true-VALUE-",
				"go.events.channel.size": "1-VALUE-", "go.logs.channel.enable": "true-VALUE-", "log.queue": "true-VALUE-",
			},
			tuning: Tuning{"go.events.channel.size": 100},
			want:   map[string]any{"bootstrap.servers": "b:9092", "enable.metrics.push": false, "go.events.channel.size": 100},
			absent: []string{"metadata.broker.list", "go.logs.channel.enable", "log.queue"},
			over:   []string{"enable.metrics.push", "go.events.channel.size", "go.logs.channel.enable", "log.queue", "metadata.broker.list"},
		},
		{
			name:  "producers get small Go channels: the client's 1M-entry defaults cost 24 MB each",
			role:  TransactionalProducer,
			props: map[string]string{"go.produce.channel.size": "1000000-VALUE-"},
			want:  map[string]any{"go.produce.channel.size": 0, "go.events.channel.size": producerEventsChannel},
			over:  []string{"go.produce.channel.size"},
		},
		{
			name:   "a producer's channel sizes from the tuning are kept",
			role:   Producer,
			tuning: Tuning{"go.events.channel.size": 100, "go.produce.channel.size": 100},
			want:   map[string]any{"go.produce.channel.size": 100, "go.events.channel.size": 100},
		},
		{
			name:   "consumers' channel settings are left alone",
			role:   Consumer,
			absent: []string{"go.produce.channel.size", "go.events.channel.size"},
		},
		{
			name:  "the caller's Required overrides the user's tuning",
			role:  Producer,
			props: map[string]string{"message.timeout.ms": "300000-VALUE-"},
			req:   Required{"message.timeout.ms": 10000},
			want:  map[string]any{"message.timeout.ms": 10000},
			over:  []string{"message.timeout.ms"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &config.Kafka{Bootstrap: "b:9092", Properties: tt.props}
			cm, over := Config(k, tt.role, tt.req, tt.tuning)
			for key, want := range tt.want {
				got, ok := (*cm)[key]
				if !ok {
					t.Errorf("%s missing", key)
				} else if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v", key, got, want)
				}
			}
			for _, key := range tt.absent {
				if v, ok := (*cm)[key]; ok {
					t.Errorf("%s = %v, want it absent", key, v)
				}
			}
			if !slices.Equal(over, tt.over) {
				t.Errorf("overridden = %q, want %q", over, tt.over)
			}
			for _, key := range over {
				if strings.Contains(key, "VALUE-") {
					t.Errorf("the report leaks a value: %q", key)
				}
			}
		})
	}
}

func TestConfigDoesNotChangeItsInputs(t *testing.T) {
	props := map[string]string{"acks": "1", "linger.ms": "7"}
	tuning := Tuning{"linger.ms": 20}
	k := &config.Kafka{Bootstrap: "b:9092", Properties: props}
	cm, _ := Config(k, IdempotentProducer, Required{"go.delivery.reports": false}, tuning)
	(*cm)["added"] = 1
	if len(props) != 2 || props["acks"] != "1" || len(tuning) != 1 || tuning["linger.ms"] != 20 {
		t.Fatalf("inputs changed: %v %v", props, tuning)
	}
}

// The point of the overrides: librdkafka refuses an idempotent producer with
// a user's acks=1 or max.in.flight=100, and takes what Config makes of it. No
// broker is needed to create clients.
func TestLibrdkafkaAcceptsTheResult(t *testing.T) {
	props := map[string]string{
		"acks": "1", "max.in.flight": "100", "enable.idempotence": "false", "transactional.id": "theirs",
		"isolation.level": "read_uncommitted", "enable.auto.commit": "true", "linger.ms": "50",
		"security.protocol": "plaintext", "client.id": "theirs",
	}
	k := &config.Kafka{Bootstrap: "127.0.0.1:1", Properties: props}

	t.Run("the user's properties alone are refused for an idempotent producer", func(t *testing.T) {
		raw := kafka.ConfigMap{"bootstrap.servers": "127.0.0.1:1", "enable.idempotence": true, "acks": "1"}
		if p, err := kafka.NewProducer(&raw); err == nil {
			p.Close()
			t.Fatal("librdkafka accepted acks=1 with enable.idempotence=true")
		}
	})

	logs := NewLogs(discard())
	defer logs.Close()
	roles := []struct {
		role Role
		req  Required
	}{
		{Producer, nil},
		{IdempotentProducer, Required{"go.delivery.report.fields": "none"}},
		{TransactionalProducer, Required{"transactional.id": "tributary-test-0", "transaction.timeout.ms": 20000}},
	}
	for _, r := range roles {
		t.Run("a "+r.role.String()+" is created", func(t *testing.T) {
			cm, _ := Config(k, r.role, r.req, Tuning{"linger.ms": 20, "message.max.bytes": 64 << 20})
			p, err := kafka.NewProducer(logs.Attach(cm))
			if err != nil {
				t.Fatal(err)
			}
			p.Close()
		})
	}
	t.Run("a consumer is created", func(t *testing.T) {
		cm, _ := Config(k, Consumer, Required{"group.id": "g", "auto.offset.reset": "error", "enable.partition.eof": true},
			Tuning{"fetch.queue.backoff.ms": 10})
		c, err := kafka.NewConsumer(logs.Attach(cm))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	})
	for _, withLogs := range []*Logs{nil, logs} {
		t.Run(fmt.Sprintf("an admin client is created (logs forwarded: %v)", withLogs != nil), func(t *testing.T) {
			cm, _ := Config(k, Admin, nil, Tuning{"client.id": "ours", "log_level": 3})
			a, err := NewAdmin(cm, withLogs)
			if err != nil {
				t.Fatal(err)
			}
			a.Close()
			a.Close()
		})
	}
}
