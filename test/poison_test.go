package test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/test/harness"
)

// poisonPartitions is the partition count of the poison tests' topics.
const poisonPartitions = 3

// poisonValue is the value of record seq of a partition: 200 bytes, or big
// bytes when big > 0, deterministic so the target's copy can be checked.
func poisonValue(part int32, seq, big int) []byte {
	n := 200
	if big > 0 {
		n = big
	}
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(seq*31 + i*7 + int(part))
	}
	return v
}

// poisonSource writes n records per partition to topic with producer
// settings props (batch.size for a topic with a small limit); record seq of
// a partition has the size sizeOf(part, seq) returns (0: 200 bytes), and a
// timestamp six hours old where stale (nil: none) says so. It returns the
// offsets of the records sizeOf made big or stale made old.
func poisonSource(t *testing.T, bootstrap, topic string, n int, base time.Time, props kafka.ConfigMap, sizeOf func(part int32, seq int) int, stale func(part int32, seq int) bool) map[string]bool {
	t.Helper()
	tp := newProducerWith(t, bootstrap, props)
	big := map[string]bool{}
	for seq := 0; seq < n; seq++ {
		for part := int32(0); part < poisonPartitions; part++ {
			size := sizeOf(part, seq)
			if size > 0 {
				big[fmt.Sprintf("%d/%d", part, seq)] = true
			}
			m := &kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: part},
				Key:            []byte("k-" + strconv.Itoa(seq)),
				Value:          poisonValue(part, seq, size),
				Timestamp:      base.Add(time.Duration(seq) * time.Millisecond),
			}
			if stale != nil && stale(part, seq) {
				m.Timestamp = time.Now().Add(-6 * time.Hour)
				big[fmt.Sprintf("%d/%d", part, seq)] = true
			}
			for {
				err := tp.Produce(m, nil)
				if err == nil {
					break
				}
				if e, ok := err.(kafka.Error); ok && e.Code() == kafka.ErrQueueFull {
					tp.Flush(100)
					continue
				}
				t.Fatalf("producing: %v", err)
			}
		}
	}
	flush(t, tp)
	return big
}

// verifyPoisonTarget checks that the target holds every record of the source
// that is not in big exactly once, in order, byte-identical; and that the
// source's quarantine holds every record of big with the reason.
func verifyPoisonTarget(t *testing.T, source, target, srcTopic, dstTopic string, n int, big map[string]bool, sizeOf func(part int32, seq int) int, reason string) {
	t.Helper()
	want := poisonPartitions*n - len(big)
	got := readAll(t, target, dstTopic, want, 90*time.Second)
	total := 0
	for part := int32(0); part < poisonPartitions; part++ {
		recs := got[part]
		total += len(recs)
		i := 0
		for seq := 0; seq < n; seq++ {
			if big[fmt.Sprintf("%d/%d", part, seq)] {
				continue
			}
			if i >= len(recs) {
				t.Errorf("%s partition %d: source offset %d missing (target has %d records)", dstTopic, part, seq, len(recs))
				break
			}
			r := recs[i]
			i++
			off, _ := header(r.Headers, "tributary-origin-offset")
			if string(off) != strconv.Itoa(seq) {
				t.Errorf("%s partition %d: target record %d claims source offset %s, want %d (duplicate, gap or reorder)", dstTopic, part, i-1, off, seq)
				break
			}
			if !bytes.Equal(r.Value, poisonValue(part, seq, sizeOf(part, seq))) || string(r.Key) != "k-"+strconv.Itoa(seq) {
				t.Errorf("%s partition %d offset %d: key or value differs", dstTopic, part, seq)
			}
		}
		if i < len(recs) {
			t.Errorf("%s partition %d: %d records beyond the expected %d (duplicates)", dstTopic, part, len(recs)-i, i)
		}
	}
	if total != want {
		t.Errorf("%s: %d records in the target, want %d", dstTopic, total, want)
	}
	q := quarantinedRecords(t, source, srcTopic)
	for k := range big {
		if !strings.HasPrefix(q[k], reason+": ") {
			t.Errorf("%s %s: quarantine reason %q, want %s", srcTopic, k, q[k], reason)
		}
	}
	if len(q) != len(big) {
		t.Errorf("%s: %d records quarantined, want %d: %v", srcTopic, len(q), len(big), q)
	}
}

// TestPoisonRecordsNeverStallAPartition mirrors, in one node, three
// pipelines whose targets take at most 100,000 bytes per record batch: into a
// target topic created beforehand with max.message.bytes=100000, exactly once
// and at least once, 200-byte records with one of 300 kB every thousand; and
// from a source topic with that limit, whose target tributary creates with
// the same limit, a record that fits the source but not the target once the
// lineage headers are added. Before batches were sized to the limit nothing
// landed: every 1 MB batch was refused and the tasks restarted for ever.
func TestPoisonRecordsNeverStallAPartition(t *testing.T) {
	source, target := harness.Brokers(t)
	if binPath == "" {
		t.Skip("tributary binary not built: real brokers not configured")
	}
	const n = 1700 // per partition: 5,100 records in each of the first two pipelines
	base := recentBase()
	limit := map[string]string{"max.message.bytes": "100000"}
	oneInAThousand := func(part int32, seq int) int {
		if (int(part)+seq*poisonPartitions)%1000 == 999 {
			return 300_000
		}
		return 0
	}
	// Fits the source's 100,000 bytes, not with tributary's headers.
	nearLimit := func(part int32, seq int) int {
		if part == 1 && seq == 500 {
			return 99_870
		}
		return 0
	}

	eos, alo, small := harness.UniqueName(t, "eos"), harness.UniqueName(t, "alo"), harness.UniqueName(t, "small")
	for _, topic := range []string{eos, alo} {
		createTopic(t, source, topic, poisonPartitions, nil)
		createTopic(t, target, "regional."+topic, poisonPartitions, limit)
	}
	createTopic(t, source, small, poisonPartitions, limit)
	// A target topic that refuses records older than 3 hours, and two such
	// records: the broker refuses them (INVALID_TIMESTAMP, the rest of their
	// batch INVALID_DIFFERENT_RECORD), which no limit predicts.
	stale := harness.UniqueName(t, "stale")
	createTopic(t, source, stale, poisonPartitions, nil)
	createTopic(t, target, "regional."+stale, poisonPartitions, map[string]string{"message.timestamp.before.max.ms": "10800000"})
	const nStale = 300
	isStale := func(part int32, seq int) bool { return (part == 0 && seq == 100) || (part == 2 && seq == 250) }
	noneBig := func(int32, int) int { return 0 }

	bigEOS := poisonSource(t, source, eos, n, base, nil, oneInAThousand, nil)
	bigALO := poisonSource(t, source, alo, n, base, nil, oneInAThousand, nil)
	bigSmall := poisonSource(t, source, small, n, base, kafka.ConfigMap{"batch.size": 16384}, nearLimit, nil)
	old := poisonSource(t, source, stale, nStale, base, nil, noneBig, isStale)
	if len(bigEOS) != 5 || len(bigSmall) != 1 || len(old) != 2 {
		t.Fatalf("workload: %d, %d and %d special records", len(bigEOS), len(bigSmall), len(old))
	}

	// The limits of the target topics created beforehand are the central
	// cluster's: without the exclude, the topic config sync would delete
	// them (their source topics are at Kafka's default).
	owned := "    topic_configs: {exclude: [max.message.bytes]}\n"
	cfg, httpAddr := writeConfig(t, source, target,
		pipelineYAML(eos, eos, owned)+pipelineYAML(alo, alo, "    exactly_once: false\n"+owned)+pipelineYAML(small, small, "")+pipelineYAML(stale, stale, ""))
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)

	verifyPoisonTarget(t, source, target, eos, "regional."+eos, n, bigEOS, oneInAThousand, "too-large")
	verifyPoisonTarget(t, source, target, alo, "regional."+alo, n, bigALO, oneInAThousand, "too-large")
	verifyPoisonTarget(t, source, target, small, "regional."+small, n, bigSmall, nearLimit, "too-large")
	verifyPoisonTarget(t, source, target, stale, "regional."+stale, nStale, old, noneBig, "produce-rejected")
	harness.Eventually(t, 10*time.Second, "the stale pipeline's metric", func() error {
		want := fmt.Sprintf(`tributary_quarantined_total{pipeline="%s",reason="produce-rejected"} 2`, stale)
		if !strings.Contains(d.metrics(), want) {
			return fmt.Errorf("no %s", want)
		}
		return nil
	})
	if got := topicConfig(t, target, "regional."+small)["max.message.bytes"]; got != "100000" {
		t.Errorf("target topic created by tributary: max.message.bytes %q, want the source's 100000", got)
	}

	for pipeline, q := range map[string]int{eos: len(bigEOS), alo: len(bigALO), small: len(bigSmall)} {
		for _, want := range []string{
			fmt.Sprintf(`tributary_quarantined_total{pipeline="%s",reason="too-large"} %d`, pipeline, q),
			fmt.Sprintf(`tributary_quarantined_total{pipeline="%s",reason="produce-rejected"} 0`, pipeline),
			fmt.Sprintf(`tributary_records_total{outcome="quarantined",pipeline="%s"} %d`, pipeline, q),
			fmt.Sprintf(`tributary_task_restarts_total{pipeline="%s"} 0`, pipeline),
		} {
			harness.Eventually(t, 10*time.Second, "metric "+want, func() error {
				if !strings.Contains(d.metrics(), want) {
					return fmt.Errorf("not in /metrics:\n%s", grepLines(d.metrics(), pipeline))
				}
				return nil
			})
		}
	}
	d.waitReady(10 * time.Second) // every task still running
	logs := d.output()
	if c := strings.Count(logs, "Message size too large"); c > 0 {
		t.Errorf("the target refused %d batches for their size", c)
	}
	if !strings.Contains(logs, `msg="record quarantined"`) || !strings.Contains(logs, "reason=too-large") {
		t.Errorf("no warning for the quarantined records in the log")
	}
}
