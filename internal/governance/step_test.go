package governance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
)

// member is a record of testdata/member.avsc. Its first field is an int, so a
// balance of 0 encodes as the byte 0x00 and a balance of -1 as 0x01: bare
// bodies that start like the wire format's magic bytes.
type member struct {
	Balance int    `avro:"balance"`
	Email   string `avro:"email"`
	Tier    string `avro:"tier"`
}

// avroBody is v encoded with the schema in testdata/file, without a frame.
func avroBody(t testing.TB, file string, v any) []byte {
	t.Helper()
	b, err := avro.Marshal(avro.MustParse(readTestdata(t, file)), v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// guid returns the GUID the registry gave schema id.
func (r *testRegistry) guid(t *testing.T, id int) [16]byte {
	t.Helper()
	resp, err := http.Get(r.srv.URL + "/schemas/ids/" + strconv.Itoa(id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		GUID string `json:"guid"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("schema %d: %v", id, err)
	}
	g, err := registry.ParseGUID(out.GUID)
	if err != nil {
		t.Fatalf("schema %d: %v", id, err)
	}
	return g
}

// idRef and guidRef are __value_schema_id header values.
func idRef(id int) []byte {
	return registry.AppendRef(nil, registry.SchemaRef{ID: int32(id)}, registry.Avro)
}

func guidRef(g [16]byte) []byte {
	return registry.AppendRef(nil, registry.SchemaRef{Magic: registry.MagicGUID, GUID: g}, registry.Avro)
}

func valueSchemaHeader(v []byte) kafka.Header {
	return kafka.Header{Key: registry.ValueSchemaIDHeader, Value: v}
}

func newStep(t testing.TB, g *Masking, c StepConfig) *Step {
	t.Helper()
	s, err := g.Step(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cloneHeaders copies headers and their values, to show later that the source
// record's were not written to.
func cloneHeaders(hs []kafka.Header) []kafka.Header {
	if hs == nil {
		return nil
	}
	out := make([]kafka.Header, len(hs))
	for i, h := range hs {
		out[i] = kafka.Header{Key: h.Key, Value: bytes.Clone(h.Value)}
	}
	return out
}

// TestStepHeaderSchemaID covers values whose schema reference travels in the
// __value_schema_id header (Confluent 8.x serializers): the value is then a
// bare Avro body, which may well start with 0x00 or 0x01 and so look like the
// wire format. The header's schema must be the one masking reads.
func TestStepHeaderSchemaID(t *testing.T) {
	target := newTestRegistry(t, registry.ServerOptions{})
	target.register(t, "eu.audit-value", registry.Avro, "audit.avsc") // so that no id is 0 or 1 by chance
	id := target.register(t, "eu.members-value", registry.Avro, "member.avsc")
	guid := target.guid(t, id)

	zero := member{Balance: 0, Email: "alice@example.com", Tier: "gold"}
	minus := member{Balance: -1, Email: "bob.with.a.long.address@example.com", Tier: "silver"}
	zeroBody, minusBody := avroBody(t, "member.avsc", zero), avroBody(t, "member.avsc", minus)
	if zeroBody[0] != 0x00 || minusBody[0] != 0x01 || len(minusBody) < 17 {
		t.Fatalf("the bodies start % x and % x (%d bytes); the test proves nothing", zeroBody[:1], minusBody[:1], len(minusBody))
	}
	masked := func(m member) *member { m.Email = pseudonym(m.Email); return &m }
	var unknownGUID [16]byte
	unknownGUID[15] = 7

	tests := []struct {
		name    string
		value   []byte
		headers []kafka.Header
		want    *member // the masked record
		reject  string
	}{
		{
			name:  "a bare body starting with 0x00 is masked with the schema the header names by id",
			value: zeroBody, headers: []kafka.Header{valueSchemaHeader(idRef(id))}, want: masked(zero),
		},
		{
			name:  "a bare body starting with 0x01 is masked with the schema the header names by id",
			value: minusBody, headers: []kafka.Header{valueSchemaHeader(idRef(id))}, want: masked(minus),
		},
		{
			name:  "a bare body starting with 0x00 is masked with the schema the header names by GUID",
			value: zeroBody, headers: []kafka.Header{valueSchemaHeader(guidRef(guid))}, want: masked(zero),
		},
		{
			name:  "a bare body starting with 0x01 is masked with the schema the header names by GUID",
			value: minusBody, headers: []kafka.Header{{Key: "trace", Value: []byte("t-1")}, valueSchemaHeader(guidRef(guid))}, want: masked(minus),
		},
		{
			name:  "a header naming an id the target registry does not know is undecodable",
			value: zeroBody, headers: []kafka.Header{valueSchemaHeader(idRef(4242))}, reject: policy.ReasonUndecodable,
		},
		{
			name:  "a header naming a GUID the target registry does not know is undecodable",
			value: zeroBody, headers: []kafka.Header{valueSchemaHeader(guidRef(unknownGUID))}, reject: policy.ReasonUndecodable,
		},
		{
			name:  "a header cut short is undecodable",
			value: zeroBody, headers: []kafka.Header{valueSchemaHeader([]byte{0x00, 0x00, 0x01})}, reject: policy.ReasonUndecodable,
		},
		{
			name:  "two __value_schema_id headers are undecodable",
			value: zeroBody, headers: []kafka.Header{valueSchemaHeader(idRef(id)), valueSchemaHeader(idRef(id))}, reject: policy.ReasonUndecodable,
		},
		{
			name:   "a value with neither the wire format nor a header is undecodable",
			value:  avroBody(t, "member.avsc", member{Balance: 3, Email: "carol@example.com"}),
			reject: policy.ReasonUndecodable,
		},
		{
			name: "an empty value without a header is undecodable", value: []byte{}, reject: policy.ReasonUndecodable,
		},
		{
			name:   "without its header a bare body starting with 0x01 reads as an unknown GUID and is rejected, never passed",
			value:  minusBody,
			reject: policy.ReasonUndecodable,
		},
	}
	g, _ := newMasking(t, target.client)
	s := newStep(t, g, StepConfig{Pipeline: "eu-customers", Format: "avro"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, inHeaders := bytes.Clone(tt.value), cloneHeaders(tt.headers)
			rec := &Record{SourceTopic: "members", TargetTopic: "eu.members", Value: tt.value, Headers: tt.headers}
			err := s.Transform(context.Background(), rec)
			if !bytes.Equal(tt.value, in) || !reflect.DeepEqual(tt.headers, inHeaders) {
				t.Fatal("the source record's bytes were written to")
			}
			if tt.reject != "" {
				re := wantReject(t, err, tt.reject)
				if strings.Contains(re.Msg, "example.com") {
					t.Errorf("the rejection quotes the record: %q", re.Msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got member
			if err := avro.Unmarshal(avro.MustParse(readTestdata(t, "member.avsc")), rec.Value, &got); err != nil {
				t.Fatalf("the masked value does not decode with the header's schema: %v", err)
			}
			if got != *tt.want {
				t.Errorf("masked %+v, want %+v", got, *tt.want)
			}
			if !reflect.DeepEqual(rec.Headers[:len(inHeaders)], inHeaders) {
				t.Errorf("the record's headers changed: %v, want %v first", rec.Headers, inHeaders)
			}
			if h, ok := header(rec, HeaderPolicy); !ok || h != "customers-pii@3" {
				t.Errorf("%s header = %q (%v), want customers-pii@3", HeaderPolicy, h, ok)
			}
		})
	}
}

// TestStepTranslatesAndMasks runs a Kafka pipeline's step with a Translation:
// one Transform rewrites the source schema reference into the target's and
// masks the value with the schema it now names in the target registry.
func TestStepTranslatesAndMasks(t *testing.T) {
	ctx := context.Background()
	src := newTestRegistry(t, registry.ServerOptions{})
	dst := newTestRegistry(t, registry.ServerOptions{})
	// Target ids start elsewhere than source ids: masking with the source id
	// in the target registry would read the wrong schema.
	dst.register(t, "eu.audit-value", registry.Avro, "audit.avsc")
	srcID := src.register(t, "customers-value", registry.Avro, "customer.avsc")
	srcGUID := src.guid(t, srcID)
	alice := customer{ID: "c-1", Email: "alice@example.com", Phone: ptr("+44 20 7946 0000"), Country: "GB"}
	body := avroBody(t, "customer.avsc", alice)
	want := customer{ID: "c-1", Email: pseudonym(alice.Email), Phone: ptr(pseudonym(*alice.Phone)), Country: "GB"}

	g, _ := newMasking(t, dst.client)
	tr := NewTranslation(registry.NewTranslator(src.client, dst.client, registry.TranslatorOptions{Type: registry.Avro}), translations(prometheus.NewRegistry()))
	s := newStep(t, g, StepConfig{Pipeline: "eu-customers", Format: "avro", Translation: tr})

	tests := []struct {
		name     string
		value    []byte
		headers  []kafka.Header
		inHeader bool // the reference stays in the __value_schema_id header
		reject   string
	}{
		{
			name:  "a record in the source's wire format is translated and masked",
			value: registry.AppendFrame(nil, registry.SchemaRef{ID: int32(srcID)}, registry.Avro, body),
		},
		{
			name:  "a record whose header names the source schema id is translated there and masked",
			value: body, headers: []kafka.Header{valueSchemaHeader(idRef(srcID))}, inHeader: true,
		},
		{
			name:  "a record whose header names the source schema GUID gets the target id there and is masked",
			value: body, headers: []kafka.Header{valueSchemaHeader(guidRef(srcGUID))}, inHeader: true,
		},
		{
			name:   "a schema id the source registry does not know is rejected before masking",
			value:  registry.AppendFrame(nil, registry.SchemaRef{ID: 4242}, registry.Avro, body),
			reject: registry.ReasonUnknownSchemaID,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{SourceTopic: "customers", TargetTopic: "eu.customers", Value: bytes.Clone(tt.value), Headers: cloneHeaders(tt.headers)}
			err := s.Transform(ctx, rec)
			if tt.reject != "" {
				wantReject(t, err, tt.reject)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			target, err := dst.client.SchemaByVersion(ctx, "eu.customers-value", 1)
			if err != nil {
				t.Fatalf("the target subject: %v", err)
			}
			if target.ID == srcID {
				t.Fatalf("source and target ids are both %d; the test proves nothing", srcID)
			}
			out := rec.Value
			if tt.inHeader {
				v, ok := header(rec, registry.ValueSchemaIDHeader)
				if !ok || !bytes.Equal([]byte(v), idRef(target.ID)) {
					t.Errorf("%s header % x, want % x", registry.ValueSchemaIDHeader, v, idRef(target.ID))
				}
			} else {
				if !bytes.Equal(out[:5], idRef(target.ID)) {
					t.Errorf("frame % x, want % x", out[:5], idRef(target.ID))
				}
				out = out[5:]
			}
			var got customer
			if err := avro.Unmarshal(avro.MustParse(readTestdata(t, "customer.avsc")), out, &got); err != nil {
				t.Fatalf("the value does not decode with the target's schema: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("masked %+v, want %+v", got, want)
			}
			if h, _ := header(rec, HeaderPolicy); h != "customers-pii@3" {
				t.Errorf("%s header = %q, want customers-pii@3", HeaderPolicy, h)
			}
		})
	}
}

// TestStepUnmaskable covers pipelines whose records the masker cannot read:
// while a policy applies to them nothing lands, and they stop (not a
// rejection, which would quarantine every record); while none applies their
// records pass as they are.
func TestStepUnmaskable(t *testing.T) {
	set, err := policy.LoadDir("testdata/unmaskable")
	if err != nil {
		t.Fatal(err)
	}
	target := newTestRegistry(t, registry.ServerOptions{})
	tests := []struct {
		name      string
		step      StepConfig
		noSchemas bool   // the Masking has no target registry
		topic     string // the source topic or subscription
		want      bool   // an *UnmaskableError; else the record passes as it is
	}{
		{name: "a bytes pipeline a policy applies to stops",
			step: StepConfig{Pipeline: "eu-raw", Format: "bytes"}, topic: "pii.cards", want: true},
		{name: "a bytes pipeline passes the records of topics the policy is not scoped to",
			step: StepConfig{Pipeline: "eu-raw", Format: "bytes"}, topic: "metrics.cpu"},
		{name: "a bytes pipeline the policy does not name passes its records",
			step: StepConfig{Pipeline: "eu-other", Format: "bytes"}, topic: "pii.cards"},
		{name: "a protobuf pipeline without a target registry a policy applies to stops",
			step: StepConfig{Pipeline: "eu-raw", Format: "protobuf"}, noSchemas: true, topic: "pii.cards", want: true},
		{name: "an avro pipeline without a target registry a policy applies to stops",
			step: StepConfig{Pipeline: "eu-raw", Format: "avro"}, noSchemas: true, topic: "pii.cards", want: true},
		{name: "a Pub/Sub avro pipeline a policy applies to stops",
			step: StepConfig{Pipeline: "fleet-raw", Format: "avro", PubSub: true}, topic: "pii.trips", want: true},
		{name: "a Pub/Sub bytes pipeline a policy applies to stops",
			step: StepConfig{Pipeline: "fleet-raw", Format: "bytes", PubSub: true}, topic: "pii.trips", want: true},
		{name: "a Pub/Sub avro pipeline passes the messages of subscriptions the policy is not scoped to",
			step: StepConfig{Pipeline: "fleet-raw", Format: "avro", PubSub: true}, topic: "telemetry-sub"},
		{name: "an ungoverned bytes pipeline passes its records whatever applies to it",
			step: StepConfig{Pipeline: "eu-raw", Format: "bytes", Ungoverned: true}, topic: "pii.cards"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := MaskingOptions{Schemas: target.client, HashKey: hashKey}
			if tt.noSchemas {
				opts.Schemas = nil
			}
			g := NewMasking(opts)
			g.Activate(set)
			s := newStep(t, g, tt.step)
			if s.Maskable() {
				t.Fatal("the step says it can mask the pipeline's records")
			}
			value := []byte("\x00\x00\x00\x00\x02card 4111 1111 1111 1111")
			trace := kafka.Header{Key: "trace", Value: []byte("t-1")}
			rec := &Record{SourceTopic: tt.topic, TargetTopic: "central." + tt.topic, Value: bytes.Clone(value), Headers: []kafka.Header{trace}}
			err := s.Transform(context.Background(), rec)
			if !bytes.Equal(rec.Value, value) || len(rec.Headers) != 1 || rec.Headers[0].Key != "trace" {
				t.Fatalf("the record changed: %q %v", rec.Value, rec.Headers)
			}
			if !tt.want {
				if err != nil {
					t.Fatalf("err = %v, want the record to pass", err)
				}
				return
			}
			var ue *UnmaskableError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v, want an *UnmaskableError", err)
			}
			if re, ok := AsReject(err); ok {
				t.Fatalf("err is a rejection %q: every record would be quarantined instead of the pipeline stopping", re.Reason)
			}
			if errors.Is(err, ErrNoBundle) {
				t.Fatalf("err = %v: the node has its bundle", err)
			}
			want := UnmaskableError{Pipeline: tt.step.Pipeline, Format: tt.step.Format, Policy: "raw-pii@1"}
			if *ue != want {
				t.Errorf("error %+v, want %+v", *ue, want)
			}
			for _, s := range []string{tt.step.Pipeline, "raw-pii@1", "format " + tt.step.Format} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not name %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "4111") {
				t.Errorf("the error quotes the record: %q", err)
			}
		})
	}

	t.Run("a format without governance is refused when the step is made", func(t *testing.T) {
		_, err := NewMasking(MaskingOptions{}).Step(StepConfig{Pipeline: "eu-raw", Format: "xml"})
		if err == nil || !strings.Contains(err.Error(), "eu-raw") || !strings.Contains(err.Error(), "xml") {
			t.Fatalf("err = %v, want one naming the pipeline and the format", err)
		}
	})
}

// TestMaskingBundleStates walks a Masking through the states of the cluster's
// bundle as the daemon reports them, and checks what becomes of each kind of
// record in each.
func TestMaskingBundleStates(t *testing.T) {
	target := newAvroTarget(t)
	alice := customer{ID: "c-1", Email: "alice@example.com", Phone: ptr("+44 20 7946 0000"), Country: "GB"}
	aliceFrame := frame(t, target.customerID, "customer.avsc", alice)
	auditFrame := frame(t, target.auditID, "audit.avsc", audit{Actor: "ops-7", Action: "export"})
	rawValue := []byte("opaque bytes")
	errCannotApply := errors.New("cannot apply the cluster's policy bundle 9: unknown field")

	g := NewMasking(MaskingOptions{Schemas: target.client, WaitForBundle: true, HashKey: hashKey})
	customers := newStep(t, g, StepConfig{Pipeline: "eu-customers", Format: "avro"})
	raw := newStep(t, g, StepConfig{Pipeline: "eu-raw", Format: "bytes"})

	// outcome is what becomes of a record: it lands as it was, lands masked,
	// is rejected with a reason, or waits with an error.
	type outcome struct {
		masked bool
		reject string
		waits  error
	}
	lands, masked := outcome{}, outcome{masked: true}
	rejected := func(reason string) outcome { return outcome{reject: reason} }
	waits := func(err error) outcome { return outcome{waits: err} }

	tests := []struct {
		name    string
		change  func() // the state change before the records
		ready   error  // what Ready says
		active  bool   // whether Active returns a bundle
		pii     outcome
		noPII   outcome
		bytesIn outcome
	}{
		{
			name:   "a node waiting for the cluster's bundle holds every record",
			change: func() {}, ready: ErrNoBundle,
			pii: waits(ErrNoBundle), noPII: waits(ErrNoBundle), bytesIn: waits(ErrNoBundle),
		},
		{
			name:   "a cluster with no bundle passes records without PII and rejects PII-tagged fields as unmatched",
			change: g.NoBundle,
			pii:    rejected(policy.ReasonUnmatchedPII), noPII: lands, bytesIn: lands,
		},
		{
			name:   "a bundle this node cannot apply holds every record with its reason",
			change: func() { g.Unusable(errCannotApply) }, ready: errCannotApply,
			pii: waits(errCannotApply), noPII: waits(errCannotApply), bytesIn: waits(errCannotApply),
		},
		{
			name:   "a bundle activated after an unusable one masks records again",
			change: func() { g.Activate(policies(t)) }, active: true,
			pii: masked, noPII: lands, bytesIn: lands,
		},
		{
			name:   "an unusable bundle after an active one holds records rather than masking them with the older",
			change: func() { g.Unusable(errCannotApply) }, ready: errCannotApply,
			pii: waits(errCannotApply), noPII: waits(errCannotApply), bytesIn: waits(errCannotApply),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change()
			if err := g.Ready(); !errors.Is(err, tt.ready) {
				t.Errorf("Ready() = %v, want %v", err, tt.ready)
			}
			if a := g.Active(); (a != nil) != tt.active {
				t.Errorf("Active() = %v, want a bundle: %v", a, tt.active)
			}
			for _, r := range []struct {
				what  string
				s     *Step
				value []byte
				want  outcome
			}{
				{"a PII-tagged record", customers, aliceFrame, tt.pii},
				{"a record without PII", customers, auditFrame, tt.noPII},
				{"a bytes record", raw, rawValue, tt.bytesIn},
			} {
				rec := &Record{SourceTopic: "customers", Value: bytes.Clone(r.value)}
				err := r.s.Transform(context.Background(), rec)
				switch want := r.want; {
				case want.waits != nil:
					if !errors.Is(err, want.waits) {
						t.Errorf("%s: err = %v, want it to wait with %v", r.what, err, want.waits)
					}
					if re, ok := AsReject(err); ok {
						t.Errorf("%s: a waiting record is rejected %q", r.what, re.Reason)
					}
				case want.reject != "":
					if re, ok := AsReject(err); !ok || re.Reason != want.reject {
						t.Errorf("%s: err = %v, want a rejection %q", r.what, err, want.reject)
					}
				case err != nil:
					t.Errorf("%s: err = %v, want it to land", r.what, err)
				case want.masked:
					if got := decodeCustomer(t, rec.Value); got.Email != pseudonym(alice.Email) {
						t.Errorf("%s: email not masked", r.what)
					}
					if h, _ := header(rec, HeaderPolicy); h != "customers-pii@3" {
						t.Errorf("%s: %s header = %q", r.what, HeaderPolicy, h)
					}
				default:
					if !bytes.Equal(rec.Value, r.value) || len(rec.Headers) != 0 {
						t.Errorf("%s changed: %q %v", r.what, rec.Value, rec.Headers)
					}
				}
			}
		})
	}
}

// TestStepHeadersNamedLikeProvenance: only the headers tributary writes (by
// exact name) and the schema-id headers escape header rules; a producer's
// header that merely starts with "tributary-" is data like any other.
func TestStepHeadersNamedLikeProvenance(t *testing.T) {
	set, err := policy.Parse("h.yaml", []byte(`policy: h
version: 1
rules:
  - {match: {header: "tributary-*"}, action: hash}
  - {match: {header: x-ssn}, action: block}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := NewMasking(MaskingOptions{HashKey: hashKey})
	g.Activate(set)
	js := newStep(t, g, StepConfig{Pipeline: "p", Format: "json", PubSub: true})
	const secret = "PII-customer-4711"
	rec := &Record{SourceTopic: "sub", Value: []byte(`{"a":1}`), Headers: []kafka.Header{
		{Key: "tributary-customer", Value: []byte(secret)},
		{Key: HeaderOrigin, Value: []byte("fleet")},
		{Key: HeaderOriginTopic, Value: []byte("payments")},
	}}
	if err := js.Transform(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range rec.Headers {
		got[h.Key] = string(h.Value)
	}
	if v := got["tributary-customer"]; v == secret || len(v) != 64 {
		t.Errorf("tributary-customer = %q, want its pseudonym", v)
	}
	if got[HeaderOrigin] != "fleet" || got[HeaderOriginTopic] != "payments" {
		t.Errorf("provenance headers changed: %v", got)
	}
	if !strings.Contains(got[HeaderPolicy], "h@1") {
		t.Errorf("tributary-policy = %q", got[HeaderPolicy])
	}
}
