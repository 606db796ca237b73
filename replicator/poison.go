package replicator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Quarantine reasons of the produce path (README, "Poison records"). Besides
// these, records are quarantined with the reasons of schema governance and
// policies.
const (
	// ReasonTooLarge: the record, with the headers tributary adds, is larger
	// than its target topic's max.message.bytes (or the target said so for the
	// record alone).
	ReasonTooLarge = "too-large"
	// ReasonProduceRejected: the target refused the record alone with a
	// permanent error (permanentProduceErrors), or would (a record without a
	// key for a compacted topic).
	ReasonProduceRejected = "produce-rejected"
)

// permanentProduceErrors are the produce errors that name the record (or its
// batch), not the path to the broker: retrying the same bytes fails again, for
// ever, so a task that only restarts would stall its partition. librdkafka
// retries everything else itself or fails the transaction with a retriable
// error, and the task retries from its checkpoints as before.
//
// CORRUPT_MESSAGE is left out on purpose: Kafka treats it as retriable (a CRC
// mismatch is usually the network), and librdkafka retries it.
var permanentProduceErrors = map[kafka.ErrorCode]bool{
	kafka.ErrMsgSizeTooLarge:    true, // the record batch exceeds max.message.bytes (or, client-side, message.max.bytes)
	kafka.ErrRecordListTooLarge: true, // the batch exceeds the topic's segment size
	kafka.ErrInvalidMsgSize:     true, // librdkafka: a message size the protocol cannot carry
	kafka.ErrInvalidRecord:      true, // the broker's record validation (a null key for a compacted topic...)
	kafka.ErrInvalidTimestamp:   true, // outside the topic's message.timestamp.{before,after}.max.ms
	// KIP-467: another record of the same batch was invalid; this one fails
	// with it and is itself fine.
	kafka.ErrInvalidDifferentRecord: true,
}

// sizeErrors are the permanent errors that are about size: a batch that only
// exceeds a limit tributary had not read yet (it was lowered) goes through
// once batches are sized to the new limit.
func isSizeError(c kafka.ErrorCode) bool {
	return c == kafka.ErrMsgSizeTooLarge || c == kafka.ErrRecordListTooLarge || c == kafka.ErrInvalidMsgSize
}

// Record batch framing (Kafka's DefaultRecordBatch, magic 2), counted with the
// largest varints so that the estimate never undercounts.
const (
	batchHeaderBytes = 61 // base offset .. record count
	// recordFixedBytes: length (varint, 5) + attributes (1) + timestamp delta
	// (varlong, 10) + offset delta (5) + key length (5) + value length (5) +
	// header count (5).
	recordFixedBytes = 5 + 1 + 10 + 5 + 5 + 5 + 5
	headerFixedBytes = 5 + 5 // key length + value length
)

// recordBatchSize is the size of a record batch holding m alone, as the broker
// measures it against max.message.bytes, uncompressed (compression only helps,
// beyond compressionSlack).
func recordBatchSize(m *kafka.Message) int {
	n := batchHeaderBytes + recordFixedBytes + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += headerFixedBytes + len(h.Key) + len(h.Value)
	}
	return n
}

// compressionSlack is what compression framing may add to n bytes that do not
// compress (lz4 and zstd frame headers, gzip and snappy block headers, a few
// bytes per 32 KiB at most).
func compressionSlack(n int) int { return 512 + n/1024 }

// fitsLimit reports whether a batch of size bytes fits max.message.bytes
// limit; an unknown limit (0) fits anything.
func fitsLimit(size, limit int) bool {
	return limit <= 0 || size+compressionSlack(size) <= limit
}

// defaultBatchSize is librdkafka's batch.size default.
const defaultBatchSize = 1_000_000

// minBatchSize keeps batch.size useful when a limit is tiny.
const minBatchSize = 1024

// producerBatchSize returns the batch.size of a producer that writes to topics
// whose smallest max.message.bytes is limit (0: unknown), given the user's
// batch.size (0: not set). librdkafka closes a batch before a record would
// take it past batch.size, counting the framing, but never splits a batch the
// broker refuses: every batch must fit every topic the producer writes to. A
// single record larger than batch.size still goes alone in its batch; the
// task checks those against their own topic's limit before producing.
func producerBatchSize(limit, user int) int {
	b := defaultBatchSize
	if user > 0 {
		b = user
	}
	if limit > 0 {
		b = min(b, max(limit-compressionSlack(limit), minBatchSize))
	}
	return b
}

// userBatchSize is the batch.size the user's properties set, 0 when none.
func userBatchSize(props map[string]string) int {
	if v, ok := props["batch.size"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// topicLimits holds what the target brokers enforce on the topics a
// pipeline's producers write to: the effective max.message.bytes (the topic's
// override, or the broker's message.max.bytes default, as DescribeConfigs
// reports it) and whether the topic is compacted. A version counts changes.
type topicLimits struct {
	ver       uint64
	maxBytes  map[string]int
	compacted map[string]bool
}

// of returns topic's max.message.bytes, 0 when unknown.
func (l topicLimits) of(topic string) int { return l.maxBytes[topic] }

// min returns the smallest known limit, 0 when none is known.
func (l topicLimits) min() int {
	m := 0
	for _, n := range l.maxBytes {
		if m == 0 || n < m {
			m = n
		}
	}
	return m
}

// limitTable is a pipeline's topicLimits, read from the target on every
// topic refresh (and sooner when a task asks, after a size error).
type limitTable struct {
	mu   sync.Mutex
	cur  topicLimits
	poke chan struct{} // buffered: a task wants a refresh now
}

func newLimitTable() *limitTable { return &limitTable{poke: make(chan struct{}, 1)} }

func (t *limitTable) snapshot() topicLimits {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

// ask requests a refresh of the limits without waiting for it.
func (t *limitTable) ask() {
	select {
	case t.poke <- struct{}{}:
	default:
	}
}

// readLimits describes the target topics of ready (source topic → partitions)
// and the internal topics the tasks write to in the same transactions, and
// stores their limits. Topics the target does not describe keep their last
// limits. unknown are the target topics of ready that the target does not
// know yet (just created, and its brokers not all told) and whose limits are
// not known: not to be mirrored before they are. described holds the
// configs read, by topic (nil when describing failed), for the topic config
// sync (topicconfig.go), so that the target is described once per refresh.
func (p *Pipeline) readLimits(ctx context.Context, tgtAdmin *kafka.AdminClient, ready map[string]int) (unknown map[string]bool, described map[string]kafka.ConfigResourceResult, err error) {
	topics := []string{CheckpointTopic}
	if p.syncsReady.Load() {
		topics = append(topics, OffsetSyncTopic)
	}
	for src := range ready {
		topics = append(topics, p.cfg.TargetTopic(src))
	}
	slices.Sort(topics)
	described, err = describeByName(ctx, tgtAdmin, topics)
	if err != nil {
		return nil, nil, fmt.Errorf("describing target topics of %s (max.message.bytes): %w", p.targetName, err)
	}
	old := p.limits.snapshot()
	next := topicLimits{ver: old.ver, maxBytes: maps.Clone(old.maxBytes), compacted: maps.Clone(old.compacted)}
	if next.maxBytes == nil {
		next.maxBytes, next.compacted = map[string]int{}, map[string]bool{}
	}
	var errs []string
	for _, r := range described {
		if r.Error.Code() != kafka.ErrNoError {
			if _, known := next.maxBytes[r.Name]; !known && r.Error.Code() == kafka.ErrUnknownTopicOrPart {
				if unknown == nil {
					unknown = map[string]bool{}
				}
				unknown[r.Name] = true
				continue
			}
			errs = append(errs, r.Name+": "+r.Error.Error())
			continue
		}
		if e, ok := r.Config["max.message.bytes"]; ok {
			if n, err := strconv.Atoi(e.Value); err == nil && n > 0 {
				if was, ok := next.maxBytes[r.Name]; !ok {
					p.log.Debug("target topic limit", "topic", r.Name, "max_message_bytes", n)
				} else if was != n {
					p.log.Info("target topic limit changed", "topic", r.Name, "max_message_bytes", n, "previous", was)
				}
				next.maxBytes[r.Name] = n
			}
		}
		if e, ok := r.Config["cleanup.policy"]; ok {
			next.compacted[r.Name] = strings.Contains(e.Value, "compact")
		}
	}
	if !maps.Equal(next.maxBytes, old.maxBytes) || !maps.Equal(next.compacted, old.compacted) {
		next.ver++
		p.limits.mu.Lock()
		p.limits.cur = next
		p.limits.mu.Unlock()
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		return unknown, described, fmt.Errorf("describing target topics of %s (max.message.bytes): %s", p.targetName, strings.Join(errs, "; "))
	}
	return unknown, described, nil
}

// poison is what a task remembers across its sessions about records the
// target refused with a permanent error. In exactly-once mode a refused
// record fails its whole transaction, and the delivery reports that would
// name it are off (they cost CPU on every record), so the task learns which
// records were in the failed batch (suspects) and, when it reads them again,
// produces each alone in a transaction of its own: the one that fails alone
// is the culprit, quarantined on the next pass. At-least-once mode does the
// same with a flush per suspect. Order and exactly-once hold: every record
// before a suspect commits before it, and nothing after it is read past the
// checkpoint until it is settled.
type poison struct {
	code kafka.ErrorCode
	// suspects are, per source partition, the offsets [from, to) of the
	// failed batch; from is -1 when the batch began without a checkpoint.
	suspects map[Partition][2]int64
	// culprits are the records that failed alone: source offset → the
	// target's error, quarantined when read again.
	culprits map[Partition]map[int64]culprit
}

type culprit struct {
	reason string
	msg    string
}

// suspect reports whether offset off of sp is to be produced alone.
func (p *poison) suspect(sp Partition, off int64) bool {
	r, ok := p.suspects[sp]
	return ok && (r[0] < 0 || off >= r[0]) && off < r[1]
}

// settled drops the suspects a partition has committed past, and reports
// whether nothing is left.
func (p *poison) settled(sp Partition, next int64) bool {
	if r, ok := p.suspects[sp]; ok && next >= r[1] {
		delete(p.suspects, sp)
		delete(p.culprits, sp)
	}
	return len(p.suspects) == 0 && len(p.culprits) == 0
}

// culpritReason names the quarantine reason and message of a record the
// target refused alone with err.
func culpritReason(topic string, err error) culprit {
	reason := ReasonProduceRejected
	if isSizeError(kafkaCode(err)) {
		reason = ReasonTooLarge
	}
	// The broker's words, without the task's wrapping.
	var ke kafka.Error
	if errors.As(err, &ke) {
		err = ke
	}
	return culprit{reason: reason, msg: fmt.Sprintf("target topic %s refused the record: %v", topic, err)}
}
