package harness_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/test/harness"
)

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		n := harness.UniqueName(t, "My_Topic/x")
		if !valid.MatchString(n) || len(n) > 249 {
			t.Fatalf("UniqueName = %q: not a valid topic name", n)
		}
		if seen[n] {
			t.Fatalf("UniqueName returned %q twice", n)
		}
		seen[n] = true
	}
}

func TestEventually(t *testing.T) {
	calls := 0
	harness.Eventually(t, 5*time.Second, "third call", func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

// TestKFakeTransactions checks that confluent-kafka-go's transactional producer
// and read_committed consumer work against the in-memory kfake cluster.
func TestKFakeTransactions(t *testing.T) {
	transactionRoundTrip(t, harness.KFake(t))
}

// TestRealBrokersTransactions does the same against both real clusters.
func TestRealBrokersTransactions(t *testing.T) {
	source, target := harness.Brokers(t)
	t.Run("source", func(t *testing.T) { transactionRoundTrip(t, source) })
	t.Run("target", func(t *testing.T) { transactionRoundTrip(t, target) })
}

// TestRealBrokersSASL does the same through the source cluster's SASL_SSL
// listener, and checks that the listener really demands what it advertises:
// a wrong password, a client that does not trust the harness CA and a
// plaintext client are all turned away.
func TestRealBrokersSASL(t *testing.T) {
	s := harness.SourceSASL(t)
	props := kafka.ConfigMap{}
	for k, v := range s.Properties() {
		props[k] = v
	}
	t.Run("round trip", func(t *testing.T) { transactionRoundTrip(t, s.Bootstrap, props) })

	// refused connects with props changed by change and waits for librdkafka
	// to report an error with code want; metadata must not answer.
	refused := func(name string, change func(kafka.ConfigMap), want kafka.ErrorCode) {
		t.Run(name, func(t *testing.T) {
			cm := clientConfig(s.Bootstrap, props, kafka.ConfigMap{"socket.timeout.ms": 5000})
			change(*cm)
			p, err := kafka.NewProducer(cm)
			if err != nil {
				t.Fatalf("NewProducer: %v", err)
			}
			defer p.Close()
			if _, err := p.GetMetadata(nil, true, 3000); err == nil {
				t.Fatalf("metadata answered; want the listener to refuse the client")
			}
			deadline := time.After(15 * time.Second)
			for {
				select {
				case ev := <-p.Events():
					if e, ok := ev.(kafka.Error); ok {
						if e.Code() == want {
							t.Logf("refused as expected: %v", e)
							return
						}
						t.Logf("client error (waiting for %v): %v", want, e)
					}
				case <-deadline:
					t.Fatalf("no %v error within 15 s", want)
				}
			}
		})
	}
	refused("wrong password", func(cm kafka.ConfigMap) { cm["sasl.password"] = s.Password + "x" }, kafka.ErrAuthentication)
	refused("unknown user", func(cm kafka.ConfigMap) { cm["sasl.username"] = "mallory" }, kafka.ErrAuthentication)
	// "probe": the system's CAs, which do not include the harness CA.
	refused("untrusted CA", func(cm kafka.ConfigMap) { cm["ssl.ca.location"] = "probe" }, kafka.ErrSsl)
	refused("plaintext", func(cm kafka.ConfigMap) {
		for k := range props {
			delete(cm, k)
		}
	}, kafka.ErrAllBrokersDown)
}

func TestRealBrokersStopStart(t *testing.T) {
	_, target := harness.Brokers(t)
	harness.StopCluster(t, harness.Target)
	ac := newAdmin(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := ac.ClusterID(ctx); err == nil {
		t.Fatalf("target cluster answers after StopCluster")
	}
	harness.StartCluster(t, harness.Target)
	transactionRoundTrip(t, target)
}

// clientConfig is bootstrap.servers, then props (security settings), then kv.
func clientConfig(bootstrap string, props kafka.ConfigMap, kv kafka.ConfigMap) *kafka.ConfigMap {
	cm := kafka.ConfigMap{"bootstrap.servers": bootstrap}
	for k, v := range props {
		cm[k] = v
	}
	for k, v := range kv {
		cm[k] = v
	}
	return &cm
}

func newAdmin(t *testing.T, bootstrap string, props ...kafka.ConfigMap) *kafka.AdminClient {
	t.Helper()
	var p kafka.ConfigMap
	if len(props) > 0 {
		p = props[0]
	}
	ac, err := kafka.NewAdminClient(clientConfig(bootstrap, p, nil))
	if err != nil {
		t.Fatalf("NewAdminClient: %v", err)
	}
	t.Cleanup(ac.Close)
	return ac
}

// transactionRoundTrip creates a topic, writes a committed, an aborted and a
// committed transaction, and reads the topic back read_committed (only the
// committed records) and read_uncommitted (all of them).
// props are extra client properties (security settings) for every client.
func transactionRoundTrip(t *testing.T, bootstrap string, props ...kafka.ConfigMap) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	topic := harness.UniqueName(t, "harness")
	var sec kafka.ConfigMap
	if len(props) > 0 {
		sec = props[0]
	}

	ac := newAdmin(t, bootstrap, sec)
	res, err := ac.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}})
	if err != nil {
		t.Fatalf("CreateTopics: %v", err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			t.Fatalf("CreateTopics %s: %v", r.Topic, r.Error)
		}
	}

	p, err := kafka.NewProducer(clientConfig(bootstrap, sec, kafka.ConfigMap{
		"transactional.id":       harness.UniqueName(t, "txn"),
		"transaction.timeout.ms": 60000,
		"linger.ms":              5,
	}))
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	defer p.Close()
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatalf("InitTransactions: %v", err)
	}
	txn := func(prefix string, n int, commit bool) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatalf("BeginTransaction: %v", err)
		}
		dr := make(chan kafka.Event, n)
		for i := 0; i < n; i++ {
			err := p.Produce(&kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
				Value:          fmt.Appendf(nil, "%s%d", prefix, i),
			}, dr)
			if err != nil {
				t.Fatalf("Produce: %v", err)
			}
		}
		// Wait for every delivery, so the aborted records really reach the log
		// (AbortTransaction purges unsent ones).
		for i := 0; i < n; i++ {
			select {
			case e := <-dr:
				if m, ok := e.(*kafka.Message); !ok || m.TopicPartition.Error != nil {
					t.Fatalf("delivery: %v", e)
				}
			case <-ctx.Done():
				t.Fatalf("waiting for deliveries: %v", ctx.Err())
			}
		}
		if commit {
			err = p.CommitTransaction(ctx)
		} else {
			err = p.AbortTransaction(ctx)
		}
		if err != nil {
			t.Fatalf("ending transaction (commit=%v): %v", commit, err)
		}
	}
	txn("c", 5, true)
	txn("a", 5, false)
	txn("d", 5, true)

	want := []string{"c0", "c1", "c2", "c3", "c4", "d0", "d1", "d2", "d3", "d4"}
	if got := readAll(ctx, t, bootstrap, sec, topic, "read_committed"); !slices.Equal(got, want) {
		t.Errorf("read_committed got %q, want %q", got, want)
	}
	if got := readAll(ctx, t, bootstrap, sec, topic, "read_uncommitted"); len(got) != 15 ||
		!slices.Contains(got, "a0") {
		t.Errorf("read_uncommitted got %q, want the 15 committed and aborted records", got)
	}
}

// readAll reads partition 0 of topic from the start up to the partition EOF.
func readAll(ctx context.Context, t *testing.T, bootstrap string, sec kafka.ConfigMap, topic, isolation string) []string {
	t.Helper()
	c, err := kafka.NewConsumer(clientConfig(bootstrap, sec, kafka.ConfigMap{
		"group.id":               harness.UniqueName(t, "group"),
		"isolation.level":        isolation,
		"enable.partition.eof":   true,
		"enable.auto.commit":     false,
		"fetch.queue.backoff.ms": 10,
	}))
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	defer c.Close()
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}); err != nil {
		t.Fatalf("Assign: %v", err)
	}
	var got []string
	for ctx.Err() == nil {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			got = append(got, string(e.Value))
		case kafka.PartitionEOF:
			return got
		case kafka.Error:
			var ke kafka.Error
			if errors.As(e, &ke) && ke.IsFatal() {
				t.Fatalf("consumer: %v", e)
			}
			t.Logf("consumer (%s): %v", isolation, e)
		}
	}
	t.Fatalf("reading %s (%s): %v; got %q so far", topic, isolation, ctx.Err(), got)
	return nil
}
