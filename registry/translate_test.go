package registry

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/riferrei/srclient"

	"github.com/tributary-dev/tributary/config"
)

// pair is a source and a target registry and a translator between them.
type pair struct {
	src, dst *testRegistry
	tr       *Translator
}

func newPair(t *testing.T, opts TranslatorOptions) *pair {
	t.Helper()
	p := &pair{src: newTestRegistry(t, nil), dst: newTestRegistry(t, nil)}
	p.tr = NewTranslator(p.src.client(t), p.dst.client(t), opts)
	// Ids in the target start elsewhere than in the source, so a translation
	// that forgot to rewrite shows.
	dst := p.dst.sr()
	mustCreate(t, dst, "unrelated-value", rec("U1", field("a", `"int"`)), srclient.Avro)
	mustCreate(t, dst, "unrelated-value", rec("U1", field("a", `"int"`), field("b", `"int"`, `"default":0`)), srclient.Avro)
	return p
}

func (p *pair) resetCounts() {
	p.src.reset()
	p.dst.reset()
}

func (p *pair) calls() int64 { return p.src.calls.Load() + p.dst.calls.Load() }

func recordError(t *testing.T, err error, reason string) *RecordError {
	t.Helper()
	var re *RecordError
	if !errors.As(err, &re) || re.Reason != reason {
		t.Fatalf("err = %v, want a RecordError %s", err, reason)
	}
	if IsRetryable(err) {
		t.Fatalf("a record error is retryable: %v", err)
	}
	return re
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

var (
	orderV1 = rec("Order", field("id", `"string"`), field("cents", `"long"`))
	// orderV2 breaks BACKWARD: id changes from string to long.
	orderV2 = rec("Order", field("id", `"long"`), field("cents", `"long"`))
	// orderV3 is a compatible evolution of orderV1.
	orderV3 = rec("Order", field("id", `"string"`), field("cents", `"long"`), field("note", `"string"`, `"default":""`))
)

func TestTranslateAvro(t *testing.T) {
	p := newPair(t, TranslatorOptions{})
	ctx := context.Background()
	srcID := mustCreate(t, p.src.sr(), "orders-value", orderV1, srclient.Avro)

	in := map[string]any{"id": "o-1", "cents": int64(1250)}
	body, err := avro.Marshal(avro.MustParse(orderV1), in)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("o-1")
	value := AppendFrame(nil, SchemaRef{ID: int32(srcID)}, Avro, body)
	orig := bytes.Clone(value)
	headers := []Header{{Key: "trace", Value: []byte("abc")}}

	res, err := p.tr.Translate(ctx, "eu.orders", key, value, headers)
	if err != nil {
		t.Fatal(err)
	}
	target, err := p.dst.sr().GetSchemaByVersion("eu.orders-value", 1)
	if err != nil {
		t.Fatalf("the target subject: %v", err)
	}
	want := Translation{Place: InPayload, Source: SchemaRef{ID: int32(srcID)}, SourceID: int32(srcID),
		Subject: "eu.orders-value", TargetID: int32(target.ID()), Type: Avro}
	if !reflect.DeepEqual(res.ValueSchema, want) {
		t.Fatalf("value translation %+v, want %+v", res.ValueSchema, want)
	}
	if target.ID() == srcID {
		t.Fatalf("source and target ids are both %d; the test proves nothing", srcID)
	}
	if res.KeySchema.Place != Absent || !sameSlice(res.Key, key) || &res.Headers[0] != &headers[0] {
		t.Fatalf("key or headers changed: %+v", res)
	}
	if !bytes.Equal(value, orig) {
		t.Fatal("the input value was modified")
	}

	// The record decodes with the schema the target registry has under its id.
	ref, n, err := ReadRef(res.Value, Avro)
	if err != nil || ref.ID != int32(target.ID()) {
		t.Fatalf("translated frame %+v, %v", ref, err)
	}
	fetched, err := p.dst.sr().GetSchema(int(ref.ID))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := avro.Unmarshal(avro.MustParse(fetched.Schema()), res.Value[n:], &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("decoded %v, want %v", out, in)
	}

	t.Run("the second record of a schema makes no registry call", func(t *testing.T) {
		p.resetCounts()
		body2, _ := avro.Marshal(avro.MustParse(orderV1), map[string]any{"id": "o-2", "cents": int64(7)})
		res2, err := p.tr.Translate(ctx, "eu.orders", []byte("o-2"), AppendFrame(nil, SchemaRef{ID: int32(srcID)}, Avro, body2), nil)
		if err != nil || res2.ValueSchema.TargetID != int32(target.ID()) {
			t.Fatalf("%+v, %v", res2.ValueSchema, err)
		}
		if n := p.calls(); n != 0 {
			t.Fatalf("%d HTTP calls on a warm cache", n)
		}
	})
	t.Run("another topic registers its own subject, the source schema comes from the client cache", func(t *testing.T) {
		p.resetCounts()
		res, err := p.tr.Translate(ctx, "eu.archive", nil, value, nil)
		if err != nil || res.ValueSchema.Subject != "eu.archive-value" || res.ValueSchema.TargetID != int32(target.ID()) {
			t.Fatalf("%+v, %v", res.ValueSchema, err)
		}
		if n := p.src.calls.Load(); n != 0 {
			t.Fatalf("%d calls to the source registry", n)
		}
	})
	t.Run("a tombstone passes", func(t *testing.T) {
		res, err := p.tr.Translate(ctx, "eu.orders", key, nil, headers)
		if err != nil || res.Value != nil || res.ValueSchema.Place != Absent {
			t.Fatalf("%+v, %v", res, err)
		}
	})
	t.Run("an id already right is left alone", func(t *testing.T) {
		same := AppendFrame(nil, SchemaRef{ID: int32(target.ID())}, Avro, body)
		identity := NewTranslator(p.dst.client(t), p.dst.client(t), TranslatorOptions{})
		res, err := identity.Translate(ctx, "eu.orders", nil, same, nil)
		if err != nil || !sameSlice(res.Value, same) {
			t.Fatalf("%+v, %v", res, err)
		}
	})
}

func TestTranslateIncompatibleSchema(t *testing.T) {
	p := newPair(t, TranslatorOptions{})
	now := time.Now()
	p.tr.now = func() time.Time { return now }
	ctx := context.Background()
	src := p.src.sr()
	idV1 := mustCreate(t, src, "orders-value", orderV1, srclient.Avro)
	if _, err := src.ChangeSubjectCompatibilityLevel("orders-value", srclient.None); err != nil {
		t.Fatal(err)
	}
	idV2 := mustCreate(t, src, "orders-value", orderV2, srclient.Avro)
	idV3 := mustCreate(t, src, "orders-value", orderV3, srclient.Avro)
	frame := func(id int) []byte { return AppendFrame(nil, SchemaRef{ID: int32(id)}, Avro, []byte{2, 'x', 4}) }

	first, err := p.tr.Translate(ctx, "eu.orders", nil, frame(idV1), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.tr.Translate(ctx, "eu.orders", nil, frame(idV2), nil)
	re := recordError(t, err, ReasonIncompatibleSchema)
	var ie *IncompatibleError
	if !errors.As(err, &ie) || ie.Subject != "eu.orders-value" {
		t.Fatalf("err = %v, want an IncompatibleError for eu.orders-value", err)
	}
	if !strings.Contains(re.Msg, "BACKWARD") || !strings.Contains(re.Msg, "id") {
		t.Fatalf("message %q names neither level nor field", re.Msg)
	}

	t.Run("earlier ids still translate, without registry calls", func(t *testing.T) {
		p.resetCounts()
		res, err := p.tr.Translate(ctx, "eu.orders", nil, frame(idV1), nil)
		if err != nil || res.ValueSchema.TargetID != first.ValueSchema.TargetID || p.calls() != 0 {
			t.Fatalf("%+v, %v, %d calls", res.ValueSchema, err, p.calls())
		}
	})
	t.Run("a flood of incompatible records is answered from the cache", func(t *testing.T) {
		p.resetCounts()
		for i := 0; i < 100; i++ {
			_, err := p.tr.Translate(ctx, "eu.orders", nil, frame(idV2), nil)
			recordError(t, err, ReasonIncompatibleSchema)
		}
		if p.calls() != 0 {
			t.Fatalf("%d calls", p.calls())
		}
	})
	t.Run("a later compatible schema is evaluated fresh", func(t *testing.T) {
		res, err := p.tr.Translate(ctx, "eu.orders", nil, frame(idV3), nil)
		if err != nil || res.ValueSchema.TargetID == first.ValueSchema.TargetID {
			t.Fatalf("%+v, %v", res.ValueSchema, err)
		}
		if vs, err := p.dst.sr().GetSchemaVersions("eu.orders-value"); err != nil || len(vs) != 2 {
			t.Fatalf("target versions %v, %v", vs, err)
		}
	})
	t.Run("after the negative TTL an operator's fix takes effect", func(t *testing.T) {
		if _, err := p.dst.sr().ChangeSubjectCompatibilityLevel("eu.orders-value", srclient.None); err != nil {
			t.Fatal(err)
		}
		_, err := p.tr.Translate(ctx, "eu.orders", nil, frame(idV2), nil)
		recordError(t, err, ReasonIncompatibleSchema)
		now = now.Add(DefaultNegativeTTL + time.Second)
		if _, err := p.tr.Translate(ctx, "eu.orders", nil, frame(idV2), nil); err != nil {
			t.Fatalf("after the TTL with level NONE: %v", err)
		}
	})
}

func TestTranslateChecksEveryVersionTheLevelRequires(t *testing.T) {
	p := newPair(t, TranslatorOptions{})
	ctx := context.Background()
	t1 := rec("T", field("a", `"string"`))
	t2 := rec("T", field("a", `"string"`), field("b", `"int"`, `"default":0`))
	t3 := rec("T", field("a", `"string"`), field("b", `"int"`)) // reads t2's data, not t1's
	dst := p.dst.sr()
	mustCreate(t, dst, "eu.t-value", t1, srclient.Avro)
	mustCreate(t, dst, "eu.t-value", t2, srclient.Avro)
	if _, err := dst.ChangeSubjectCompatibilityLevel("eu.t-value", srclient.BackwardTransitive); err != nil {
		t.Fatal(err)
	}
	id := mustCreate(t, p.src.sr(), "t-value", t3, srclient.Avro)
	_, err := p.tr.Translate(ctx, "eu.t", nil, AppendFrame(nil, SchemaRef{ID: int32(id)}, Avro, []byte{2, 'x', 2}), nil)
	re := recordError(t, err, ReasonIncompatibleSchema)
	if !strings.Contains(re.Msg, "BACKWARD_TRANSITIVE") || !strings.Contains(re.Msg, "oldSchemaVersion: 1") {
		t.Fatalf("message %q", re.Msg)
	}
	if !p.dst.requested("POST /compatibility/subjects/eu.t-value/versions") {
		t.Fatal("the check against all versions was not made")
	}
}

func TestTranslateBadInput(t *testing.T) {
	p := newPair(t, TranslatorOptions{})
	ctx := context.Background()
	jsonID := mustCreate(t, p.src.sr(), "events-value", `{"type":"object"}`, srclient.Json)
	cases := []struct {
		name    string
		key     []byte
		value   []byte
		headers []Header
		reason  string
	}{
		{"garbage bytes", nil, []byte("hello, world"), nil, ReasonNotWireFormat},
		{"a short frame", nil, []byte{0, 0, 1}, nil, ReasonNotWireFormat},
		{"a malformed schema-id header", nil, []byte("body"), []Header{{Key: ValueSchemaIDHeader, Value: []byte{0, 0}}}, ReasonNotWireFormat},
		{"a duplicated schema-id header", nil, []byte("body"), []Header{{Key: ValueSchemaIDHeader, Value: []byte{0, 0, 0, 0, 1}}, {Key: ValueSchemaIDHeader, Value: []byte{0, 0, 0, 0, 1}}}, ReasonNotWireFormat},
		{"an unknown id", nil, AppendFrame(nil, SchemaRef{ID: 4242}, Avro, []byte{2, 'x'}), nil, ReasonUnknownSchemaID},
		{"an unknown id in a header", nil, []byte{2, 'x'}, []Header{{Key: ValueSchemaIDHeader, Value: []byte{0, 0, 0, 0x10, 0x92}}}, ReasonUnknownSchemaID},
		{"an unknown guid", nil, AppendFrame(nil, SchemaRef{Magic: MagicGUID, GUID: testGUID}, Avro, []byte{2, 'x'}), nil, ReasonUnknownSchemaID},
		{"a JSON schema in an Avro pipeline", nil, AppendFrame(nil, SchemaRef{ID: int32(jsonID)}, Avro, []byte(`{}`)), nil, ReasonNotWireFormat},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.tr.Translate(ctx, "eu.orders", tc.key, tc.value, tc.headers)
			re := recordError(t, err, tc.reason)
			var we *WireError
			if tc.reason == ReasonNotWireFormat && tc.name != "a JSON schema in an Avro pipeline" && !errors.As(err, &we) {
				t.Fatalf("err = %v, want a WireError inside", err)
			}
			if tc.reason == ReasonUnknownSchemaID && !errors.Is(err, ErrSchemaNotFound) {
				t.Fatalf("err = %v, want ErrSchemaNotFound inside", err)
			}
			if strings.Contains(re.Msg, "hello") {
				t.Fatalf("the message shows record bytes: %q", re.Msg)
			}
			p.resetCounts()
			_, again := p.tr.Translate(ctx, "eu.orders", tc.key, tc.value, tc.headers)
			recordError(t, again, tc.reason)
			if p.calls() != 0 {
				t.Fatalf("the second rejection made %d calls", p.calls())
			}
		})
	}
}

func TestTranslateHeaderForm(t *testing.T) {
	p := newPair(t, TranslatorOptions{Keys: KeyPlain})
	ctx := context.Background()
	srcID := mustCreate(t, p.src.sr(), "orders-value", orderV1, srclient.Avro)
	keyID := mustCreate(t, p.src.sr(), "orders-key", `"string"`, srclient.Avro)
	body, _ := avro.Marshal(avro.MustParse(orderV1), map[string]any{"id": "o-1", "cents": int64(1)})
	key := []byte{2, 'k'}
	headers := []Header{
		{Key: "trace", Value: []byte("abc")},
		{Key: ValueSchemaIDHeader, Value: AppendRef(nil, SchemaRef{ID: int32(srcID)}, Avro)},
		{Key: KeySchemaIDHeader, Value: AppendRef(nil, SchemaRef{ID: int32(keyID)}, Avro)},
		{Key: "other", Value: []byte("x")},
	}
	orig := make([]Header, len(headers))
	for i, h := range headers {
		orig[i] = Header{Key: h.Key, Value: bytes.Clone(h.Value)}
	}

	res, err := p.tr.Translate(ctx, "eu.orders", key, body, headers)
	if err != nil {
		t.Fatal(err)
	}
	if !sameSlice(res.Value, body) || !sameSlice(res.Key, key) {
		t.Fatal("bare bodies were copied or changed")
	}
	if !reflect.DeepEqual(headers, orig) {
		t.Fatal("the input headers were modified")
	}
	vt, kt := res.ValueSchema, res.KeySchema
	if vt.Place != InHeader || vt.Subject != "eu.orders-value" || kt.Place != InHeader || kt.Subject != "eu.orders-key" {
		t.Fatalf("translations %+v / %+v", vt, kt)
	}
	wantHeaders := []Header{
		headers[0],
		{Key: ValueSchemaIDHeader, Value: AppendRef(nil, SchemaRef{ID: vt.TargetID}, Avro)},
		{Key: KeySchemaIDHeader, Value: AppendRef(nil, SchemaRef{ID: kt.TargetID}, Avro)},
		headers[3],
	}
	if !reflect.DeepEqual(res.Headers, wantHeaders) {
		t.Fatalf("headers %v, want %v", res.Headers, wantHeaders)
	}
	if vt.TargetID == int32(srcID) {
		t.Fatal("the value id did not change")
	}
}

func TestTranslateGUIDs(t *testing.T) {
	p := newPair(t, TranslatorOptions{})
	ctx := context.Background()
	srcID := mustCreate(t, p.src.sr(), "orders-value", orderV1, srclient.Avro)
	var v schemaJSON
	call(t, "GET", p.src.url+"/subjects/orders-value/versions/1", "", &v)
	guid, err := ParseGUID(v.GUID)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte{2, 'x', 4}

	t.Run("in a header", func(t *testing.T) {
		h := []Header{{Key: ValueSchemaIDHeader, Value: AppendRef(nil, SchemaRef{Magic: MagicGUID, GUID: guid}, Avro)}}
		res, err := p.tr.Translate(ctx, "eu.orders", nil, body, h)
		if err != nil {
			t.Fatal(err)
		}
		if res.ValueSchema.SourceID != int32(srcID) || res.ValueSchema.Source.GUID != guid {
			t.Fatalf("translation %+v", res.ValueSchema)
		}
		if want := AppendRef(nil, SchemaRef{ID: res.ValueSchema.TargetID}, Avro); !bytes.Equal(res.Headers[0].Value, want) {
			t.Fatalf("header %x, want %x", res.Headers[0].Value, want)
		}
	})
	t.Run("in the payload", func(t *testing.T) {
		res, err := p.tr.Translate(ctx, "eu.orders", nil, AppendFrame(nil, SchemaRef{Magic: MagicGUID, GUID: guid}, Avro, body), nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := AppendFrame(nil, SchemaRef{ID: res.ValueSchema.TargetID}, Avro, body); !bytes.Equal(res.Value, want) {
			t.Fatalf("value %x, want %x", res.Value, want)
		}
	})
	t.Run("a registry without guid support", func(t *testing.T) {
		old := newTestRegistry(t, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasPrefix(r.URL.Path, "/schemas/guids/") { // Confluent 7.x: no such resource
					w.Header().Set("Content-Type", ContentType)
					w.WriteHeader(http.StatusNotFound)
					w.Write([]byte(`{"error_code":404,"message":"HTTP 404 Not Found"}`))
					return
				}
				h.ServeHTTP(w, r)
			})
		})
		tr := NewTranslator(old.client(t), p.dst.client(t), TranslatorOptions{})
		_, err := tr.Translate(ctx, "eu.orders", nil, AppendFrame(nil, SchemaRef{Magic: MagicGUID, GUID: guid}, Avro, body), nil)
		recordError(t, err, ReasonUnknownSchemaID)
		if !errors.Is(err, ErrGUIDUnsupported) {
			t.Fatalf("err = %v, want ErrGUIDUnsupported inside", err)
		}
	})
}

func TestTranslateKeys(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []struct {
		name string
		mode KeyMode
	}{{"framed", KeyFramed}, {"detect", KeyDetect}} {
		t.Run("a framed key with keys "+mode.name, func(t *testing.T) {
			p := newPair(t, TranslatorOptions{Keys: mode.mode})
			keyID := mustCreate(t, p.src.sr(), "orders-key", `"string"`, srclient.Avro)
			valID := mustCreate(t, p.src.sr(), "orders-value", orderV1, srclient.Avro)
			key := AppendFrame(nil, SchemaRef{ID: int32(keyID)}, Avro, []byte{6, 'o', '-', '1'})
			value := AppendFrame(nil, SchemaRef{ID: int32(valID)}, Avro, []byte{6, 'o', '-', '1', 2})
			res, err := p.tr.Translate(ctx, "eu.orders", key, value, nil)
			if err != nil {
				t.Fatal(err)
			}
			kt := res.KeySchema
			if kt.Place != InPayload || kt.Subject != "eu.orders-key" || kt.SourceID != int32(keyID) {
				t.Fatalf("key translation %+v", kt)
			}
			if want := AppendFrame(nil, SchemaRef{ID: kt.TargetID}, Avro, key[5:]); !bytes.Equal(res.Key, want) {
				t.Fatalf("key %x, want %x", res.Key, want)
			}
			if want := AppendFrame(nil, SchemaRef{ID: res.ValueSchema.TargetID}, Avro, value[5:]); !bytes.Equal(res.Value, want) {
				t.Fatalf("value %x, want %x", res.Value, want)
			}
			if v, err := p.dst.sr().GetSchema(int(kt.TargetID)); err != nil || v.Schema() != `"string"` {
				t.Fatalf("target key schema %v, %v", v, err)
			}
		})
	}
	t.Run("a plain key is left alone", func(t *testing.T) {
		p := newPair(t, TranslatorOptions{Keys: KeyPlain})
		valID := mustCreate(t, p.src.sr(), "orders-value", orderV1, srclient.Avro)
		key := []byte{0, 0, 0, 0, 1, 'x'} // looks framed; plain keys are not parsed
		res, err := p.tr.Translate(ctx, "eu.orders", key, AppendFrame(nil, SchemaRef{ID: int32(valID)}, Avro, []byte{2, 'x', 2}), nil)
		if err != nil || !sameSlice(res.Key, key) || res.KeySchema.Place != Absent {
			t.Fatalf("%+v, %v", res, err)
		}
	})
	t.Run("an unframed key when keys are framed", func(t *testing.T) {
		p := newPair(t, TranslatorOptions{Keys: KeyFramed})
		_, err := p.tr.Translate(ctx, "eu.orders", []byte("plain"), nil, nil)
		recordError(t, err, ReasonNotWireFormat)
	})
}

func TestTranslateReferences(t *testing.T) {
	ctx := context.Background()

	t.Run("avro named types in other subjects, nested", func(t *testing.T) {
		p := newPair(t, TranslatorOptions{})
		src, dst := p.src.sr(), p.dst.sr()
		address := `{"type":"record","name":"Address","namespace":"com.acme","fields":[{"name":"zip","type":"string"},{"name":"city","type":"string","default":""}]}`
		customer := `{"type":"record","name":"Customer","namespace":"com.acme","fields":[{"name":"name","type":"string"},{"name":"address","type":"com.acme.Address"}]}`
		order := `{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"id","type":"string"},{"name":"customer","type":"com.acme.Customer"}]}`
		mustCreate(t, src, "com.acme.Address", address, srclient.Avro)
		mustCreate(t, src, "com.acme.Customer", customer, srclient.Avro, srclient.Reference{Name: "com.acme.Address", Subject: "com.acme.Address", Version: 1})
		orderID := mustCreate(t, src, "orders-value", order, srclient.Avro, srclient.Reference{Name: "com.acme.Customer", Subject: "com.acme.Customer", Version: 1})
		// The target already has an older Address, so the versions differ.
		mustCreate(t, dst, "com.acme.Address", `{"type":"record","name":"Address","namespace":"com.acme","fields":[{"name":"zip","type":"string"}]}`, srclient.Avro)

		cache := &avro.SchemaCache{}
		for _, s := range []string{address, customer} {
			if _, err := avro.ParseWithCache(s, "", cache); err != nil {
				t.Fatal(err)
			}
		}
		writer, err := avro.ParseWithCache(order, "", cache)
		if err != nil {
			t.Fatal(err)
		}
		in := map[string]any{"id": "o-1", "customer": map[string]any{"name": "n", "address": map[string]any{"zip": "1000", "city": "c"}}}
		body, err := avro.Marshal(writer, in)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.tr.Translate(ctx, "eu.orders", nil, AppendFrame(nil, SchemaRef{ID: int32(orderID)}, Avro, body), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dst.GetSchema(int(res.ValueSchema.TargetID))
		if err != nil {
			t.Fatal(err)
		}
		if want := []srclient.Reference{{Name: "com.acme.Customer", Subject: "com.acme.Customer", Version: 1}}; !reflect.DeepEqual(got.References(), want) {
			t.Fatalf("order references %v, want %v", got.References(), want)
		}
		cust, err := dst.GetSchemaByVersion("com.acme.Customer", 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := []srclient.Reference{{Name: "com.acme.Address", Subject: "com.acme.Address", Version: 2}}; !reflect.DeepEqual(cust.References(), want) {
			t.Fatalf("customer references %v, want %v (the target's version)", cust.References(), want)
		}
		// Decode with the target's schemas.
		addr2, err := dst.GetSchemaByVersion("com.acme.Address", 2)
		if err != nil {
			t.Fatal(err)
		}
		tcache := &avro.SchemaCache{}
		for _, s := range []string{addr2.Schema(), cust.Schema()} {
			if _, err := avro.ParseWithCache(s, "", tcache); err != nil {
				t.Fatal(err)
			}
		}
		reader, err := avro.ParseWithCache(got.Schema(), "", tcache)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		if err := avro.Unmarshal(reader, res.Value[5:], &out); err != nil || !reflect.DeepEqual(out, in) {
			t.Fatalf("decoded %v, %v; want %v", out, err, in)
		}
	})

	t.Run("json schema $ref", func(t *testing.T) {
		p := newPair(t, TranslatorOptions{Type: JSON})
		src := p.src.sr()
		addr := `{"type":"object","properties":{"zip":{"type":"string"}}}`
		cust := `{"type":"object","properties":{"address":{"$ref":"address.json"}}}`
		mustCreate(t, src, "address.json", addr, srclient.Json)
		id := mustCreate(t, src, "customers-value", cust, srclient.Json, srclient.Reference{Name: "address.json", Subject: "address.json", Version: 1})
		value := AppendFrame(nil, SchemaRef{ID: int32(id)}, JSON, []byte(`{"address":{"zip":"1000"}}`))
		res, err := p.tr.Translate(ctx, "eu.customers", nil, value, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.dst.sr().GetSchema(int(res.ValueSchema.TargetID))
		if err != nil {
			t.Fatal(err)
		}
		if want := []srclient.Reference{{Name: "address.json", Subject: "address.json", Version: 1}}; !reflect.DeepEqual(got.References(), want) || *got.SchemaType() != srclient.Json {
			t.Fatalf("references %v (%v)", got.References(), *got.SchemaType())
		}
		if !bytes.Equal(res.Value[5:], value[5:]) {
			t.Fatal("the JSON body changed")
		}
	})

	t.Run("protobuf imports, message indexes kept", func(t *testing.T) {
		p := newPair(t, TranslatorOptions{Type: Protobuf})
		src := p.src.sr()
		mustCreate(t, src, "acme/money.proto", `syntax = "proto3"; package acme; message Money { int64 cents = 1; }`, srclient.Protobuf)
		invoice := `syntax = "proto3";
package acme;
import "acme/money.proto";
message Header { string id = 1; }
message Invoice {
  message Line { Money amount = 1; }
  repeated Line lines = 1;
}
`
		id := mustCreate(t, src, "invoices-value", invoice, srclient.Protobuf, srclient.Reference{Name: "acme/money.proto", Subject: "acme/money.proto", Version: 1})
		value := AppendFrame(nil, SchemaRef{ID: int32(id), Indexes: []int{1, 0}}, Protobuf, []byte{0x0a, 0x02, 0x08, 0x01})
		res, err := p.tr.Translate(ctx, "eu.invoices", nil, value, nil)
		if err != nil {
			t.Fatal(err)
		}
		ref, n, err := ReadRef(res.Value, Protobuf)
		if err != nil || ref.ID != res.ValueSchema.TargetID || !reflect.DeepEqual(ref.Indexes, []int{1, 0}) {
			t.Fatalf("translated ref %+v, %v", ref, err)
		}
		if !bytes.Equal(res.Value[5:], value[5:]) || n != 8 {
			t.Fatalf("indexes or body changed: %x -> %x", value, res.Value)
		}
		got, err := p.dst.sr().GetSchema(int(ref.ID))
		if err != nil || got.Schema() != invoice || len(got.References()) != 1 || got.References()[0].Subject != "acme/money.proto" {
			t.Fatalf("target schema %v, %v", got, err)
		}
	})

	t.Run("a reference the source cannot resolve", func(t *testing.T) {
		src := newTestRegistry(t, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// As if the referenced version had been removed behind the registry's back.
				if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/subjects/com.acme.Money/versions/") {
					w.Header().Set("Content-Type", ContentType)
					w.WriteHeader(http.StatusNotFound)
					w.Write([]byte(`{"error_code":40402,"message":"Version 1 not found."}`))
					return
				}
				h.ServeHTTP(w, r)
			})
		})
		dst := newTestRegistry(t, nil)
		tr := NewTranslator(src.client(t), dst.client(t), TranslatorOptions{})
		money := `{"type":"record","name":"Money","namespace":"com.acme","fields":[{"name":"cents","type":"long"}]}`
		mustCreate(t, src.sr(), "com.acme.Money", money, srclient.Avro)
		id := mustCreate(t, src.sr(), "orders-value", `{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"total","type":"com.acme.Money"}]}`,
			srclient.Avro, srclient.Reference{Name: "com.acme.Money", Subject: "com.acme.Money", Version: 1})
		_, err := tr.Translate(ctx, "eu.orders", nil, AppendFrame(nil, SchemaRef{ID: int32(id)}, Avro, []byte{2}), nil)
		re := recordError(t, err, ReasonBadSchemaReference)
		if !strings.Contains(re.Msg, `"com.acme.Money"`) || !errors.Is(err, ErrSchemaNotFound) {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("a referenced subject incompatible in the target", func(t *testing.T) {
		p := newPair(t, TranslatorOptions{})
		money := `{"type":"record","name":"Money","namespace":"com.acme","fields":[{"name":"cents","type":"long"}]}`
		mustCreate(t, p.src.sr(), "com.acme.Money", money, srclient.Avro)
		mustCreate(t, p.dst.sr(), "com.acme.Money", `{"type":"record","name":"Money","namespace":"com.acme","fields":[{"name":"cents","type":"string"}]}`, srclient.Avro)
		id := mustCreate(t, p.src.sr(), "orders-value", `{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"total","type":"com.acme.Money"}]}`,
			srclient.Avro, srclient.Reference{Name: "com.acme.Money", Subject: "com.acme.Money", Version: 1})
		_, err := p.tr.Translate(ctx, "eu.orders", nil, AppendFrame(nil, SchemaRef{ID: int32(id)}, Avro, []byte{2}), nil)
		recordError(t, err, ReasonIncompatibleSchema)
		var ie *IncompatibleError
		if !errors.As(err, &ie) || ie.Subject != "com.acme.Money" {
			t.Fatalf("err = %v, want the referenced subject named", err)
		}
	})
}

func TestTranslateRegistryOutage(t *testing.T) {
	p := newPair(t, TranslatorOptions{})
	ctx := context.Background()
	src := p.src.sr()
	idV1 := mustCreate(t, src, "orders-value", orderV1, srclient.Avro)
	idV3 := mustCreate(t, src, "orders-value", orderV3, srclient.Avro)
	frame := func(id int) []byte { return AppendFrame(nil, SchemaRef{ID: int32(id)}, Avro, []byte{2, 'x', 4}) }
	if _, err := p.tr.Translate(ctx, "eu.orders", nil, frame(idV1), nil); err != nil {
		t.Fatal(err)
	}

	p.dst.stop()
	_, err := p.tr.Translate(ctx, "eu.orders", nil, frame(idV3), nil)
	var re *RecordError
	if err == nil || errors.As(err, &re) || !IsRetryable(err) {
		t.Fatalf("target down: err = %v, retryable %v", err, IsRetryable(err))
	}
	if _, err := p.tr.Translate(ctx, "eu.orders", nil, frame(idV1), nil); err != nil {
		t.Fatalf("a cached schema while the target is down: %v", err)
	}
	p.dst.restart()
	if _, err := p.tr.Translate(ctx, "eu.orders", nil, frame(idV3), nil); err != nil {
		t.Fatalf("after the target came back: %v", err)
	}

	p.src.stop()
	idNew := 999 // unknown to the translator, so the source must be asked
	_, err = p.tr.Translate(ctx, "eu.orders", nil, frame(idNew), nil)
	if err == nil || errors.As(err, &re) || !IsRetryable(err) {
		t.Fatalf("source down: err = %v, retryable %v", err, IsRetryable(err))
	}
}

func TestTranslateBasicAuthAndTLS(t *testing.T) {
	ctx := context.Background()
	src := newTestRegistry(t, basicAuth("src-user", "src-pass"))
	srcSR := src.sr()
	srcSR.SetCredentials("src-user", "src-pass")
	id := mustCreate(t, srcSR, "orders-value", orderV1, srclient.Avro)

	srv, err := NewServer(ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv)
	defer hs.Close()
	caFile := writePEM(t, t.TempDir(), "ca.pem", "CERTIFICATE", hs.Certificate().Raw)

	source, err := NewClient(&config.SchemaRegistry{URL: src.url, Username: "src-user", Password: "src-pass"}, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	target, err := NewClient(&config.SchemaRegistry{URL: hs.URL, CAFile: caFile}, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	res, err := NewTranslator(source, target, TranslatorOptions{}).Translate(ctx, "eu.orders", nil, AppendFrame(nil, SchemaRef{ID: int32(id)}, Avro, []byte{2, 'x', 4}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ValueSchema.Subject != "eu.orders-value" || res.ValueSchema.TargetID == 0 {
		t.Fatalf("%+v", res.ValueSchema)
	}

	noAuth, err := NewClient(&config.SchemaRegistry{URL: src.url}, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer noAuth.Close()
	_, err = NewTranslator(noAuth, target, TranslatorOptions{}).Translate(ctx, "eu.orders", nil, AppendFrame(nil, SchemaRef{ID: int32(id)}, Avro, []byte{2, 'x', 4}), nil)
	var re *RecordError
	if err == nil || errors.As(err, &re) || IsRetryable(err) {
		t.Fatalf("without credentials: err = %v (a record error or retryable)", err)
	}
}

func TestTranslateConcurrentFirstRecords(t *testing.T) {
	p := newPair(t, TranslatorOptions{})
	id := mustCreate(t, p.src.sr(), "orders-value", orderV1, srclient.Avro)
	value := AppendFrame(nil, SchemaRef{ID: int32(id)}, Avro, []byte{2, 'x', 4})
	p.resetCounts()
	var wg sync.WaitGroup
	ids := make([]int32, 32)
	errs := make([]error, len(ids))
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := p.tr.Translate(context.Background(), "eu.orders", nil, value, nil)
			ids[i], errs[i] = res.ValueSchema.TargetID, err
		}()
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("record %d: id %d, err %v", i, ids[i], errs[i])
		}
	}
	if n := p.dst.count("POST /subjects/eu.orders-value/versions"); n != 1 {
		t.Fatalf("%d registrations for one schema", n)
	}
}

// BenchmarkTranslate measures the per-record cost of translation with a
// warm cache: an Avro record of about 200 bytes, id in the payload.
func BenchmarkTranslate(b *testing.B) {
	src, dst := benchRegistry(b), benchRegistry(b)
	schema := rec("Order", field("id", `"string"`), field("customer", `"string"`), field("cents", `"long"`),
		field("items", `{"type":"array","items":"string"}`), field("note", `"string"`))
	id := mustCreateB(b, src, "orders-value", schema)
	mustCreateB(b, dst, "unrelated-value", rec("U", field("a", `"int"`)))
	body, err := avro.Marshal(avro.MustParse(schema), map[string]any{
		"id": "order-000000000001", "customer": "customer-00000000042", "cents": int64(123456),
		"items": []string{"sku-0000000001", "sku-0000000002", "sku-0000000003", "sku-0000000004", "sku-0000000005"},
		"note":  strings.Repeat("n", 60),
	})
	if err != nil {
		b.Fatal(err)
	}
	value := AppendFrame(nil, SchemaRef{ID: int32(id)}, Avro, body)
	key := []byte("order-000000000001")
	headers := []Header{{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")}}
	tr := NewTranslator(src, dst, TranslatorOptions{})
	ctx := context.Background()
	if _, err := tr.Translate(ctx, "eu.orders", key, value, headers); err != nil {
		b.Fatal(err)
	}
	b.Logf("record: %d bytes", len(value))

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tr.Translate(ctx, "eu.orders", key, value, headers); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/record")
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := tr.Translate(ctx, "eu.orders", key, value, headers); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func benchRegistry(b *testing.B) *Client {
	b.Helper()
	srv, err := NewServer(ServerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	c, err := NewClient(&config.SchemaRegistry{URL: hs.URL}, ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

func mustCreateB(b *testing.B, c *Client, subject, schema string) int {
	b.Helper()
	id, err := c.Register(context.Background(), subject, &Schema{Type: Avro, Text: schema})
	if err != nil {
		b.Fatal(err)
	}
	return id
}
