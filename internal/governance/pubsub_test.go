package governance

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
)

const telemetrySubject = "fleet.telemetry-value"

// telemetrySchema is the pipelines[].pubsub.schema of the tests: version 1
// for messages without a mapped revision, version 2 for revision rev-b, and
// version 7, which nobody registered, for rev-gone.
var telemetrySchema = &config.PubSubSchema{Subject: telemetrySubject, Version: 1, Revisions: map[string]int{"rev-b": 2, "rev-gone": 7}}

func pubsubJSON(t *testing.T, g *Masking, schema *config.PubSubSchema) *Step {
	t.Helper()
	p, err := g.PubSubJSON("fleet-telemetry", schema)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPubSubJSONWithoutSchema(t *testing.T) {
	g, reg := newMasking(t, nil)
	p := pubsubJSON(t, g, nil)
	if p.Validates() {
		t.Fatal("a pipeline without pubsub.schema validates")
	}
	tests := []struct {
		name   string
		value  string
		want   string // the masked value
		header string // the tributary-policy header; "" for none
		reject string
	}{
		{
			name:   "a field a rule names is masked by its path",
			value:  `{"vin": "WVW00001", "driver": {"name": "Alice Doe", "email": "alice@example.com"}}`,
			want:   `{"vin": "WVW00001", "driver": {"name": "", "email": "alice@example.com"}}`,
			header: "fleet-telemetry@4",
		},
		{
			name:  "a message no rule touches passes as it is",
			value: `{"vin": "WVW00002", "speed_kmh": 88}`,
			want:  `{"vin": "WVW00002", "speed_kmh": 88}`,
		},
		{
			name:   "a message that is not JSON is undecodable",
			value:  `{"vin": "WVW0`,
			reject: policy.ReasonUndecodable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{SourceTopic: "fleet-sub", Value: []byte(tt.value)}
			err := p.Transform(context.Background(), rec)
			if tt.reject != "" {
				wantReject(t, err, tt.reject)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(rec.Value) != tt.want {
				t.Errorf("masked %s, want %s", rec.Value, tt.want)
			}
			if h, _ := header(rec, HeaderPolicy); h != tt.header {
				t.Errorf("%s header = %q, want %q", HeaderPolicy, h, tt.header)
			}
		})
	}
	want := `
# HELP tributary_masked_fields_total Field values masked before landing, by pipeline, policy and action.
# TYPE tributary_masked_fields_total counter
tributary_masked_fields_total{action="redact",pipeline="fleet-telemetry",policy="fleet-telemetry"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tributary_masked_fields_total", "tributary_pubsub_schema_validations_total"); err != nil {
		t.Error(err)
	}

	t.Run("a node waiting for its bundle retries the message", func(t *testing.T) {
		g := NewMasking(MaskingOptions{WaitForBundle: true})
		err := pubsubJSON(t, g, nil).Transform(context.Background(), &Record{Value: []byte(`{}`)})
		if !errors.Is(err, ErrNoBundle) {
			t.Fatalf("err = %v, want ErrNoBundle", err)
		}
	})
	t.Run("a schema needs the target's registry", func(t *testing.T) {
		if _, err := NewMasking(MaskingOptions{}).PubSubJSON("fleet-telemetry", telemetrySchema); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestPubSubJSONWithSchema(t *testing.T) {
	// Version 2 requires a field version 1 does not know: not BACKWARD
	// compatible, as Pub/Sub schema revisions need not be.
	target := newTestRegistry(t, registry.ServerOptions{Compatibility: registry.None})
	target.register(t, telemetrySubject, registry.JSON, "telemetry-v1.json")
	target.register(t, telemetrySubject, registry.JSON, "telemetry-v2.json")
	g, reg := newMasking(t, target.client)
	p := pubsubJSON(t, g, telemetrySchema)
	if !p.Validates() {
		t.Fatal("a pipeline with pubsub.schema does not validate")
	}
	ctx := context.Background()
	revision := func(rev string) PubSubSchema {
		s, err := p.MapSchema(ctx, PubSubSchema{Name: "projects/p/schemas/telemetry", RevisionID: rev, Encoding: "JSON"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	tests := []struct {
		name   string
		schema PubSubSchema // the message's, as the bridge mapped it
		value  string
		want   string
		reject string
	}{
		{
			name:  "a valid message is masked by path and by the schema's PII tags",
			value: `{"vin":"WVW00001","speed_kmh":42,"driver":{"name":"Alice Doe","email":"alice@example.com"}}`,
			want:  `{"vin":"WVW00001","speed_kmh":42,"driver":{"name":"","email":"` + pseudonym("alice@example.com") + `"}}`,
		},
		{
			name:   "a message of a mapped revision is validated against that version",
			schema: revision("rev-b"),
			value:  `{"vin":"WVW00002","speed_kmh":42,"fuel_pct":55,"driver":{"email":"bob@example.com"}}`,
			want:   `{"vin":"WVW00002","speed_kmh":42,"fuel_pct":55,"driver":{"email":"` + pseudonym("bob@example.com") + `"}}`,
		},
		{
			name:   "a message missing what its revision's version requires is rejected",
			schema: revision("rev-b"),
			value:  `{"vin":"WVW00003","speed_kmh":42}`,
			reject: registry.ReasonSchemaInvalid,
		},
		{
			name:   "a message with a value of the wrong type is rejected",
			value:  `{"vin":"WVW00004","speed_kmh":"fast"}`,
			reject: registry.ReasonSchemaInvalid,
		},
		{
			name:   "a message that is not JSON is rejected",
			value:  `{"vin":"WVW0`,
			reject: registry.ReasonSchemaInvalid,
		},
		{
			name:   "a revision mapped to a version nobody registered is rejected",
			schema: revision("rev-gone"),
			value:  `{"vin":"WVW00005","speed_kmh":42}`,
			reject: registry.ReasonUnknownSubjectVersion,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{SourceTopic: "fleet-sub", Value: []byte(tt.value), Schema: tt.schema}
			err := p.Transform(ctx, rec)
			if tt.reject != "" {
				re := wantReject(t, err, tt.reject)
				if strings.Contains(re.Msg, "WVW") {
					t.Errorf("the rejection quotes the message: %q", re.Msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(rec.Value) != tt.want {
				t.Errorf("masked %s\nwant   %s", rec.Value, tt.want)
			}
			if h, _ := header(rec, HeaderPolicy); h != "fleet-telemetry@4" {
				t.Errorf("%s header = %q", HeaderPolicy, h)
			}
		})
	}

	t.Run("a registry that is down is an outage, counted neither valid nor invalid", func(t *testing.T) {
		g, reg := newMasking(t, down(t))
		wantOutage(t, pubsubJSON(t, g, telemetrySchema).Transform(ctx, &Record{Value: []byte(`{"vin":"WVW00006","speed_kmh":1}`)}))
		want := `
# HELP tributary_pubsub_schema_validations_total Pub/Sub messages checked against their JSON Schema subject, by pipeline and result (valid, invalid).
# TYPE tributary_pubsub_schema_validations_total counter
tributary_pubsub_schema_validations_total{pipeline="fleet-telemetry",result="invalid"} 0
tributary_pubsub_schema_validations_total{pipeline="fleet-telemetry",result="valid"} 0
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tributary_pubsub_schema_validations_total"); err != nil {
			t.Error(err)
		}
	})

	t.Run("validations are counted valid and invalid", func(t *testing.T) {
		want := `
# HELP tributary_pubsub_schema_validations_total Pub/Sub messages checked against their JSON Schema subject, by pipeline and result (valid, invalid).
# TYPE tributary_pubsub_schema_validations_total counter
tributary_pubsub_schema_validations_total{pipeline="fleet-telemetry",result="invalid"} 4
tributary_pubsub_schema_validations_total{pipeline="fleet-telemetry",result="valid"} 2
# HELP tributary_masked_fields_total Field values masked before landing, by pipeline, policy and action.
# TYPE tributary_masked_fields_total counter
tributary_masked_fields_total{action="hash",pipeline="fleet-telemetry",policy="fleet-telemetry"} 2
tributary_masked_fields_total{action="redact",pipeline="fleet-telemetry",policy="fleet-telemetry"} 1
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tributary_pubsub_schema_validations_total", "tributary_masked_fields_total"); err != nil {
			t.Error(err)
		}
	})
}

func TestPubSubJSONMapSchema(t *testing.T) {
	target := newTestRegistry(t, registry.ServerOptions{})
	g := NewMasking(MaskingOptions{Schemas: target.client})
	tests := []struct {
		name     string
		schema   *config.PubSubSchema
		revision string
		want     int // the subject version; 0 is the latest
	}{
		{"a mapped revision gets its version", telemetrySchema, "rev-b", 2},
		{"an unmapped revision gets the configured version", telemetrySchema, "rev-new", 1},
		{"a message without a revision gets the configured version", telemetrySchema, "", 1},
		{"without a configured version an unmapped revision gets the latest", &config.PubSubSchema{Subject: telemetrySubject}, "rev-new", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := g.PubSubJSON("fleet-telemetry", tt.schema)
			if err != nil {
				t.Fatal(err)
			}
			in := PubSubSchema{Name: "projects/p/schemas/telemetry", RevisionID: tt.revision, Encoding: "JSON"}
			got, err := p.MapSchema(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			want := in
			want.Subject, want.Version = telemetrySubject, tt.want
			if got != want {
				t.Errorf("mapped %+v, want %+v", got, want)
			}
		})
	}
}
