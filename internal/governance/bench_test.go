package governance

import (
	"context"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/registry"
)

// Benchmarks of the governance step on one record, every cache warm (the
// registries answer once, over HTTP, before the timer starts):
//
//	go test -run '^$' -bench . -benchmem ./internal/governance/
//
// Stages: the schema-id translation alone (a cache hit), masking alone (the
// compiled plan of a policy that hashes two PII fields), and both as a Kafka
// Avro pipeline runs them. Envelope parsing is registry's
// BenchmarkLocateReframe, the masking plans per format policy's
// BenchmarkMask{Avro,JSON,Proto}.
func BenchmarkStep(b *testing.B) {
	ctx := context.Background()
	src := newTestRegistry(b, registry.ServerOptions{})
	dst := newTestRegistry(b, registry.ServerOptions{})
	dst.register(b, "eu.audit-value", registry.Avro, "audit.avsc")
	srcID := src.register(b, "customers-value", registry.Avro, "customer.avsc")
	dstID := dst.register(b, "eu.customers-value", registry.Avro, "customer.avsc")
	alice := customer{ID: "c-1", Email: "alice@example.com", Phone: ptr("+44 20 7946 0000"), Country: "GB"}
	body := avroBody(b, "customer.avsc", alice)
	headers := []kafka.Header{{Key: "trace", Value: []byte("0af7651916cd43dd")}, {Key: "source", Value: []byte("web")}}

	g, _ := newMasking(b, dst.client)
	tr := NewTranslation(registry.NewTranslator(src.client, dst.client, registry.TranslatorOptions{Type: registry.Avro}), translations(prometheus.NewRegistry()))
	steps := []struct {
		name string
		t    Transformer
		ref  int // the schema id the record carries
	}{
		{"translate", tr, srcID},
		{"mask_avro", newStep(b, g, StepConfig{Pipeline: "eu-customers", Format: "avro"}), dstID},
		{"translate_mask_avro", newStep(b, g, StepConfig{Pipeline: "eu-customers", Format: "avro", Translation: tr}), srcID},
	}
	for _, st := range steps {
		b.Run(st.name, func(b *testing.B) {
			value := registry.AppendFrame(nil, registry.SchemaRef{ID: int32(st.ref)}, registry.Avro, body)
			rec := &Record{}
			run := func() {
				*rec = Record{SourceTopic: "customers", TargetTopic: "eu.customers", Key: []byte("c-1"), Value: value, Headers: headers}
				if err := st.t.Transform(ctx, rec); err != nil {
					b.Fatal(err)
				}
			}
			run() // caches warm
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				run()
			}
		})
	}
}
