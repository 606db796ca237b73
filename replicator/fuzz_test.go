package replicator

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
)

// FuzzCheckpoint feeds arbitrary keys and values to the checkpoint decoders
// (values come from _tributary.checkpoints in the target, which anyone with
// write access to the topic can fill). A key parses only in the form
// checkpointKey writes; a value decodes only to an offset a task can have
// written, and encoding that offset decodes to it again. Seeds:
// testdata/fuzz/FuzzCheckpoint.
func FuzzCheckpoint(f *testing.F) {
	f.Add("eu-payments", []byte("eu-payments/orders.v1/3"), encodeCheckpoint("eu-payments/0", 42, "xFOLQHe/Tly4xR1BzHbssg"))
	f.Add("p", []byte("p/a/b/0"), []byte(`{"v":1,"offset":9223372036854775807,"task":"p/1"}`))
	f.Add("p", []byte("p/t/+1"), []byte(`null`))
	f.Add("p", []byte("p/t/01"), []byte(`{"offset":-1}`))
	f.Add("p", []byte("p//2147483648"), []byte(`{"v":1,"offset":1e3}`))
	f.Fuzz(func(t *testing.T, pipeline string, key, value []byte) {
		if pt, ok := parseCheckpointKey(pipeline, key); ok {
			if pt.Partition < 0 || pt.Topic == "" {
				t.Fatalf("key %q parsed to %+v", key, pt)
			}
			if back := checkpointKey(pipeline, pt); !bytes.Equal(back, key) {
				t.Fatalf("key %q parsed to %+v, which is written %q", key, pt, back)
			}
		}
		cp, err := decodeCheckpoint(value)
		if err != nil {
			if cp != (checkpoint{}) {
				t.Fatalf("error %v with checkpoint %+v", err, cp)
			}
			return
		}
		if cp.Offset < 0 || cp.V < 1 {
			t.Fatalf("value %q decoded to %+v", value, cp)
		}
		if back, err := decodeCheckpoint(encodeCheckpoint(cp.Task, cp.Offset, cp.TopicID)); err != nil || back.Offset != cp.Offset || back.TopicID != cp.TopicID || back.Task != cp.Task {
			t.Fatalf("checkpoint %+v does not survive encoding: %+v, %v", cp, back, err)
		}
	})
}

// FuzzOffsetSync feeds arbitrary values to the offset-sync decoder (values
// come from _tributary.offset-syncs in the target). What decodes has
// non-negative offsets and a version, and survives encoding. Seeds:
// testdata/fuzz/FuzzOffsetSync.
func FuzzOffsetSync(f *testing.F) {
	f.Add(encodeOffsetSync(offsetSync{V: 1, SourceOffset: 10, TargetTopic: "central.orders", TargetOffset: 7, At: 1700000000000, Task: "eu/0"}))
	f.Add([]byte(`{"v":1,"source_offset":-1,"target_topic":"x","target_offset":0}`))
	f.Add([]byte(`{"v":0}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, value []byte) {
		s, ok := decodeOffsetSync(value)
		if !ok {
			if s != (offsetSync{}) {
				t.Fatalf("refused value %q decoded to %+v", value, s)
			}
			return
		}
		if s.V < 1 || s.SourceOffset < 0 || s.TargetOffset < 0 {
			t.Fatalf("value %q decoded to %+v", value, s)
		}
		back, ok := decodeOffsetSync(encodeOffsetSync(s))
		if !ok || back != s {
			t.Fatalf("%+v does not survive encoding: %+v", s, back)
		}
	})
}

// FuzzLineage feeds arbitrary lineage headers of a target record to
// lineageOf, which TranslateGroup trusts to find a consumer group's position.
// A record counts as the job's own only when its headers name exactly the
// job's source topic and partition, and its source offset is non-negative.
// Seeds: testdata/fuzz/FuzzLineage.
func FuzzLineage(f *testing.F) {
	f.Add("orders", "3", "1200", "", true)
	f.Add("orders", "4294967299", "5", "", true) // partition 3 plus 2^32
	f.Add("orders", "+3", "-2", "", true)
	f.Add("orders", "3", "5", "us-kafka", false)
	f.Fuzz(func(t *testing.T, topic, part, offset, origin string, withOffset bool) {
		j := &translateJob{
			pc:      &config.Pipeline{Name: "eu"},
			src:     Partition{Topic: "orders", Partition: 3},
			foreign: map[string]bool{"us-kafka": true},
		}
		m := &kafka.Message{Headers: []kafka.Header{{Key: HeaderOriginTopic, Value: []byte(topic)}, {Key: HeaderOriginPartition, Value: []byte(part)}}}
		if withOffset {
			m.Headers = append(m.Headers, kafka.Header{Key: HeaderOriginOffset, Value: []byte(offset)})
		}
		if origin != "" {
			m.Headers = append(m.Headers, kafka.Header{Key: HeaderOrigin, Value: []byte(origin)})
		}
		off, mine, ok := lineageOf(m, j)
		if mine {
			n, err := strconv.ParseInt(part, 10, 64)
			if !ok || topic != "orders" || err != nil || n != 3 || j.foreign[origin] {
				t.Fatalf("headers topic=%q partition=%q origin=%q count as the job's own (orders/3)", topic, part, origin)
			}
			if want, err := strconv.ParseInt(offset, 10, 64); !withOffset || err != nil || off != want || off < 0 {
				t.Fatalf("headers offset=%q read as %d", offset, off)
			}
		}
		if ok && !mine && j.foreign[origin] && off != 0 {
			t.Fatalf("a foreign record has offset %d", off)
		}
	})
}

// TestCheckpointValuesNoTaskWrites: found by FuzzCheckpoint. JSON null, an
// object without a version and a negative offset decoded to offsets (0: the
// whole partition replayed; -1: librdkafka's end, records skipped), and
// "p/t/+1" or "p/t/01" parsed as partition 1's key.
func TestCheckpointValuesNoTaskWrites(t *testing.T) {
	for _, v := range []string{`null`, `{}`, `{"offset":5}`, `{"v":1,"offset":-1}`, `{"v":1,"offset":"5"}`, `[1]`} {
		if cp, err := decodeCheckpoint([]byte(v)); err == nil {
			t.Errorf("checkpoint %s decoded to %+v", v, cp)
		}
	}
	if cp, err := decodeCheckpoint(encodeCheckpoint("p/0", 77, "id")); err != nil || cp.Offset != 77 || cp.TopicID != "id" {
		t.Errorf("a written checkpoint decodes to %+v, %v", cp, err)
	}
	for _, k := range []string{"p/t/+1", "p/t/01", "p/t/-0", "p/t/ 1"} {
		if pt, ok := parseCheckpointKey("p", []byte(k)); ok {
			t.Errorf("key %q parsed to %+v", k, pt)
		}
	}
}

// TestLineagePartitionOverflow: found by FuzzLineage. A partition header of
// 4294967299 was read with Atoi and converted to int32: partition 3, so a
// record of another partition counted as the job's own.
func TestLineagePartitionOverflow(t *testing.T) {
	j := &translateJob{src: Partition{Topic: "orders", Partition: 3}}
	m := &kafka.Message{Headers: []kafka.Header{
		{Key: HeaderOriginTopic, Value: []byte("orders")},
		{Key: HeaderOriginPartition, Value: []byte("4294967299")},
		{Key: HeaderOriginOffset, Value: []byte("5")},
	}}
	if _, mine, _ := lineageOf(m, j); mine {
		t.Fatal("partition 4294967299 counts as partition 3")
	}
	m.Headers[2].Value = []byte("-2")
	if _, mine, ok := lineageOf(m, j); mine || ok {
		t.Fatal("a negative source offset counts as lineage")
	}
}
