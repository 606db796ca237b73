package replicator

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// OffsetSyncTopic is the compacted topic in the target that holds, per source
// partition, a sparse history of (source offset, target offset) pairs of
// mirrored records: the newest one and older ones spaced out exponentially
// (see syncHistory). TranslateGroup starts its search for a consumer group's
// position at the newest of them below the group's offset.
//
// Versions before the sparse history wrote every sync under one key per
// partition to this topic with cleanup.policy=delete (7 days). The pipeline
// switches an existing topic to compact (ensureOffsetSyncTopic); their records
// keep being read (legacy key, same JSON value), and compaction leaves the
// newest of them per partition.
const OffsetSyncTopic = "_tributary.offset-syncs"

const (
	// syncSlots is how many syncs a partition's history keeps: slot k >= 1
	// holds one at most about 2^k·offset_sync_interval older than the newest
	// (at 1s, slot 19 reaches back about 6 days; the last slot keeps the
	// oldest one it has ever been offered).
	syncSlots = 20
	// offsetSyncSegment is the topic's segment.ms: the cleaner compacts only
	// rolled segments, so the live head stays about an hour of syncs.
	offsetSyncSegment = time.Hour
	// offsetSyncSegmentBytes is the topic's segment.bytes (a rolled segment
	// is compacted; 16 MiB holds ~100k syncs).
	offsetSyncSegmentBytes = 16 << 20
	// maxSamples bounds the sampled records whose delivery reports are
	// outstanding (the capacity of their channel, which librdkafka's poller
	// must never block on).
	maxSamples = 1024
	// sampleTimeout is how long a sample may wait for its delivery report
	// before it is dropped and its partition sampled again.
	sampleTimeout = 30 * time.Second
)

// offsetSync is the value of a sync record. The key is
// "<pipeline>/<source cluster>/<source topic>/<partition>/<slot>" (none of
// the names contains '/'; older versions wrote it without "/<slot>"). Source
// holds the record at SourceOffset, the target topic (TargetTopic, same
// partition) holds it at TargetOffset, committed. At is when the record was
// sampled (unix ms; 0 in syncs of older versions).
type offsetSync struct {
	V            int    `json:"v"`
	SourceOffset int64  `json:"source_offset"`
	TargetTopic  string `json:"target_topic"`
	TargetOffset int64  `json:"target_offset"`
	At           int64  `json:"at,omitempty"`
	Task         string `json:"task"` // which task wrote it, for humans
}

// offsetSyncPrefix is the part of the key that names the source partition.
func offsetSyncPrefix(pipeline, source string, p Partition) string {
	return pipeline + "/" + source + "/" + p.Topic + "/" + strconv.Itoa(int(p.Partition))
}

// offsetSyncKey is the key of one slot of a partition's history.
func offsetSyncKey(pipeline, source string, p Partition, slot int) []byte {
	return []byte(offsetSyncPrefix(pipeline, source, p) + "/" + strconv.Itoa(slot))
}

// offsetSyncPartition returns the partition prefix of a sync key: the key
// itself for the one-key-per-partition keys of older versions (three '/'),
// the key without its slot for the history's (four).
func offsetSyncPartition(key []byte) (string, bool) {
	k := string(key)
	switch strings.Count(k, "/") {
	case 3:
		return k, true
	case 4:
		i := strings.LastIndexByte(k, '/')
		if _, err := strconv.Atoi(k[i+1:]); err != nil {
			return "", false
		}
		return k[:i], true
	}
	return "", false
}

func encodeOffsetSync(s offsetSync) []byte {
	b, _ := json.Marshal(s)
	return b
}

func decodeOffsetSync(b []byte) (offsetSync, bool) {
	var s offsetSync
	if err := json.Unmarshal(b, &s); err != nil || s.V < 1 || s.SourceOffset < 0 || s.TargetOffset < 0 {
		return offsetSync{}, false
	}
	return s, true
}

// syncHistory is one source partition's sparse history of syncs, newest
// first: slot 0 is the newest sync, and slot k >= 1 the oldest of the known
// syncs that is at most every·2^k older than it and older than slot k-1's
// (when none is that young, the youngest older one, so an idle partition
// keeps its history). Ages are measured between sample times, so a partition
// that idles keeps its spacing; source and target offsets strictly decrease
// along the slots. The last slot keeps the oldest sync offered.
//
// The idea is MirrorMaker 2's OffsetSyncStore (exponentially spaced syncs,
// there in memory, keyed by offset distance); here it is persisted, one
// compacted key per slot, so the topic holds O(partitions × syncSlots)
// live records, and spaced by time. Exactness does not depend on it: any
// true sync below a group's offset is a valid start for the lineage scan; the
// spacing only bounds how far that scan reads (about the age of the group's
// offset, at worst twice it).
type syncHistory [syncSlots]offsetSync

// add takes a new sync and returns the slots that changed (to be written).
// A sync whose offsets go back (a source topic created again, or a target
// topic; an at-least-once task re-sending) starts the history afresh: every
// slot gets it, so no older slot in the store names the earlier topic.
func (h *syncHistory) add(s offsetSync, every time.Duration) []int {
	old := *h
	if n := old[0]; n.V != 0 && (s.SourceOffset < n.SourceOffset || s.TargetOffset < n.TargetOffset || s.TargetTopic != n.TargetTopic) {
		// Every slot, also those empty in memory: the store may hold
		// older syncs there.
		changed := make([]int, syncSlots)
		for k := range h {
			changed[k] = k
			h[k] = s
		}
		return changed
	}
	cands := make([]offsetSync, 0, syncSlots)
	for _, c := range old {
		if c.V != 0 {
			cands = append(cands, c)
		}
	}
	// Newest first; a history read back from the store (where an aborted
	// write may have left a slot behind) need not be in order.
	slices.SortStableFunc(cands, func(a, b offsetSync) int { return cmp.Compare(b.SourceOffset, a.SourceOffset) })
	var next syncHistory
	next[0] = s
	prev := s
	for k := 1; k < syncSlots; k++ {
		bound := (every << k).Milliseconds()
		pick := -1
		for i, c := range cands {
			if c.SourceOffset >= prev.SourceOffset || c.TargetOffset >= prev.TargetOffset {
				continue // not older than the slot before
			}
			if k == syncSlots-1 || s.At-c.At <= bound {
				pick = i // the oldest young enough (cands are newest first)
				continue
			}
			if pick < 0 {
				pick = i // none young enough: the youngest older one
			}
			break
		}
		if pick < 0 {
			break
		}
		next[k], prev = cands[pick], cands[pick]
	}
	var changed []int
	for k := range next {
		// An emptied slot is left as it is in the store: it holds a sync
		// that a lower slot holds now, still true.
		if next[k].V != 0 && next[k] != old[k] {
			changed = append(changed, k)
		}
	}
	*h = next
	return changed
}

// ensureOffsetSyncTopic creates _tributary.offset-syncs in the target when
// missing: one partition (one order, small records), compacted. A topic
// created by an older version (cleanup.policy=delete) is switched to compact;
// when that fails (no right to alter topic configs, say) it is logged and the
// topic is used as it is: its retention still bounds it, and readers read it
// whole as before.
func ensureOffsetSyncTopic(ctx context.Context, admin *kafka.AdminClient, md *kafka.Metadata, log *slog.Logger) error {
	want := map[string]string{
		"cleanup.policy": "compact",
		"segment.ms":     strconv.FormatInt(offsetSyncSegment.Milliseconds(), 10),
		"segment.bytes":  strconv.Itoa(offsetSyncSegmentBytes),
	}
	if t, ok := md.Topics[OffsetSyncTopic]; ok && t.Error.Code() == kafka.ErrNoError {
		if err := compactOffsetSyncs(ctx, admin, want); err != nil {
			log.Warn("could not switch "+OffsetSyncTopic+" to cleanup.policy=compact; it keeps growing up to its retention", "err", err)
		}
		return nil
	}
	return createTopic(ctx, admin, kafka.TopicSpecification{
		Topic: OffsetSyncTopic, NumPartitions: 1, ReplicationFactor: -1, Config: want,
	})
}

// compactOffsetSyncs sets the compacted topic's settings on an existing
// offset-syncs topic whose cleanup.policy is not compact.
func compactOffsetSyncs(ctx context.Context, admin *kafka.AdminClient, want map[string]string) error {
	res, err := describeTopicConfigs(ctx, admin, []string{OffsetSyncTopic})
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("describing %s: %w", OffsetSyncTopic, r.Error)
		}
		if e, ok := r.Config["cleanup.policy"]; ok && e.Value == "compact" {
			return nil
		}
	}
	var entries []kafka.ConfigEntry
	for k, v := range want {
		entries = append(entries, kafka.ConfigEntry{Name: k, Value: v, IncrementalOperation: kafka.AlterConfigOpTypeSet})
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := admin.IncrementalAlterConfigs(cctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: OffsetSyncTopic, Config: entries}})
	if err != nil {
		return fmt.Errorf("altering the configs of %s: %w", OffsetSyncTopic, err)
	}
	for _, r := range out {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("altering the configs of %s: %w", OffsetSyncTopic, r.Error)
		}
	}
	return nil
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
