package governance

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
)

// customer is a record of testdata/customer.avsc: email and phone are tagged PII.
type customer struct {
	ID      string  `avro:"id"`
	Email   string  `avro:"email"`
	Phone   *string `avro:"phone"`
	Country string  `avro:"country"`
}

type audit struct {
	Actor  string `avro:"actor"`
	Action string `avro:"action"`
}

func ptr[T any](v T) *T { return &v }

// avroTarget is a target registry holding the schemas of the Avro tests.
type avroTarget struct {
	*testRegistry
	customerID, auditID int
}

func newAvroTarget(t *testing.T) *avroTarget {
	t.Helper()
	r := &avroTarget{testRegistry: newTestRegistry(t, registry.ServerOptions{})}
	r.customerID = r.register(t, "eu.customers-value", registry.Avro, "customer.avsc")
	r.auditID = r.register(t, "eu.audit-value", registry.Avro, "audit.avsc")
	return r
}

// frame encodes v with the schema in testdata/file in the Confluent wire
// format: magic byte 0, the 4-byte schema id, the Avro body.
func frame(t *testing.T, id int, file string, v any) []byte {
	t.Helper()
	body, err := avro.Marshal(avro.MustParse(readTestdata(t, file)), v)
	if err != nil {
		t.Fatal(err)
	}
	return registry.AppendFrame(nil, registry.SchemaRef{ID: int32(id)}, registry.Avro, body)
}

func decodeCustomer(t *testing.T, value []byte) customer {
	t.Helper()
	_, n, err := registry.ReadRef(value, registry.Avro)
	if err != nil {
		t.Fatalf("masked value: %v", err)
	}
	var c customer
	if err := avro.Unmarshal(avro.MustParse(readTestdata(t, "customer.avsc")), value[n:], &c); err != nil {
		t.Fatalf("the masked value does not decode with its writer schema: %v", err)
	}
	return c
}

func kafkaMasking(t *testing.T, g *Masking, pipeline string, typ registry.SchemaType) Transformer {
	t.Helper()
	m, ok := g.Kafka(pipeline, typ)
	if !ok {
		t.Fatalf("no masking step for %s records", typ)
	}
	return m
}

func TestMaskingKafkaAvro(t *testing.T) {
	target := newAvroTarget(t)
	alice := customer{ID: "c-1", Email: "alice@example.com", Phone: ptr("+44 20 7946 0000"), Country: "GB"}
	aliceFrame := frame(t, target.customerID, "customer.avsc", alice)
	auditFrame := frame(t, target.auditID, "audit.avsc", audit{Actor: "ops-7", Action: "export"})

	tests := []struct {
		name     string
		pipeline string
		value    []byte
		// want is the masked record; nil when the value must pass as it is.
		want *customer
		// reject is the rejection's reason; "" when the record lands.
		reject string
	}{
		{
			name: "fields tagged PII are hashed and the others kept", pipeline: "eu-customers", value: aliceFrame,
			want: &customer{ID: "c-1", Email: pseudonym(alice.Email), Phone: ptr(pseudonym(*alice.Phone)), Country: "GB"},
		},
		{
			name: "a null PII field stays null", pipeline: "eu-customers",
			value: frame(t, target.customerID, "customer.avsc", customer{ID: "c-2", Email: "bob@example.com", Country: "FR"}),
			want:  &customer{ID: "c-2", Email: pseudonym("bob@example.com"), Country: "FR"},
		},
		{
			name: "a record without PII of a pipeline without policies passes as it is", pipeline: "eu-audit", value: auditFrame,
		},
		{
			name: "a PII-tagged field no rule covers rejects the record (fail closed)", pipeline: "eu-orders", value: aliceFrame,
			reject: policy.ReasonUnmatchedPII,
		},
		{
			name: "a PII-tagged record of a pipeline without policies is rejected too", pipeline: "eu-audit", value: aliceFrame,
			reject: policy.ReasonUnmatchedPII,
		},
		{
			name: "bytes that are not in the wire format are undecodable", pipeline: "eu-customers", value: []byte("plain text, no frame"),
			reject: policy.ReasonUndecodable,
		},
		{
			name: "a body that does not decode with its writer schema is undecodable", pipeline: "eu-customers",
			value:  registry.AppendFrame(nil, registry.SchemaRef{ID: int32(target.customerID)}, registry.Avro, []byte{0x06, 'c', '-'}),
			reject: policy.ReasonUndecodable,
		},
		{
			name: "a schema id the target registry does not know is undecodable", pipeline: "eu-customers",
			value:  registry.AppendFrame(nil, registry.SchemaRef{ID: 4242}, registry.Avro, aliceFrame[5:]),
			reject: policy.ReasonUndecodable,
		},
	}
	g, _ := newMasking(t, target.client)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := bytes.Clone(tt.value)
			trace := kafka.Header{Key: "trace", Value: []byte("t-1")}
			rec := &Record{SourceTopic: "customers", TargetTopic: "eu.customers", Value: tt.value, Headers: []kafka.Header{trace}}
			err := kafkaMasking(t, g, tt.pipeline, registry.Avro).Transform(context.Background(), rec)
			if !bytes.Equal(tt.value, in) {
				t.Fatal("the source record's bytes were written to")
			}
			if tt.reject != "" {
				re := wantReject(t, err, tt.reject)
				if strings.Contains(re.Msg, "alice") || strings.Contains(re.Msg, "7946") {
					t.Errorf("the rejection quotes the record: %q", re.Msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if !bytes.Equal(rec.Value, in) || len(rec.Headers) != 1 {
					t.Fatalf("value or headers changed: %q %v", rec.Value, rec.Headers)
				}
				return
			}
			if !bytes.Equal(rec.Value[:5], in[:5]) {
				t.Errorf("the frame changed: % x, want % x", rec.Value[:5], in[:5])
			}
			if got := decodeCustomer(t, rec.Value); !reflect.DeepEqual(got, *tt.want) {
				t.Errorf("masked %+v, want %+v", got, *tt.want)
			}
			if rec.Headers[0].Key != "trace" {
				t.Errorf("the record's own header was lost: %v", rec.Headers)
			}
			if h, ok := header(rec, HeaderPolicy); !ok || h != "customers-pii@3" {
				t.Errorf("%s header = %q (%v), want customers-pii@3", HeaderPolicy, h, ok)
			}
		})
	}

	t.Run("a tombstone passes", func(t *testing.T) {
		rec := &Record{SourceTopic: "customers", Key: []byte("c-1")}
		if err := kafkaMasking(t, g, "eu-customers", registry.Avro).Transform(context.Background(), rec); err != nil || rec.Value != nil || len(rec.Headers) != 0 {
			t.Fatalf("err %v, record %+v", err, rec)
		}
	})

	t.Run("masked fields are counted by pipeline, policy and action", func(t *testing.T) {
		g, reg := newMasking(t, target.client)
		m := kafkaMasking(t, g, "eu-customers", registry.Avro)
		for _, v := range [][]byte{aliceFrame, aliceFrame, frame(t, target.customerID, "customer.avsc", customer{ID: "c-3", Email: "carol@example.com"})} {
			if err := m.Transform(context.Background(), &Record{SourceTopic: "customers", Value: v}); err != nil {
				t.Fatal(err)
			}
		}
		// A rejected record masks nothing.
		_ = kafkaMasking(t, g, "eu-orders", registry.Avro).Transform(context.Background(), &Record{SourceTopic: "customers", Value: aliceFrame})
		want := `
# HELP tributary_masked_fields_total Field values masked before landing, by pipeline, policy and action.
# TYPE tributary_masked_fields_total counter
tributary_masked_fields_total{action="hash",pipeline="eu-customers",policy="customers-pii"} 5
`
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tributary_masked_fields_total"); err != nil {
			t.Error(err)
		}
	})

	t.Run("a node waiting for its bundle retries the record instead of rejecting it", func(t *testing.T) {
		g := NewMasking(MaskingOptions{Schemas: target.client, WaitForBundle: true, HashKey: hashKey})
		err := kafkaMasking(t, g, "eu-customers", registry.Avro).Transform(context.Background(), &Record{Value: aliceFrame})
		if !errors.Is(err, ErrNoBundle) {
			t.Fatalf("err = %v, want ErrNoBundle", err)
		}
		if _, ok := AsReject(err); ok {
			t.Fatalf("ErrNoBundle is a rejection: %v", err)
		}
	})

	t.Run("a node without a policy folder passes records without PII and refuses the rest", func(t *testing.T) {
		g := NewMasking(MaskingOptions{Schemas: target.client, HashKey: hashKey})
		m := kafkaMasking(t, g, "eu-customers", registry.Avro)
		rec := &Record{SourceTopic: "audit", Value: auditFrame}
		if err := m.Transform(context.Background(), rec); err != nil || !bytes.Equal(rec.Value, auditFrame) {
			t.Fatalf("a record without PII: err %v, value changed %v", err, !bytes.Equal(rec.Value, auditFrame))
		}
		wantReject(t, m.Transform(context.Background(), &Record{SourceTopic: "customers", Value: aliceFrame}), policy.ReasonUnmatchedPII)
	})

	t.Run("without a hash key, records a hash rule applies to are rejected", func(t *testing.T) {
		g := NewMasking(MaskingOptions{Schemas: target.client})
		g.Activate(policies(t))
		err := kafkaMasking(t, g, "eu-customers", registry.Avro).Transform(context.Background(), &Record{SourceTopic: "customers", Value: aliceFrame})
		re := wantReject(t, err, "policy-error")
		if !strings.Contains(re.Msg, "key") {
			t.Errorf("the rejection does not say a key is missing: %q", re.Msg)
		}
	})

	t.Run("a target registry that is down is an outage, not a rejection", func(t *testing.T) {
		g, _ := newMasking(t, down(t))
		wantOutage(t, kafkaMasking(t, g, "eu-customers", registry.Avro).Transform(context.Background(), &Record{Value: aliceFrame}))
	})
}

func TestMaskingKafkaJSON(t *testing.T) {
	target := newTestRegistry(t, registry.ServerOptions{})
	id := target.register(t, "eu.drivers-value", registry.JSON, "driver.json")
	g, reg := newMasking(t, target.client)
	m := kafkaMasking(t, g, "eu-drivers", registry.JSON)
	jsonFrame := func(doc string) []byte {
		return registry.AppendFrame(nil, registry.SchemaRef{ID: int32(id)}, registry.JSON, []byte(doc))
	}

	tests := []struct {
		name   string
		value  []byte
		want   []byte // the masked value
		reject string
	}{
		{
			name:  "a field tagged PII is emptied, spacing and key order kept",
			value: jsonFrame(`{"email": "dana@example.com",  "id": "d-7"}`),
			want:  jsonFrame(`{"email": "",  "id": "d-7"}`),
		},
		{
			name:   "a document that does not parse is undecodable",
			value:  jsonFrame(`{"email": "dana@exa`),
			reject: policy.ReasonUndecodable,
		},
		{
			name:   "a schema id the target registry does not know is undecodable",
			value:  registry.AppendFrame(nil, registry.SchemaRef{ID: 999}, registry.JSON, []byte(`{}`)),
			reject: policy.ReasonUndecodable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{SourceTopic: "drivers", Value: tt.value}
			err := m.Transform(context.Background(), rec)
			if tt.reject != "" {
				wantReject(t, err, tt.reject)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.Value, tt.want) {
				t.Errorf("masked %q, want %q", rec.Value, tt.want)
			}
			if h, _ := header(rec, HeaderPolicy); h != "drivers-pii@2" {
				t.Errorf("%s header = %q, want drivers-pii@2", HeaderPolicy, h)
			}
		})
	}
	want := `
# HELP tributary_masked_fields_total Field values masked before landing, by pipeline, policy and action.
# TYPE tributary_masked_fields_total counter
tributary_masked_fields_total{action="redact",pipeline="eu-drivers",policy="drivers-pii"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "tributary_masked_fields_total"); err != nil {
		t.Error(err)
	}
}

func TestMaskingKafkaTypes(t *testing.T) {
	target := newTestRegistry(t, registry.ServerOptions{})
	tests := []struct {
		name    string
		schemas bool
		typ     registry.SchemaType
		want    bool
	}{
		{"Avro pipelines are masked", true, registry.Avro, true},
		{"JSON Schema pipelines are masked", true, registry.JSON, true},
		{"Protobuf pipelines are masked", true, registry.Protobuf, true},
		{"without a target registry nothing is masked", false, registry.Avro, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := MaskingOptions{}
			if tt.schemas {
				opts.Schemas = target.client
			}
			if _, ok := NewMasking(opts).Kafka("p", tt.typ); ok != tt.want {
				t.Errorf("ok = %v, want %v", ok, tt.want)
			}
		})
	}
}
