package replicator

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/test/harness"
)

// These tests run the Worker end to end against two in-memory kfake clusters,
// "eu-west" (the source) and "central" (the target). test/ mirrors between
// real brokers.

const (
	srcCluster = "eu-west"
	dstCluster = "central"
	srcTopic   = "orders"
	dstTopic   = srcCluster + "." + srcTopic // the default rename "{source}.{topic}"
	seqHeader  = "test-seq"
)

// kfakePair starts the source (with topic orders of the given partitions) and
// the target cluster.
func kfakePair(t *testing.T, partitions int32) (src, dst string) {
	t.Helper()
	return harness.KFake(t, kfake.SeedTopics(partitions, srcTopic)), harness.KFake(t)
}

// mirrorConfig parses a node config that mirrors orders from src into dst with
// the given extra pipeline settings (YAML lines indented by four spaces).
func mirrorConfig(t *testing.T, src, dst, extra string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("kfake_test.yaml", []byte(`
node: {id: test-1, region: eu}
kafka:
  `+srcCluster+`: {region: eu, bootstrap: "`+src+`"}
  `+dstCluster+`: {region: cloud, bootstrap: "`+dst+`"}
target: `+dstCluster+`
pipelines:
  - name: eu
    source: {kafka: `+srcCluster+`}
    topics: {include: ['`+srcTopic+`']}
`+extra))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return cfg
}

// startWorker runs a Worker with every task of cfg, logging to the test's
// output. stop cancels it and waits for the drain; the test's cleanup calls it
// too.
func startWorker(t *testing.T, cfg *config.Config, m *metrics.Set) (w *Worker, stop func()) {
	t.Helper()
	w, err := NewWorker(cfg, Deps{Metrics: m, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	if err := w.Assign(w.AllTasks()); err != nil {
		t.Fatalf("Assign: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Worker.Run = %v, want nil after cancel", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Worker.Run did not return within 20s of cancel")
		}
	})
	t.Cleanup(stop)
	return w, stop
}

// waitTasks waits until the worker's tasks together report at least replicated
// and skipped records.
func waitTasks(t *testing.T, w *Worker, replicated, skipped int64) {
	t.Helper()
	harness.Eventually(t, 60*time.Second, fmt.Sprintf("%d records replicated and %d skipped", replicated, skipped), func() error {
		var r, s int64
		var states []string
		for _, st := range w.Status() {
			r += st.Replicated
			s += st.Skipped
			states = append(states, st.ID+"="+st.State+" "+st.Error)
		}
		if r < replicated || s < skipped {
			return fmt.Errorf("replicated %d, skipped %d; tasks %v", r, s, states)
		}
		return nil
	})
}

// srcRecord is a record written to the source and where it landed.
type srcRecord struct {
	seq       int
	key       []byte
	value     []byte
	headers   []kafka.Header
	ts        time.Time
	partition int32
	offset    int64
}

// makeRecords returns n records numbered from first, over partitions: null keys,
// tombstones, repeated and null-valued headers, distinct timestamps.
func makeRecords(first, n int, partitions int32, extra func(seq int) []kafka.Header) []*srcRecord {
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	out := make([]*srcRecord, n)
	for i := range out {
		seq := first + i
		r := &srcRecord{seq: seq, partition: int32(seq) % partitions, ts: base.Add(time.Duration(seq) * time.Millisecond)}
		if seq%10 != 0 {
			r.key = []byte("key-" + strconv.Itoa(seq%37))
		}
		if seq%7 != 0 {
			r.value = []byte("value-" + strconv.Itoa(seq))
		}
		r.headers = []kafka.Header{{Key: seqHeader, Value: []byte(strconv.Itoa(seq))}}
		if seq%3 == 0 {
			r.headers = append(r.headers, kafka.Header{Key: "h", Value: []byte("1")}, kafka.Header{Key: "empty", Value: nil}, kafka.Header{Key: "h", Value: []byte("2")})
		}
		if extra != nil {
			r.headers = append(r.headers, extra(seq)...)
		}
		out[i] = r
	}
	return out
}

// produce writes the records to the source topic and fills in their offsets.
func produce(t *testing.T, bootstrap string, recs []*srcRecord) {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "enable.idempotence": true, "linger.ms": 5,
		"enable.metrics.push": false, "log_level": 3,
	})
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	defer p.Close()
	dr := make(chan kafka.Event, len(recs))
	topic := srcTopic
	for i, r := range recs {
		err := p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: r.partition},
			Key:            r.key, Value: r.value, Headers: r.headers, Timestamp: r.ts, Opaque: i,
		}, dr)
		if err != nil {
			t.Fatalf("Produce: %v", err)
		}
	}
	timeout := time.After(30 * time.Second)
	for range recs {
		select {
		case ev := <-dr:
			m := ev.(*kafka.Message)
			if m.TopicPartition.Error != nil {
				t.Fatalf("producing to the source: %v", m.TopicPartition.Error)
			}
			recs[m.Opaque.(int)].offset = int64(m.TopicPartition.Offset)
		case <-timeout:
			t.Fatal("producing to the source: no delivery reports within 30s")
		}
	}
}

// readCommitted reads every committed record of a topic.
func readCommitted(t *testing.T, bootstrap, topic string, partitions int32) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "test-reader", "isolation.level": "read_committed",
		"enable.partition.eof": true, "enable.auto.commit": false, "fetch.wait.max.ms": 10, "fetch.queue.backoff.ms": 10, "enable.metrics.push": false, "log_level": 3,
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
	deadline := time.Now().Add(30 * time.Second)
	for len(eof) < int(partitions) {
		if time.Now().After(deadline) {
			t.Fatalf("reading %s: no end of partitions within 30s (at end: %v, read %d)", topic, eof, len(out))
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				t.Fatalf("reading %s: %v", topic, ev.TopicPartition.Error)
			}
			out = append(out, ev)
		case kafka.PartitionEOF:
			eof[ev.Partition] = true
		case kafka.Error:
			t.Logf("reading %s: %v", topic, ev)
		}
	}
	return out
}

func headerValues(m *kafka.Message, key string) []string {
	var vs []string
	for _, h := range m.Headers {
		if h.Key == key {
			vs = append(vs, string(h.Value))
		}
	}
	return vs
}

// checkMirrored checks that every source record is in got exactly once (at
// least once when atLeastOnce), in the same partition, with its key, value,
// timestamp and headers followed by the provenance headers, and that got holds
// nothing else.
func checkMirrored(t *testing.T, recs []*srcRecord, got []*kafka.Message, atLeastOnce bool) {
	t.Helper()
	bySeq := map[int]*srcRecord{}
	for _, r := range recs {
		bySeq[r.seq] = r
	}
	seen := map[int]int{}
	bad := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if bad++; bad <= 10 {
			t.Errorf(format, args...)
		}
	}
	for _, m := range got {
		seqs := headerValues(m, seqHeader)
		if len(seqs) != 1 {
			fail("target record at %v has %d %s headers", m.TopicPartition, len(seqs), seqHeader)
			continue
		}
		seq, _ := strconv.Atoi(seqs[0])
		r := bySeq[seq]
		if r == nil {
			fail("target record %v is seq %d, which should not have been mirrored", m.TopicPartition, seq)
			continue
		}
		seen[seq]++
		if m.TopicPartition.Partition != r.partition {
			fail("seq %d: in partition %d, want %d", seq, m.TopicPartition.Partition, r.partition)
		}
		if !bytes.Equal(m.Key, r.key) || (m.Key == nil) != (r.key == nil) {
			fail("seq %d: key %q, want %q", seq, m.Key, r.key)
		}
		if !bytes.Equal(m.Value, r.value) || (m.Value == nil) != (r.value == nil) {
			fail("seq %d: value %q (nil %v), want %q (nil %v)", seq, m.Value, m.Value == nil, r.value, r.value == nil)
		}
		if m.TimestampType != kafka.TimestampCreateTime || !m.Timestamp.Equal(r.ts) {
			fail("seq %d: timestamp %v (%v), want %v (CreateTime)", seq, m.Timestamp, m.TimestampType, r.ts)
		}
		want := append(append([]kafka.Header(nil), r.headers...),
			kafka.Header{Key: HeaderOrigin, Value: []byte(srcCluster)},
			kafka.Header{Key: HeaderOriginTopic, Value: []byte(srcTopic)},
			kafka.Header{Key: HeaderOriginPartition, Value: []byte(strconv.Itoa(int(r.partition)))},
			kafka.Header{Key: HeaderOriginOffset, Value: []byte(strconv.FormatInt(r.offset, 10))})
		if len(headerValues(&kafka.Message{Headers: r.headers}, HeaderOrigin)) > 0 {
			want = append(want[:len(r.headers)], want[len(r.headers)+1:]...) // an existing origin is kept
		}
		if fmt.Sprint(m.Headers) != fmt.Sprint(want) {
			fail("seq %d: headers\n  %v\nwant\n  %v", seq, m.Headers, want)
		}
	}
	for _, r := range recs {
		switch n := seen[r.seq]; {
		case n == 0:
			fail("seq %d (source %s/%d offset %d) is missing from the target", r.seq, srcTopic, r.partition, r.offset)
		case n > 1 && !atLeastOnce:
			fail("seq %d (source %s/%d offset %d) is in the target %d times", r.seq, srcTopic, r.partition, r.offset, n)
		}
	}
	if bad > 10 {
		t.Errorf("... %d problems in all", bad)
	}
}

// counterValue reads a counter (testutil.ToFloat64 without its extra module).
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatalf("reading counter: %v", err)
	}
	return m.GetCounter().GetValue()
}

func TestWorkerMirrorsExactlyOnceAndResumesFromCheckpoints(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 4)
	cfg := mirrorConfig(t, src, dst, "    tasks: 2\n")

	first := makeRecords(0, 2000, 4, nil)
	produce(t, src, first)
	m := metrics.New(prometheus.NewRegistry())
	w, stop := startWorker(t, cfg, m)
	waitTasks(t, w, 2000, 0)
	if st := w.Status(); len(st) != 2 || st[0].Partitions+st[1].Partitions != 4 {
		t.Errorf("tasks = %+v, want 2 sharing 4 partitions", st)
	}
	stop()
	checkMirrored(t, first, readCommitted(t, dst, dstTopic, 4), false)
	if got := counterValue(t, m.Records.WithLabelValues("eu", metrics.Replicated)); got != 2000 {
		t.Errorf("tributary_records_total{outcome=replicated} = %v, want 2000", got)
	}
	if t.Failed() {
		return
	}

	// A new worker (as after a restart) resumes from the checkpoints: the first
	// 2,000 records are not mirrored again.
	m2 := metrics.New(prometheus.NewRegistry())
	w2, stop2 := startWorker(t, cfg, m2)
	second := makeRecords(2000, 1000, 4, nil)
	produce(t, src, second)
	waitTasks(t, w2, 1000, 0)
	stop2()
	checkMirrored(t, append(first, second...), readCommitted(t, dst, dstTopic, 4), false)
	if got := counterValue(t, m2.Records.WithLabelValues("eu", metrics.Replicated)); got != 1000 {
		t.Errorf("after the restart tributary_records_total{outcome=replicated} = %v, want 1000", got)
	}
}

func TestWorkerSkipsRecordsThatCameFromItsTarget(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 2)
	cfg := mirrorConfig(t, src, dst, "")

	// Every third record came from the target (a cycle); every third came from a
	// third cluster and keeps that origin.
	recs := makeRecords(0, 300, 2, func(seq int) []kafka.Header {
		switch seq % 3 {
		case 0:
			return []kafka.Header{{Key: HeaderOrigin, Value: []byte(dstCluster)}}
		case 1:
			return []kafka.Header{{Key: HeaderOrigin, Value: []byte("us-east")}}
		}
		return nil
	})
	produce(t, src, recs)
	m := metrics.New(prometheus.NewRegistry())
	w, stop := startWorker(t, cfg, m)
	waitTasks(t, w, 200, 100)
	stop()

	var kept []*srcRecord
	for _, r := range recs {
		if r.seq%3 != 0 {
			kept = append(kept, r)
		}
	}
	got := readCommitted(t, dst, dstTopic, 2)
	for _, msg := range got {
		if o := headerValues(msg, HeaderOrigin); len(o) != 1 || o[0] == dstCluster {
			t.Errorf("target record %v has %s headers %q", msg.TopicPartition, HeaderOrigin, o)
		}
	}
	checkMirrored(t, kept, got, false)
	if v := counterValue(t, m.Records.WithLabelValues("eu", metrics.Skipped)); v != 100 {
		t.Errorf(`tributary_records_total{outcome="skipped"} = %v, want 100`, v)
	}
	if v := counterValue(t, m.Records.WithLabelValues("eu", metrics.Replicated)); v != 200 {
		t.Errorf(`tributary_records_total{outcome="replicated"} = %v, want 200`, v)
	}
}

func TestWorkerAtLeastOnceMirrorsEverythingAndResumes(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 4)
	cfg := mirrorConfig(t, src, dst, "    tasks: 2\n    exactly_once: false\n")

	first := makeRecords(0, 500, 4, nil)
	produce(t, src, first)
	w, stop := startWorker(t, cfg, metrics.New(prometheus.NewRegistry()))
	waitTasks(t, w, 500, 0)
	stop()
	checkMirrored(t, first, readCommitted(t, dst, dstTopic, 4), true)
	if t.Failed() {
		return
	}

	m2 := metrics.New(prometheus.NewRegistry())
	w2, stop2 := startWorker(t, cfg, m2)
	second := makeRecords(500, 200, 4, nil)
	produce(t, src, second)
	waitTasks(t, w2, 200, 0)
	stop2()
	got := readCommitted(t, dst, dstTopic, 4)
	checkMirrored(t, append(first, second...), got, true)
	// After a clean stop the checkpoints are exact: nothing is mirrored twice.
	if len(got) != 700 {
		t.Errorf("target holds %d records after the restart, want 700 (the restart did not resume from its checkpoints)", len(got))
	}
	if v := counterValue(t, m2.Records.WithLabelValues("eu", metrics.Replicated)); v != 200 {
		t.Errorf(`after the restart tributary_records_total{outcome="replicated"} = %v, want 200`, v)
	}
}

func TestWorkerStartLatestSkipsRecordsWrittenBeforeTheFirstStart(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 4)
	cfg := mirrorConfig(t, src, dst, "    tasks: 2\n    start: latest\n")

	produce(t, src, makeRecords(0, 100, 4, nil))
	w, stop := startWorker(t, cfg, metrics.New(prometheus.NewRegistry()))
	// librdkafka resolves "latest" after the assignment; the checkpoints at the
	// end offsets show it has.
	harness.Eventually(t, 30*time.Second, "checkpoints at the end of every partition", func() error {
		ckpts, err := loadCheckpoints(context.Background(), cfg.Kafka[dstCluster], dstCluster, "eu", 10*time.Second, nil)
		if err != nil {
			return err
		}
		for part := range int32(4) {
			if off, ok := ckpts[Partition{srcTopic, part}]; !ok || off != 25 {
				return fmt.Errorf("checkpoints %v, want offset 25 in each of 4 partitions", ckpts)
			}
		}
		return nil
	})
	later := makeRecords(100, 60, 4, nil)
	produce(t, src, later)
	waitTasks(t, w, 60, 0)
	stop()
	checkMirrored(t, later, readCommitted(t, dst, dstTopic, 4), false)
}

// An exactly-once task that has read everything its source delivered commits
// after a quarter of commit_interval instead of holding the records for the
// whole interval: with a 10 s interval, a lone record is committed long
// before the window it arrived in ends.
func TestWorkerCommitsEarlyOnceCaughtUp(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 1)
	cfg := mirrorConfig(t, src, dst, "    commit_interval: 10s\n    heartbeats: false\n")
	w, _ := startWorker(t, cfg, metrics.New(prometheus.NewRegistry()))
	harness.Eventually(t, 30*time.Second, "the task running", func() error {
		if st := w.Status(); len(st) != 1 || st[0].State != metrics.TaskRunning {
			return fmt.Errorf("tasks %+v", st)
		}
		return nil
	})
	// The task's first window has begun: with fixed windows the record
	// would wait for its end, 10 s after it began.
	start := time.Now()
	produce(t, src, makeRecords(0, 1, 1, nil))
	waitTasks(t, w, 1, 0)
	if el := time.Since(start); el > 7*time.Second {
		t.Errorf("a lone record was committed %v after it was written; want about commit_interval/4 (2.5s), well before the 10s window ends", el.Round(time.Millisecond))
	}
}
