package replicator

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// OffsetSyncTopic is the topic in the target that receives, at most once per
// offset_sync_interval and source partition, a pair (source offset, target
// offset) of one mirrored record, as MirrorMaker 2's offset-syncs topic does.
// TranslateGroup starts its search for a consumer group's position there.
const OffsetSyncTopic = "_tributary.offset-syncs"

const (
	// offsetSyncRetention is the sync topic's retention.ms: a consumer group
	// idle for longer than that is translated by a scan from the log start.
	offsetSyncRetention = 7 * 24 * time.Hour
	// maxSamples bounds the sampled records whose delivery reports are
	// outstanding (the capacity of their channel, which librdkafka's poller
	// must never block on).
	maxSamples = 1024
	// sampleTimeout is how long a sample may wait for its delivery report
	// before it is dropped and its partition sampled again.
	sampleTimeout = 30 * time.Second
)

// offsetSync is the value of a sync record. The key is
// "<pipeline>/<source cluster>/<source topic>/<partition>" (none of the names
// contains '/'). Source holds the record at SourceOffset, the target topic
// (TargetTopic, same partition) holds it at TargetOffset, committed.
type offsetSync struct {
	V            int    `json:"v"`
	SourceOffset int64  `json:"source_offset"`
	TargetTopic  string `json:"target_topic"`
	TargetOffset int64  `json:"target_offset"`
	Task         string `json:"task"` // which task wrote it, for humans
}

func offsetSyncKey(pipeline, source string, p Partition) []byte {
	return []byte(pipeline + "/" + source + "/" + p.Topic + "/" + strconv.Itoa(int(p.Partition)))
}

func encodeOffsetSync(task string, s *syncSample) []byte {
	b, _ := json.Marshal(offsetSync{V: 1, SourceOffset: s.source, TargetTopic: *s.ps.target, TargetOffset: s.target, Task: task})
	return b
}

func decodeOffsetSync(b []byte) (offsetSync, bool) {
	var s offsetSync
	if err := json.Unmarshal(b, &s); err != nil || s.V < 1 || s.SourceOffset < 0 || s.TargetOffset < 0 {
		return offsetSync{}, false
	}
	return s, true
}

// ensureOffsetSyncTopic creates _tributary.offset-syncs in the target when
// missing: one partition (one order, small records), deleted after 7 days.
func ensureOffsetSyncTopic(ctx context.Context, admin *kafka.AdminClient, md *kafka.Metadata) error {
	if t, ok := md.Topics[OffsetSyncTopic]; ok && t.Error.Code() == kafka.ErrNoError {
		return nil
	}
	return createTopic(ctx, admin, kafka.TopicSpecification{
		Topic: OffsetSyncTopic, NumPartitions: 1, ReplicationFactor: -1,
		Config: map[string]string{
			"cleanup.policy": "delete",
			"retention.ms":   strconv.FormatInt(offsetSyncRetention.Milliseconds(), 10),
		},
	})
}

// syncSample is one sampled record: produced with a delivery channel so that
// its target offset is learnt, and written as a sync once the transaction
// holding it has committed and the report has arrived.
//
// Why only the first record a transaction sends to a target partition: with
// go.delivery.reports=false, confluent-kafka-go (v2.11.1, kafka/event.go)
// walks a delivery-report event's messages in order and stops at the first
// one without a per-message channel, so a sampled record behind unsampled
// ones in the same produce batch would never get its report. The commit (or,
// at-least-once, the flush) before a transaction empties every partition's
// queue, so the first record sent to a partition afterwards heads its batch
// and its report is always delivered. No other record carries a channel or
// an opaque, so the hot path stays free of per-record reports.
type syncSample struct {
	ps        *partState
	source    int64 // source offset of the record
	target    int64 // target offset, from the delivery report
	at        time.Time
	reported  bool // the delivery report arrived (target is set)
	failed    bool // the delivery failed, or the sample timed out
	dropped   bool // timed out before its report came
	committed bool // the transaction holding the record committed
}

// sampler picks the records whose target offsets are written to the offset
// sync topic: per partition at most one per interval, each the first record
// of a transaction in its partition.
type sampler struct {
	every time.Duration
	ch    chan kafka.Event // delivery reports of sampled records
	open  []*syncSample    // sampled in the open transaction
	done  []*syncSample    // committed; waiting for their report, or to be written
	out   int              // samples whose report has not arrived
}

func newSampler(every time.Duration) *sampler {
	if every <= 0 {
		every = time.Second
	}
	return &sampler{every: every, ch: make(chan kafka.Event, maxSamples)}
}

// take decides whether the record at source offset off, the first one of the
// open transaction for its partition, is sampled; it returns the delivery
// channel and the sample to pass as Opaque, or nil.
func (s *sampler) take(ps *partState, off int64, now time.Time) *syncSample {
	if ps.sampling || now.Before(ps.syncDue) || s.out >= maxSamples {
		return nil
	}
	ps.sampling = true
	ps.syncDue = now.Add(s.every)
	smp := &syncSample{ps: ps, source: off, at: now}
	s.open = append(s.open, smp)
	s.out++
	return smp
}

// drain takes the delivery reports that have arrived, without waiting.
func (s *sampler) drain() {
	for {
		select {
		case ev := <-s.ch:
			if m, ok := ev.(*kafka.Message); ok {
				s.handle(m)
			}
		default:
			return
		}
	}
}

// handle takes the delivery report of a sampled record: from the sampler's
// channel (exactly once) or from the transaction loop (at least once, where
// the reports of sampled records come in order with the others).
func (s *sampler) handle(m *kafka.Message) {
	smp, ok := m.Opaque.(*syncSample)
	if !ok || smp.reported || smp.dropped {
		return
	}
	smp.reported = true
	s.out--
	if m.TopicPartition.Error != nil || m.TopicPartition.Offset < 0 {
		smp.failed = true
	} else {
		smp.target = int64(m.TopicPartition.Offset)
	}
}

// committed moves the open transaction's samples to done.
func (s *sampler) committed() {
	for _, smp := range s.open {
		smp.committed = true
	}
	s.done = append(s.done, s.open...)
	s.open = s.open[:0]
}

// ready returns the samples that can be written now and forgets them (and
// those that failed or timed out), freeing their partitions for new samples.
func (s *sampler) ready(now time.Time) []*syncSample {
	var out []*syncSample
	kept := s.done[:0]
	for _, smp := range s.done {
		switch {
		case smp.reported && !smp.failed:
			out = append(out, smp)
			smp.ps.sampling = false
		case smp.failed:
			smp.ps.sampling = false
		case now.Sub(smp.at) > sampleTimeout:
			// A report that never came: drop it (a late one is ignored).
			smp.failed, smp.dropped = true, true
			smp.ps.sampling = false
			s.out--
		default:
			kept = append(kept, smp)
		}
	}
	for i := len(kept); i < len(s.done); i++ {
		s.done[i] = nil
	}
	s.done = kept
	return out
}

// pending reports whether samples wait to be written.
func (s *sampler) pending() bool { return len(s.done) > 0 }
