package replicator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/test/harness"
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
			perPartition := map[int32]int{}
			for _, m := range syncs {
				sp, ok := parseOffsetSyncKey("eu", srcCluster, m.Key)
				if !ok || sp.Topic != srcTopic {
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

// commitGroup commits offsets for a consumer group in a cluster.
func commitGroup(t *testing.T, bootstrap, group, topic string, offsets map[int32]int64) {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": group, "enable.metrics.push": false, "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var tps []kafka.TopicPartition
	for p, off := range offsets {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(off)})
	}
	if _, err := c.CommitOffsets(tps); err != nil {
		t.Fatalf("committing offsets of %s: %v", group, err)
	}
}

func TestTranslateGroupFindsTheNextRecordOfEveryPartition(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 4)
	cfg := mirrorConfig(t, src, dst, "    tasks: 2\n    offset_sync_interval: 10ms\n    commit_interval: 20ms\n    heartbeat_interval: 100ms\n")
	w, stop := startWorker(t, cfg, metrics.New(prometheus.NewRegistry()))
	recs := makeRecords(0, 2000, 4, nil)
	produceSlowly(t, src, recs, 20)
	waitTasks(t, w, 2000, 0)
	time.Sleep(300 * time.Millisecond)
	stop()

	// 500 records per partition, source offsets 0..499.
	committed := map[int32]int64{0: 0, 1: 137, 2: 499, 3: 500}
	commitGroup(t, src, "billing", srcTopic, committed)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := TranslateGroup(ctx, cfg, "billing", nil)
	if err != nil {
		t.Fatalf("TranslateGroup: %v", err)
	}
	if len(res.Offsets) != 4 {
		t.Fatalf("%d partitions translated, want 4: %+v", len(res.Offsets), res.Offsets)
	}
	origin := originOffsets(t, readCommitted(t, dst, dstTopic, 4))
	for _, o := range res.Offsets {
		c := committed[o.Partition]
		if o.Error != "" || !o.Exact || o.TargetTopic != dstTopic || o.SourceOffset != c || o.Pipeline != "eu" || o.SourceCluster != srcCluster {
			t.Errorf("translation %+v", o)
			continue
		}
		// Reading from the translated offset gives source offsets c, c+1, ...
		want := c
		for off := o.TargetOffset; off < o.TargetOffset+2000; off++ {
			got, ok := origin[o.Partition][off]
			if !ok {
				continue // a transaction marker
			}
			if got != want {
				t.Errorf("partition %d: from target offset %d the records start at source offset %d, want %d", o.Partition, o.TargetOffset, got, want)
				break
			}
			want++
		}
		if want != 500 {
			t.Errorf("partition %d: reading from target offset %d gives source offsets %d..%d, want %d..499", o.Partition, o.TargetOffset, c, want-1, c)
		}
	}

	t.Run("the HTTP handler answers the same", func(t *testing.T) {
		srv := httptest.NewServer(TranslateHandler(cfg))
		defer srv.Close()
		for _, c := range []struct {
			query string
			code  int
			body  string
		}{
			{"?group=billing", 200, `"target_topic": "` + dstTopic + `"`},
			{"", 400, "group is required"},
			{"?group=billing&pipeline=nope", 400, `pipeline \"nope\"`},
			{"?group=nobody", 404, "has no committed offsets"},
		} {
			resp, err := http.Get(srv.URL + c.query)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code || !strings.Contains(string(b), c.body) {
				t.Errorf("GET %s = %d %s, want %d with %q", c.query, resp.StatusCode, b, c.code, c.body)
			}
			if c.code == 200 {
				var got GroupOffsets
				if err := json.Unmarshal(b, &got); err != nil || len(got.Offsets) != 4 || got.Offsets[1].TargetOffset != res.Offsets[1].TargetOffset {
					t.Errorf("GET %s: %s, want the translation %+v", c.query, b, res.Offsets)
				}
			}
		}
	})
	t.Run("a group without offsets is a clear error", func(t *testing.T) {
		_, err := TranslateGroup(ctx, cfg, "nobody", nil)
		if !errors.Is(err, ErrNoGroupOffsets) {
			t.Fatalf("TranslateGroup(nobody) = %v, want ErrNoGroupOffsets", err)
		}
		t.Log(err)
	})
	t.Run("a group of unmirrored topics is a clear error naming them", func(t *testing.T) {
		other := harness.UniqueName(t, "other")
		admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": src, "enable.metrics.push": false, "log_level": 3})
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		if _, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: other, NumPartitions: 1, ReplicationFactor: 1}}); err != nil {
			t.Fatal(err)
		}
		commitGroup(t, src, "elsewhere", other, map[int32]int64{0: 0})
		_, err = TranslateGroup(ctx, cfg, "elsewhere", nil)
		if !errors.Is(err, ErrNoGroupOffsets) || !strings.Contains(err.Error(), other) {
			t.Fatalf("TranslateGroup(elsewhere) = %v, want ErrNoGroupOffsets naming %s", err, other)
		}
	})
	t.Run("offsets past the mirrored records are not mirrored yet", func(t *testing.T) {
		produce(t, src, makeRecords(2000, 4, 4, nil)) // source offset 500 of each partition; nothing mirrors it
		commitGroup(t, src, "ahead", srcTopic, map[int32]int64{0: 501})
		res, err := TranslateGroup(ctx, cfg, "ahead", nil)
		if err != nil {
			t.Fatal(err)
		}
		if f := res.Failed(); len(f) != 1 || !strings.Contains(f[0].Error, "not mirrored up to orders/0 offset 501 yet (checkpoint 500)") {
			t.Errorf("translation of an offset ahead of the mirror: %+v", res.Offsets)
		}
	})
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

func TestOffsetSyncKeyRoundTrips(t *testing.T) {
	for _, p := range []Partition{{"orders", 0}, {"payments.fuel", 17}, {"a-b_c", 2147483647}} {
		key := offsetSyncKey("eu-payments", "eu-west", p)
		got, ok := parseOffsetSyncKey("eu-payments", "eu-west", key)
		if !ok || got != p {
			t.Errorf("parseOffsetSyncKey(%q) = %v, %v; want %v", key, got, ok, p)
		}
		if _, ok := parseOffsetSyncKey("eu", "eu-west", key); ok {
			t.Errorf("key %q parsed for pipeline eu", key)
		}
		if _, ok := parseOffsetSyncKey("eu-payments", "eu", key); ok {
			t.Errorf("key %q parsed for source eu", key)
		}
	}
}

func TestTranslateWithoutLineageMayRereadButNeverSkips(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 4)
	cfg := mirrorConfig(t, src, dst, "    tasks: 2\n    lineage_headers: false\n    offset_sync_interval: 10ms\n    commit_interval: 20ms\n    heartbeats: false\n")
	w, stop := startWorker(t, cfg, metrics.New(prometheus.NewRegistry()))
	recs := makeRecords(0, 2000, 4, nil)
	produceSlowly(t, src, recs, 20)
	waitTasks(t, w, 2000, 0)
	time.Sleep(300 * time.Millisecond)
	stop()
	srcOffset := map[string]int64{} // test-seq header → source offset
	for _, r := range recs {
		srcOffset[strconv.Itoa(r.seq)] = r.offset
	}

	committed := map[int32]int64{0: 0, 1: 137, 2: 499, 3: 500}
	commitGroup(t, src, "billing", srcTopic, committed)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := TranslateGroup(ctx, cfg, "billing", nil)
	if err != nil {
		t.Fatalf("TranslateGroup: %v", err)
	}
	byPartition := map[int32][]*kafka.Message{}
	for _, m := range readCommitted(t, dst, dstTopic, 4) {
		byPartition[m.TopicPartition.Partition] = append(byPartition[m.TopicPartition.Partition], m)
	}
	for _, o := range res.Offsets {
		c := committed[o.Partition]
		if o.Error != "" {
			t.Errorf("partition %d: %s", o.Partition, o.Error)
			continue
		}
		first, n := int64(-1), int64(0)
		for _, m := range byPartition[o.Partition] {
			if int64(m.TopicPartition.Offset) < o.TargetOffset {
				continue
			}
			off := srcOffset[headerValues(m, seqHeader)[0]]
			if first < 0 {
				first = off
			}
			if off != first+n {
				t.Errorf("partition %d: gap or reorder at target offset %d", o.Partition, m.TopicPartition.Offset)
				break
			}
			n++
		}
		if first < 0 {
			first = 500 // nothing to read: starts at the end
		}
		if first > c {
			t.Errorf("partition %d: from target offset %d the records start at source offset %d, after the committed %d: skipped", o.Partition, o.TargetOffset, first, c)
		}
		if o.Exact != (first == c) {
			t.Errorf("partition %d: exact %v, but the records start at source offset %d for committed %d", o.Partition, o.Exact, first, c)
		}
		t.Logf("partition %d: committed %d → target offset %d (source offset %d, exact %v)", o.Partition, c, o.TargetOffset, first, o.Exact)
	}
}
