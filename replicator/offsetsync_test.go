package replicator

import (
	"fmt"
	"strconv"
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
			// Keys are looked up as TranslateGroup does (readOffsetSyncs).
			byKey := map[string]Partition{}
			for p := int32(0); p < 4; p++ {
				sp := Partition{srcTopic, p}
				byKey[string(offsetSyncKey("eu", srcCluster, sp))] = sp
			}
			perPartition := map[int32]int{}
			for _, m := range syncs {
				sp, ok := byKey[string(m.Key)]
				if !ok {
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

// The key is stored in the target's offset-syncs topic: its format must not change.
func TestOffsetSyncKeyNamesPipelineSourceAndPartition(t *testing.T) {
	if got, want := string(offsetSyncKey("eu-payments", "eu-west", Partition{"payments.fuel", 17})), "eu-payments/eu-west/payments.fuel/17"; got != want {
		t.Errorf("offsetSyncKey = %q, want %q", got, want)
	}
}
