package test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/test/harness"
)

const heartbeatTopic = "_tributary.heartbeat"

// recentRecords reads up to the last n committed records of every partition of
// a topic (all partitions at once, until each reaches its end).
func recentRecords(t testing.TB, bootstrap, topic string, n int64) []*kafka.Message {
	t.Helper()
	parts, err := partitionCount(bootstrap, topic)
	if err != nil {
		t.Fatalf("topic %s: %v", topic, err)
	}
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "recent-" + topic, "isolation.level": "read_committed",
		"enable.auto.commit": false, "enable.partition.eof": true, "auto.offset.reset": "earliest",
		"enable.metrics.push": false, "fetch.queue.backoff.ms": 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var tps []kafka.TopicPartition
	for p := int32(0); p < int32(parts); p++ {
		lo, hi, err := c.QueryWatermarkOffsets(topic, p, 10000)
		if err != nil {
			t.Fatalf("watermarks of %s/%d: %v", topic, p, err)
		}
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(max(lo, hi-n))})
	}
	if err := c.Assign(tps); err != nil {
		t.Fatal(err)
	}
	var out []*kafka.Message
	eof := map[int32]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(eof) < parts && time.Now().Before(deadline) {
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error == nil {
				out = append(out, ev)
			}
		case kafka.PartitionEOF:
			eof[ev.Partition] = true
		}
	}
	return out
}

// heartbeatsOf returns the tasks ("<pipeline>/<i>") with heartbeats among msgs.
func heartbeatsOf(t testing.TB, msgs []*kafka.Message, pipeline string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range msgs {
		k := string(m.Key)
		if !strings.HasPrefix(k, pipeline+"/") {
			continue
		}
		var v struct {
			V        int       `json:"v"`
			Source   string    `json:"source"`
			Pipeline string    `json:"pipeline"`
			Task     int       `json:"task"`
			Time     time.Time `json:"time"`
		}
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Errorf("heartbeat %s: value %q: %v", k, m.Value, err)
			continue
		}
		if v.V != 1 || v.Source != "regional" || v.Pipeline != pipeline || k != pipeline+"/"+strconv.Itoa(v.Task) {
			t.Errorf("heartbeat key %s value %s", k, m.Value)
		}
		out[k]++
	}
	return out
}

// TestHeartbeatsShowAnIdlePipelineIsAlive runs a pipeline whose topic gets no
// data: its tasks' heartbeats go to the source's _tributary.heartbeat, are
// mirrored to regional._tributary.heartbeat, and the heartbeat age stays low.
func TestHeartbeatsShowAnIdlePipelineIsAlive(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "idle")
	createTopic(t, source, topic, partitions, nil)
	cfg, httpAddr := writeConfig(t, source, target, pipelineYAML(topic, topic, ""))
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)
	pipeline := topic
	const tasks = 3 // pipelineYAML

	dst := "regional." + heartbeatTopic
	harness.Eventually(t, 60*time.Second, "heartbeats of every task in the source and the target", func() error {
		n, err := partitionCount(source, heartbeatTopic)
		if err != nil {
			return fmt.Errorf("source %s: %v", heartbeatTopic, err)
		}
		if n < tasks {
			return fmt.Errorf("source %s has %d partitions, want >= %d", heartbeatTopic, n, tasks)
		}
		if got := heartbeatsOf(t, recentRecords(t, source, heartbeatTopic, 200), pipeline); len(got) != tasks {
			return fmt.Errorf("source holds heartbeats of %v", got)
		}
		if _, err := partitionCount(target, dst); err != nil {
			return fmt.Errorf("target %s: %v", dst, err)
		}
		recs := recentRecords(t, target, dst, 200)
		if got := heartbeatsOf(t, recs, pipeline); len(got) != tasks {
			return fmt.Errorf("target holds heartbeats of %v", got)
		}
		for _, m := range recs {
			if strings.HasPrefix(string(m.Key), pipeline+"/") {
				if o, _ := header(m.Headers, "tributary-origin"); string(o) != "regional" {
					return fmt.Errorf("mirrored heartbeat %s: tributary-origin %q", m.Key, o)
				}
			}
		}
		return nil
	})
	if tc := topicConfig(t, source, heartbeatTopic); tc["cleanup.policy"] != "delete" || tc["retention.ms"] != "3600000" {
		t.Errorf("source %s: cleanup.policy %q retention.ms %q, want delete and 3600000 (1 h)", heartbeatTopic, tc["cleanup.policy"], tc["retention.ms"])
	}

	var ages []float64
	for range 6 {
		age, ok := metricValue(d.metrics(), `tributary_heartbeat_age_seconds{pipeline="`+pipeline+`"}`)
		if !ok {
			t.Fatalf("/metrics lacks tributary_heartbeat_age_seconds{pipeline=%q}", pipeline)
		}
		ages = append(ages, age)
		if age >= 3 {
			t.Errorf("tributary_heartbeat_age_seconds{pipeline=%q} = %v, want < 3 s (heartbeats every 1 s)", pipeline, age)
		}
		time.Sleep(700 * time.Millisecond)
	}
	t.Logf("heartbeat ages over 4 s: %v", ages)
	// No data flowed, and heartbeats are not data.
	text := d.metrics()
	if v, ok := metricValue(text, `tributary_records_total{outcome="replicated",pipeline="`+pipeline+`"}`); ok && v != 0 {
		t.Errorf("tributary_records_total{outcome=replicated} = %v, want 0 (heartbeats do not count)", v)
	}
	if strings.Contains(text, `topic="`+heartbeatTopic+`"`) {
		t.Errorf("/metrics has series for the heartbeat topic")
	}
}

// metricValue returns the value of one series (its exact text up to the
// value) from the text of /metrics.
func metricValue(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestHeartbeatsNeverWrittenToAReadOnlySource: a read_only source gets no
// heartbeats (and no heartbeat age), while its data is mirrored.
func TestHeartbeatsNeverWrittenToAReadOnlySource(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "readonly")
	createTopic(t, source, topic, partitions, nil)
	cfg, httpAddr := writeConfigWith(t, fmt.Sprintf(`kafka:
  regional:
    region: eu
    bootstrap: %s
    read_only: true
  central:
    region: cloud
    bootstrap: %s
`, source, target), pipelineYAML(topic, topic, ""))
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)
	pipeline := topic

	base := recentBase()
	seq := map[int32]int{}
	p := newProducer(t, source)
	produceN(t, p, topic, 0, 600, base, seq)
	flush(t, p)
	got := readAll(t, target, "regional."+topic, 600, time.Minute)
	verifyExactlyOnce(t, got, seq, topic, "regional", base, true)
	time.Sleep(2 * time.Second) // a heartbeat every second, were there any

	if _, err := partitionCount(source, heartbeatTopic); err == nil {
		// Other tests' pipelines may have created it: none of ours in it.
		if hb := heartbeatsOf(t, recentRecords(t, source, heartbeatTopic, 500), pipeline); len(hb) > 0 {
			t.Errorf("read_only source holds heartbeats of %v", hb)
		}
	}
	if _, err := partitionCount(target, "regional."+heartbeatTopic); err == nil {
		if hb := heartbeatsOf(t, recentRecords(t, target, "regional."+heartbeatTopic, 500), pipeline); len(hb) > 0 {
			t.Errorf("target holds heartbeats of %v", hb)
		}
	}
	if text := d.metrics(); strings.Contains(text, `tributary_heartbeat_age_seconds{pipeline="`+pipeline+`"}`) {
		t.Errorf("heartbeat age reported for a pipeline on a read_only source")
	}
	if out := d.output(); strings.Contains(out, "created the heartbeat topic") {
		t.Errorf("the node created the heartbeat topic in a read_only source")
	}
}
