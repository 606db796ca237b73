package pubsubbridge

import (
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/test/harness"
)

// TestMurmur2 uses the vectors of the Java client's UtilsTest.testMurmur2.
func TestMurmur2(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
	} {
		if got := murmur2([]byte(tc.in)); got != tc.want {
			t.Errorf("murmur2(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestKeyPartitionMatchesLibrdkafka checks the partitioner against
// librdkafka's murmur2_random (documented as Java-compatible) on a real
// produce: every key lands where keyPartition says.
func TestKeyPartitionMatchesLibrdkafka(t *testing.T) {
	t.Parallel()
	const partitions = 7
	topic := "keys"
	bootstrap := harness.KFake(t, kfake.SeedTopics(partitions, topic))
	sink := newKafkaSink(t, bootstrap)
	dr := make(chan kafka.Event, 300)
	for i := range 300 {
		key := []byte(fmt.Sprintf("VIN%05d-%d", i*7919, i))
		err := sink.p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            key, Value: []byte("v"), Opaque: key,
		}, dr)
		if err != nil {
			t.Fatal(err)
		}
	}
	timeout := time.After(30 * time.Second)
	for range 300 {
		select {
		case ev := <-dr:
			m := ev.(*kafka.Message)
			if m.TopicPartition.Error != nil {
				t.Fatal(m.TopicPartition.Error)
			}
			key := m.Opaque.([]byte)
			if want := keyPartition(key, partitions); m.TopicPartition.Partition != want {
				t.Errorf("key %q: librdkafka chose partition %d, keyPartition %d", key, m.TopicPartition.Partition, want)
			}
		case <-timeout:
			t.Fatal("no delivery reports within 30s")
		}
	}
}
