package pubsubbridge

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Sink writes records to the target Kafka cluster; the bridge never produces to
// Kafka itself. It is meant to be implemented with one confluent-kafka-go
// idempotent producer (enable.idempotence=true, acks=all: replicator.Sink is the one the daemon uses)
// and its delivery reports: Produce enqueues every message with one delivery channel and reads
// len(msgs) reports from it.
//
// The bridge calls Produce from up to BridgeConfig.ProduceConcurrency goroutines
// at once, each call with a batch of up to BatchMaxMessages records gathered
// from many receive callbacks, so Produce must be safe for concurrent use.
// On a subscription with message ordering, records of one ordering key are
// never in two calls at the same time: the next is handed over only after the
// previous one's delivery report.
//
// Produce returns when every record has its final delivery report, or when ctx
// is done. It returns nil when all records were written, else one error per
// record (errs[i] for msgs[i], nil when written). A record without a report
// when ctx is done must get an error: the bridge acks a Pub/Sub message only
// when its record's error is nil, so an unknown outcome means a redelivery (a
// possible duplicate), never a loss. Errors that wrap ErrTooLarge, or are a
// kafka.Error with code kafka.ErrMsgSizeTooLarge, quarantine the message; any
// other error is retried (RetryTimeout), then the message is nacked.
//
// TopicPartition.Partition is set by the bridge (Kafka's murmur2 partitioner on
// the key, sticky for null keys) when the Sink is also a PartitionCounter, and
// must be kept; kafka.PartitionAny (quarantine records, or no PartitionCounter)
// leaves the choice to the producer, which should then use librdkafka's
// partitioner=murmur2_random to place keys as Java clients do. Produce must not
// keep msgs after it returns.
type Sink interface {
	Produce(ctx context.Context, msgs []*kafka.Message) []error
}

// PartitionCounter is an optional ability of a Sink: the number of partitions
// of a target topic (a metadata request). With it the bridge partitions records
// itself. It is called before the first message is received (retried until it
// succeeds) and every PartitionRefresh after, from one goroutine; an error
// keeps the previous count.
type PartitionCounter interface {
	Partitions(ctx context.Context, topic string) (int, error)
}

// produceReq is one record waiting in the batcher. done receives its outcome
// exactly once; it is buffered so that an abandoned request never blocks.
type produceReq struct {
	msg       *kafka.Message
	sticky    bool   // null key: gets the batch's sticky partition
	id        string // Pub/Sub message id, for late successes
	done      chan error
	abandoned atomic.Bool // the requester stopped waiting (shutdown)
}

// batcher gathers produce requests from the receive callbacks into Sink.Produce
// calls: it waits for a free slot, takes what is queued (lingering up to
// linger for more), and hands the batch to a goroutine. While all slots are
// busy requests accumulate, so batches grow with load and shrink to one record
// when idle.
type batcher struct {
	sink     Sink
	in       chan *produceReq
	slots    chan struct{}
	maxBatch int
	linger   time.Duration
	parts    atomic.Int32 // target partitions; 0: unknown (PartitionAny)
	sticky   atomic.Uint32
	late     func(id string) // a write whose requester gave up
	wg       sync.WaitGroup
}

func newBatcher(sink Sink, queue, maxBatch, concurrency int, linger time.Duration, late func(string)) *batcher {
	return &batcher{
		sink:     sink,
		in:       make(chan *produceReq, queue),
		slots:    make(chan struct{}, concurrency),
		maxBatch: maxBatch,
		linger:   linger,
		late:     late,
	}
}

// partition returns the partition of a record with this key, or PartitionAny
// and sticky for a null key (or while the partition count is unknown).
func (b *batcher) partition(key []byte) (int32, bool) {
	n := b.parts.Load()
	if n <= 0 {
		return kafka.PartitionAny, false
	}
	if key == nil {
		return kafka.PartitionAny, true
	}
	return keyPartition(key, n), false
}

// run batches until ctx is done, then waits for the Produce calls it started.
// Callers stop submitting before ctx is cancelled.
func (b *batcher) run(ctx context.Context) {
	defer b.wg.Wait()
	var timer *time.Timer
	for {
		select {
		case b.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var batch []*produceReq
		select {
		case r := <-b.in:
			batch = append(make([]*produceReq, 0, 16), r)
		case <-ctx.Done():
			<-b.slots
			return
		}
	drain:
		for len(batch) < b.maxBatch {
			select {
			case r := <-b.in:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if len(batch) < b.maxBatch && b.linger > 0 {
			if timer == nil {
				timer = time.NewTimer(b.linger)
			} else {
				timer.Reset(b.linger)
			}
		linger:
			for len(batch) < b.maxBatch {
				select {
				case r := <-b.in:
					batch = append(batch, r)
				case <-timer.C:
					break linger
				}
			}
			timer.Stop()
		}
		b.wg.Add(1)
		go b.produce(ctx, batch)
	}
}

func (b *batcher) produce(ctx context.Context, batch []*produceReq) {
	defer b.wg.Done()
	defer func() { <-b.slots }()
	msgs := make([]*kafka.Message, len(batch))
	var sticky int32 = -1
	for i, r := range batch {
		if r.sticky {
			if sticky < 0 {
				// Kafka's sticky partitioner: all null-key records of a batch go to
				// one partition, the next batch to the next one.
				if n := b.parts.Load(); n > 0 {
					sticky = int32(b.sticky.Add(1) % uint32(n))
				} else {
					sticky = kafka.PartitionAny
				}
			}
			r.msg.TopicPartition.Partition = sticky
		}
		msgs[i] = r.msg
	}
	errs := b.sink.Produce(ctx, msgs)
	if errs != nil && len(errs) != len(msgs) {
		err := fmt.Errorf("sink returned %d results for %d records", len(errs), len(msgs))
		errs = make([]error, len(msgs))
		for i := range errs {
			errs[i] = err
		}
	}
	for i, r := range batch {
		var err error
		if errs != nil {
			err = errs[i]
		}
		r.done <- err
		if err == nil && r.abandoned.Load() && b.late != nil {
			b.late(r.id)
		}
	}
}
