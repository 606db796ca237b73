package replicator

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
)

// testPipeline returns a pipeline over source "src" into "central", built from
// a config file like an operator would write; nothing is connected.
func testPipeline(t testing.TB, name string, tasks int) *Pipeline {
	t.Helper()
	cfg, err := config.Parse("test.yaml", fmt.Appendf(nil, `
node: {id: n1, region: eu}
kafka:
  src: {region: eu, bootstrap: 127.0.0.1:1}
  central: {region: cloud, bootstrap: 127.0.0.1:2}
target: central
pipelines:
  - name: %s
    source: {kafka: src}
    topics: {include: ['.*']}
    tasks: %d
`, name, tasks))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	p, err := NewPipeline(cfg, name, Deps{})
	if err != nil {
		t.Fatalf("NewPipeline: %v", err)
	}
	return p
}

// owners maps every partition the pipeline publishes to the task that gets it
// from Partitions, and checks that no partition is handed to two tasks.
func owners(t *testing.T, p *Pipeline) map[Partition]int {
	t.Helper()
	out := map[Partition]int{}
	for i := 0; i < p.Tasks(); i++ {
		list, _ := p.Partitions(i)
		for _, sp := range list {
			if prev, dup := out[sp]; dup {
				t.Fatalf("%s assigned to tasks %d and %d", sp, prev, i)
			}
			out[sp] = i
		}
	}
	return out
}

func TestOwner(t *testing.T) {
	t.Run("every index is in range and the result is deterministic", func(t *testing.T) {
		for _, tasks := range []int{1, 2, 3, 7, 1024} {
			for _, topic := range []string{"", "a", "payments.fuel", "payments-in.car_2", "ünïcode"} {
				for part := int32(0); part < 64; part++ {
					got := Owner(topic, part, tasks)
					if got < 0 || got >= tasks {
						t.Fatalf("Owner(%q, %d, %d) = %d, out of range", topic, part, tasks, got)
					}
					if again := Owner(topic, part, tasks); again != got {
						t.Fatalf("Owner(%q, %d, %d) = %d, then %d", topic, part, tasks, got, again)
					}
				}
			}
		}
	})

	t.Run("adding topics and partitions never moves a partition already owned", func(t *testing.T) {
		p := testPipeline(t, "eu", 3)
		p.publish(map[string]int{"orders": 4, "payments.fuel": 6}, nil, nil)
		before := owners(t, p)
		if len(before) != 10 {
			t.Fatalf("%d partitions assigned, want 10", len(before))
		}
		_, changed := p.Partitions(0)
		grown := map[string]int{"orders": 12, "payments.fuel": 6, "payments.in-car": 3}
		for i := range 40 {
			grown[fmt.Sprintf("topic-%d", i)] = 1 + i%7
		}
		p.publish(grown, nil, nil)
		select {
		case <-changed:
		default:
			t.Fatal("Partitions' channel was not closed when topics were added")
		}
		after := owners(t, p)
		for sp, task := range before {
			if after[sp] != task {
				t.Errorf("%s moved from task %d to task %d", sp, task, after[sp])
			}
		}
		want := 12 + 6 + 3
		for i := range 40 {
			want += 1 + i%7
		}
		if len(after) != want {
			t.Errorf("%d partitions assigned after growth, want %d", len(after), want)
		}
	})

	t.Run("a shrinking partition count is ignored", func(t *testing.T) {
		p := testPipeline(t, "eu", 2)
		p.publish(map[string]int{"orders": 8}, nil, nil)
		p.publish(map[string]int{"orders": 3}, nil, nil)
		if got := p.Topics()["orders"]; got != 8 {
			t.Errorf("orders has %d partitions after a smaller refresh, want 8", got)
		}
	})

	t.Run("6 partitions × 50 topics spread over 3 tasks roughly evenly", func(t *testing.T) {
		counts := make([]int, 3)
		total := 0
		for i := range 50 {
			topic := fmt.Sprintf("region-%d.events", i)
			for part := int32(0); part < 6; part++ {
				counts[Owner(topic, part, 3)]++
				total++
			}
		}
		for task, n := range counts {
			share := float64(n) / float64(total)
			if share < 0.20 || share > 0.47 {
				t.Errorf("task %d owns %d of %d partitions (%.0f%%), want 20%%..47%%", task, n, total, 100*share)
			}
		}
	})
}

func TestCheckpointKey(t *testing.T) {
	tests := []struct {
		name     string
		pipeline string
		part     Partition
	}{
		{"a plain topic round-trips", "eu", Partition{"orders", 0}},
		{"a topic with dots round-trips", "eu", Partition{"payments.fuel.v2", 17}},
		{"a topic with dashes and underscores round-trips", "eu-payments", Partition{"in-car_payments-", 3}},
		{"a pipeline name with dots round-trips", "eu.payments", Partition{"a.b", 2147483647}},
		{"a topic that looks like a number round-trips", "p", Partition{"42", 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := checkpointKey(tt.pipeline, tt.part)
			got, ok := parseCheckpointKey(tt.pipeline, key)
			if !ok || got != tt.part {
				t.Fatalf("parseCheckpointKey(%q, %q) = %v, %v; want %v, true", tt.pipeline, key, got, ok, tt.part)
			}
		})
	}

	t.Run("keys of a pipeline are never parsed as another's whose name is a prefix", func(t *testing.T) {
		for _, c := range []struct{ owner, other string }{
			{"eu-payments", "eu"}, {"eu", "eu-payments"}, {"eu.x", "eu"}, {"eu", "e"},
		} {
			for _, part := range []Partition{{"orders", 0}, {"payments/x", 1}, {"x", 12}} {
				key := checkpointKey(c.owner, part)
				if got, ok := parseCheckpointKey(c.other, key); ok {
					t.Errorf("key %q of pipeline %q parsed as pipeline %q's %v", key, c.owner, c.other, got)
				}
			}
		}
	})

	t.Run("malformed keys are rejected", func(t *testing.T) {
		for _, key := range []string{"", "eu", "eu/", "eu/orders", "eu/orders/", "eu//3", "eu/orders/x", "eu/orders/-1", "eu/orders/99999999999", "eu/orders/1.5"} {
			if got, ok := parseCheckpointKey("eu", []byte(key)); ok {
				t.Errorf("parseCheckpointKey(eu, %q) = %v, true; want false", key, got)
			}
		}
	})

	t.Run("the checkpoint value is readable JSON", func(t *testing.T) {
		if got, want := string(encodeCheckpoint("eu/1", 42, "")), `{"v":1,"offset":42,"task":"eu/1"}`; got != want {
			t.Errorf("encodeCheckpoint = %s, want %s", got, want)
		}
	})
}

func TestParseTaskID(t *testing.T) {
	t.Run("ids round-trip through String", func(t *testing.T) {
		for _, id := range []TaskID{{"eu", 0}, {"eu-payments", 3}, {"a.b_c-d", 1023}} {
			got, err := ParseTaskID(id.String())
			if err != nil || got != id {
				t.Errorf("ParseTaskID(%q) = %v, %v; want %v", id.String(), got, err, id)
			}
		}
	})
	t.Run("malformed ids are errors", func(t *testing.T) {
		for _, s := range []string{"", "eu", "/1", "eu/", "eu/x", "eu/-1", "eu/1.0", "eu/ 1", "eu/99999999999999999999"} {
			if got, err := ParseTaskID(s); err == nil {
				t.Errorf("ParseTaskID(%q) = %v, want an error", s, got)
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Run("it doubles from min, caps at max and starts over after reset", func(t *testing.T) {
		b := newBackoff(500*time.Millisecond, 5*time.Second)
		var got []time.Duration
		for range 7 {
			got = append(got, b.next())
		}
		want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second, 5 * time.Second}
		if !slices.Equal(got, want) {
			t.Errorf("next() = %v, want %v", got, want)
		}
		b.reset()
		if d := b.next(); d != 500*time.Millisecond {
			t.Errorf("next() after reset = %v, want 500ms", d)
		}
	})
	t.Run("a max below min is raised to min", func(t *testing.T) {
		b := newBackoff(time.Second, time.Millisecond)
		for range 3 {
			if d := b.next(); d != time.Second {
				t.Fatalf("next() = %v, want 1s", d)
			}
		}
	})
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil is not an error to retry", nil, false},
		{"ErrFenced is not retried with backoff", ErrFenced, false},
		{"a wrapped ErrFenced is not retried with backoff", fmt.Errorf("task eu/1: %w", ErrFenced), false},
		{"a plain error is retried", errors.New("something broke"), true},
		{"a topic authorization failure is final", kafka.NewError(kafka.ErrTopicAuthorizationFailed, "not allowed", false), false},
		{"a wrapped transactional-id authorization failure is final", fmt.Errorf("init: %w", kafka.NewError(kafka.ErrTransactionalIDAuthorizationFailed, "no", false)), false},
		{"a SASL failure is final", kafka.NewError(kafka.ErrSaslAuthenticationFailed, "bad password", false), false},
		{"librdkafka's fatal fencing error is not retried with backoff", kafka.NewError(kafka.ErrFenced, "fenced", true), false},
		{"a broker's producer-fenced error is not retried with backoff", kafka.NewError(kafka.ErrProducerFenced, "fenced", false), false},
		{"a transport error is retried", kafka.NewError(kafka.ErrTransport, "connection reset", false), true},
		{"all brokers down is retried", kafka.NewError(kafka.ErrAllBrokersDown, "down", false), true},
		{"a timeout is retried", fmt.Errorf("commit: %w", kafka.NewError(kafka.ErrTimedOut, "timed out", false)), true},
		{"a not-leader error is retried", kafka.NewError(kafka.ErrNotLeaderForPartition, "moved", false), true},
		{"another fatal producer error is retried with a new producer", kafka.NewError(kafka.ErrOutOfOrderSequenceNumber, "gap", true), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsRetryable(tt.err); got != tt.want {
				t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestClassifyTurnsFencingIntoErrFenced(t *testing.T) {
	task := testPipeline(t, "eu", 2).Task(1)
	for _, code := range []kafka.ErrorCode{kafka.ErrFenced, kafka.ErrProducerFenced, kafka.ErrInvalidProducerEpoch} {
		err := task.classify(fmt.Errorf("producing: %w", kafka.NewError(code, "fenced", true)))
		if !errors.Is(err, ErrFenced) || IsRetryable(err) {
			t.Errorf("classify(%v) = %v: want ErrFenced, not retryable", code, err)
		}
		var ke kafka.Error
		if !errors.As(err, &ke) || ke.Code() != code {
			t.Errorf("classify(%v) lost the kafka error: %v", code, err)
		}
	}
	if err := task.classify(kafka.NewError(kafka.ErrTransport, "x", false)); errors.Is(err, ErrFenced) {
		t.Errorf("classify(transport error) = %v, want it unchanged", err)
	}
}
