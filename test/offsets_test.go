package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/test/harness"
)

// translation is the JSON `tributary offsets translate --json` prints.
type translation struct {
	Group   string `json:"group"`
	Offsets []struct {
		Pipeline      string `json:"pipeline"`
		SourceCluster string `json:"source_cluster"`
		SourceTopic   string `json:"source_topic"`
		Partition     int32  `json:"partition"`
		SourceOffset  int64  `json:"source_offset"`
		TargetTopic   string `json:"target_topic"`
		TargetOffset  int64  `json:"target_offset"`
		Exact         bool   `json:"exact"`
		Error         string `json:"error"`
	} `json:"offsets"`
}

// runTributary runs the binary and returns its stdout, stderr and exit code.
func runTributary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if binPath == "" {
		t.Skip("tributary binary not built: real brokers not configured")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running tributary %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// consumeAndCommit reads the first n records of a source partition with the
// consumer group and commits the offset after them (n = 0 commits offset 0:
// nothing consumed yet).
func consumeAndCommit(t *testing.T, bootstrap, group, topic string, part int32, n int) {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": false,
		"auto.offset.reset": "earliest", "enable.metrics.push": false, "fetch.queue.backoff.ms": 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: part, Offset: kafka.OffsetBeginning}}); err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	deadline := time.Now().Add(30 * time.Second)
	for read := 0; read < n; {
		if time.Now().After(deadline) {
			t.Fatalf("consuming %s/%d: %d of %d records in 30 s", topic, part, read, n)
		}
		m, ok := c.Poll(100).(*kafka.Message)
		if !ok || m.TopicPartition.Error != nil {
			continue
		}
		read++
		next = int64(m.TopicPartition.Offset) + 1
	}
	if _, err := c.CommitOffsets([]kafka.TopicPartition{{Topic: &topic, Partition: part, Offset: kafka.Offset(next)}}); err != nil {
		t.Fatalf("committing %s/%d at %d: %v", topic, part, next, err)
	}
}

// readFrom reads a target partition from an offset to its end.
func readFrom(t *testing.T, bootstrap, topic string, part int32, from int64) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "verify-" + topic, "isolation.level": "read_committed",
		"enable.auto.commit": false, "enable.partition.eof": true, "enable.metrics.push": false, "fetch.queue.backoff.ms": 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: part, Offset: kafka.Offset(from)}}); err != nil {
		t.Fatal(err)
	}
	var out []*kafka.Message
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error == nil {
				out = append(out, ev)
			}
		case kafka.PartitionEOF:
			return out
		}
	}
	t.Fatalf("reading %s/%d from %d: no end within 30 s", topic, part, from)
	return nil
}

// TestOffsetsTranslateGroupReadsNothingTwiceAndSkipsNothing mirrors 2,000
// records exactly once (in many transactions, so transaction markers shift the
// target offsets), lets a consumer group on the source consume a different
// part of each partition, and checks that consuming the target from the
// translated offsets gives exactly the source records from the committed
// offsets on.
func TestOffsetsTranslateGroupReadsNothingTwiceAndSkipsNothing(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "failover")
	const parts, perPart = 4, 500
	createTopic(t, source, topic, parts, nil)
	cfg, httpAddr := writeConfig(t, source, target, fmt.Sprintf(`  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    tasks: 2
    refresh_interval: 1s
    commit_interval: 50ms
    offset_sync_interval: 200ms
`, topic, topic))
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)

	// In rounds while the node runs: many transactions, many offset syncs.
	base := recentBase()
	p := newProducer(t, source)
	for i := 0; i < parts*perPart; i++ {
		part := int32(i % parts)
		if err := p.Produce(sourceRecord(topic, part, i/parts, base), nil); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			flush(t, p)
			time.Sleep(70 * time.Millisecond)
		}
	}
	flush(t, p)
	dst := "regional." + topic
	seq := map[int32]int{}
	for part := range int32(parts) {
		seq[part] = perPart
	}
	verifyExactlyOnce(t, readAll(t, target, dst, parts*perPart, 2*time.Minute), seq, topic, "regional", base, false)
	if t.Failed() {
		return
	}

	// The group consumed none of partition 0, all of partition 3.
	group := harness.UniqueName(t, "billing")
	consumed := map[int32]int{0: 0, 1: 137, 2: 321, 3: perPart}
	for part, n := range consumed {
		consumeAndCommit(t, source, group, topic, part, n)
	}

	var tr translation
	harness.Eventually(t, 30*time.Second, "a complete translation", func() error {
		out, errOut, code := runTributary(t, "offsets", "translate", "--config", cfg, "--group", group, "--json")
		if code != 0 {
			return fmt.Errorf("exit %d: %s%s", code, errOut, out)
		}
		tr = translation{}
		if err := json.Unmarshal([]byte(out), &tr); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		return nil
	})
	if tr.Group != group || len(tr.Offsets) != parts {
		t.Fatalf("translation %+v, want 4 partitions of group %s", tr, group)
	}
	shifted := false
	for _, o := range tr.Offsets {
		c := int64(consumed[o.Partition])
		if o.Pipeline != topic || o.SourceCluster != "regional" || o.SourceTopic != topic || o.TargetTopic != dst ||
			o.SourceOffset != c || !o.Exact || o.Error != "" {
			t.Errorf("partition %d: translation %+v", o.Partition, o)
			continue
		}
		if o.TargetOffset != c {
			shifted = true
		}
		// From the translated offset on: source offsets c, c+1, ..., 499, each
		// once, byte-identical to what was produced.
		recs := readFrom(t, target, dst, o.Partition, o.TargetOffset)
		want := c
		for _, m := range recs {
			off, _ := header(m.Headers, "tributary-origin-offset")
			got, err := strconv.ParseInt(string(off), 10, 64)
			if err != nil || got != want {
				t.Errorf("partition %d from target offset %d: record at %d is source offset %q, want %d (read twice or skipped)",
					o.Partition, o.TargetOffset, m.TopicPartition.Offset, off, want)
				break
			}
			if src := sourceRecord(topic, o.Partition, int(got), base); !bytes.Equal(src.Value, m.Value) {
				t.Errorf("partition %d source offset %d: value differs from the source record", o.Partition, got)
			}
			want++
		}
		if want != perPart {
			t.Errorf("partition %d: from target offset %d read source offsets %d..%d, want %d..%d", o.Partition, o.TargetOffset, c, want-1, c, perPart-1)
		}
		t.Logf("partition %d: source offset %d → target offset %d", o.Partition, c, o.TargetOffset)
	}
	if !shifted {
		t.Errorf("no target offset differs from its source offset: the transaction markers should shift them")
	}

	// The table form names the same offsets.
	out, errOut, code := runTributary(t, "offsets", "translate", "--config", cfg, "--group", group)
	if code != 0 || !strings.Contains(out, "TARGET OFFSET") || !strings.Contains(out, dst) {
		t.Errorf("table output: exit %d\n%s%s", code, out, errOut)
	}

	t.Run("apply commits the offsets in the target", func(t *testing.T) {
		out, errOut, code := runTributary(t, "offsets", "translate", "--config", cfg, "--group", group, "--apply")
		if code != 0 || !strings.Contains(out, "committed 4 offsets") {
			t.Fatalf("--apply: exit %d\n%s%s", code, out, errOut)
		}
		admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": target, "enable.metrics.push": false})
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group}})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int32]int64{}
		for _, tp := range res.ConsumerGroupsTopicPartitions[0].Partitions {
			if *tp.Topic == dst {
				got[tp.Partition] = int64(tp.Offset)
			}
		}
		for _, o := range tr.Offsets {
			if got[o.Partition] != o.TargetOffset {
				t.Errorf("target group offsets %v, want the translated %+v", got, tr.Offsets)
				break
			}
		}

		// With a consumer of the group active in the target, --apply refuses.
		c := joinGroup(t, target, group, dst, 60*time.Second)
		defer c.Close()
		out, errOut, code = runTributary(t, "offsets", "translate", "--config", cfg, "--group", group, "--apply")
		if code != 1 || !strings.Contains(errOut, "active members") {
			t.Errorf("--apply with an active member: exit %d, want 1 and a message about active members\n%s%s", code, out, errOut)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		_, errOut, code := runTributary(t, "offsets", "translate", "--config", cfg, "--group", harness.UniqueName(t, "nobody"))
		if code != 1 || !strings.Contains(errOut, "has no committed offsets") {
			t.Errorf("unknown group: exit %d, stderr %q; want 1 and a clear message", code, errOut)
		}
		other := harness.UniqueName(t, "unmirrored")
		createTopic(t, source, other, 1, nil)
		g := harness.UniqueName(t, "elsewhere")
		consumeAndCommit(t, source, g, other, 0, 0)
		_, errOut, code = runTributary(t, "offsets", "translate", "--config", cfg, "--group", g)
		if code != 1 || !strings.Contains(errOut, "only for topics not mirrored: "+other) {
			t.Errorf("group of unmirrored topics: exit %d, stderr %q; want 1 naming %s", code, errOut, other)
		}
		_, errOut, code = runTributary(t, "offsets", "translate", "--config", cfg)
		if code != 2 || !strings.Contains(errOut, "usage: tributary offsets translate") {
			t.Errorf("missing --group: exit %d, stderr %q; want 2 and the usage", code, errOut)
		}
		_, errOut, code = runTributary(t, "offsets", "translate", "--config", cfg, "--group", group, "--pipeline", "nope")
		if code != 2 || !strings.Contains(errOut, "--pipeline nope") {
			t.Errorf("unknown pipeline: exit %d, stderr %q; want 2", code, errOut)
		}
	})
}

// joinGroup returns a consumer that subscribed to topic in group on bootstrap
// and has been assigned partitions (an active member of the group), waiting
// at most within. It commits nothing; the caller closes it.
func joinGroup(t *testing.T, bootstrap, group, topic string, within time.Duration) *kafka.Consumer {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": group,
		"enable.auto.commit": false, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(topic, nil); err != nil {
		c.Close()
		t.Fatal(err)
	}
	harness.Eventually(t, within, "a member of group "+group+" in "+bootstrap, func() error {
		c.Poll(100)
		if a, err := c.Assignment(); err != nil || len(a) == 0 {
			return fmt.Errorf("assignment %v, %v", a, err)
		}
		return nil
	})
	return c
}
