package replicator

import (
	"context"
	"encoding/json"
	"errors"
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
