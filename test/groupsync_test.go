package test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/test/harness"
)

// groupOffsets returns a consumer group's committed offsets for one topic.
func groupOffsets(t *testing.T, bootstrap, group, topic string) map[int32]int64 {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group}})
	if err != nil {
		t.Fatalf("reading the offsets of group %s: %v", group, err)
	}
	out := map[int32]int64{}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Topic != nil && *tp.Topic == topic && tp.Error == nil && tp.Offset >= 0 {
				out[tp.Partition] = int64(tp.Offset)
			}
		}
	}
	return out
}

// commitAt commits offsets for a group (without members) through the admin API.
func commitAt(t *testing.T, bootstrap, group, topic string, offsets map[int32]int64) {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var tps []kafka.TopicPartition
	for p, off := range offsets {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(off)})
	}
	res, err := admin.AlterConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: tps}})
	if err != nil {
		t.Fatalf("committing offsets of group %s: %v", group, err)
	}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Error != nil {
				t.Fatalf("committing %s/%d for group %s: %v", topic, tp.Partition, group, tp.Error)
			}
		}
	}
}

// checkResumesAt checks that a consumer of the target starting at off reads
// source offsets from..end-1 of the partition, each once.
func checkResumesAt(t *testing.T, target, dst string, part int32, off, from, end int64) {
	t.Helper()
	want := from
	for _, m := range readFrom(t, target, dst, part, off) {
		h, _ := header(m.Headers, "tributary-origin-offset")
		got, err := strconv.ParseInt(string(h), 10, 64)
		if err != nil || got != want {
			t.Errorf("partition %d from target offset %d: record at %d is source offset %q, want %d (read twice or skipped)", part, off, m.TopicPartition.Offset, h, want)
			return
		}
		want++
	}
	if want != end {
		t.Errorf("partition %d from target offset %d: read source offsets %d..%d, want %d..%d", part, off, from, want-1, from, end-1)
	}
}

// TestGroupOffsetSyncFollowsIdleSourceGroups runs a pipeline with groups
// selected and a 1 s interval: a source group that commits and leaves gets
// its exact translated offsets in the target within seconds and follows
// when it moves on; a group with a member in the target, a group whose target
// offset is ahead, an excluded group, and offsets beyond what is mirrored
// are left alone.
func TestGroupOffsetSyncFollowsIdleSourceGroups(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "groupsync")
	const parts, perPart = 2, 200
	createTopic(t, source, topic, parts, nil)
	base := harness.UniqueName(t, "app")
	cfg, httpAddr := writeConfig(t, source, target, fmt.Sprintf(`  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    refresh_interval: 1s
    commit_interval: 50ms
    offset_sync_interval: 100ms
    groups: {include: ['%s-.*'], exclude: ['%s-skip'], interval: 1s}
`, topic, topic, base, base))
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)

	// In rounds while the node runs: many transactions, whose markers shift
	// the target offsets away from the source's.
	rec := recentBase()
	p := newProducer(t, source)
	for i := 0; i < parts*perPart; i++ {
		if err := p.Produce(sourceRecord(topic, int32(i%parts), i/parts, rec), nil); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			flush(t, p)
			time.Sleep(80 * time.Millisecond)
		}
	}
	flush(t, p)
	dst := "regional." + topic
	readAll(t, target, dst, parts*perPart, time.Minute)

	// Set up the groups that must be left alone first, so that the round
	// that syncs the moved group below has seen all of them.
	active, ahead, skip, partial := base+"-active", base+"-ahead", base+"-skip", base+"-partial"
	c := joinGroup(t, target, active, dst, 30*time.Second)
	defer c.Close()
	commitAt(t, source, active, topic, map[int32]int64{0: 50, 1: 50})
	commitAt(t, target, ahead, dst, map[int32]int64{0: 5000})
	commitAt(t, source, ahead, topic, map[int32]int64{0: 20})
	commitAt(t, source, skip, topic, map[int32]int64{0: 30})
	commitAt(t, source, partial, topic, map[int32]int64{0: 10_000, 1: 60}) // 10,000 is far past the end

	// A group consumes, commits and leaves the source.
	moved := base + "-moved"
	consumed := map[int32]int{0: 37, 1: 150}
	for part, n := range consumed {
		consumeAndCommit(t, source, moved, topic, part, n)
	}
	start := time.Now()
	var got map[int32]int64
	harness.Eventually(t, 20*time.Second, "the group's offsets in the target", func() error {
		got = groupOffsets(t, target, moved, dst)
		if len(got) != parts {
			return fmt.Errorf("offsets %v", got)
		}
		return nil
	})
	t.Logf("synced in %s: %v", time.Since(start).Round(100*time.Millisecond), got)
	for part, n := range consumed {
		checkResumesAt(t, target, dst, part, got[part], int64(n), perPart)
	}

	// It moves on in the source: the target follows.
	consumeAndCommit(t, source, moved, topic, 0, 120)
	before := got[0]
	harness.Eventually(t, 20*time.Second, "the target following the group", func() error {
		got = groupOffsets(t, target, moved, dst)
		if got[0] == before {
			return fmt.Errorf("offsets %v", got)
		}
		return nil
	})
	checkResumesAt(t, target, dst, 0, got[0], 120, perPart)

	// The partition mirrored up to its offset is synced, the other is not.
	harness.Eventually(t, 20*time.Second, "the mirrored partition of the partial group", func() error {
		if g := groupOffsets(t, target, partial, dst); len(g) == 0 {
			return fmt.Errorf("offsets %v", g)
		}
		return nil
	})
	if g := groupOffsets(t, target, partial, dst); len(g) != 1 || g[1] == 0 {
		t.Errorf("partial group in the target: %v, want partition 1 only (partition 0's offset is past what is mirrored)", g)
	} else {
		checkResumesAt(t, target, dst, 1, g[1], 60, perPart)
	}
	if g := groupOffsets(t, target, active, dst); len(g) != 0 {
		t.Errorf("group with an active member in the target was given offsets %v", g)
	}
	if g := groupOffsets(t, target, ahead, dst); g[0] != 5000 {
		t.Errorf("group ahead in the target was moved to %v, want it left at 5000", g)
	}
	if g := groupOffsets(t, target, skip, dst); len(g) != 0 {
		t.Errorf("excluded group was given offsets %v", g)
	}

	body, err := httpBody("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := metricValue(body, `tributary_group_offsets_synced_total{pipeline="`+topic+`"}`); !ok || n < 4 {
		t.Errorf("tributary_group_offsets_synced_total = %v (%v), want >= 4", n, ok)
	}
	if age, ok := metricValue(body, `tributary_group_offset_sync_age_seconds{pipeline="`+topic+`"}`); !ok || age > 5 {
		t.Errorf("tributary_group_offset_sync_age_seconds = %v (%v), want < 5", age, ok)
	}
	if n, ok := metricValue(body, `tributary_group_offset_sync_errors_total{pipeline="`+topic+`"}`); !ok || n != 0 {
		t.Errorf("tributary_group_offset_sync_errors_total = %v (%v), want 0", n, ok)
	}
}
