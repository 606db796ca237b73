package replicator

import (
	"context"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-dev/tributary/replicator/metrics"
)

func TestCheckpointEncoding(t *testing.T) {
	t.Run("a checkpoint with a topic id round-trips", func(t *testing.T) {
		b := encodeCheckpoint("eu/1", 42, "KRSitg5wR1atGzDnp46sGw")
		if got, want := string(b), `{"v":1,"offset":42,"task":"eu/1","topic_id":"KRSitg5wR1atGzDnp46sGw"}`; got != want {
			t.Errorf("encodeCheckpoint = %s, want %s", got, want)
		}
		cp, err := decodeCheckpoint(b)
		if err != nil {
			t.Fatal(err)
		}
		if cp != (checkpoint{V: 1, Offset: 42, Task: "eu/1", TopicID: "KRSitg5wR1atGzDnp46sGw"}) {
			t.Errorf("decoded %+v", cp)
		}
	})

	t.Run("a checkpoint of an older version (no topic id) still decodes", func(t *testing.T) {
		cp, err := decodeCheckpoint([]byte(`{"v":1,"offset":1000,"task":"eu/0"}`))
		if err != nil {
			t.Fatal(err)
		}
		if cp.Offset != 1000 || cp.TopicID != "" || cp.Task != "eu/0" {
			t.Errorf("decoded %+v", cp)
		}
	})

	t.Run("without a topic id the value is what older versions wrote", func(t *testing.T) {
		if got, want := string(encodeCheckpoint("eu/1", 7, "")), `{"v":1,"offset":7,"task":"eu/1"}`; got != want {
			t.Errorf("encodeCheckpoint = %s, want %s", got, want)
		}
	})

	t.Run("fields a later version adds are ignored", func(t *testing.T) {
		cp, err := decodeCheckpoint([]byte(`{"v":1,"offset":5,"task":"eu/0","topic_id":"x","future":true}`))
		if err != nil || cp.Offset != 5 || cp.TopicID != "x" {
			t.Errorf("decoded %+v, %v", cp, err)
		}
	})

	t.Run("garbage and negative offsets are errors", func(t *testing.T) {
		for _, v := range []string{``, `{`, `[]`, `{"offset":"7"}`, `{"v":1,"offset":-3}`} {
			if cp, err := decodeCheckpoint([]byte(v)); err == nil {
				t.Errorf("decodeCheckpoint(%q) = %+v, want an error", v, cp)
			}
		}
	})
}

func TestDecideCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cp      checkpoint
		ok      bool
		current string
		want    checkpointDecision
	}{
		{"no checkpoint: the partition starts like a new one", checkpoint{}, false, "A", noCheckpoint},
		{"the same topic resumes at its checkpoint", checkpoint{Offset: 1000, TopicID: "A"}, true, "A", useCheckpoint},
		{"a topic created again under the name ignores the old checkpoint", checkpoint{Offset: 1000, TopicID: "A"}, true, "B", staleCheckpoint},
		{"an old checkpoint without an id is trusted", checkpoint{Offset: 1000}, true, "B", useCheckpoint},
		{"a source that gives no id trusts the checkpoint", checkpoint{Offset: 1000, TopicID: "A"}, true, "", useCheckpoint},
		{"neither side has an id", checkpoint{Offset: 3}, true, "", useCheckpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideCheckpoint(tc.cp, tc.ok, tc.current); got != tc.want {
				t.Errorf("decideCheckpoint(%+v, %v, %q) = %v, want %v", tc.cp, tc.ok, tc.current, got, tc.want)
			}
		})
	}
}

func TestPublishFollowsDeletedAndRecreatedTopics(t *testing.T) {
	present := func(topics ...string) map[string]bool {
		m := map[string]bool{}
		for _, t := range topics {
			m[t] = true
		}
		return m
	}

	t.Run("a deleted source topic is dropped and its partitions leave the tasks", func(t *testing.T) {
		p := testPipeline(t, "eu", 2)
		p.publish(map[string]int{"orders": 4, "fuel": 2}, present("orders", "fuel"), map[string]string{"orders": "A", "fuel": "F"})
		_, changed := p.Partitions(0)
		p.publish(map[string]int{"fuel": 2}, present("fuel"), map[string]string{"fuel": "F"})
		select {
		case <-changed:
		default:
			t.Fatal("Partitions' channel was not closed when a topic was deleted")
		}
		if got := p.Topics(); len(got) != 1 || got["fuel"] != 2 {
			t.Errorf("topics after the deletion = %v, want only fuel", got)
		}
		if len(owners(t, p)) != 2 {
			t.Errorf("partitions after the deletion: %v", owners(t, p))
		}
		if id := p.topicID("orders"); id != "" {
			t.Errorf("the deleted topic's id is still known: %q", id)
		}
	})

	t.Run("a topic whose target is not ready stays while the source has it", func(t *testing.T) {
		p := testPipeline(t, "eu", 1)
		p.publish(map[string]int{"orders": 4}, present("orders"), nil)
		p.publish(map[string]int{}, present("orders"), nil) // target error this refresh
		if got := p.Topics()["orders"]; got != 4 {
			t.Errorf("orders has %d partitions, want 4 kept", got)
		}
	})

	t.Run("an unknown listing drops nothing", func(t *testing.T) {
		p := testPipeline(t, "eu", 1)
		p.publish(map[string]int{"orders": 4}, present("orders"), nil)
		p.publish(map[string]int{}, nil, nil)
		if got := p.Topics()["orders"]; got != 4 {
			t.Errorf("orders has %d partitions, want 4 kept", got)
		}
	})

	t.Run("a topic created again may have fewer partitions, and a new id", func(t *testing.T) {
		p := testPipeline(t, "eu", 1)
		p.publish(map[string]int{"orders": 8}, present("orders"), map[string]string{"orders": "A"})
		_, changed := p.Partitions(0)
		p.publish(map[string]int{"orders": 3}, present("orders"), map[string]string{"orders": "B"})
		select {
		case <-changed:
		default:
			t.Fatal("Partitions' channel was not closed when the topic's id changed")
		}
		if got := p.Topics()["orders"]; got != 3 {
			t.Errorf("orders has %d partitions, want the new topic's 3", got)
		}
		if got := p.topicID("orders"); got != "B" {
			t.Errorf("topic id %q, want B", got)
		}
	})

	t.Run("a topic created again after a deletion is not started at latest", func(t *testing.T) {
		p := testPipeline(t, "eu", 1)
		p.publish(map[string]int{"orders": 1}, present("orders"), nil)
		if !p.startsAtConfigured("orders") {
			t.Fatal("a topic of the first refresh must start at the pipeline's start")
		}
		p.publish(map[string]int{}, present(), nil)
		p.publish(map[string]int{"orders": 1}, present("orders"), nil)
		if p.startsAtConfigured("orders") {
			t.Error("a re-created topic would start at start (latest would skip its first records)")
		}
	})

	t.Run("a task's newer id tells the other tasks", func(t *testing.T) {
		p := testPipeline(t, "eu", 2)
		p.publish(map[string]int{"orders": 2}, present("orders"), map[string]string{"orders": "A"})
		_, changed := p.Partitions(1)
		p.noteTopicID("orders", "B")
		select {
		case <-changed:
		default:
			t.Fatal("Partitions' channel was not closed by noteTopicID")
		}
		if got := p.topicID("orders"); got != "B" {
			t.Errorf("topic id %q, want B", got)
		}
		_, changed = p.Partitions(1)
		p.noteTopicID("orders", "B")
		select {
		case <-changed:
			t.Error("the same id signalled again")
		default:
		}
	})

	t.Run("the recreation counter exists at 0 for every mirrored topic and goes with it", func(t *testing.T) {
		m := metrics.New(nil)
		p := testPipeline(t, "eu", 1)
		p.deps.Metrics = m
		p.publish(map[string]int{"orders": 1, "fuel": 1}, present("orders", "fuel"), nil)
		if n := testutil.CollectAndCount(m.TargetRecreated); n != 2 {
			t.Errorf("%d recreation series, want 2", n)
		}
		p.publish(map[string]int{"fuel": 1}, present("fuel"), nil)
		if n := testutil.CollectAndCount(m.TargetRecreated); n != 1 {
			t.Errorf("%d recreation series after a deletion, want 1", n)
		}
	})
}

// TestWorkerReadsASourceTopicCreatedAgainFromItsBeginning deletes the source
// topic under a running task and creates it again with fewer records than the
// checkpoint, on in-memory clusters and with a refresh_interval of an hour: the
// task's own fetch meets the checkpoint past the new topic's end (or a refresh
// that an unknown-topic error asked for sees the new id); either way all the
// new records land, and the checkpoint carries the new topic's id.
func TestWorkerReadsASourceTopicCreatedAgainFromItsBeginning(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 1)
	cfg := mirrorConfig(t, src, dst, "    tasks: 1\n    refresh_interval: 1h\n    heartbeats: false\n")
	old := makeRecords(0, 100, 1, nil)
	produce(t, src, old)
	w, stop := startWorker(t, cfg, metrics.New(prometheus.NewRegistry()))
	waitTasks(t, w, 100, 0)
	ckpts, err := loadCheckpointRecords(context.Background(), cfg.Kafka[dstCluster], dstCluster, "eu", 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldID := ckpts[Partition{srcTopic, 0}].TopicID
	if cp := ckpts[Partition{srcTopic, 0}]; cp.Offset != 100 || oldID == "" {
		t.Fatalf("checkpoint %+v, want offset 100 with the topic's id", cp)
	}

	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": src})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if res, err := admin.DeleteTopics(ctx, []string{srcTopic}); err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("DeleteTopics: %v %v", err, res)
	}
	if res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: srcTopic, NumPartitions: 1, ReplicationFactor: 1}}); err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("CreateTopics: %v %v", err, res)
	}
	fresh := makeRecords(100, 30, 1, nil)
	produce(t, src, fresh)
	waitTasks(t, w, 130, 0)
	stop()

	got := readCommitted(t, dst, dstTopic, 1)
	if len(got) != 130 {
		t.Fatalf("%d records in the target, want 100 of the old topic and 30 of the new", len(got))
	}
	checkMirrored(t, fresh, got[100:], false)
	ckpts, err = loadCheckpointRecords(context.Background(), cfg.Kafka[dstCluster], dstCluster, "eu", 10*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cp := ckpts[Partition{srcTopic, 0}]; cp.Offset != 30 || cp.TopicID == "" || cp.TopicID == oldID {
		t.Errorf("checkpoint %+v, want offset 30 with the new topic's id (old %s)", cp, oldID)
	}
}
