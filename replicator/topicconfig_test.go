package replicator

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/test/harness"
)

// described builds a DescribeConfigs result: key → value@source, where
// source is topic (DYNAMIC_TOPIC_CONFIG), static (STATIC_BROKER_CONFIG),
// broker (DYNAMIC_DEFAULT_BROKER_CONFIG) or default (DEFAULT_CONFIG).
func described(name string, entries map[string]string) kafka.ConfigResourceResult {
	sources := map[string]kafka.ConfigSource{
		"topic": kafka.ConfigSourceDynamicTopic, "static": kafka.ConfigSourceStaticBroker,
		"broker": kafka.ConfigSourceDynamicDefaultBroker, "default": kafka.ConfigSourceDefault,
	}
	r := kafka.ConfigResourceResult{Type: kafka.ResourceTopic, Name: name, Config: map[string]kafka.ConfigEntryResult{}}
	for k, vs := range entries {
		var v, src string
		for i := len(vs) - 1; i >= 0; i-- {
			if vs[i] == '@' {
				v, src = vs[:i], vs[i+1:]
				break
			}
		}
		s, ok := sources[src]
		if !ok {
			panic("bad source in " + vs)
		}
		r.Config[k] = kafka.ConfigEntryResult{Name: k, Value: v, Source: s, IsDefault: s == kafka.ConfigSourceDefault}
	}
	return r
}

func changesString(cs []kafka.ConfigEntry) []string {
	out := []string{}
	for _, c := range cs {
		if c.IncrementalOperation == kafka.AlterConfigOpTypeDelete {
			out = append(out, "DELETE "+c.Name)
			continue
		}
		out = append(out, fmt.Sprintf("SET %s=%s", c.Name, c.Value))
	}
	slices.Sort(out)
	return out
}

// The rule of the topic config sync: what the source sets (a topic override
// or a broker setting) is an override in the target; a setting at Kafka's
// default in the source is no override in the target; excluded settings and
// settings outside the mirrored set are never touched.
func TestTopicConfigChanges(t *testing.T) {
	for _, tc := range []struct {
		name     string
		exclude  string
		src, dst map[string]string
		want     []string
		created  map[string]string
	}{{
		name:    "in step: nothing to do",
		src:     map[string]string{"retention.ms": "3600000@topic", "cleanup.policy": "delete@default", "compression.type": "producer@default"},
		dst:     map[string]string{"retention.ms": "3600000@topic", "cleanup.policy": "delete@default", "compression.type": "producer@default"},
		want:    []string{},
		created: map[string]string{"retention.ms": "3600000"},
	}, {
		name:    "a changed and a new source override are set",
		src:     map[string]string{"retention.ms": "7200000@topic", "cleanup.policy": "compact@topic", "max.message.bytes": "2000000@topic"},
		dst:     map[string]string{"retention.ms": "3600000@topic", "cleanup.policy": "delete@default", "max.message.bytes": "1048588@default"},
		want:    []string{"SET cleanup.policy=compact", "SET max.message.bytes=2000000", "SET retention.ms=7200000"},
		created: map[string]string{"retention.ms": "7200000", "cleanup.policy": "compact", "max.message.bytes": "2000000"},
	}, {
		name:    "a source setting back at Kafka's default deletes the target's override",
		src:     map[string]string{"retention.ms": "604800000@default", "retention.bytes": "-1@default"},
		dst:     map[string]string{"retention.ms": "3600000@topic", "retention.bytes": "-1@default"},
		want:    []string{"DELETE retention.ms"},
		created: map[string]string{},
	}, {
		name:    "the source brokers' settings are the topic's: copied, also where the target's default has the same value",
		src:     map[string]string{"max.message.bytes": "10485760@static", "retention.ms": "86400000@broker"},
		dst:     map[string]string{"max.message.bytes": "1048588@default", "retention.ms": "86400000@broker"},
		want:    []string{"SET max.message.bytes=10485760", "SET retention.ms=86400000"},
		created: map[string]string{"max.message.bytes": "10485760", "retention.ms": "86400000"},
	}, {
		name:    "excluded settings are neither copied nor deleted",
		exclude: "[retention.ms, compression.type]",
		src:     map[string]string{"retention.ms": "7200000@topic", "compression.type": "producer@default", "cleanup.policy": "compact@topic"},
		dst:     map[string]string{"retention.ms": "1000@topic", "compression.type": "zstd@topic", "cleanup.policy": "delete@default"},
		want:    []string{"SET cleanup.policy=compact"},
		created: map[string]string{"cleanup.policy": "compact"},
	}, {
		name:    "settings outside the mirrored set are left alone",
		src:     map[string]string{"segment.bytes": "1000000@topic", "min.insync.replicas": "1@default"},
		dst:     map[string]string{"segment.bytes": "2000000@topic", "min.insync.replicas": "2@topic"},
		want:    []string{},
		created: map[string]string{},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.exclude != "" {
				extra = "    topic_configs: {exclude: " + tc.exclude + "}\n"
			}
			p, err := NewPipeline(mirrorConfig(t, "127.0.0.1:1", "127.0.0.1:2", extra), "eu", Deps{})
			if err != nil {
				t.Fatal(err)
			}
			src, dst := described(srcTopic, tc.src), described(dstTopic, tc.dst)
			if got := changesString(p.configChanges(src, dst)); !slices.Equal(got, tc.want) {
				t.Errorf("configChanges = %q, want %q", got, tc.want)
			}
			if got := p.mirroredConfigs(src); !maps.Equal(got, tc.created) {
				t.Errorf("a new target topic is created with %v, want %v", got, tc.created)
			}
		})
	}
}

// A sensitive source entry (no value) is never copied, nor does it delete
// anything.
func TestTopicConfigChangesSkipSensitive(t *testing.T) {
	p, err := NewPipeline(mirrorConfig(t, "127.0.0.1:1", "127.0.0.1:2", ""), "eu", Deps{})
	if err != nil {
		t.Fatal(err)
	}
	src := described(srcTopic, map[string]string{})
	src.Config["retention.ms"] = kafka.ConfigEntryResult{Name: "retention.ms", Source: kafka.ConfigSourceDynamicTopic, IsSensitive: true}
	dst := described(dstTopic, map[string]string{"retention.ms": "1000@topic"})
	if got := p.configChanges(src, dst); len(got) != 0 {
		t.Errorf("configChanges = %v, want none", changesString(got))
	}
}

// alterConfig changes one topic's settings: key → value sets, key → ""
// deletes.
func alterConfig(t *testing.T, bootstrap, topic string, change map[string]string) {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.metrics.push": false, "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var entries []kafka.ConfigEntry
	for k, v := range change {
		op := kafka.AlterConfigOpTypeSet
		if v == "" {
			op = kafka.AlterConfigOpTypeDelete
		}
		entries = append(entries, kafka.ConfigEntry{Name: k, Value: v, IncrementalOperation: op})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := admin.IncrementalAlterConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic, Config: entries}})
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("altering %s: %v %v", topic, err, res)
	}
}

// overrides returns the mirrored settings a topic carries as its own.
func overrides(bootstrap, topic string) (map[string]string, error) {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.metrics.push": false, "log_level": 3})
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := describeByName(ctx, admin, []string{topic})
	if err != nil {
		return nil, err
	}
	if r := res[topic]; r.Error.Code() != kafka.ErrNoError {
		return nil, r.Error
	}
	out := map[string]string{}
	for k, e := range res[topic].Config {
		if e.Source == kafka.ConfigSourceDynamicTopic && slices.Contains([]string{"cleanup.policy", "retention.ms", "retention.bytes", "max.message.bytes", "compression.type"}, k) {
			out[k] = e.Value
		}
	}
	return out, nil
}

func waitOverrides(t *testing.T, bootstrap, topic string, want map[string]string) {
	t.Helper()
	harness.Eventually(t, 15*time.Second, fmt.Sprintf("%s carries %v", topic, want), func() error {
		got, err := overrides(bootstrap, topic)
		if err != nil {
			return err
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("it carries %v", got)
		}
		return nil
	})
}

// A running pipeline (kfake clusters, refresh_interval 1s) keeps a target
// topic's mirrored settings in step with its source topic's: set, deleted,
// the excluded one left as the target has it; every change counted once.
func TestWorkerSyncsTopicConfigs(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 2)
	alterConfig(t, src, srcTopic, map[string]string{"retention.ms": "3600000", "compression.type": "lz4"})
	cfg := mirrorConfig(t, src, dst, "    refresh_interval: 1s\n    topic_configs: {exclude: [compression.type]}\n")
	m := metrics.New(prometheus.NewRegistry())
	_, stop := startWorker(t, cfg, m)
	defer stop()
	waitOverrides(t, dst, dstTopic, map[string]string{"retention.ms": "3600000"})

	alterConfig(t, dst, dstTopic, map[string]string{"compression.type": "zstd"}) // the central cluster's own
	alterConfig(t, src, srcTopic, map[string]string{"retention.ms": "", "cleanup.policy": "compact", "compression.type": "gzip"})
	waitOverrides(t, dst, dstTopic, map[string]string{"cleanup.policy": "compact", "compression.type": "zstd"})
	time.Sleep(1500 * time.Millisecond) // a refresh or two more: nothing to do
	if got := counterValue(t, m.TopicConfigChanges.WithLabelValues("eu")); got != 2 {
		t.Errorf("tributary_topic_config_changes_total = %v, want 2 (retention.ms deleted, cleanup.policy set)", got)
	}
	if got := counterValue(t, m.TopicConfigErrors.WithLabelValues("eu")); got != 0 {
		t.Errorf("tributary_topic_config_errors_total = %v, want 0", got)
	}
}
