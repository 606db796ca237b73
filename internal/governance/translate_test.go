package governance

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-dev/tributary/registry"
)

// translations is a pipeline's tributary_schema_translations_total, curried
// as the daemon hands it to NewTranslation.
func translations(reg prometheus.Registerer) *prometheus.CounterVec {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_schema_translations_total",
		Help: "Schema-id translations by pipeline and result.",
	}, []string{"pipeline", "result"})
	reg.MustRegister(vec)
	return vec.MustCurryWith(prometheus.Labels{"pipeline": "eu-customers"})
}

func TestTranslation(t *testing.T) {
	ctx := context.Background()
	src := newTestRegistry(t, registry.ServerOptions{})
	dst := newTestRegistry(t, registry.ServerOptions{})
	// Target ids start elsewhere than source ids, so a record whose id was not
	// rewritten shows.
	dst.register(t, "eu.audit-value", registry.Avro, "audit.avsc")
	srcID := src.register(t, "customers-value", registry.Avro, "customer.avsc")
	value := frame(t, srcID, "customer.avsc", customer{ID: "c-1", Email: "alice@example.com", Country: "GB"})
	body := value[5:]

	reg := prometheus.NewRegistry()
	tr := NewTranslation(registry.NewTranslator(src.client, dst.client, registry.TranslatorOptions{Type: registry.Avro}), translations(reg))

	// The target id is known once the first record registered the schema.
	targetID := func(t *testing.T) int32 {
		t.Helper()
		s, err := dst.client.SchemaByVersion(ctx, "eu.customers-value", 1)
		if err != nil {
			t.Fatalf("the target subject: %v", err)
		}
		if s.ID == srcID {
			t.Fatalf("source and target ids are both %d; the test proves nothing", srcID)
		}
		return int32(s.ID)
	}

	t.Run("a record's source schema id is rewritten to the target's", func(t *testing.T) {
		trace := kafka.Header{Key: "trace", Value: []byte("t-1")}
		rec := &Record{SourceTopic: "customers", TargetTopic: "eu.customers", Key: []byte("c-1"), Value: bytes.Clone(value), Headers: []kafka.Header{trace}}
		if err := tr.Transform(ctx, rec); err != nil {
			t.Fatal(err)
		}
		want := registry.AppendFrame(nil, registry.SchemaRef{ID: targetID(t)}, registry.Avro, body)
		if !bytes.Equal(rec.Value, want) {
			t.Errorf("value % x, want % x", rec.Value[:5], want[:5])
		}
		if string(rec.Key) != "c-1" || len(rec.Headers) != 1 || rec.Headers[0].Key != "trace" || string(rec.Headers[0].Value) != "t-1" {
			t.Errorf("key or headers changed: %q %v", rec.Key, rec.Headers)
		}
	})

	t.Run("a schema id carried in the __value_schema_id header is rewritten there", func(t *testing.T) {
		hdr := registry.AppendRef(nil, registry.SchemaRef{ID: int32(srcID)}, registry.Avro)
		rec := &Record{TargetTopic: "eu.customers", Value: body, Headers: []kafka.Header{
			{Key: "trace", Value: []byte("t-2")}, {Key: registry.ValueSchemaIDHeader, Value: hdr}}}
		if err := tr.Transform(ctx, rec); err != nil {
			t.Fatal(err)
		}
		want := registry.AppendRef(nil, registry.SchemaRef{ID: targetID(t)}, registry.Avro)
		if len(rec.Headers) != 2 || rec.Headers[0].Key != "trace" ||
			rec.Headers[1].Key != registry.ValueSchemaIDHeader || !bytes.Equal(rec.Headers[1].Value, want) {
			t.Errorf("headers %v, want trace and %s % x", rec.Headers, registry.ValueSchemaIDHeader, want)
		}
		if !bytes.Equal(rec.Value, body) {
			t.Error("the body changed")
		}
		if !bytes.Equal(hdr, registry.AppendRef(nil, registry.SchemaRef{ID: int32(srcID)}, registry.Avro)) {
			t.Error("the source record's header value was written to")
		}
	})

	t.Run("a tombstone passes", func(t *testing.T) {
		rec := &Record{TargetTopic: "eu.customers", Key: []byte("c-1")}
		if err := tr.Transform(ctx, rec); err != nil || rec.Value != nil || string(rec.Key) != "c-1" {
			t.Fatalf("err %v, record %+v", err, rec)
		}
	})

	rejections := []struct {
		name   string
		value  []byte
		reason string
	}{
		{"bytes that are not in the wire format are rejected with the registry's reason", []byte("plain text"), registry.ReasonNotWireFormat},
		{"a schema id the source registry does not know is rejected", registry.AppendFrame(nil, registry.SchemaRef{ID: 4242}, registry.Avro, body), registry.ReasonUnknownSchemaID},
	}
	for _, tt := range rejections {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{TargetTopic: "eu.customers", Value: tt.value}
			re := wantReject(t, tr.Transform(ctx, rec), tt.reason)
			if re.Msg == "" {
				t.Error("the rejection does not say why")
			}
			if !bytes.Equal(rec.Value, tt.value) {
				t.Error("a rejected record was changed")
			}
		})
	}

	t.Run("a target registry that is down is an outage, not a rejection", func(t *testing.T) {
		tr := NewTranslation(registry.NewTranslator(src.client, down(t), registry.TranslatorOptions{Type: registry.Avro}), translations(prometheus.NewRegistry()))
		rec := &Record{TargetTopic: "eu.customers", Value: value}
		err := tr.Transform(ctx, rec)
		wantOutage(t, err)
		if !registry.IsRetryable(err) {
			t.Errorf("err = %v, want an error the task retries", err)
		}
		if got := testutil.ToFloat64(tr.results.WithLabelValues("registry-unavailable")); got != 1 {
			t.Errorf("registry-unavailable counted %v times, want 1", got)
		}
	})

	t.Run("translations are counted by result", func(t *testing.T) {
		want := `
# HELP tributary_schema_translations_total Schema-id translations by pipeline and result.
# TYPE tributary_schema_translations_total counter
tributary_schema_translations_total{pipeline="eu-customers",result="not-wire-format"} 1
tributary_schema_translations_total{pipeline="eu-customers",result="translated"} 3
tributary_schema_translations_total{pipeline="eu-customers",result="unknown-schema-id"} 1
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tributary_schema_translations_total"); err != nil {
			t.Error(err)
		}
	})
}
