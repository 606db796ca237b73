package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/test/harness"
)

// binPath is the tributary binary built once by TestMain for process tests.
var binPath string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Getenv("TRIBUTARY_TEST_SOURCE_BOOTSTRAP") != "" {
			dir, err := os.MkdirTemp("", "tributary-bin-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			binPath = filepath.Join(dir, "tributary")
			build := exec.Command("go", "build", "-o", binPath, "../cmd/tributary")
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "building tributary:", err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// newAdmin returns an admin client of the cluster at bootstrap; the caller closes it.
func newAdmin(t testing.TB, bootstrap string) *kafka.AdminClient {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	return admin
}

// createTopic creates a topic and waits until its metadata is visible.
func createTopic(t testing.TB, bootstrap, topic string, partitions int, cfg map[string]string) {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1, Config: cfg}})
	if err != nil {
		t.Fatalf("creating topic %s: %v", topic, err)
	}
	if c := res[0].Error.Code(); c != kafka.ErrNoError {
		t.Fatalf("creating topic %s: %v", topic, res[0].Error)
	}
	harness.Eventually(t, 30*time.Second, "topic "+topic+" visible", func() error {
		n, err := partitionCount(bootstrap, topic)
		if err != nil {
			return err
		}
		if n != partitions {
			return fmt.Errorf("%d partitions", n)
		}
		return nil
	})
}

func partitionCount(bootstrap, topic string) (int, error) {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.metrics.push": false})
	if err != nil {
		return 0, err
	}
	defer admin.Close()
	md, err := admin.GetMetadata(&topic, false, 5000)
	if err != nil {
		return 0, err
	}
	tm, ok := md.Topics[topic]
	if !ok {
		return 0, errors.New("no metadata")
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return 0, tm.Error
	}
	return len(tm.Partitions), nil
}

func topicConfig(t testing.TB, bootstrap, topic string) map[string]string {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, e := range res[0].Config {
		out[k] = e.Value
	}
	return out
}

// producer is a test producer whose flush fails the test when any record was
// not delivered, so a broker hiccup on the writing side is never mistaken for
// a loss in tributary.
type producer struct {
	*kafka.Producer
	failed atomic.Int64
	first  atomic.Value
	done   chan struct{}
}

func newProducer(t testing.TB, bootstrap string) *producer {
	t.Helper()
	return newProducerWith(t, bootstrap, nil)
}

// newProducerWith is newProducer with props added to (or replacing) its settings.
func newProducerWith(t testing.TB, bootstrap string, props kafka.ConfigMap) *producer {
	t.Helper()
	cm := kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "enable.idempotence": true, "linger.ms": 10,
		"go.delivery.reports": true, "go.delivery.report.fields": "none", "enable.metrics.push": false,
	}
	for k, v := range props {
		cm[k] = v
	}
	p, err := kafka.NewProducer(&cm)
	if err != nil {
		t.Fatal(err)
	}
	tp := &producer{Producer: p, done: make(chan struct{})}
	go func() {
		defer close(tp.done)
		for ev := range p.Events() {
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				if tp.failed.Add(1) == 1 {
					tp.first.Store(fmt.Sprintf("%s partition %d: %v", *m.TopicPartition.Topic, m.TopicPartition.Partition, m.TopicPartition.Error))
				}
			}
		}
	}()
	t.Cleanup(func() {
		p.Close()
		<-tp.done
	})
	return tp
}

func flush(t testing.TB, p *producer) {
	t.Helper()
	if p.Flush(60000) > 0 {
		t.Fatal("test producer did not flush in 60 s")
	}
	if n := p.failed.Load(); n > 0 {
		t.Fatalf("test producer: %d records not delivered to the source (first: %v)", n, p.first.Load())
	}
}

// record is what the tests write: deterministic from (partition, sequence), so a
// target record can be checked against the source record it claims to mirror.
func sourceRecord(topic string, part int32, seq int, base time.Time) *kafka.Message {
	m := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: part},
		Timestamp:      base.Add(time.Duration(seq) * time.Millisecond),
	}
	switch seq % 10 {
	case 3:
		// null key
	case 4:
		m.Key = []byte{} // empty, not null
	default:
		m.Key = []byte("vin-" + strconv.Itoa(seq%977))
	}
	switch seq % 13 {
	case 5:
		// tombstone: null value
	case 6:
		m.Value = []byte{}
	default:
		v := make([]byte, 40+seq%160)
		for i := range v {
			v[i] = byte(seq*31 + i*7 + int(part))
		}
		m.Value = v
	}
	switch seq % 4 {
	case 1:
		m.Headers = []kafka.Header{{Key: "trace", Value: []byte(strconv.Itoa(seq))}}
	case 2:
		m.Headers = []kafka.Header{{Key: "b", Value: []byte("2")}, {Key: "a", Value: nil}, {Key: "b", Value: []byte("1")}}
	}
	return m
}

// targetRecord is one record read back from the target.
type targetRecord struct {
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   []kafka.Header
}

// readAll reads a topic with an independent read_committed consumer until it has
// want records (or the deadline passes) and returns them per partition, in order.
func readAll(t testing.TB, bootstrap, topic string, want int, timeout time.Duration) map[int32][]targetRecord {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "verify-" + topic, "isolation.level": "read_committed",
		"enable.auto.commit": false, "auto.offset.reset": "earliest", "enable.metrics.push": false,
		"fetch.queue.backoff.ms": 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int
	harness.Eventually(t, timeout, "topic "+topic+" exists", func() error {
		var err error
		n, err = partitionCount(bootstrap, topic)
		return err
	})
	var tps []kafka.TopicPartition
	for p := 0; p < n; p++ {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: int32(p), Offset: kafka.OffsetBeginning})
	}
	if err := c.Assign(tps); err != nil {
		t.Fatal(err)
	}
	out := map[int32][]targetRecord{}
	got := 0
	deadline := time.Now().Add(timeout)
	for got < want && time.Now().Before(deadline) {
		m, ok := c.Poll(200).(*kafka.Message)
		if !ok || m.TopicPartition.Error != nil {
			continue
		}
		out[m.TopicPartition.Partition] = append(out[m.TopicPartition.Partition], targetRecord{
			Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset),
			Key: m.Key, Value: m.Value, Timestamp: m.Timestamp, Headers: m.Headers,
		})
		got++
	}
	// Read a little longer to catch duplicates beyond the expected count.
	end := time.Now().Add(2 * time.Second)
	for time.Now().Before(end) {
		if m, ok := c.Poll(100).(*kafka.Message); ok && m.TopicPartition.Error == nil {
			out[m.TopicPartition.Partition] = append(out[m.TopicPartition.Partition], targetRecord{
				Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset),
				Key: m.Key, Value: m.Value, Timestamp: m.Timestamp, Headers: m.Headers,
			})
			got++
		}
	}
	return out
}

func header(hs []kafka.Header, key string) ([]byte, bool) {
	for _, h := range hs {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// verifyExactlyOnce checks that partition p of the target holds the source
// records 0..perPartition[p]-1 of partition p, each once, in order, byte-identical,
// with the provenance headers.
func verifyExactlyOnce(t testing.TB, got map[int32][]targetRecord, perPartition map[int32]int, srcTopic, origin string, base time.Time, strictContent bool) {
	t.Helper()
	bad := 0
	fail := func(format string, a ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, a...)
		}
	}
	for p, n := range perPartition {
		recs := got[p]
		if len(recs) != n {
			fail("partition %d: %d records in the target, want %d", p, len(recs), n)
		}
		for i, r := range recs {
			offHdr, _ := header(r.Headers, "tributary-origin-offset")
			off, err := strconv.Atoi(string(offHdr))
			if err != nil || off != i {
				fail("partition %d: target record %d claims source offset %q, want %d (duplicate, gap or reorder)", p, i, offHdr, i)
				continue
			}
			if o, _ := header(r.Headers, "tributary-origin"); string(o) != origin {
				fail("partition %d offset %d: tributary-origin %q, want %q", p, i, o, origin)
			}
			if v, _ := header(r.Headers, "tributary-origin-topic"); string(v) != srcTopic {
				fail("partition %d offset %d: tributary-origin-topic %q", p, i, v)
			}
			if v, _ := header(r.Headers, "tributary-origin-partition"); string(v) != strconv.Itoa(int(p)) {
				fail("partition %d offset %d: tributary-origin-partition %q", p, i, v)
			}
			if !strictContent {
				continue
			}
			want := sourceRecord(srcTopic, p, i, base)
			if (want.Key == nil) != (r.Key == nil) || !bytes.Equal(want.Key, r.Key) {
				fail("partition %d offset %d: key %q (nil=%v), want %q (nil=%v)", p, i, r.Key, r.Key == nil, want.Key, want.Key == nil)
			}
			if (want.Value == nil) != (r.Value == nil) || !bytes.Equal(want.Value, r.Value) {
				fail("partition %d offset %d: value differs (got %d bytes nil=%v, want %d bytes nil=%v)", p, i, len(r.Value), r.Value == nil, len(want.Value), want.Value == nil)
			}
			if !r.Timestamp.Equal(want.Timestamp) {
				fail("partition %d offset %d: timestamp %v, want %v", p, i, r.Timestamp, want.Timestamp)
			}
			if len(r.Headers) != len(want.Headers)+4 {
				fail("partition %d offset %d: %d headers, want %d source + 4", p, i, len(r.Headers), len(want.Headers))
				continue
			}
			for j, h := range want.Headers {
				g := r.Headers[j]
				if g.Key != h.Key || !bytes.Equal(g.Value, h.Value) || (g.Value == nil) != (h.Value == nil) {
					fail("partition %d offset %d: header %d = %s:%q, want %s:%q (order kept)", p, i, j, g.Key, g.Value, h.Key, h.Value)
				}
			}
		}
	}
	if bad > 20 {
		t.Errorf("... and %d more problems", bad-20)
	}
}

// testLogger logs to the test's output, for in-process components.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recentBase is the timestamp of the first test record: an hour ago, so that
// topic retention (7 days by default, or what a test sets) never deletes test
// records while a test runs — old timestamps made the broker's retention check
// delete whole segments mid-test, which looked exactly like lost records.
func recentBase() time.Time {
	return time.Now().Add(-time.Hour).Truncate(time.Millisecond)
}
