package replicator

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/kafkaclient"
)

// Checkpoint records are keyed "<pipeline>/<topic>/<partition>" (topic names never
// contain '/', pipeline names are [A-Za-z0-9._-]), so the checkpoint of a partition
// survives a change of the pipeline's task count, and compaction keeps one per key.
// The value is JSON so operators can read it with any console consumer.
//
// TopicID is the source topic's id (Kafka's topic UUID, base64 as Kafka's tools
// print it) when the task knew it. A topic deleted and re-created under the same
// name gets a new id, and its offsets start again at 0: a checkpoint of the old
// topic must not be applied to the new one, or its first records would be
// skipped. Checkpoints written before the field existed (or where the source
// gave no id) decode with an empty TopicID and are trusted as before. The field
// is additive, so "v" stays 1 and older nodes read these values unchanged.
type checkpoint struct {
	V       int    `json:"v"`
	Offset  int64  `json:"offset"`             // next source offset to mirror
	Task    string `json:"task"`               // which task wrote it, for humans
	TopicID string `json:"topic_id,omitempty"` // the source topic's id, when known
}

// decodeCheckpoint parses a checkpoint value, old (without topic_id) or new.
func decodeCheckpoint(b []byte) (checkpoint, error) {
	var cp checkpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		return checkpoint{}, err
	}
	if cp.V < 1 {
		return checkpoint{}, fmt.Errorf("checkpoint %.100q has no format version (\"v\" from 1)", b)
	}
	if cp.Offset < 0 {
		return checkpoint{}, fmt.Errorf("checkpoint %.100q has a negative offset", b)
	}
	return cp, nil
}

// checkpointDecision is what a task does with a partition's checkpoint.
type checkpointDecision int

const (
	// useCheckpoint: resume at the checkpoint.
	useCheckpoint checkpointDecision = iota
	// noCheckpoint: there is none; the partition starts where a new one does.
	noCheckpoint
	// staleCheckpoint: the checkpoint belongs to an earlier topic of the same
	// name (its topic id differs from the topic's now): ignore it and read the
	// new topic from its beginning.
	staleCheckpoint
)

// decideCheckpoint compares a partition's checkpoint (ok: one exists) with the
// source topic's current id ("" when unknown). Only two known, different ids
// make a checkpoint stale: without an id on either side nothing tells the
// topics apart, and the checkpoint is used as it always was (a checkpoint
// beyond the new topic's end is then caught by the out-of-range handling).
func decideCheckpoint(cp checkpoint, ok bool, currentID string) checkpointDecision {
	switch {
	case !ok:
		return noCheckpoint
	case cp.TopicID != "" && currentID != "" && cp.TopicID != currentID:
		return staleCheckpoint
	}
	return useCheckpoint
}

func checkpointKey(pipeline string, p Partition) []byte {
	return []byte(pipeline + "/" + p.Topic + "/" + strconv.Itoa(int(p.Partition)))
}

// parseCheckpointKey is the inverse of checkpointKey for one pipeline.
func parseCheckpointKey(pipeline string, key []byte) (Partition, bool) {
	k := string(key)
	if !strings.HasPrefix(k, pipeline+"/") {
		return Partition{}, false
	}
	rest := k[len(pipeline)+1:]
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return Partition{}, false
	}
	n, err := strconv.ParseInt(rest[i+1:], 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != rest[i+1:] {
		return Partition{}, false // only the form checkpointKey writes: not "+1" nor "01"
	}
	return Partition{Topic: rest[:i], Partition: int32(n)}, true
}

func encodeCheckpoint(task string, offset int64, topicID string) []byte {
	b, _ := json.Marshal(checkpoint{V: 1, Offset: offset, Task: task, TopicID: topicID})
	return b
}

// loadCheckpoints reads every committed checkpoint offset of a pipeline from
// the target (see loadCheckpointRecords).
func loadCheckpoints(ctx context.Context, target *config.Kafka, targetName, pipeline string, timeout time.Duration, logs *kafkaclient.Logs) (map[Partition]int64, error) {
	recs, err := loadCheckpointRecords(ctx, target, targetName, pipeline, timeout, logs)
	if err != nil {
		return nil, err
	}
	out := make(map[Partition]int64, len(recs))
	for p, cp := range recs {
		out[p] = cp.Offset
	}
	return out, nil
}

// loadCheckpointRecords reads every committed checkpoint of a pipeline from the target.
//
// A read_committed consumer stops at the last stable offset, which another task's
// open transaction can hold back; reading only to there could miss this task's own
// newest checkpoint and replay records. So it first takes the high watermark (read
// uncommitted) after InitTransactions has settled this task's own transaction, and
// reads until the committed view has passed it: other tasks' transactions end
// within commit_interval, a crashed one within transaction.timeout.ms.
//
// logs receives the clients' log and override warnings; nil leaves librdkafka's
// log on stderr and warns of nothing.
func loadCheckpointRecords(ctx context.Context, target *config.Kafka, targetName, pipeline string, timeout time.Duration, logs *kafkaclient.Logs) (map[Partition]checkpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	clientID := "tributary-" + pipeline + "-checkpoints"
	acm, over := kafkaclient.Config(target, kafkaclient.Admin, nil, kafkaclient.Tuning{"client.id": clientID})
	logs.WarnOverridden(targetName, kafkaclient.Admin, over)
	admin, err := kafkaclient.NewAdmin(acm, logs)
	if err != nil {
		return nil, fmt.Errorf("creating admin client for checkpoints: %w", err)
	}
	defer admin.Close()
	topic := CheckpointTopic
	md, err := admin.GetMetadata(&topic, false, int(timeout/time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("reading metadata of %s: %w", CheckpointTopic, err)
	}
	tm, ok := md.Topics[CheckpointTopic]
	if !ok || tm.Error.Code() == kafka.ErrUnknownTopicOrPart {
		return map[Partition]checkpoint{}, nil // nothing checkpointed yet
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return nil, fmt.Errorf("reading metadata of %s: %w", CheckpointTopic, tm.Error)
	}
	req := map[kafka.TopicPartition]kafka.OffsetSpec{}
	for _, p := range tm.Partitions {
		req[kafka.TopicPartition{Topic: &topic, Partition: p.ID}] = kafka.LatestOffsetSpec
	}
	lo, err := admin.ListOffsets(ctx, req, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadUncommitted))
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %s: %w", CheckpointTopic, err)
	}
	end := map[int32]int64{}
	for tp, info := range lo.ResultInfos {
		if info.Error.Code() != kafka.ErrNoError {
			return nil, fmt.Errorf("listing end offset of %s/%d: %w", CheckpointTopic, tp.Partition, info.Error)
		}
		if info.Offset > 0 {
			end[tp.Partition] = int64(info.Offset)
		}
	}
	out := map[Partition]checkpoint{}
	if len(end) == 0 {
		return out, nil
	}

	// The Consumer role reads read_committed, which this reader depends on.
	ccm, over := kafkaclient.Config(target, kafkaclient.Consumer, kafkaclient.Required{
		"group.id":                 "tributary-checkpoint-reader", // required by librdkafka; never joined or committed
		"enable.partition.eof":     true,
		"auto.offset.reset":        "earliest",
		"allow.auto.create.topics": false,
	}, kafkaclient.Tuning{
		"client.id":              clientID,
		"fetch.queue.backoff.ms": 10,
	})
	logs.WarnOverridden(targetName, kafkaclient.Consumer, over)
	c, err := kafka.NewConsumer(logs.Attach(ccm))
	if err != nil {
		return nil, fmt.Errorf("creating checkpoint consumer: %w", err)
	}
	defer c.Close()
	var tps []kafka.TopicPartition
	for p := range end {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.OffsetBeginning})
	}
	if err := c.Assign(tps); err != nil {
		return nil, fmt.Errorf("assigning %s: %w", CheckpointTopic, err)
	}
	pending := len(end)
	done := map[int32]bool{}
	mark := func(p int32, next int64) {
		if !done[p] && next >= end[p] {
			done[p] = true
			pending--
		}
	}
	for pending > 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: committed data did not reach the end offsets %v in time (an open transaction of another task?): %w", CheckpointTopic, end, err)
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if pt, ok := parseCheckpointKey(pipeline, ev.Key); ok {
				if ev.Value == nil {
					delete(out, pt)
				} else {
					cp, err := decodeCheckpoint(ev.Value)
					if err != nil {
						return nil, fmt.Errorf("%s partition %d offset %d: bad checkpoint for %s: %w", CheckpointTopic, ev.TopicPartition.Partition, ev.TopicPartition.Offset, pt, err)
					}
					out[pt] = cp
				}
			}
			mark(ev.TopicPartition.Partition, int64(ev.TopicPartition.Offset)+1)
		case kafka.PartitionEOF:
			mark(ev.Partition, int64(ev.Offset))
		case kafka.Error:
			if ev.IsFatal() {
				return nil, fmt.Errorf("reading %s: %w", CheckpointTopic, ev)
			}
		case nil:
			// Aborted batches and control records are skipped silently; the
			// position still moves past them.
			pos, err := c.Position(tps)
			if err == nil {
				for _, tp := range pos {
					if tp.Offset >= 0 {
						mark(tp.Partition, int64(tp.Offset))
					}
				}
			}
		}
	}
	return out, nil
}
