package test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/test/harness"
)

// alterTopicConfig applies IncrementalAlterConfigs to one topic: key → value
// sets, key → "" (with del) deletes.
func alterTopicConfig(t testing.TB, bootstrap, topic string, set map[string]string, del ...string) {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	var entries []kafka.ConfigEntry
	for k, v := range set {
		entries = append(entries, kafka.ConfigEntry{Name: k, Value: v, IncrementalOperation: kafka.AlterConfigOpTypeSet})
	}
	for _, k := range del {
		entries = append(entries, kafka.ConfigEntry{Name: k, IncrementalOperation: kafka.AlterConfigOpTypeDelete})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.IncrementalAlterConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic, Config: entries}})
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("altering the config of %s: %v %v", topic, err, res)
	}
}

// topicOverrides returns the settings a topic carries as its own overrides
// (DescribeConfigs source DYNAMIC_TOPIC_CONFIG).
func topicOverrides(t testing.TB, bootstrap, topic string) map[string]string {
	t.Helper()
	admin := newAdmin(t, bootstrap)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}})
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("describing %s: %v %v", topic, err, res)
	}
	out := map[string]string{}
	for k, e := range res[0].Config {
		if e.Source == kafka.ConfigSourceDynamicTopic {
			out[k] = e.Value
		}
	}
	return out
}

// wantOverrides waits until the mirrored settings of topic that it carries as
// its own are exactly want (a key absent from want: no override).
func wantOverrides(t testing.TB, bootstrap, topic string, timeout time.Duration, want map[string]string) {
	t.Helper()
	harness.Eventually(t, timeout, fmt.Sprintf("%s has the overrides %v", topic, want), func() error {
		got := topicOverrides(t, bootstrap, topic)
		for _, k := range []string{"cleanup.policy", "retention.ms", "retention.bytes", "max.message.bytes", "compression.type"} {
			if got[k] != want[k] {
				return fmt.Errorf("%s = %q, want %q (overrides %v)", k, got[k], want[k], got)
			}
		}
		return nil
	})
}

// TestTopicConfigsFollowTheSource: with refresh_interval 1s, settings
// changed on a source topic after its target was created reach the target
// within seconds (retention.ms, cleanup.policy, max.message.bytes set;
// retention.bytes deleted in the source, so deleted in the target); the
// excluded compression.type is neither copied at creation nor later, and the
// value set on the target by hand stays. The new max.message.bytes reaches
// the batch sizing (the pipeline logs the limit change), records go on
// flowing, and tributary_topic_config_changes_total counts the four changes.
func TestTopicConfigsFollowTheSource(t *testing.T) {
	source, target := harness.Brokers(t)
	prefix := harness.UniqueName(t, "cfgsync")
	topic := prefix + ".orders"
	dst := "regional." + topic
	createTopic(t, source, topic, 2, map[string]string{
		"retention.ms": "3600000", "retention.bytes": "50000000", "compression.type": "lz4",
	})
	cfg, httpAddr := writeConfig(t, source, target,
		pipelineYAML(prefix, prefix+`\..*`, "    topic_configs: {exclude: [compression.type]}\n"))
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)

	base := recentBase()
	p := newProducer(t, source)
	keyed := func(from, to int) {
		for i := from; i < to; i++ {
			m := sourceRecord(topic, int32(i%2), i, base)
			m.Key = []byte("order-" + strconv.Itoa(i)) // a compacted target needs keys
			if err := p.Produce(m, nil); err != nil {
				t.Fatal(err)
			}
		}
		flush(t, p)
	}
	keyed(0, 10)
	readAll(t, target, dst, 10, time.Minute)
	// Created with the source's settings but the excluded one.
	wantOverrides(t, target, dst, 10*time.Second, map[string]string{"retention.ms": "3600000", "retention.bytes": "50000000"})
	// The central cluster owns compression.type: set by hand, it stays.
	alterTopicConfig(t, target, dst, map[string]string{"compression.type": "zstd"})

	m := nodeMetrics{d: d, pipeline: prefix}
	if got := m.value(t, "tributary_topic_config_changes_total", "", ""); got != 0 {
		t.Fatalf("tributary_topic_config_changes_total = %v before any change of the source", got)
	}
	changed := time.Now()
	alterTopicConfig(t, source, topic, map[string]string{
		"retention.ms": "7200000", "cleanup.policy": "compact", "max.message.bytes": "2000000", "compression.type": "gzip",
	}, "retention.bytes")
	wantOverrides(t, target, dst, 10*time.Second, map[string]string{
		"retention.ms": "7200000", "cleanup.policy": "compact", "max.message.bytes": "2000000", "compression.type": "zstd",
	})
	t.Logf("the target followed in %v", time.Since(changed).Round(10*time.Millisecond))

	harness.Eventually(t, 10*time.Second, "the batch sizing reads the new limit", func() error {
		if want := "max_message_bytes=2000000 previous=1048588"; !strings.Contains(d.output(), want) {
			return fmt.Errorf("no %q in the node's log", want)
		}
		return nil
	})
	keyed(10, 20)
	readAll(t, target, dst, 20, time.Minute)
	// Several refreshes later: counted once each, no error.
	time.Sleep(2 * time.Second)
	if got := m.value(t, "tributary_topic_config_changes_total", "", ""); got != 4 {
		t.Errorf("tributary_topic_config_changes_total = %v, want 4 (3 set, 1 deleted)", got)
	}
	if got := m.value(t, "tributary_topic_config_errors_total", "", ""); got != 0 {
		t.Errorf("tributary_topic_config_errors_total = %v, want 0", got)
	}
	if got := topicOverrides(t, target, dst)["compression.type"]; got != "zstd" {
		t.Errorf("excluded compression.type = %q in the target, want the hand-set zstd", got)
	}
}
