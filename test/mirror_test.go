package test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/test/harness"
)

const partitions = 6

func pipelineYAML(name, include string, extra string) string {
	return fmt.Sprintf(`  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    tasks: 3
    refresh_interval: 1s
%s`, name, include, extra)
}

// produceN writes n records spread round-robin over the partitions and returns
// how many went to each.
func produceN(t testing.TB, p *producer, topic string, from, n int, base time.Time, seq map[int32]int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		part := int32(i % partitions)
		m := sourceRecord(topic, part, seq[part], base)
		seq[part]++
		for {
			err := p.Produce(m, nil)
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
}

func TestMirror100kExactlyOnceByteIdentical(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "payments")
	createTopic(t, source, topic, partitions, nil)
	base := recentBase()
	seq := map[int32]int{}
	p := newProducer(t, source)
	produceN(t, p, topic, 0, 100_000, base, seq)
	flush(t, p)

	cfg, httpAddr := writeConfig(t, source, target, pipelineYAML(topic, topic, ""))
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)

	got := readAll(t, target, "regional."+topic, 100_000, 3*time.Minute)
	verifyExactlyOnce(t, got, seq, topic, "regional", base, true)

	m := d.metrics()
	for _, want := range []string{
		fmt.Sprintf(`tributary_records_total{outcome="replicated",pipeline="%s"} 100000`, topic),
		`tributary_replication_lag_records{partition="0",pipeline="` + topic + `",topic="` + topic + `"} 0`,
		`tributary_replication_latency_seconds_count{pipeline="` + topic + `"} 100000`,
	} {
		harness.Eventually(t, 10*time.Second, "metric "+want, func() error {
			if !strings.Contains(d.metrics(), want) {
				return fmt.Errorf("not in /metrics")
			}
			return nil
		})
	}
	_ = m

	err, took := d.stop()
	if err != nil {
		t.Fatalf("SIGTERM: exit %v after %s", err, took)
	}
	if took > 10*time.Second {
		t.Fatalf("SIGTERM: exit took %s, want < 10 s", took)
	}
}

func TestMirrorSurvivesSIGKILLExactlyOnce(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "stream")
	createTopic(t, source, topic, partitions, nil)
	base := recentBase()
	seq := map[int32]int{}
	const total = 150_000

	cfg, httpAddr := writeConfig(t, source, target, pipelineYAML(topic, topic, "    commit_interval: 50ms\n"))
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)

	// A steady stream while the node is killed and restarted.
	p := newProducer(t, source)
	var produced atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < total; i += 1000 {
			produceN(t, p, topic, i, 1000, base, seq)
			produced.Add(1000)
			time.Sleep(50 * time.Millisecond)
		}
		p.Flush(30000)
	}()

	dst := "regional." + topic
	harness.Eventually(t, 2*time.Minute, "a third of the stream mirrored", func() error {
		if n := countCommitted(t, target, dst); n < total/3 {
			return fmt.Errorf("%d mirrored", n)
		}
		return nil
	})
	d.kill()
	t.Logf("killed the node with SIGKILL after %d produced", produced.Load())
	time.Sleep(500 * time.Millisecond)
	d2 := startDaemon(t, cfg, httpAddr)
	d2.waitReady(90 * time.Second)
	wg.Wait()
	flush(t, p)

	got := readAll(t, target, dst, total, 3*time.Minute)
	verifyExactlyOnce(t, got, seq, topic, "regional", base, true)
}

// countCommitted counts committed records in a topic from a read_committed read.
func countCommitted(t testing.TB, bootstrap, topic string) int {
	n, err := partitionCount(bootstrap, topic)
	if err != nil {
		return 0
	}
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "count", "isolation.level": "read_committed",
		"enable.partition.eof": true, "enable.metrics.push": false, "fetch.queue.backoff.ms": 10,
	})
	if err != nil {
		return 0
	}
	defer c.Close()
	var tps []kafka.TopicPartition
	for p := 0; p < n; p++ {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: int32(p), Offset: kafka.OffsetBeginning})
	}
	c.Assign(tps)
	count, eof := 0, 0
	deadline := time.Now().Add(20 * time.Second)
	for eof < n && time.Now().Before(deadline) {
		switch c.Poll(100).(type) {
		case *kafka.Message:
			count++
		case kafka.PartitionEOF:
			eof++
		}
	}
	return count
}

func TestNewTopicAndPartitionIncreaseAreFollowed(t *testing.T) {
	source, target := harness.Brokers(t)
	prefix := harness.UniqueName(t, "fleet")
	cfg, httpAddr := writeConfig(t, source, target, pipelineYAML(prefix, prefix+`\..*`, ""))
	// A topic that exists before the node starts, so it is ready with something to do.
	createTopic(t, source, prefix+".first", 1, nil)
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)

	topic := prefix + ".late"
	createTopic(t, source, topic, 2, map[string]string{
		"retention.ms": "123456789", "retention.bytes": "987654321", "max.message.bytes": "2000000",
		"compression.type": "lz4", "cleanup.policy": "delete",
	})
	base := recentBase()
	p := newProducer(t, source)
	seq := map[int32]int{}
	for i := 0; i < 200; i++ {
		part := int32(i % 2)
		p.Produce(sourceRecord(topic, part, seq[part], base), nil)
		seq[part]++
	}
	flush(t, p)
	dst := "regional." + topic
	got := readAll(t, target, dst, 200, time.Minute)
	verifyExactlyOnce(t, got, seq, topic, "regional", base, true)
	tc := topicConfig(t, target, dst)
	for k, v := range map[string]string{"retention.ms": "123456789", "retention.bytes": "987654321", "max.message.bytes": "2000000", "compression.type": "lz4", "cleanup.policy": "delete"} {
		if tc[k] != v {
			t.Errorf("target topic %s: %s = %q, want the source's %q", dst, k, tc[k], v)
		}
	}

	// Grow the source topic: the target follows and the new partitions flow.
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": source, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.CreatePartitions(ctx, []kafka.PartitionsSpecification{{Topic: topic, IncreaseTo: 4}})
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("growing %s: %v %v", topic, err, res)
	}
	harness.Eventually(t, 30*time.Second, "target grows to 4 partitions", func() error {
		n, err := partitionCount(target, dst)
		if err != nil {
			return err
		}
		if n != 4 {
			return fmt.Errorf("%d partitions", n)
		}
		return nil
	})
	// A fresh producer: the first one's metadata still says two partitions.
	p2 := newProducer(t, source)
	for i := 0; i < 200; i++ {
		part := int32(i % 4)
		if err := p2.Produce(sourceRecord(topic, part, seq[part], base), nil); err != nil {
			t.Fatalf("producing to partition %d: %v", part, err)
		}
		seq[part]++
	}
	flush(t, p2)
	got = readAll(t, target, dst, 400, time.Minute)
	verifyExactlyOnce(t, got, seq, topic, "regional", base, true)
}

func TestSourceOutageNodeStaysUpAndResumes(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "outage")
	createTopic(t, source, topic, partitions, nil)
	base := recentBase()
	seq := map[int32]int{}
	p := newProducer(t, source)
	produceN(t, p, topic, 0, 3000, base, seq)
	flush(t, p)

	cfg, httpAddr := writeConfig(t, source, target, pipelineYAML(topic, topic, ""))
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)
	dst := "regional." + topic
	readAll(t, target, dst, 3000, time.Minute)

	harness.StopCluster(t, "source")
	restarted := false
	defer func() {
		if !restarted {
			harness.StartCluster(t, "source")
		}
	}()
	// The node stays up while its source is gone, and says why in its log.
	for i := 0; i < 10; i++ {
		time.Sleep(time.Second)
		select {
		case <-d.exited:
			t.Fatalf("node exited while the source was down: %v", d.err)
		default:
		}
		resp, err := http.Get("http://" + d.http + "/healthz")
		if err != nil {
			t.Fatalf("healthz while the source is down: %v", err)
		}
		resp.Body.Close()
	}
	harness.StartCluster(t, "source")
	restarted = true
	if out := d.output(); !strings.Contains(out, "level=WARN") && !strings.Contains(out, "level=ERROR") {
		t.Errorf("the node logged nothing about its unreachable source:\n%s", d.tail(2000))
	}

	p2 := newProducer(t, source)
	produceN(t, p2, topic, 3000, 3000, base, seq)
	flush(t, p2)
	got := readAll(t, target, dst, 6000, 2*time.Minute)
	verifyExactlyOnce(t, got, seq, topic, "regional", base, true)
}
