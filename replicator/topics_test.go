package replicator

import (
	"testing"

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
