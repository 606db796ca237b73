package test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/test/harness"
)

// deleteTopic deletes a topic and waits until the cluster no longer lists it.
func deleteTopic(t testing.TB, bootstrap, topic string) {
	t.Helper()
	deleteTopicAsync(t, bootstrap, topic)
	harness.Eventually(t, 30*time.Second, "topic "+topic+" gone", func() error {
		if _, err := partitionCount(bootstrap, topic); err == nil {
			return fmt.Errorf("still listed")
		}
		return nil
	})
}

// deleteTopicAsync deletes a topic without waiting for the metadata to show
// it gone (tributary may create it again first).
func deleteTopicAsync(t testing.TB, bootstrap, topic string) {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.DeleteTopics(ctx, []string{topic})
	if err != nil {
		t.Fatalf("deleting topic %s: %v", topic, err)
	}
	if c := res[0].Error.Code(); c != kafka.ErrNoError {
		t.Fatalf("deleting topic %s: %v", topic, res[0].Error)
	}
}

// recreateTopicNow deletes a topic and creates it again as soon as the
// cluster lets it, without waiting for either to show in the metadata.
func recreateTopicNow(t testing.TB, bootstrap, topic string, partitions int) {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.DeleteTopics(ctx, []string{topic})
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("deleting topic %s: %v %v", topic, err, res)
	}
	harness.Eventually(t, 30*time.Second, "topic "+topic+" created again", func() error {
		res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}})
		if err != nil {
			return err
		}
		if c := res[0].Error.Code(); c != kafka.ErrNoError {
			return res[0].Error // the deletion still in progress
		}
		return nil
	})
}

// produceSeq writes records seq from..to-1 of one partition and flushes.
func produceSeq(t testing.TB, p *producer, topic string, part int32, from, to int, base time.Time) {
	t.Helper()
	for i := from; i < to; i++ {
		for {
			err := p.Produce(sourceRecord(topic, part, i, base), nil)
			if err == nil {
				break
			}
			if e, ok := err.(kafka.Error); ok && e.Code() == kafka.ErrQueueFull {
				p.Flush(100)
				continue
			}
			t.Fatalf("producing: %v", err)
		}
	}
	flush(t, p)
}

// originOffsets returns the tributary-origin-offset header of each record.
func originOffsets(t testing.TB, recs []targetRecord) []int {
	t.Helper()
	out := make([]int, len(recs))
	for i, r := range recs {
		h, _ := header(r.Headers, "tributary-origin-offset")
		n, err := strconv.Atoi(string(h))
		if err != nil {
			t.Fatalf("target record %d: tributary-origin-offset %q", i, h)
		}
		out[i] = n
	}
	return out
}

// checkRuns checks that offs is exactly the runs 0..n-1 for each n in runs, in
// order: every generation of a source topic landed once, none skipped.
func checkRuns(t testing.TB, offs []int, runs ...int) {
	t.Helper()
	var want []int
	for _, n := range runs {
		for i := 0; i < n; i++ {
			want = append(want, i)
		}
	}
	if len(offs) != len(want) {
		t.Errorf("%d records in the target, want %d (runs %v)", len(offs), len(want), runs)
	}
	for i := range min(len(offs), len(want)) {
		if offs[i] != want[i] {
			t.Errorf("target record %d is source offset %d, want %d (runs %v; duplicate, gap or reorder)", i, offs[i], want[i], runs)
			return
		}
	}
}

// TestSourceTopicDeletedAndCreatedAgain deletes a mirrored source topic while
// another topic of the same task keeps flowing: the task drops the deleted
// topic's partitions (log, lag series gone) without restarting, and the
// other topic loses nothing. The topic is then created again with fewer
// records (300) than the old one had (1,000): the old checkpoint (1,000) must
// not apply to it, so all 300 land. Then once more, deleted and created again
// at once with 150 records, before the pipeline's refresh could see it gone;
// and once more while the node is down (100 records).
func TestSourceTopicDeletedAndCreatedAgain(t *testing.T) {
	source, target := harness.Brokers(t)
	gone := harness.UniqueName(t, "gone")
	steady := harness.UniqueName(t, "steady")
	createTopic(t, source, gone, 1, nil)
	createTopic(t, source, steady, 2, nil)
	name := harness.UniqueName(t, "topics")
	cfg, httpAddr := writeConfig(t, source, target, fmt.Sprintf(`  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s', '%s']}
    tasks: 1
    refresh_interval: 1s
`, name, gone, steady))
	base := recentBase()
	p := newProducer(t, source)
	produceSeq(t, p, gone, 0, 0, 1000, base)

	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)
	dstGone, dstSteady := "regional."+gone, "regional."+steady
	if got := originOffsets(t, readAll(t, target, dstGone, 1000, time.Minute)[0]); len(got) != 1000 {
		t.Fatalf("%d records of the first topic mirrored, want 1000", len(got))
	}

	// The other topic flows the whole time: 10 records every 50 ms into each
	// of its 2 partitions.
	var stop atomic.Bool
	var wg sync.WaitGroup
	steadySeq := map[int32]int{}
	sp := newProducer(t, source)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			for part := int32(0); part < 2; part++ {
				for range 10 {
					if err := sp.Produce(sourceRecord(steady, part, steadySeq[part], base), nil); err != nil {
						t.Errorf("producing to %s: %v", steady, err)
						return
					}
					steadySeq[part]++
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	lagSeries := `tributary_replication_lag_records{partition="0",pipeline="` + name + `",topic="` + gone + `"}`
	if !strings.Contains(d.metrics(), lagSeries) {
		t.Fatalf("no lag series %s before the deletion", lagSeries)
	}
	deleteTopic(t, source, gone)
	harness.Eventually(t, 30*time.Second, "the deletion noticed", func() error {
		out := d.output()
		for _, want := range []string{"source topic deleted", "dropping the partitions of a source topic that was deleted"} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("log lacks %q", want)
			}
		}
		if strings.Contains(d.metrics(), lagSeries) {
			return fmt.Errorf("lag series of the deleted topic still exported")
		}
		return nil
	})
	// Created again, with fewer records than the old checkpoint (1,000).
	createTopic(t, source, gone, 1, nil)
	produceSeq(t, p, gone, 0, 0, 300, base.Add(time.Minute))
	got := readAll(t, target, dstGone, 1300, time.Minute)
	checkRuns(t, originOffsets(t, got[0]), 1000, 300)
	if !strings.Contains(d.output(), "ignoring the checkpoint of an earlier source topic") &&
		!strings.Contains(d.output(), "source topic was deleted and created again") {
		t.Errorf("the re-created topic was not reported")
	}

	// Deleted and created again at once (within one refresh interval), 150
	// records: the pipeline sees a new topic id, or the task an offset past
	// the new end; either way the new topic is read from its beginning.
	recreateTopicNow(t, source, gone, 1)
	produceSeq(t, p, gone, 0, 0, 150, base.Add(2*time.Minute))
	got = readAll(t, target, dstGone, 1450, time.Minute)
	checkRuns(t, originOffsets(t, got[0]), 1000, 300, 150)

	stop.Store(true)
	wg.Wait()
	flush(t, sp)
	total := steadySeq[0] + steadySeq[1]
	gotSteady := readAll(t, target, dstSteady, total, time.Minute)
	verifyExactlyOnce(t, gotSteady, map[int32]int{0: steadySeq[0], 1: steadySeq[1]}, steady, "regional", base, true)

	m := d.metrics()
	if v, ok := metricValue(m, `tributary_task_restarts_total{pipeline="`+name+`"}`); !ok || v != 0 {
		t.Errorf("task restarts = %v (found %v), want 0: a deleted source topic must not restart the task", v, ok)
	}
	if t.Failed() {
		t.Fatalf("node log (tail):\n%s", d.tail(16384))
	}

	// Created again while the node is down, with fewer records (100) than
	// the checkpoint (150): the checkpoint read at start-up carries the old
	// topic's id, so the new topic is read from its beginning.
	if err, _ := d.stop(); err != nil {
		t.Fatal(err)
	}
	recreateTopicNow(t, source, gone, 1)
	produceSeq(t, p, gone, 0, 0, 100, base.Add(3*time.Minute))
	d2 := startDaemon(t, cfg, httpAddr)
	d2.waitReady(60 * time.Second)
	got = readAll(t, target, dstGone, 1550, time.Minute)
	checkRuns(t, originOffsets(t, got[0]), 1000, 300, 150, 100)
	if !strings.Contains(d2.output(), "ignoring the checkpoint of an earlier source topic") {
		t.Errorf("the stale checkpoint was not reported after the restart")
	}
	if t.Failed() {
		t.Logf("node log after the restart (tail):\n%s", d2.tail(16384))
	}
}

// TestTargetTopicDeletedWhileMirrored deletes the target topic under a
// running stream: the pipeline creates it again with the source's partitions
// and settings, says so loudly (error log, metric), and the stream resumes
// exactly once: every record produced after the re-creation is in the new
// topic once, in order, after a contiguous run from the checkpoint. The
// refresh_interval is the default 30 s: the failing tasks ask for a refresh
// sooner.
func TestTargetTopicDeletedWhileMirrored(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "tgtgone")
	const parts = 3
	createTopic(t, source, topic, parts, map[string]string{"retention.ms": "259200000", "max.message.bytes": "2097152"})
	name := harness.UniqueName(t, "tgtgone")
	cfg, httpAddr := writeConfig(t, source, target, fmt.Sprintf(`  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    tasks: 2
    refresh_interval: 30s
`, name, topic))
	base := recentBase()
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)
	dst := "regional." + topic
	recreated := `tributary_target_topics_recreated_total{pipeline="` + name + `",topic="` + dst + `"}`
	harness.Eventually(t, 30*time.Second, "the recreation counter at 0", func() error {
		if v, ok := metricValue(d.metrics(), recreated); !ok || v != 0 {
			return fmt.Errorf("%s = %v (present %v), want 0", recreated, v, ok)
		}
		return nil
	})

	var mu sync.Mutex
	seq := map[int32]int{}
	var stop atomic.Bool
	var wg sync.WaitGroup
	p := newProducer(t, source)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			mu.Lock()
			for part := int32(0); part < parts; part++ {
				for range 10 {
					if err := p.Produce(sourceRecord(topic, part, seq[part], base), nil); err != nil {
						t.Errorf("producing: %v", err)
						mu.Unlock()
						return
					}
					seq[part]++
				}
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	readAll(t, target, dst, 300, time.Minute)

	deletedAt := time.Now()
	deleteTopicAsync(t, target, dst)
	harness.Eventually(t, 60*time.Second, "the target topic created again", func() error {
		if v, ok := metricValue(d.metrics(), recreated); !ok || v != 1 {
			return fmt.Errorf("%s = %v, want 1", recreated, v)
		}
		if _, err := partitionCount(target, dst); err != nil {
			return err
		}
		return nil
	})
	t.Logf("target topic created again %.1f s after its deletion", time.Since(deletedAt).Seconds())
	// Records produced from here on were produced after the re-creation.
	mu.Lock()
	after := map[int32]int{}
	for part, n := range seq {
		after[part] = n
	}
	mu.Unlock()
	if n, err := partitionCount(target, dst); err != nil || n != parts {
		t.Errorf("re-created target has %d partitions (%v), want %d", n, err, parts)
	}
	tc := topicConfig(t, target, dst)
	for k, v := range map[string]string{"retention.ms": "259200000", "max.message.bytes": "2097152"} {
		if tc[k] != v {
			t.Errorf("re-created target topic: %s = %q, want the source's %q", k, tc[k], v)
		}
	}
	if !strings.Contains(d.output(), "target topic was deleted while mirrored") {
		t.Errorf("the re-creation was not logged as an error")
	}
	time.Sleep(2 * time.Second) // a little more stream after the re-creation
	stop.Store(true)
	wg.Wait()
	flush(t, p)

	// The new topic holds, per partition, a contiguous run of source offsets
	// ending at the last record produced: whatever the checkpoint was when
	// the topic went, nothing after it is missing or doubled.
	total := 0
	for part := int32(0); part < parts; part++ {
		total += seq[part] - after[part]
	}
	got := readAll(t, target, dst, total, time.Minute)
	// readAll stops at total; read on until every partition reached its end.
	harness.Eventually(t, time.Minute, "every record in the re-created topic", func() error {
		for part := int32(0); part < parts; part++ {
			offs := originOffsets(t, got[part])
			if len(offs) == 0 || offs[len(offs)-1] != seq[part]-1 {
				got = readAll(t, target, dst, 1<<30, 3*time.Second)
				return fmt.Errorf("partition %d not at its end yet", part)
			}
		}
		return nil
	})
	for part := int32(0); part < parts; part++ {
		offs := originOffsets(t, got[part])
		if len(offs) == 0 {
			t.Errorf("partition %d: nothing in the re-created topic", part)
			continue
		}
		first := offs[0]
		if first > after[part] {
			t.Errorf("partition %d: the re-created topic starts at source offset %d, after %d, the first record produced after the re-creation", part, first, after[part])
		}
		for i, o := range offs {
			if o != first+i {
				t.Errorf("partition %d: target record %d is source offset %d, want %d (duplicate, gap or reorder)", part, i, o, first+i)
				break
			}
		}
		if last := offs[len(offs)-1]; last != seq[part]-1 {
			t.Errorf("partition %d: last record is source offset %d, want %d", part, last, seq[part]-1)
		}
		t.Logf("partition %d: re-created topic holds source offsets %d..%d (%d produced after the re-creation from %d)", part, first, offs[len(offs)-1], seq[part]-after[part], after[part])
	}
	restarts, _ := metricValue(d.metrics(), `tributary_task_restarts_total{pipeline="`+name+`"}`)
	t.Logf("task restarts: %v", restarts)
	if t.Failed() {
		t.Logf("node log (tail):\n%s", d.tail(16384))
	}
}
