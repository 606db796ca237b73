package replicator

import (
	"fmt"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// At-least-once without waiting per batch.
//
// An at-least-once task keeps polling and producing while the delivery
// reports of earlier records arrive. A partition's checkpoint moves only up to
// the offset of its oldest record not yet acknowledged (or past everything
// read when none is outstanding): a record and every record before it in its
// partition are in the target before a checkpoint passes it.
//
// Matching a report to its record relies on the order of the reports within a
// target partition, which the producer guarantees: it is idempotent
// (kafkaclient.IdempotentProducer: enable.idempotence, at most 5 requests in
// flight, acks=all), so librdkafka writes a partition's batches in order,
// retries them in order and emits their reports in the order of the produce
// responses, which one broker connection returns in request order. The Go
// client hands them on in that order as long as one goroutine polls the
// producer's queue: an at-least-once task therefore never calls
// Producer.Flush while mirroring (its eventPoll would race the client's own
// poller), and every report of the data path, sampled records included,
// arrives on the producer's Events channel (a record with a delivery channel
// of its own is only produced once nothing else is in flight). Two checks
// stand guard: successive reports of a partition must carry increasing target
// offsets, and a report must find a record in flight; either failing ends the
// session, which resumes from the checkpoints (duplicates, never a gap).
//
// A task's target partitions map one to one to its source partitions (the
// rename template must contain {topic}); txLoop.index keeps that map.

// inflight is a record produced and not yet acknowledged.
type inflight struct {
	off  int64 // source offset
	ts   int64 // source timestamp (ms), 0 if none
	size int32 // key and value bytes
}

// ackQueue is a partition's records in flight, oldest first: a ring buffer
// that grows by doubling and is reused, so a steady stream allocates nothing.
type ackQueue struct {
	buf  []inflight
	head int
	n    int
	// lastTarget is the target offset of the last acknowledged record, if
	// seen.
	lastTarget int64
	seen       bool
}

func (q *ackQueue) len() int { return q.n }

func (q *ackQueue) push(r inflight) {
	if q.n == len(q.buf) {
		nb := make([]inflight, max(2*len(q.buf), 64))
		for i := 0; i < q.n; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = r
	q.n++
}

// front returns the oldest record in flight; only when len() > 0.
func (q *ackQueue) front() inflight { return q.buf[q.head] }

func (q *ackQueue) pop() inflight {
	r := q.buf[q.head]
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return r
}

// ack matches a successful report at target offset to the oldest record in
// flight and returns it.
func (q *ackQueue) ack(target int64) (inflight, error) {
	if q.n == 0 {
		return inflight{}, fmt.Errorf("a delivery report at target offset %d without a record in flight", target)
	}
	if target >= 0 {
		if q.seen && target <= q.lastTarget {
			return inflight{}, fmt.Errorf("delivery reports out of order: target offset %d after %d", target, q.lastTarget)
		}
		q.lastTarget, q.seen = target, true
	}
	return q.pop(), nil
}

// safe is the partition's checkpoint as far as its records in flight allow:
// the offset of the oldest one, or pending (the next offset to read) when
// none is outstanding.
func (q *ackQueue) safe(pending int64) int64 {
	if q.n > 0 {
		return q.buf[q.head].off
	}
	return pending
}

// inbox hands the delivery reports from the producer's events goroutine to
// the transaction loop, which takes them at its commit points. Two slices
// swapped on take: a steady stream allocates nothing here.
type inbox struct {
	mu  sync.Mutex
	in  []*kafka.Message
	out []*kafka.Message
}

func (b *inbox) add(m *kafka.Message) {
	b.mu.Lock()
	b.in = append(b.in, m)
	b.mu.Unlock()
}

// take returns the reports added since the last take; the slice is valid
// until the next take.
func (b *inbox) take() []*kafka.Message {
	clear(b.out) // the previous take's messages can be collected
	b.mu.Lock()
	b.in, b.out = b.out[:0], b.in
	b.mu.Unlock()
	return b.out
}
