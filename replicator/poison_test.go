package replicator

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/test/harness"
)

// encodedBatchSize is the exact size of a record batch holding m alone, as
// Kafka's wire format (magic 2, uncompressed) encodes it.
func encodedBatchSize(m *kafka.Message) int {
	r := kmsg.Record{
		Attributes: 0, TimestampDelta64: 1_700_000_000_000, OffsetDelta: 0,
		Key: m.Key, Value: m.Value,
	}
	for _, h := range m.Headers {
		r.Headers = append(r.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
	}
	rec := r.AppendTo(nil)
	// AppendTo leaves out the record's own length prefix.
	rec = append(kbinVarint(int64(len(rec))), rec...)
	b := kmsg.RecordBatch{Magic: 2, NumRecords: 1, Records: rec}
	return len(b.AppendTo(nil))
}

func kbinVarint(v int64) []byte {
	u := uint64((v << 1) ^ (v >> 63))
	var out []byte
	for u >= 0x80 {
		out = append(out, byte(u)|0x80)
		u >>= 7
	}
	return append(out, byte(u))
}

func TestRecordBatchSizeNeverUndercountsTheWireFormat(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 300_000)
	for _, tt := range []struct {
		name string
		m    *kafka.Message
	}{
		{"an empty record", &kafka.Message{}},
		{"a 200-byte value and a key", &kafka.Message{Key: []byte("k-1"), Value: big[:200]}},
		{"a 300 kB value with the lineage headers", &kafka.Message{Key: []byte("vin-42"), Value: big, Headers: []kafka.Header{
			{Key: HeaderOrigin, Value: []byte("eu-west")}, {Key: HeaderOriginTopic, Value: []byte("payments")},
			{Key: HeaderOriginPartition, Value: []byte("11")}, {Key: HeaderOriginOffset, Value: []byte("123456789012")},
		}}},
		{"many small headers", &kafka.Message{Value: big[:10], Headers: func() []kafka.Header {
			var hs []kafka.Header
			for i := range 100 {
				hs = append(hs, kafka.Header{Key: "h" + strconv.Itoa(i), Value: []byte("v")})
			}
			return hs
		}()}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			est, exact := recordBatchSize(tt.m), encodedBatchSize(tt.m)
			if est < exact {
				t.Fatalf("recordBatchSize = %d, below the encoded %d: a record over the limit would be produced", est, exact)
			}
			// Never more than the largest varints can add.
			if slack := recordFixedBytes + headerFixedBytes*len(tt.m.Headers); est-exact > slack {
				t.Errorf("recordBatchSize = %d, encoded %d: more than %d bytes over", est, exact, slack)
			}
		})
	}
}

func TestProducerBatchSizeFitsTheSmallestLimit(t *testing.T) {
	for _, tt := range []struct {
		name         string
		limit, user  int
		want         int
		fitsLimitToo bool
	}{
		{name: "no known limit keeps librdkafka's default", want: defaultBatchSize},
		{name: "no known limit keeps the user's batch.size", user: 65536, want: 65536},
		{name: "a 100,000-byte topic gets smaller batches", limit: 100_000, want: 100_000 - compressionSlack(100_000), fitsLimitToo: true},
		{name: "a smaller user batch.size stays", limit: 100_000, user: 16384, want: 16384, fitsLimitToo: true},
		{name: "the broker default is above batch.size", limit: 1_048_588, want: defaultBatchSize, fitsLimitToo: true},
		{name: "a tiny limit still batches", limit: 1000, want: minBatchSize},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := producerBatchSize(tt.limit, tt.user)
			if got != tt.want {
				t.Fatalf("producerBatchSize(%d, %d) = %d, want %d", tt.limit, tt.user, got, tt.want)
			}
			if tt.fitsLimitToo && !fitsLimit(got, tt.limit) {
				t.Errorf("a full batch of %d bytes does not fit %d with compression slack", got, tt.limit)
			}
		})
	}
	if got := userBatchSize(map[string]string{"batch.size": " 4096"}); got != 4096 {
		t.Errorf("userBatchSize = %d", got)
	}
	if got := userBatchSize(map[string]string{"batch.size": "lots"}); got != 0 {
		t.Errorf("userBatchSize of garbage = %d, want 0 (librdkafka refuses it anyway)", got)
	}
}

func TestPoisonSuspectsAndSettling(t *testing.T) {
	a, b := Partition{"orders", 0}, Partition{"orders", 1}
	pz := &poison{suspects: map[Partition][2]int64{a: {10, 20}, b: {-1, 5}}, culprits: map[Partition]map[int64]culprit{a: {12: {}}}}
	for _, tt := range []struct {
		p    Partition
		off  int64
		want bool
	}{{a, 9, false}, {a, 10, true}, {a, 19, true}, {a, 20, false}, {b, 0, true}, {b, 4, true}, {b, 5, false}, {Partition{"x", 0}, 12, false}} {
		if got := pz.suspect(tt.p, tt.off); got != tt.want {
			t.Errorf("suspect(%v, %d) = %v, want %v", tt.p, tt.off, got, tt.want)
		}
	}
	if pz.settled(a, 15) {
		t.Fatal("settled while a has suspects left")
	}
	if pz.settled(a, 20) {
		t.Fatal("settled while b has suspects left")
	}
	if _, ok := pz.culprits[a]; ok {
		t.Error("a's culprits kept after a committed past them")
	}
	if !pz.settled(b, 5) {
		t.Error("not settled after every partition committed past its suspects")
	}
}

// refuseMarked makes cluster c refuse, with INVALID_RECORD and for good, every
// produce request that carries marker (in any partition's batch), as a broker
// refuses a record its validation rejects. It counts the refusals.
func refuseMarked(c *kfake.Cluster, marker []byte, refused *int) {
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		hit := false
		for _, tp := range req.Topics {
			for _, p := range tp.Partitions {
				if bytes.Contains(p.Records, marker) {
					hit = true
				}
			}
		}
		if !hit {
			return nil, nil, false
		}
		*refused++
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		resp.Version = req.Version
		for _, tp := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = tp.Topic, tp.TopicID
			for _, p := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.InvalidRecord.Code
				msg := "record refused by the test"
				rp.ErrorMessage = &msg
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
}

// A record the target refuses with a permanent error (here INVALID_RECORD,
// which no limit predicts) fails its whole batch; the task finds it by
// producing the batch's records one at a time and quarantines it, exactly
// once and in order, while every other record lands.
func TestWorkerQuarantinesARecordTheTargetRefusesForGood(t *testing.T) {
	for _, eos := range []bool{true, false} {
		t.Run(fmt.Sprintf("exactly_once=%v", eos), func(t *testing.T) {
			t.Parallel()
			src := harness.KFake(t, kfake.SeedTopics(2, srcTopic))
			dc, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(dc.Close)
			var refused int // only the cluster's control goroutine touches it until Close
			marker := []byte("POISON-RECORD")
			refuseMarked(dc, marker, &refused)
			dst := strings.Join(dc.ListenAddrs(), ",")
			extra := "    tasks: 2\n"
			if !eos {
				extra += "    exactly_once: false\n"
			}
			cfg := mirrorConfig(t, src, dst, extra)

			recs := makeRecords(0, 600, 2, nil)
			poisonAt := 301
			recs[poisonAt].value = append([]byte("value-"), marker...)
			produce(t, src, recs)
			m := metrics.New(prometheus.NewRegistry())
			w, stop := startWorker(t, cfg, m)
			harness.Eventually(t, 60*time.Second, "599 records replicated and 1 quarantined", func() error {
				r := counterValue(t, m.Records.WithLabelValues("eu", metrics.Replicated))
				q := counterValue(t, m.Quarantined.WithLabelValues("eu", ReasonProduceRejected))
				if q != 1 || (eos && r != 599) || r < 599 {
					return fmt.Errorf("replicated %v, quarantined %v", r, q)
				}
				return nil
			})
			for _, st := range w.Status() {
				if st.State != metrics.TaskRunning {
					t.Errorf("task %s is %s (%s), want running", st.ID, st.State, st.Error)
				}
			}
			stop()

			landed := append(append([]*srcRecord{}, recs[:poisonAt]...), recs[poisonAt+1:]...)
			checkMirrored(t, landed, readCommitted(t, dst, dstTopic, 2), !eos)
			qs := readCommitted(t, src, QuarantineTopic, 1)
			if len(qs) != 1 {
				t.Fatalf("%d records in the source's quarantine, want 1", len(qs))
			}
			want := recs[poisonAt]
			if k := string(qs[0].Key); k != srcTopic+"/"+strconv.Itoa(int(want.partition))+"/"+strconv.FormatInt(want.offset, 10) {
				t.Errorf("quarantined %s, want the poison record at %d/%d", k, want.partition, want.offset)
			}
			if !bytes.Equal(qs[0].Value, want.value) {
				t.Errorf("quarantined value %q, want the source's %q", qs[0].Value, want.value)
			}
			if e := headerValues(qs[0], HeaderError); len(e) != 1 || !strings.HasPrefix(e[0], ReasonProduceRejected+": target topic "+dstTopic+" refused the record: ") {
				t.Errorf("tributary-error = %q", e)
			}
			if got := counterValue(t, m.Records.WithLabelValues("eu", metrics.Quarantined)); got != 1 {
				t.Errorf("tributary_records_total{outcome=quarantined} = %v, want 1", got)
			}
			if refused < 2 {
				t.Errorf("the target refused %d requests: the batch and then the record alone expected", refused)
			}
		})
	}
}

// A target topic with a small max.message.bytes gets batches that fit it,
// and records that cannot fit are quarantined as too-large before they are
// produced (kfake, like Kafka, refuses any batch over the limit).
func TestWorkerKeepsBatchesWithinTheTargetTopicLimit(t *testing.T) {
	t.Parallel()
	src := harness.KFake(t, kfake.SeedTopics(2, srcTopic))
	dst := harness.KFake(t)
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": dst, "enable.metrics.push": false, "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: dstTopic, NumPartitions: 2, ReplicationFactor: 1,
		Config: map[string]string{"max.message.bytes": "20000"}}})
	cancel()
	admin.Close()
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("creating %s: %v %v", dstTopic, err, res)
	}
	// The central cluster owns the limit: without the exclude, the pipeline
	// would delete the override (the source topic is at the default).
	cfg := mirrorConfig(t, src, dst, "    tasks: 1\n    topic_configs: {exclude: [max.message.bytes]}\n")

	recs := makeRecords(0, 3000, 2, nil)
	var landed, tooLarge []*srcRecord
	for i, r := range recs {
		r.value = bytes.Repeat([]byte{byte('a' + i%26)}, 200)
		if i%500 == 250 {
			r.value = bytes.Repeat([]byte("L"), 30_000)
			tooLarge = append(tooLarge, r)
			continue
		}
		landed = append(landed, r)
	}
	produce(t, src, recs)
	m := metrics.New(prometheus.NewRegistry())
	w, stop := startWorker(t, cfg, m)
	harness.Eventually(t, 60*time.Second, "records replicated and quarantined", func() error {
		r := counterValue(t, m.Records.WithLabelValues("eu", metrics.Replicated))
		q := counterValue(t, m.Quarantined.WithLabelValues("eu", ReasonTooLarge))
		if int(r) != len(landed) || int(q) != len(tooLarge) {
			return fmt.Errorf("replicated %v, quarantined too-large %v", r, q)
		}
		return nil
	})
	for _, st := range w.Status() {
		if st.State != metrics.TaskRunning {
			t.Errorf("task %s is %s (%s), want running", st.ID, st.State, st.Error)
		}
	}
	stop()
	checkMirrored(t, landed, readCommitted(t, dst, dstTopic, 2), false)
	if got := counterValue(t, m.TaskRestarts.WithLabelValues("eu")); got != 0 {
		t.Errorf("tasks restarted %v times: a batch was refused", got)
	}
	if got := counterValue(t, m.Quarantined.WithLabelValues("eu", ReasonProduceRejected)); got != 0 {
		t.Errorf("produce-rejected = %v, want 0", got)
	}
	qs := readCommitted(t, src, QuarantineTopic, 1)
	if len(qs) != len(tooLarge) {
		t.Fatalf("%d records in the quarantine, want %d", len(qs), len(tooLarge))
	}
	for _, q := range qs {
		if e := headerValues(q, HeaderError); len(e) != 1 || !strings.HasPrefix(e[0], ReasonTooLarge+": ") || !strings.Contains(e[0], "max.message.bytes 20000 of target topic "+dstTopic) {
			t.Errorf("tributary-error = %q", e)
		}
		if len(q.Value) != 30_000 {
			t.Errorf("quarantined value of %d bytes, want the source's 30000", len(q.Value))
		}
	}
}

// A target topic whose max.message.bytes is lowered while it is mirrored:
// the first batch over the new limit is refused, which makes the pipeline
// read the limits again at once (its refresh_interval here is an hour); the
// refused batch's records are produced one at a time, the task restarts with
// batches that fit, and records over the new limit are quarantined. Nothing
// is lost, duplicated or reordered. The pipeline excludes max.message.bytes
// from the topic config sync, as the central cluster owns the limit here.
func TestWorkerFollowsALoweredTargetLimit(t *testing.T) {
	t.Parallel()
	src := harness.KFake(t, kfake.SeedTopics(2, srcTopic))
	dst := harness.KFake(t)
	cfg := mirrorConfig(t, src, dst, "    tasks: 1\n    refresh_interval: 1h\n    topic_configs: {exclude: [max.message.bytes]}\n")
	m := metrics.New(prometheus.NewRegistry())
	w, stop := startWorker(t, cfg, m)

	first := makeRecords(0, 1000, 2, nil)
	produce(t, src, first)
	waitTasks(t, w, 1000, 0)

	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": dst, "enable.metrics.push": false, "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	res, err := admin.IncrementalAlterConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: dstTopic,
		Config: []kafka.ConfigEntry{{Name: "max.message.bytes", Value: "20000", IncrementalOperation: kafka.AlterConfigOpTypeSet}}}})
	cancel()
	admin.Close()
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("lowering max.message.bytes of %s: %v %v", dstTopic, err, res)
	}

	second := makeRecords(1000, 3000, 2, nil)
	landed := append([]*srcRecord{}, first...)
	big := 0
	for i, r := range second {
		r.value = bytes.Repeat([]byte{byte('a' + i%26)}, 200)
		if i%1000 == 500 {
			r.value = bytes.Repeat([]byte("L"), 30_000)
			big++
			continue
		}
		landed = append(landed, r)
	}
	produce(t, src, second)
	harness.Eventually(t, 90*time.Second, "records replicated and quarantined", func() error {
		r := counterValue(t, m.Records.WithLabelValues("eu", metrics.Replicated))
		q := counterValue(t, m.Records.WithLabelValues("eu", metrics.Quarantined))
		if int(r) != len(landed) || int(q) != big {
			return fmt.Errorf("replicated %v, quarantined %v", r, q)
		}
		return nil
	})
	for _, st := range w.Status() {
		if st.State != metrics.TaskRunning {
			t.Errorf("task %s is %s (%s), want running", st.ID, st.State, st.Error)
		}
	}
	stop()
	checkMirrored(t, landed, readCommitted(t, dst, dstTopic, 2), false)
	tooLarge := counterValue(t, m.Quarantined.WithLabelValues("eu", ReasonTooLarge))
	if tooLarge != float64(big) {
		t.Errorf("tributary_quarantined_total{reason=too-large} = %v, want %d", tooLarge, big)
	}
	for _, q := range readCommitted(t, src, QuarantineTopic, 1) {
		if len(q.Value) != 30_000 {
			t.Errorf("quarantined a record of %d bytes, want only the 30,000-byte ones", len(q.Value))
		}
	}
}
