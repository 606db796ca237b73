package replicator

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/test/harness"
)

func TestAckQueueOrderAndGrowth(t *testing.T) {
	var q ackQueue
	if got := q.safe(7); got != 7 {
		t.Fatalf("safe of an empty queue = %d, want pending 7", got)
	}
	// Grow across the ring's wrap-around.
	next := int64(0)
	for round := 0; round < 3; round++ {
		for i := 0; i < 100; i++ {
			q.push(inflight{off: next + int64(i)})
		}
		for i := 0; i < 60; i++ {
			r, err := q.ack(int64(round*1000 + i))
			if err != nil {
				t.Fatal(err)
			}
			if r.off != next {
				t.Fatalf("acked offset %d, want %d (oldest first)", r.off, next)
			}
			next++
		}
		next += 40 // the rest are still in flight
		if got, want := q.safe(1<<40), next-40; got != want && round == 0 {
			t.Fatalf("safe = %d, want the oldest in flight %d", got, want)
		}
		for q.len() > 0 {
			q.pop()
		}
	}
	if _, err := q.ack(5); err == nil || !strings.Contains(err.Error(), "without a record in flight") {
		t.Errorf("a report with nothing in flight: err = %v, want an error", err)
	}
	q.push(inflight{off: 1})
	q.push(inflight{off: 2})
	if _, err := q.ack(int64(2*1000 + 59)); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("a report at a target offset below the previous one: err = %v, want out of order", err)
	}
}

// ackLoop is a txLoop in at-least-once mode over two source partitions of
// "orders" (target "eu-west.orders"), with a real producer to a kfake target
// that holds the checkpoint topic: the reports of the data records are made
// up by the test, the checkpoints are really written and read back.
type ackLoop struct {
	*txLoop
	dst  string
	p0   *partState
	p1   *partState
	wait func(t *testing.T) // until every checkpoint written is reported
}

func newAckLoop(t *testing.T) *ackLoop {
	t.Helper()
	dst := harness.KFake(t, kfake.SeedTopics(1, CheckpointTopic))
	p := testPipeline(t, "eu", 1)
	prod, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": dst, "enable.idempotence": true, "linger.ms": 0,
		"go.delivery.report.fields": "none", "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	reports, delivered := collectReports(t, prod)
	target := "eu-west.orders"
	mk := func(part int32, at int64) *partState {
		return &partState{src: Partition{"orders", part}, target: &target, next: at, pending: at, lastWritten: at}
	}
	task := p.Task(0)
	l := &txLoop{t: task, prod: prod, eos: false, reports: reports, delivered: delivered,
		sampler: newSampler(time.Second), quarantinedCtr: p.deps.Metrics.Records.WithLabelValues("eu", "quarantined")}
	a := &ackLoop{txLoop: l, dst: dst, p0: mk(0, 10), p1: mk(1, 20)}
	l.parts = map[Partition]*partState{a.p0.src: a.p0, a.p1.src: a.p1}
	l.index()
	a.wait = func(t *testing.T) {
		t.Helper()
		harness.Eventually(t, 10*time.Second, "checkpoint reports", func() error {
			if n := delivered.Load(); n < l.produced {
				return context.DeadlineExceeded
			}
			return nil
		})
	}
	return a
}

// read simulates reading and producing records from..to-1 of ps.
func (a *ackLoop) read(ps *partState, from, to int64) {
	for off := from; off < to; off++ {
		ps.acks.push(inflight{off: off, ts: time.Now().UnixMilli(), size: 10})
	}
	ps.pending = to
	a.inTxn = true
}

// report makes up the delivery report of the next record of ps.
func (a *ackLoop) report(ps *partState, target int64, err error) {
	a.reports.add(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: ps.target, Partition: ps.src.Partition, Offset: kafka.Offset(target), Error: err}})
}

// checkpoints reads the checkpoints written, per source partition in order.
func (a *ackLoop) checkpoints(t *testing.T) map[int32][]int64 {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": a.dst, "group.id": "t", "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := CheckpointTopic
	_, hi, err := c.QueryWatermarkOffsets(topic, 0, 5000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32][]int64{}
	if hi == 0 {
		return out
	}
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}); err != nil {
		t.Fatal(err)
	}
	for n := int64(0); n < hi; {
		m, err := c.ReadMessage(5 * time.Second)
		if err != nil {
			t.Fatalf("reading checkpoints: %v", err)
		}
		n = int64(m.TopicPartition.Offset) + 1
		cp, err := decodeCheckpoint(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		part := int32(0)
		if strings.HasSuffix(string(m.Key), "/1") {
			part = 1
		}
		out[part] = append(out[part], cp.Offset)
	}
	return out
}

// TestAtLeastOnceCheckpointAdvance checks the rule of pipelined at-least-once
// (acks.go): a partition's checkpoint moves up to its oldest record in
// flight, never past it, never after a failed report, and a report out of
// order ends the session.
func TestAtLeastOnceCheckpointAdvance(t *testing.T) {
	ctx := context.Background()
	a := newAckLoop(t)
	a.read(a.p0, 10, 15) // offsets 10..14 in flight
	a.read(a.p1, 20, 23) // 20..22
	// The first two of p0 and one of p1 are acknowledged.
	a.report(a.p0, 100, nil)
	a.report(a.p1, 500, nil)
	a.report(a.p0, 101, nil)
	if err := a.commitBatch(ctx); err != nil {
		t.Fatalf("commitBatch: %v", err)
	}
	a.wait(t)
	if err := a.drainAcks(); err != nil { // the checkpoints' own reports
		t.Fatalf("drainAcks: %v", err)
	}
	if got, want := a.p0.next, int64(12); got != want {
		t.Errorf("p0 committed %d, want %d (its oldest record in flight)", got, want)
	}
	if got, want := a.p1.next, int64(21); got != want {
		t.Errorf("p1 committed %d, want %d", got, want)
	}
	if got := a.t.replicated.Load(); got != 3 {
		t.Errorf("replicated = %d, want the 3 acknowledged records", got)
	}

	// A failed report in p1, with p0's last ones acknowledged in the same
	// take: the commit fails and no checkpoint moves at all.
	a.report(a.p0, 102, nil)
	a.report(a.p1, -1, kafka.NewError(kafka.ErrMsgTimedOut, "timed out", false))
	a.report(a.p0, 103, nil)
	a.report(a.p0, 104, nil)
	err := a.commitBatch(ctx)
	if err == nil || kafkaCode(err) != kafka.ErrMsgTimedOut || !strings.Contains(err.Error(), "1 records not delivered") {
		t.Fatalf("commitBatch after a failed report = %v, want the delivery error", err)
	}
	if a.p0.next != 12 || a.p1.next != 21 {
		t.Errorf("after a failed report the checkpoints moved: p0 %d, p1 %d, want 12, 21", a.p0.next, a.p1.next)
	}
	a.wait(t)
	got := a.checkpoints(t)
	if want := []int64{12}; !slices.Equal(got[0], want) {
		t.Errorf("checkpoints written for p0: %v, want %v", got[0], want)
	}
	if want := []int64{21}; !slices.Equal(got[1], want) {
		t.Errorf("checkpoints written for p1: %v, want %v", got[1], want)
	}
}

func TestAtLeastOnceReportsOutOfOrderEndTheSession(t *testing.T) {
	a := newAckLoop(t)
	a.read(a.p0, 10, 13)
	a.report(a.p0, 101, nil)
	a.report(a.p0, 100, nil) // below the previous one: the order the match relies on is broken
	err := a.commitBatch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("commitBatch = %v, want an out-of-order error", err)
	}
	if a.p0.next != 10 {
		t.Errorf("checkpoint moved to %d after reports out of order, want 10", a.p0.next)
	}
	// A report for a partition with nothing in flight is refused too.
	b := newAckLoop(t)
	b.report(b.p1, 7, nil)
	if err := b.drainAcks(); err == nil || !strings.Contains(err.Error(), "without a record in flight") {
		t.Errorf("drainAcks = %v, want an error for a report without a record", err)
	}
}

// TestAtLeastOnceSampledReportsKeepTheirPlace checks that the report of a
// sampled record (offset sync) acknowledges its record in order and reaches
// the sampler.
func TestAtLeastOnceSampledReportsKeepTheirPlace(t *testing.T) {
	a := newAckLoop(t)
	a.read(a.p0, 10, 12)
	smp := a.sampler.take(a.p0, 10, time.Now())
	if smp == nil {
		t.Fatal("no sample taken")
	}
	a.reports.add(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: a.p0.target, Partition: 0, Offset: 300}, Opaque: smp})
	if err := a.drainAcks(); err != nil {
		t.Fatal(err)
	}
	if !smp.reported || smp.target != 300 {
		t.Errorf("sample reported=%v target=%d, want true, 300", smp.reported, smp.target)
	}
	if got := a.p0.acks.safe(a.p0.pending); got != 11 {
		t.Errorf("safe checkpoint = %d, want 11", got)
	}
}

// collectReports reads prod's events as the task's events goroutine does: its
// delivery reports go to the returned inbox and are counted. prod is closed
// at cleanup.
func collectReports(tb testing.TB, prod *kafka.Producer) (*inbox, *atomic.Int64) {
	reports, delivered := &inbox{}, &atomic.Int64{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range prod.Events() {
			if m, ok := ev.(*kafka.Message); ok {
				reports.add(m)
				delivered.Add(1)
			}
		}
	}()
	tb.Cleanup(func() { prod.Close(); wg.Wait() })
	return reports, delivered
}
