package replicator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/test/harness"
)

// Benchmarks of the transaction loop's hot path against a kfake target (the
// Kafka client is real librdkafka; only the cluster is in memory):
//
//	go test -run '^$' -bench . -benchmem ./replicator/
//
// Compare runs with benchstat (go test -count=10 ... > old.txt, then new.txt).

// recordLoop is a txLoop of one source partition "orders"/0 mirrored to
// "eu-west.orders"/0 on a kfake target, lineage headers on; src is a polled
// source record of 200 bytes with one header.
type recordLoop struct {
	*txLoop
	src    kafka.Message
	commit func() // ends the open batch
}

func newRecordLoop(tb testing.TB, eos bool) *recordLoop {
	tb.Helper()
	target := "eu-west.orders"
	dst := harness.KFake(tb, kfake.SeedTopics(1, target, CheckpointTopic))
	p := testPipeline(tb, "eu", 1)
	conf := &kafka.ConfigMap{"bootstrap.servers": dst, "linger.ms": 5, "log_level": 3,
		"go.delivery.report.fields": "none", "go.delivery.reports": !eos, "enable.idempotence": true}
	if eos {
		_ = conf.SetKey("transactional.id", "bench-"+strings.ReplaceAll(tb.Name(), "/", "-"))
	}
	prod, err := kafka.NewProducer(conf)
	if err != nil {
		tb.Fatal(err)
	}
	reports, delivered := collectReports(tb, prod)
	if eos {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := prod.InitTransactions(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	l := &txLoop{t: p.Task(0), prod: prod, eos: eos, reports: reports, delivered: delivered,
		sampler: newSampler(time.Second), quarantinedCtr: p.deps.Metrics.Records.WithLabelValues("eu", "quarantined")}
	ps := &partState{src: Partition{"orders", 0}, target: &target, topicHdr: []byte("orders"), partHdr: []byte("0")}
	l.parts = map[Partition]*partState{ps.src: ps}
	l.index()
	l.origin, l.target, l.lineage = []byte("eu-west"), []byte("central"), true
	topic := "orders"
	r := &recordLoop{txLoop: l}
	r.src = kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0},
		Key:            []byte("key-000000000001"),
		Value:          make([]byte, 184),
		Headers:        []kafka.Header{{Key: "trace", Value: []byte("0af7651916cd43dd")}},
		Timestamp:      time.Now(), TimestampType: kafka.TimestampCreateTime,
	}
	r.commit = func() {
		if !eos {
			if err := l.awaitAcks(30 * time.Second); err != nil {
				tb.Fatal(err)
			}
		}
		if err := l.commitBatch(context.Background()); err != nil {
			tb.Fatal(err)
		}
		l.counts, l.ts, l.offBuf = batchCounts{}, l.ts[:0], l.offBuf[:0]
	}
	return r
}

// next runs record on a fresh copy of the source record at offset off, as
// Poll would return it.
func (r *recordLoop) next(ctx context.Context, m *kafka.Message, off int64) error {
	*m = r.src
	m.TopicPartition.Offset = kafka.Offset(off)
	return r.record(ctx, m)
}

// BenchmarkRecord is the per-record path of the transaction loop on the
// bytes pipeline: headers, lineage, checks and Produce, with a commit every
// 5,000 records (timer stopped).
func BenchmarkRecord(b *testing.B) {
	for _, mode := range []struct {
		name string
		eos  bool
	}{{"exactly_once", true}, {"at_least_once", false}} {
		b.Run(mode.name, func(b *testing.B) {
			r := newRecordLoop(b, mode.eos)
			ctx := context.Background()
			var m kafka.Message
			b.ReportAllocs()
			b.SetBytes(int64(len(r.src.Key) + len(r.src.Value)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := r.next(ctx, &m, int64(i)); err != nil {
					b.Fatal(err)
				}
				if i%5000 == 4999 {
					b.StopTimer()
					r.commit()
					b.StartTimer()
				}
			}
			b.StopTimer()
			r.commit()
		})
	}
}

// TestRecordAllocatesNothingBeyondTheClient checks that the transaction
// loop's per-record path on the bytes pipeline allocates nothing of its own:
// per record it allocates what Producer.Produce of the finished record
// allocates, no more (confluent-kafka-go's own header copies).
func TestRecordAllocatesNothingBeyondTheClient(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := newRecordLoop(t, true)
	ctx := context.Background()
	var m kafka.Message
	off := int64(0)
	for ; off < 3000; off++ { // warm up: buffers grown
		if err := r.next(ctx, &m, off); err != nil {
			t.Fatal(err)
		}
	}
	perRecord := testing.AllocsPerRun(1000, func() {
		if err := r.next(ctx, &m, off); err != nil {
			t.Fatal(err)
		}
		off++
	})
	// The same finished record (5 headers) through Produce alone.
	final := m
	final.Headers = append([]kafka.Header(nil), m.Headers...)
	produceOnly := testing.AllocsPerRun(1000, func() {
		if err := r.prod.Produce(&final, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per record: %v (Produce alone: %v)", perRecord, produceOnly)
	if perRecord > produceOnly {
		t.Errorf("record allocates %v times per record, Produce alone %v: the loop allocates %v of its own", perRecord, produceOnly, perRecord-produceOnly)
	}
	r.commit()
}
