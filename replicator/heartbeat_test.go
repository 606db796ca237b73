package replicator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/test/harness"
)

const dstHeartbeats = srcCluster + "." + HeartbeatTopic

// topicPartitions returns a topic's partition count, 0 when it does not exist.
func topicPartitions(t *testing.T, bootstrap, topic string) int {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.metrics.push": false, "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	md, err := admin.GetMetadata(&topic, false, 5000)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() != kafka.ErrNoError {
		return 0
	}
	return len(tm.Partitions)
}

func TestHeartbeatsFlowWithoutDataAndStayOutOfTheDataMetrics(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 2)
	cfg := mirrorConfig(t, src, dst, "    tasks: 3\n    heartbeat_interval: 200ms\n    refresh_interval: 1s\n")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	w, stop := startWorker(t, cfg, m)

	// Every task's heartbeats reach the target; the age stays small.
	harness.Eventually(t, 30*time.Second, "heartbeats of all 3 tasks in the target", func() error {
		if n := topicPartitions(t, dst, dstHeartbeats); n < 3 {
			return fmt.Errorf("%s has %d partitions", dstHeartbeats, n)
		}
		tasks := map[string]bool{}
		for _, msg := range readCommitted(t, dst, dstHeartbeats, int32(topicPartitions(t, dst, dstHeartbeats))) {
			var hb heartbeat
			if err := json.Unmarshal(msg.Value, &hb); err != nil {
				return fmt.Errorf("heartbeat value %q: %v", msg.Value, err)
			}
			if hb.V != 1 || hb.Source != srcCluster || hb.Pipeline != "eu" || string(msg.Key) != fmt.Sprintf("eu/%d", hb.Task) {
				return fmt.Errorf("heartbeat key %q value %s", msg.Key, msg.Value)
			}
			if o := headerValues(msg, HeaderOrigin); len(o) != 1 || o[0] != srcCluster {
				return fmt.Errorf("heartbeat without %s header: %v", HeaderOrigin, msg.Headers)
			}
			if d := msg.Timestamp.Sub(hb.Time); d < -time.Millisecond || d > time.Millisecond {
				return fmt.Errorf("heartbeat timestamp %v, value time %v", msg.Timestamp, hb.Time)
			}
			tasks[string(msg.Key)] = true
		}
		if len(tasks) != 3 {
			return fmt.Errorf("heartbeats from %v", tasks)
		}
		return nil
	})
	if n := topicPartitions(t, src, HeartbeatTopic); n != 3 {
		t.Errorf("source %s has %d partitions, want 3 (the task count)", HeartbeatTopic, n)
	}
	for range 5 {
		age, ok := m.HeartbeatAge.Value("eu")
		if !ok || age > 1.5 {
			t.Errorf("heartbeat age %v (series exists: %v), want < 1.5 s with 200 ms heartbeats", age, ok)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// Heartbeats are not user data: no records, bytes, latency or lag series.
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["topic"] == HeartbeatTopic {
				t.Errorf("%s has a series for %v", f.GetName(), labels)
			}
			switch f.GetName() {
			case "tributary_records_total", "tributary_bytes_total":
				if v := s.GetCounter().GetValue(); v != 0 {
					t.Errorf("%s%v = %v, want 0 without data", f.GetName(), labels, v)
				}
			case "tributary_replication_latency_seconds":
				if c := s.GetHistogram().GetSampleCount(); c != 0 {
					t.Errorf("latency histogram counted %d heartbeats", c)
				}
			case "tributary_mirrored_topics":
				if v := s.GetGauge().GetValue(); v != 1 {
					t.Errorf("tributary_mirrored_topics = %v, want 1 (orders; heartbeats do not count)", v)
				}
			case "tributary_heartbeat_age_seconds":
				if labels["pipeline"] != "eu" || s.GetGauge() == nil {
					t.Errorf("heartbeat age series %v %v", labels, s)
				}
			}
		}
	}
	parts := 0
	for _, st := range w.Status() {
		parts += st.Partitions
	}
	if parts != 2 {
		t.Errorf("tasks report %d partitions, want 2 (orders; heartbeat partitions are not counted)", parts)
	}

	// No task of the pipeline on the node: no series.
	stop()
	if age, ok := m.HeartbeatAge.Value("eu"); ok {
		t.Errorf("heartbeat age %v still reported after the worker stopped", age)
	}
}

func TestHeartbeatAgeGrowsWhenTheTargetIsStalled(t *testing.T) {
	t.Parallel()
	src := harness.KFake(t, kfake.SeedTopics(1, srcTopic))
	dstCluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dstCluster.Close)
	dst := strings.Join(dstCluster.ListenAddrs(), ",")
	cfg := mirrorConfig(t, src, dst, "    heartbeat_interval: 100ms\n    refresh_interval: 1s\n")
	m := metrics.New(prometheus.NewRegistry())
	started := time.Now()
	startWorker(t, cfg, m)
	harness.Eventually(t, 30*time.Second, "a fresh heartbeat", func() error {
		// Past the first second the age is only small when heartbeats arrive.
		if age, ok := m.HeartbeatAge.Value("eu"); !ok || age > 0.5 || time.Since(started) < 1500*time.Millisecond {
			return fmt.Errorf("age %v (exists %v)", age, ok)
		}
		return nil
	})
	// The target goes away: nothing commits any more while the heartbeats
	// keep being written to the source, and the age grows.
	dstCluster.Close()
	harness.Eventually(t, 30*time.Second, "the heartbeat age passing 3 s", func() error {
		if age, _ := m.HeartbeatAge.Value("eu"); age < 3 {
			return fmt.Errorf("age %v", age)
		}
		return nil
	})
}

func TestReadOnlySourceGetsNoHeartbeats(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 2)
	cfg := mirrorConfig(t, src, dst, "    refresh_interval: 1s\n")
	cfg.Kafka[srcCluster].ReadOnly = true
	cfg.Pipeline("eu").Heartbeats = nil // as the defaults leave it for a read_only source
	m := metrics.New(prometheus.NewRegistry())
	w, _ := startWorker(t, cfg, m)
	recs := makeRecords(0, 100, 2, nil)
	produce(t, src, recs)
	waitTasks(t, w, 100, 0)
	time.Sleep(time.Second)
	if n := topicPartitions(t, src, HeartbeatTopic); n != 0 {
		t.Errorf("read_only source has %s with %d partitions", HeartbeatTopic, n)
	}
	if n := topicPartitions(t, dst, dstHeartbeats); n != 0 {
		t.Errorf("target has %s with %d partitions", dstHeartbeats, n)
	}
	if age, ok := m.HeartbeatAge.Value("eu"); ok {
		t.Errorf("heartbeat age %v reported for a pipeline without heartbeats", age)
	}
}

func TestHeartbeatTopicGrowsToTheLargestTaskCount(t *testing.T) {
	t.Parallel()
	src := harness.KFake(t, kfake.SeedTopics(2, srcTopic), kfake.SeedTopics(1, HeartbeatTopic))
	dst := harness.KFake(t)
	cfg := mirrorConfig(t, src, dst, "    tasks: 2\n    heartbeat_interval: 200ms\n    refresh_interval: 1s\n"+`  - name: eu-wide
    source: {kafka: `+srcCluster+`}
    topics: {include: ['`+srcTopic+`']}
    rename: "wide.{topic}"
    tasks: 5
    heartbeat_interval: 200ms
    refresh_interval: 1s
`)
	m := metrics.New(prometheus.NewRegistry())
	startWorker(t, cfg, m)
	// The pipelines share the source topic; each mirrors its own heartbeats.
	harness.Eventually(t, 30*time.Second, "the heartbeat topic grown to 5 partitions and every task's heartbeats in its pipeline's target topic", func() error {
		if n := topicPartitions(t, src, HeartbeatTopic); n != 5 {
			return fmt.Errorf("%d partitions", n)
		}
		for topic, pipeline := range map[string]string{dstHeartbeats: "eu", "wide." + HeartbeatTopic: "eu-wide"} {
			n := topicPartitions(t, dst, topic)
			if n == 0 {
				return fmt.Errorf("no %s yet", topic)
			}
			tasks := map[string]bool{}
			for _, msg := range readCommitted(t, dst, topic, int32(n)) {
				if !isHeartbeatOf(pipeline, msg.Key) {
					t.Fatalf("%s holds heartbeat %q, want only pipeline %s's", topic, msg.Key, pipeline)
				}
				tasks[string(msg.Key)] = true
			}
			if want := map[string]int{"eu": 2, "eu-wide": 5}[pipeline]; len(tasks) != want {
				return fmt.Errorf("%s holds heartbeats of %v, want %d tasks", topic, tasks, want)
			}
			if age, ok := m.HeartbeatAge.Value(pipeline); !ok || age > 1 {
				return fmt.Errorf("pipeline %s: heartbeat age %v (exists %v)", pipeline, age, ok)
			}
		}
		return nil
	})
}

func TestHeartbeatKeysBelongToOnePipeline(t *testing.T) {
	for _, c := range []struct {
		pipeline, key string
		want          bool
	}{
		{"eu", "eu/0", true},
		{"eu", "eu/17", true},
		{"eu", "eu-payments/0", false},
		{"eu-payments", "eu/0", false},
		{"eu", "eu", false},
		{"eu", "", false},
		{"eu", "xeu/0", false},
	} {
		if got := isHeartbeatOf(c.pipeline, []byte(c.key)); got != c.want {
			t.Errorf("isHeartbeatOf(%q, %q) = %v, want %v", c.pipeline, c.key, got, c.want)
		}
	}
	if got := string(heartbeatKey("eu-payments", 3)); got != "eu-payments/3" {
		t.Errorf("heartbeatKey = %q", got)
	}
}

func TestEveryTaskOwnsAHeartbeatPartition(t *testing.T) {
	for tasks := 1; tasks <= 64; tasks++ {
		for _, extra := range []int{0, 1, 7} {
			n := tasks + extra
			owned := map[int]bool{}
			for p := int32(0); p < int32(n); p++ {
				owned[Owner(HeartbeatTopic, p, tasks)] = true
			}
			if len(owned) != tasks {
				t.Fatalf("%d partitions over %d tasks: only %d tasks own one", n, tasks, len(owned))
			}
		}
	}
}
