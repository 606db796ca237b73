package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/replicator/metrics"
)

// originOffsets maps each target record of a topic to its source offset (the
// lineage header), per partition and target offset.
func originOffsets(t *testing.T, msgs []*kafka.Message) map[int32]map[int64]int64 {
	t.Helper()
	out := map[int32]map[int64]int64{}
	for _, m := range msgs {
		vs := headerValues(m, HeaderOriginOffset)
		if len(vs) != 1 {
			t.Fatalf("target record %v has %d %s headers", m.TopicPartition, len(vs), HeaderOriginOffset)
		}
		n, _ := strconv.ParseInt(vs[0], 10, 64)
		p := m.TopicPartition.Partition
		if out[p] == nil {
			out[p] = map[int64]int64{}
		}
		out[p][int64(m.TopicPartition.Offset)] = n
	}
	return out
}

// produceSlowly writes the records in rounds, so that the mirror commits many
// transactions and takes many samples.
func produceSlowly(t *testing.T, bootstrap string, recs []*srcRecord, rounds int) {
	t.Helper()
	per := (len(recs) + rounds - 1) / rounds
	for i := 0; i < len(recs); i += per {
		produce(t, bootstrap, recs[i:min(i+per, len(recs))])
		time.Sleep(30 * time.Millisecond)
	}
}

func TestOffsetSyncsNameCommittedRecords(t *testing.T) {
	for _, eos := range []bool{true, false} {
		t.Run(fmt.Sprintf("exactly_once=%v", eos), func(t *testing.T) {
			t.Parallel()
			src, dst := kfakePair(t, 4)
			cfg := mirrorConfig(t, src, dst, fmt.Sprintf("    tasks: 2\n    exactly_once: %v\n    offset_sync_interval: 10ms\n    commit_interval: 20ms\n    heartbeats: false\n", eos))
			w, stop := startWorker(t, cfg, metrics.New(prometheus.NewRegistry()))
			recs := makeRecords(0, 2000, 4, nil)
			produceSlowly(t, src, recs, 20)
			waitTasks(t, w, 2000, 0)
			// The syncs of the last transactions are written with the next one.
			time.Sleep(500 * time.Millisecond)
			stop()

			origin := originOffsets(t, readCommitted(t, dst, dstTopic, 4))
			syncs := readCommitted(t, dst, OffsetSyncTopic, 1)
			// Keys are looked up as TranslateGroup does (readSyncIndex).
			byKey := map[string]Partition{}
			for p := int32(0); p < 4; p++ {
				sp := Partition{srcTopic, p}
				byKey[offsetSyncPrefix("eu", srcCluster, sp)] = sp
			}
			perPartition := map[int32]int{}
			for _, m := range syncs {
				prefix, _ := offsetSyncPartition(m.Key)
				sp, ok := byKey[prefix]
				if !ok || strings.Count(string(m.Key), "/") != 4 {
					t.Errorf("sync key %q", m.Key)
					continue
				}
				s, ok := decodeOffsetSync(m.Value)
				if !ok || s.TargetTopic != dstTopic {
					t.Errorf("sync value %s", m.Value)
					continue
				}
				if got, ok := origin[sp.Partition][s.TargetOffset]; !ok || got != s.SourceOffset {
					t.Errorf("sync %s: source offset %d at target offset %d, but the target holds source offset %d there (exists %v)",
						sp, s.SourceOffset, s.TargetOffset, got, ok)
				}
				perPartition[sp.Partition]++
			}
			for p := int32(0); p < 4; p++ {
				if perPartition[p] < 2 {
					t.Errorf("partition %d: %d syncs, want several (%d in all)", p, perPartition[p], len(syncs))
				}
			}
			t.Logf("%d syncs for 2000 records: %v", len(syncs), perPartition)
		})
	}
}

func TestSamplerTakesOnePerPartitionAndInterval(t *testing.T) {
	s := newSampler(time.Second)
	now := time.Unix(1000, 0)
	ps := &partState{src: Partition{"a", 0}}
	first := s.take(ps, 10, now)
	if first == nil {
		t.Fatal("the first record was not sampled")
	}
	if s.take(ps, 11, now.Add(2*time.Second)) != nil {
		t.Error("a second sample while the first is outstanding")
	}
	s.committed()
	if got := s.ready(now); len(got) != 0 {
		t.Errorf("ready before the delivery report: %v", got)
	}
	s.ch <- &kafka.Message{TopicPartition: kafka.TopicPartition{Offset: 42}, Opaque: first}
	s.drain()
	got := s.ready(now)
	if len(got) != 1 || got[0].source != 10 || got[0].target != 42 {
		t.Fatalf("ready = %+v, want source 10 at target 42", got)
	}
	if s.take(ps, 12, now.Add(500*time.Millisecond)) != nil {
		t.Error("sampled again within the interval")
	}
	second := s.take(ps, 13, now.Add(time.Second))
	if second == nil {
		t.Fatal("not sampled after the interval")
	}
	// A sample of a transaction that has not committed is never ready.
	s.ch <- &kafka.Message{TopicPartition: kafka.TopicPartition{Offset: 50}, Opaque: second}
	s.drain()
	if got := s.ready(now.Add(time.Second)); len(got) != 0 {
		t.Errorf("ready before its transaction committed: %+v", got)
	}
	s.committed()
	if got := s.ready(now.Add(time.Second)); len(got) != 1 {
		t.Errorf("ready after commit: %+v", got)
	}
	// A report that never comes times out and frees the partition.
	third := s.take(ps, 20, now.Add(3*time.Second))
	s.committed()
	if got := s.ready(now.Add(3*time.Second + sampleTimeout + time.Second)); len(got) != 0 || !third.dropped || ps.sampling {
		t.Errorf("a sample without report: ready %v, dropped %v, partition sampling %v", got, third.dropped, ps.sampling)
	}
	if s.out != 0 {
		t.Errorf("%d samples outstanding, want 0", s.out)
	}
}

// The key is stored in the target's offset-syncs topic: its format must not
// change, and the keys of older versions (no slot) are still read.
func TestOffsetSyncKeyNamesPipelineSourcePartitionAndSlot(t *testing.T) {
	if got, want := string(offsetSyncKey("eu-payments", "eu-west", Partition{"payments.fuel", 17}, 3)), "eu-payments/eu-west/payments.fuel/17/3"; got != want {
		t.Errorf("offsetSyncKey = %q, want %q", got, want)
	}
	for key, want := range map[string]string{
		"eu-payments/eu-west/payments.fuel/17/3": "eu-payments/eu-west/payments.fuel/17",
		"eu-payments/eu-west/payments.fuel/17":   "eu-payments/eu-west/payments.fuel/17", // v1, before the history
		"eu-payments/eu-west/payments.fuel/17/x": "",
		"eu-payments/eu-west/payments.fuel":      "",
	} {
		if got, _ := offsetSyncPartition([]byte(key)); got != want {
			t.Errorf("offsetSyncPartition(%q) = %q, want %q", key, got, want)
		}
	}
}

// syncAt is a sync of source offset n at target offset 2n, sampled at second at.
func syncAt(n, at int64) offsetSync {
	return offsetSync{V: 1, SourceOffset: n, TargetTopic: "t", TargetOffset: 2 * n, At: at * 1000}
}

func TestSyncHistoryIsSparseAndBoundsTheDistanceToAnyOffset(t *testing.T) {
	// A week of one sync per second, as a busy partition writes them.
	const week = 7 * 24 * 3600
	var h syncHistory
	writes := 0
	for sec := int64(1); sec <= week; sec++ {
		writes += len(h.add(syncAt(sec*10, sec), time.Second))
	}
	// Each sync writes slot 0 and, on average, about one more.
	if per := float64(writes) / week; per > 2.5 {
		t.Errorf("%.2f writes per sync, want at most 2.5", per)
	}
	for k := 1; k < syncSlots; k++ {
		if h[k].V == 0 || h[k].SourceOffset >= h[k-1].SourceOffset || h[k].TargetOffset >= h[k-1].TargetOffset {
			t.Fatalf("slot %d = %+v after slot %d = %+v: want strictly older", k, h[k], k-1, h[k-1])
		}
		age := (h[0].At - h[k].At) / 1000
		if k < syncSlots-1 && age > int64(1)<<k {
			t.Errorf("slot %d is %d s old, want at most %d", k, age, 1<<k)
		}
	}
	if h[syncSlots-1].SourceOffset > 10*(week-(1<<18)) {
		t.Errorf("the last slot reaches back only to second %d of %d", h[syncSlots-1].SourceOffset/10, week)
	}
	// For a group at any age, the newest sync below its offset is at most
	// about its age away (what bounds the lineage scan).
	ix := syncIndex{"p": h[:]}
	for _, age := range []int64{1, 2, 3, 10, 100, 1000, 3600, 86400, 5 * 86400} {
		c := 10*(week-age) + 5
		s := ix.below("p", "t", c)
		if s == nil {
			t.Fatalf("no sync below the offset of a group %d s behind", age)
		}
		if dist := (c - s.SourceOffset) / 10; dist > 2*age+1 {
			t.Errorf("group %d s behind: the nearest sync below is %d s before it", age, dist)
		}
	}
}

func TestSyncHistoryKeepsItsPastWhileIdleAndStartsAfreshOnARewind(t *testing.T) {
	var h syncHistory
	for sec := int64(1); sec <= 100; sec++ {
		h.add(syncAt(sec, sec), time.Second)
	}
	before := h
	// A day without traffic: the next sync moves every slot down by at most
	// one, losing no more than the oldest.
	h.add(syncAt(101, 100+86400), time.Second)
	if h[0] != syncAt(101, 100+86400) || h[1] != before[0] {
		t.Errorf("after an idle day: slots 0, 1 = %+v, %+v; want the new sync, then the newest before", h[0], h[1])
	}
	kept := 0
	for _, b := range before {
		for _, a := range h {
			if b.V != 0 && a == b {
				kept++
				break
			}
		}
	}
	if n := countSlots(before); kept < n-1 {
		t.Errorf("an idle day dropped %d of %d syncs", n-kept, n)
	}

	// The source topic created again: offsets start over, and no slot may
	// keep naming the old topic's offsets.
	changed := h.add(syncAt(3, 100+86401), time.Second)
	for k, s := range h {
		if s != syncAt(3, 100+86401) {
			t.Errorf("slot %d = %+v after a rewind", k, s)
		}
	}
	if len(changed) != syncSlots {
		t.Errorf("a rewind wrote slots %v", changed)
	}
}

func TestSyncHistoryWritesOnlyChangedSlots(t *testing.T) {
	var h syncHistory
	if got := h.add(syncAt(1, 1), time.Second); !slices.Equal(got, []int{0}) {
		t.Errorf("first sync wrote slots %v, want [0]", got)
	}
	if got := h.add(syncAt(2, 2), time.Second); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("second sync wrote slots %v, want [0 1]", got)
	}
	// A history read back out of order (an aborted write left a slot behind)
	// is put in order again.
	h = syncHistory{syncAt(5, 5), syncAt(9, 9), syncAt(1, 1)}
	h.add(syncAt(10, 10), time.Second)
	for k := 1; k < syncSlots && h[k].V != 0; k++ {
		if h[k].SourceOffset >= h[k-1].SourceOffset {
			t.Errorf("slot %d = %d after slot %d = %d", k, h[k].SourceOffset, k-1, h[k-1].SourceOffset)
		}
	}
}

func countSlots(h syncHistory) int {
	n := 0
	for _, s := range h {
		if s.V != 0 {
			n++
		}
	}
	return n
}

// An offset-syncs topic made by an older version (delete, 7 days, one key per
// partition) is switched to compact, and its records are still read.
func TestOffsetSyncTopicOfAnOlderVersionIsCompactedAndStillRead(t *testing.T) {
	_, dst := kfakePair(t, 1)
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": dst, "enable.metrics.push": false, "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := createTopic(ctx, admin, kafka.TopicSpecification{Topic: OffsetSyncTopic, NumPartitions: 1, ReplicationFactor: 1,
		Config: map[string]string{"cleanup.policy": "delete", "retention.ms": "604800000"}}); err != nil {
		t.Fatal(err)
	}
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": dst, "enable.metrics.push": false, "log_level": 3, "go.delivery.reports": false})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	topic := OffsetSyncTopic
	for _, m := range []struct{ key, value string }{
		{"eu/" + srcCluster + "/orders/0", `{"v":1,"source_offset":40,"target_topic":"` + dstTopic + `","target_offset":44,"task":"eu/0"}`},
		{"eu/" + srcCluster + "/orders/0/0", `{"v":1,"source_offset":90,"target_topic":"` + dstTopic + `","target_offset":97,"at":1,"task":"eu/0"}`},
		{"eu/" + srcCluster + "/orders/0/1", `{"v":1,"source_offset":60,"target_topic":"` + dstTopic + `","target_offset":65,"at":1,"task":"eu/0"}`},
		{"other/" + srcCluster + "/orders/0/0", `{"v":1,"source_offset":10,"target_topic":"` + dstTopic + `","target_offset":1,"task":"other/0"}`},
	} {
		if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Key: []byte(m.key), Value: []byte(m.value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.Flush(10000); n != 0 {
		t.Fatalf("%d records not flushed", n)
	}

	md, err := admin.GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureOffsetSyncTopic(ctx, admin, md, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	res, err := describeTopicConfigs(ctx, admin, []string{OffsetSyncTopic})
	if err != nil || len(res) != 1 {
		t.Fatal(res, err)
	}
	if got := res[0].Config["cleanup.policy"].Value; got != "compact" {
		t.Errorf("cleanup.policy = %q after ensureOffsetSyncTopic, want compact", got)
	}

	cfg := mirrorConfig(t, dst, dst, "")
	prefix := offsetSyncPrefix("eu", srcCluster, Partition{"orders", 0})
	ix, err := readSyncIndex(ctx, cfg.Kafka[dstCluster], func(k string) bool { return k == prefix })
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range map[int64]int64{100: 97, 90: 65, 61: 65, 60: 44, 41: 44, 40: -1} {
		got := int64(-1)
		if s := ix.below(prefix, dstTopic, c); s != nil {
			got = s.TargetOffset
		}
		if got != want {
			t.Errorf("newest sync below %d: target offset %d, want %d", c, got, want)
		}
	}
}
