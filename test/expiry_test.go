package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/test/harness"
)

// TestRecordsDeletedBeforeMirroringAreReportedNotSilentlySkipped deletes source
// records (as retention would) while the node is down: on restart its
// checkpoint lies below the log start. The loss cannot be undone, but it must be
// counted and logged, and mirroring continues from the log start.
func TestRecordsDeletedBeforeMirroringAreReportedNotSilentlySkipped(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "expiry")
	createTopic(t, source, topic, 1, nil)
	cfg, httpAddr := writeConfig(t, source, target, pipelineYAML(topic, topic, ""))
	base := recentBase()
	seq := map[int32]int{}
	p := newProducer(t, source)
	produceOne := func(n int) {
		for i := 0; i < n; i++ {
			if err := p.Produce(sourceRecord(topic, 0, seq[0], base), nil); err != nil {
				t.Fatal(err)
			}
			seq[0]++
		}
		flush(t, p)
	}
	produceOne(100)
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)
	dst := "regional." + topic
	readAll(t, target, dst, 100, time.Minute)
	if err, _ := d.stop(); err != nil {
		t.Fatal(err)
	}

	produceOne(100)
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": source, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tp := kafka.TopicPartition{Topic: &topic, Partition: 0, Offset: 150}
	if _, err := admin.DeleteRecords(ctx, []kafka.TopicPartition{tp}); err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}

	d2 := startDaemon(t, cfg, httpAddr)
	d2.waitReady(60 * time.Second)
	got := readAll(t, target, dst, 150, time.Minute)
	recs := got[0]
	if len(recs) != 150 {
		t.Fatalf("%d records in the target, want 100 before the gap and 50 after", len(recs))
	}
	for i, r := range recs {
		want := i
		if i >= 100 {
			want = i + 50
		}
		if off, _ := header(r.Headers, "tributary-origin-offset"); string(off) != fmt.Sprint(want) {
			t.Fatalf("target record %d is source offset %s, want %d", i, off, want)
		}
	}
	harness.Eventually(t, 10*time.Second, "the loss counted", func() error {
		if m := d2.metrics(); !strings.Contains(m, `tributary_source_records_expired_total{pipeline="`+topic+`"} 50`) {
			return fmt.Errorf("not counted")
		}
		return nil
	})
	if out := d2.output(); !strings.Contains(out, "source records deleted before they were mirrored") {
		t.Errorf("the loss was not logged")
	}
}
