package pubsubbridge

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/policy"
)

// planTransformer masks JSON records as the daemon does for Pub/Sub
// pipelines: the policy package's compiled plan, which rewrites only the
// touched bytes (hash two PII fields with HMAC-SHA256, redact one), and
// tributary-policy.
type planTransformer struct{ plan *policy.Plan }

func newPlanTransformer(tb testing.TB) planTransformer {
	set, err := policy.Parse("fleet.yaml", []byte(`policy: fleet-pii
version: 3
rules:
  - match: {field: vin}
    action: hash
  - match: {field: email}
    action: hash
  - match: {field: driver.name}
    action: redact
`))
	if err != nil {
		tb.Fatal(err)
	}
	plan, err := policy.NewCache(policy.WithHashKey([]byte("bench-hash-key-0123456789"))).Plan(set, "bench", "s", policy.Schema{Type: policy.JSON})
	if err != nil {
		tb.Fatal(err)
	}
	return planTransformer{plan: plan}
}

func (m planTransformer) Transform(_ context.Context, rec *governance.Record) error {
	out, res, err := m.plan.Apply(rec.Value)
	if err != nil {
		return governance.Reject(reasonUndecodable, "%v", err)
	}
	rec.Value = out
	if h := res.Header(); h != "" {
		rec.Headers = append(rec.Headers, kafka.Header{Key: "tributary-policy", Value: []byte(h)})
	}
	return nil
}

// benchMessage is a 500-byte telemetry JSON document with attributes.
func benchMessage(i int) *pubsub.Message {
	doc := fmt.Sprintf(`{"vin":"WVWZZZ1JZ%08d","email":"driver%d@example.com","driver":{"name":"Driver %d","licence":"B"},`+
		`"ts":"2026-03-01T12:00:00.%06dZ","lat":48.137154,"lon":11.576124,"speed_kmh":%d,"heading":%d,"odometer_km":%d,`+
		`"battery":{"soc":0.%02d,"temp_c":21.5,"voltage":398.2},"tyres":[2.4,2.4,2.5,2.5],"doors":"locked","pad":"`,
		i, i%1000, i%1000, i%1000000, i%180, i%360, 10000+i, i%100)
	doc += strings.Repeat("x", max(500-len(doc)-2, 0)) + `"}`
	return &pubsub.Message{
		ID:          strconv.Itoa(i),
		Data:        []byte(doc),
		PublishTime: time.Now(),
		OrderingKey: fmt.Sprintf("car-%02d", i%20),
		Attributes:  map[string]string{"vin": fmt.Sprintf("WVWZZZ1JZ%08d", i%5000), "model": "id3", "fw": "2.1.7"},
	}
}

type discardSink struct{}

func (discardSink) Produce(context.Context, []*kafka.Message) []error { return nil }

// BenchmarkBridgePath measures the bridge's own path, without the Pub/Sub
// server (pstest is the bottleneck there) and without Kafka: receive callback
// → dedup → JSON check → mapping → transformer → partitioning → batcher →
// no-op Sink → ack, from 256 concurrent callbacks as the client runs them.
//
//	go test -run '^$' -bench BridgePath -benchtime 200000x ./pubsubbridge/
func BenchmarkBridgePath(b *testing.B) {
	for _, tc := range []struct {
		name string
		tr   governance.Transformer
	}{
		{"mapping", nil},
		{"mapping+masking", newPlanTransformer(b)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			client, err := pubsub.NewClient(context.Background(), "bench", option.WithGRPCConn(conn)) // never used
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close()
			br, err := New(BridgeConfig{
				Pipeline: "bench", Source: "fleet", PubSub: config.PubSub{Project: "bench"},
				Subscription: "s", Topic: "fleet.telemetry", KeyAttribute: "vin", Format: "json",
			}, Deps{Sink: discardSink{}, Transformer: tc.tr, Client: client, Registerer: prometheus.NewRegistry()})
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			br.batch.parts.Store(12)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { br.batch.run(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			const callbacks = 256
			templates := make([]*pubsub.Message, 4096)
			for i := range templates {
				templates[i] = benchMessage(i)
			}
			b.SetBytes(500)
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for range callbacks {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= b.N {
							return
						}
						t := templates[i%len(templates)]
						br.handle(ctx, &pubsub.Message{ID: strconv.Itoa(i), Data: t.Data, Attributes: t.Attributes,
							PublishTime: t.PublishTime, OrderingKey: t.OrderingKey})
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			if got := testutil.ToFloat64(br.m.records.WithLabelValues(outcomeWritten)); int(got) != b.N {
				b.Fatalf("%v records written, want %d", got, b.N)
			}
		})
	}
}
