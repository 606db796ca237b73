package replicator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/test/harness"
)

// alterOffsets commits offsets for a group without members.
func alterOffsets(t *testing.T, bootstrap, group, topic string, offsets map[int32]int64) {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.metrics.push": false, "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var tps []kafka.TopicPartition
	for p, off := range offsets {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(off)})
	}
	res, err := admin.AlterConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: tps}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range res.ConsumerGroupsTopicPartitions[0].Partitions {
		if tp.Error != nil {
			t.Fatal(tp.Error)
		}
	}
}

// The sync runs beside task 0 only, and stops (its age series goes) when
// task 0 leaves the node while the pipeline's other task stays.
func TestGroupSyncRunsWithTaskZeroAndStopsWithIt(t *testing.T) {
	src, dst := kfakePair(t, 2)
	cfg := mirrorConfig(t, src, dst, "    tasks: 2\n    commit_interval: 20ms\n    heartbeats: false\n    groups: {include: ['app-.*'], interval: 1s}\n")
	m := metrics.New(prometheus.NewRegistry())
	w, _ := startWorker(t, cfg, m)
	produce(t, src, makeRecords(0, 200, 2, nil))
	waitTasks(t, w, 200, 0)
	alterOffsets(t, src, "app-1", srcTopic, map[int32]int64{0: 40, 1: 60})

	harness.Eventually(t, 20*time.Second, "the group's offsets synced", func() error {
		if n := testutil.ToFloat64(m.GroupOffsetsSynced.WithLabelValues("eu")); n < 2 {
			return fmt.Errorf("%v offsets synced (errors %v)", n, testutil.ToFloat64(m.GroupSyncErrors.WithLabelValues("eu")))
		}
		return nil
	})
	if age, ok := m.GroupSyncAge.Value("eu"); !ok || age > 3 {
		t.Errorf("sync age %v (present %v), want < 3 s", age, ok)
	}

	if err := w.Assign([]TaskID{{"eu", 1}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.GroupSyncAge.Value("eu"); ok {
		t.Error("the sync age is still reported after task 0 left the node")
	}
	synced := testutil.ToFloat64(m.GroupOffsetsSynced.WithLabelValues("eu"))
	alterOffsets(t, src, "app-1", srcTopic, map[int32]int64{0: 90})
	time.Sleep(2500 * time.Millisecond) // two intervals: nothing may happen, so no condition to poll for
	if n := testutil.ToFloat64(m.GroupOffsetsSynced.WithLabelValues("eu")); n != synced {
		t.Errorf("offsets synced went from %v to %v without task 0 on the node", synced, n)
	}
}
