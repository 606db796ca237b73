package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// paymentRecord is a realistic record of testdata/schemas/payment.avsc: 20
// fields, 4 of them PII (name, email, phone, card number), as hamba encodes it.
func paymentRecord() map[string]any {
	return map[string]any{
		"payment_id":        "0b3c5f9e-2f57-4d0e-9c39-1f2a3b4c5d6e",
		"created_at":        time.Date(2024, 5, 17, 13, 45, 12, 0, time.UTC),
		"amount_cents":      int64(129900),
		"currency":          "EUR",
		"status":            "SETTLED",
		"merchant_id":       "m-4711",
		"merchant_category": 5411,
		"channel":           "ecommerce",
		"customer": map[string]any{
			"id": "c-1001", "name": "Alice Example", "email": "alice@example.com",
			"phone": "+49 30 1234567", "country": "DE", "loyalty_tier": "gold",
		},
		"card":       map[string]any{"number": "4111111111111111", "brand": "VISA", "expiry_month": 12, "expiry_year": 2027},
		"location":   map[string]any{"acme.payments.Location": map[string]any{"lat": 52.520008, "lon": 13.404954}},
		"ip_address": "203.0.113.7",
		"risk_score": 0.137,
		"three_ds":   true,
		"attributes": map[string]any{"device": "ios", "email": "alice.alt@example.com"},
	}
}

func encodePayment(t testing.TB, rec map[string]any) ([]byte, avro.Schema) {
	t.Helper()
	s := loadSchema(t, "payment.avsc", 1)
	hs := hambaSchema(t, s.Text)
	b, err := avro.Marshal(hs, rec)
	if err != nil {
		t.Fatal(err)
	}
	return b, hs
}

func decode(t testing.TB, hs avro.Schema, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := avro.Unmarshal(hs, b, &m); err != nil {
		t.Fatalf("the output does not decode with the writer schema: %v", err)
	}
	return m
}

func TestDesignExampleMasksAPaymentRecord(t *testing.T) {
	set, err := LoadFiles("testdata/good/payments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan := compile(t, set, loadSchema(t, "payment.avsc", 1))
	in, hs := encodePayment(t, paymentRecord())
	out, res, err := plan.MaskAvro(in)
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, hs, out)
	cust := got["customer"].(map[string]any)
	if cust["name"] != hexHMAC("Alice Example") || cust["email"] != nil || cust["phone"] != hexHMAC("+49 30 1234567") || cust["id"] != "c-1001" {
		t.Errorf("customer %v", cust)
	}
	if n := got["card"].(map[string]any)["number"]; n != "************1111" {
		t.Errorf("card number %v", n)
	}
	if lat := got["location"].(map[string]any)["acme.payments.Location"].(map[string]any)["lat"]; lat != 52.52 {
		t.Errorf("lat %v", lat)
	}
	want := paymentRecord()
	for _, k := range []string{"payment_id", "amount_cents", "currency", "status", "ip_address", "risk_score", "three_ds", "attributes"} {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Errorf("%s changed: %v", k, got[k])
		}
	}
	if res.Header() != "payments-pii@7" || res.KeyID != KeyID(hashKey) {
		t.Errorf("result %+v", res)
	}
	var paths []string
	for _, tc := range res.Touches {
		paths = append(paths, tc.Path+"="+string(tc.Action))
	}
	if got := strings.Join(paths, " "); got != "customer.name=hash customer.email=redact customer.phone=hash card.number=mask location.lat=generalize" {
		t.Errorf("touches %s", got)
	}
	for _, raw := range []string{"Alice Example", "alice@example.com", "+49 30 1234567", "4111111111111111"} {
		if strings.Contains(string(out), raw) {
			t.Errorf("%q is still in the output", raw)
		}
	}
}

func TestFieldPatterns(t *testing.T) {
	const schema = `{"type":"record","name":"R","fields":[
	  {"name":"id","type":"string"},
	  {"name":"customer","type":{"type":"record","name":"C","fields":[
	    {"name":"email","type":"string"},
	    {"name":"address","type":{"type":"record","name":"A","fields":[{"name":"street","type":"string"},{"name":"ssn","type":"string"}]}}]}},
	  {"name":"items","type":{"type":"array","items":{"type":"record","name":"I","fields":[{"name":"card","type":"string"},{"name":"sku","type":"string"}]}}},
	  {"name":"attrs","type":{"type":"map","values":"string"}},
	  {"name":"matrix","type":{"type":"array","items":{"type":"array","items":"string"}}}
	]}`
	rec := map[string]any{
		"id":       "ID1",
		"customer": map[string]any{"email": "EMAIL1", "address": map[string]any{"street": "STREET1", "ssn": "SSN1"}},
		"items":    []any{map[string]any{"card": "CARD1", "sku": "SKU1"}, map[string]any{"card": "CARD2", "sku": "SKU2"}},
		"attrs":    map[string]any{"email": "AEMAIL", "device": "ADEVICE"},
		"matrix":   []any{[]any{"M1", "M2"}},
	}
	all := []string{"ID1", "EMAIL1", "STREET1", "SSN1", "CARD1", "SKU1", "CARD2", "SKU2", "AEMAIL", "ADEVICE", "M1", "M2"}
	cases := []struct {
		pattern string
		want    []string // the values redacted
	}{
		{"customer.email", []string{"EMAIL1"}},
		{"customer.address", []string{"STREET1", "SSN1"}},
		{"*.email", []string{"EMAIL1", "AEMAIL"}},
		{"customer.*.ssn", []string{"SSN1"}},
		{"**.ssn", []string{"SSN1"}},
		{"**.street", []string{"STREET1"}},
		{"customer.**", []string{"EMAIL1", "STREET1", "SSN1"}},
		{"**", all},
		{"items[].card", []string{"CARD1", "CARD2"}},
		{"items.card", []string{"CARD1", "CARD2"}},
		{"items[]", []string{"CARD1", "SKU1", "CARD2", "SKU2"}},
		{"**.card", []string{"CARD1", "CARD2"}},
		{"attrs.*", []string{"AEMAIL", "ADEVICE"}},
		{"attrs[]", []string{"AEMAIL", "ADEVICE"}},
		{"attrs.email", []string{"AEMAIL"}},
		{"**.email", []string{"EMAIL1", "AEMAIL"}},
		{"matrix[][]", []string{"M1", "M2"}},
		{"matrix", []string{"M1", "M2"}},
		{"id.x", nil},
		{"nothing", nil},
	}
	for _, c := range cases {
		t.Run(c.pattern, func(t *testing.T) {
			set := oneRule(t, `"`+c.pattern+`"`, "action: redact")
			plan := compile(t, set, Schema{Type: Avro, Text: schema, ID: 9})
			hs := hambaSchema(t, schema)
			in, err := avro.Marshal(hs, rec)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Touches() != (c.want != nil) {
				t.Errorf("Touches() = %v", plan.Touches())
			}
			out, _, err := plan.MaskAvro(in)
			if err != nil {
				t.Fatal(err)
			}
			var got any
			if err := avro.Unmarshal(hs, out, &got); err != nil {
				t.Fatal(err)
			}
			left := map[string]bool{}
			leaves(got, left)
			var redacted []string
			for _, v := range all {
				if !left[v] {
					redacted = append(redacted, v)
				}
			}
			if strings.Join(redacted, ",") != strings.Join(c.want, ",") {
				t.Errorf("redacted %v, want %v", redacted, c.want)
			}
		})
	}
}

// leaves collects the string leaves of a decoded value.
func leaves(v any, into map[string]bool) {
	switch v := v.(type) {
	case string:
		into[v] = true
	case map[string]any:
		for _, x := range v {
			leaves(x, into)
		}
	case []any:
		for _, x := range v {
			leaves(x, into)
		}
	}
}

func TestTagsMatchNestedAvroFieldsAndJSONSchemaProperties(t *testing.T) {
	set := mustParse(t, "tags.yaml", "policy: t\nversion: 1\nrules:\n  - {match: {tag: PII}, action: redact}\n")
	avroSchema := `{"type":"record","name":"R","fields":[
	  {"name":"a","type":"string"},
	  {"name":"inner","type":{"type":"record","name":"In","fields":[{"name":"secret","type":"string","confluent:tags":["PII","GDPR"]}]}},
	  {"name":"list","type":{"type":"array","items":"In"}}]}`
	plan := compile(t, set, Schema{Type: Avro, Text: avroSchema, ID: 1})
	hs := hambaSchema(t, avroSchema)
	in, _ := avro.Marshal(hs, map[string]any{"a": "A", "inner": map[string]any{"secret": "S1"}, "list": []any{map[string]any{"secret": "S2"}}})
	out, res, err := plan.MaskAvro(in)
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, hs, out)
	if got["a"] != "A" || got["inner"].(map[string]any)["secret"] != "" || got["list"].([]any)[0].(map[string]any)["secret"] != "" {
		t.Fatalf("got %v", got)
	}
	if len(res.Touches) != 2 || res.Touches[1].Path != "list[].secret" {
		t.Fatalf("touches %+v", res.Touches)
	}

	jplan := compile(t, set, loadSchema(t, "telemetry.json", 2))
	jout, jres, err := jplan.MaskJSON([]byte(`{"vin":"V","recorded_at":"2024-05-17T13:45:12Z","driver":{"name":"Bob","license":"L-1"},"extra":{"name":"kept"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(jout) != `{"vin":"V","recorded_at":"2024-05-17T13:45:12Z","driver":{"name":"","license":null},"extra":{"name":"kept"}}` {
		t.Fatalf("got %s", jout)
	}
	if len(jres.Touches) != 2 {
		t.Fatalf("touches %+v", jres.Touches)
	}
}

func TestJSONSchemaRefsAndArrays(t *testing.T) {
	set, err := LoadFiles("testdata/good/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Compile(set, "fleet-telemetry", "fleet.telemetry", loadSchema(t, "telemetry.json", 2), WithHashKey(hashKey))
	if err != nil {
		t.Fatal(err)
	}
	// driver.name is tagged PII and has a rule; driver.license is tagged PII and has none.
	_, _, err = plan.MaskJSON([]byte(`{}`))
	var v *Violation
	if !errors.As(err, &v) || v.Reason != ReasonUnmatchedPII || v.FieldPath != "driver.license" {
		t.Fatalf("got %v", err)
	}
	if !plan.Touches() {
		t.Fatal("a plan that rejects records must touch them")
	}
}

func TestFleetPolicyOnJSON(t *testing.T) {
	set, err := LoadFiles("testdata/good/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Without a schema the fleet policy masks by field paths alone.
	plan, err := Compile(set, "fleet-telemetry", "fleet.telemetry", Schema{Type: JSON})
	if err != nil {
		t.Fatal(err)
	}
	in := `{"vin":"WVW123","recorded_at":"2024-05-17T13:45:12.5+02:00","speed_kmh":87.5,` +
		`"driver":{"name":"Bob"},"position":{"lat":52.520008,"lon":13.404954},` +
		`"trips":[{"passengers":[{"phone":"+4930123"},{"phone":"+4940999"}]}],"notes":"late"}`
	out, res, err := plan.MaskJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"vin":"REDACTED-VIN","recorded_at":"2024-05-17T13:00:00+02:00","speed_kmh":50,` +
		`"driver":{"name":""},"position":{"lat":52.52,"lon":13.4},` +
		`"trips":[{"passengers":[{"phone":"+49#####"},{"phone":"+49#####"}]}]}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	var paths []string
	for _, tc := range res.Touches {
		paths = append(paths, tc.Path)
	}
	if got := strings.Join(paths, " "); got != "vin recorded_at speed_kmh driver.name position.lat position.lon trips[].passengers[].phone notes" {
		t.Fatalf("touches %s", got)
	}
	if res.Touches[6].Count != 2 || res.KeyID != "" {
		t.Fatalf("result %+v", res)
	}
}

func TestScopeByPipelineAndTopic(t *testing.T) {
	set, err := LoadDir("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		pipeline, topic string
		want            []string
	}{
		{"eu-payments", "payments.card", []string{"payments-pii@7"}},
		{"us-payments", "anything", []string{"payments-pii@7"}},
		{"fleet-telemetry", "fleet.telemetry", []string{"fleet-telemetry@3"}},
		{"fleet-telemetry", "other", nil},
		{"unknown", "payments.card", nil},
	} {
		plan, err := Compile(set, c.pipeline, c.topic, Schema{Type: JSON}, WithHashKey(hashKey))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(plan.Policies(), c.want) {
			t.Errorf("%s %s: policies %v, want %v", c.pipeline, c.topic, plan.Policies(), c.want)
		}
		if plan.Touches() != (c.want != nil) {
			t.Errorf("%s %s: Touches() = %v", c.pipeline, c.topic, plan.Touches())
		}
	}
}

func TestMostSpecificRuleWins(t *testing.T) {
	set := mustParse(t, "p.yaml", `policy: p
version: 1
rules:
  - {match: {tag: PII}, action: redact}
  - {match: {field: "**.email"}, action: hash}
  - {match: {field: customer.email}, action: mask, keep_last: 4}
  - {match: {field: "customer.*"}, action: hash}
  - {match: {field: customer}, action: redact}
  - {match: {field: "**.ssn"}, action: block}
  - {match: {field: customer.ssn}, action: redact}
`)
	schema := `{"type":"record","name":"R","fields":[{"name":"customer","type":{"type":"record","name":"C","fields":[
	  {"name":"email","type":"string","confluent:tags":["PII"]},
	  {"name":"name","type":"string","confluent:tags":["PII"]},
	  {"name":"city","type":"string"},
	  {"name":"ssn","type":["null","string"]}]}},
	  {"name":"other","type":{"type":"record","name":"O","fields":[{"name":"email","type":"string"}]}}]}`
	plan := compile(t, set, Schema{Type: Avro, Text: schema, ID: 4})
	hs := hambaSchema(t, schema)
	in, _ := avro.Marshal(hs, map[string]any{"customer": map[string]any{"email": "a@example.com", "name": "Al", "city": "Berlin", "ssn": nil}, "other": map[string]any{"email": "o@example.com"}})
	out, res, err := plan.MaskAvro(in)
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, hs, out)
	c := got["customer"].(map[string]any)
	// email: the literal path beats the wildcards and the tag; name: the
	// wildcard path beats the tag; city: the enclosing record's rule.
	if c["email"] != "*********.com" || c["name"] != hexHMAC("Al") || c["city"] != hexHMAC("Berlin") {
		t.Fatalf("customer %v", c)
	}
	if got["other"].(map[string]any)["email"] != hexHMAC("o@example.com") {
		t.Fatalf("other %v", got["other"])
	}
	_ = res
	// ssn: block beats the more specific redact, once there is a value.
	in, _ = avro.Marshal(hs, map[string]any{"customer": map[string]any{"email": "a", "name": "b", "city": "c", "ssn": "123-45-6789"}, "other": map[string]any{"email": "o"}})
	_, _, err = plan.MaskAvro(in)
	var v *Violation
	if !errors.As(err, &v) || v.Reason != ReasonBlocked || v.FieldPath != "customer.ssn" || v.Rule != "p@1 rules[5]" {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "123-45-6789") {
		t.Fatal("the violation quotes the value")
	}
}

func TestConflictingPoliciesFailToCompile(t *testing.T) {
	a := Source{Name: "a.yaml", Data: []byte("policy: a\nversion: 1\nrules:\n  - {match: {tag: PII}, action: hash}\n")}
	b := Source{Name: "b.yaml", Data: []byte("policy: b\nversion: 1\napplies_to: {topics: ['pay.*']}\nrules:\n  - {match: {field: email}, action: redact}\n")}
	set, err := ParseFiles(a, b)
	if err != nil {
		t.Fatalf("policies that cannot be compared without a schema are fine: %v", err)
	}
	schema := Schema{Type: Avro, ID: 5, Text: `{"type":"record","name":"R","fields":[{"name":"email","type":"string","confluent:tags":["PII"]}]}`}
	_, err = Compile(set, "p", "payments", schema, WithHashKey(hashKey))
	if err == nil || err.Error() != `b.yaml:5:37: rules[0].action: conflicts with policy "a" rules[0] (a.yaml:4:5) on field email of schema id 5: redact here, hash there` {
		t.Fatalf("got %v", err)
	}
	// For another topic only policy a applies.
	if _, err := Compile(set, "p", "orders", schema, WithHashKey(hashKey)); err != nil {
		t.Fatal(err)
	}
	// Lint reports the conflict too.
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", a.Data)
	writeFile(t, dir, "b.yaml", b.Data)
	rep := Lint([]string{dir}, []Schema{schema})
	if rep.OK() || !strings.Contains(rep.Errors[0].Error(), "conflicts with policy \"a\"") {
		t.Fatalf("lint %v", rep.Errors)
	}
}

func TestRecursiveSchemasCompile(t *testing.T) {
	schema := `{"type":"record","name":"Node","fields":[
	  {"name":"name","type":"string","confluent:tags":["PII"]},
	  {"name":"children","type":{"type":"array","items":"Node"}},
	  {"name":"next","type":["null","Node"]}]}`
	set := mustParse(t, "r.yaml", "policy: r\nversion: 1\nrules:\n  - {match: {field: \"**.name\"}, action: hash}\n")
	plan := compile(t, set, Schema{Type: Avro, Text: schema, ID: 6})
	hs := hambaSchema(t, schema)
	leaf := func(n string) map[string]any { return map[string]any{"name": n, "children": []any{}, "next": nil} }
	rec := map[string]any{"name": "root", "children": []any{leaf("kid")}, "next": map[string]any{"Node": leaf("nxt")}}
	in, err := avro.Marshal(hs, rec)
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := plan.MaskAvro(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"root", "kid", "nxt"} {
		if strings.Contains(string(out), raw) {
			t.Errorf("%s is still there", raw)
		}
	}
	decode(t, hs, out)

	// A recursive JSON Schema through $ref.
	js := `{"$ref":"#/definitions/n","definitions":{"n":{"type":"object","properties":{"name":{"type":"string","confluent:tags":["PII"]},"kids":{"type":"array","items":{"$ref":"#/definitions/n"}}}}}}`
	jplan := compile(t, set, Schema{Type: JSON, Text: js, ID: 7})
	jout, _, err := jplan.MaskJSON([]byte(`{"name":"a","kids":[{"name":"b","kids":[{"name":"c"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"` + hexHMAC("a") + `","kids":[{"name":"` + hexHMAC("b") + `","kids":[{"name":"` + hexHMAC("c") + `"}]}]}`
	if string(jout) != want {
		t.Fatalf("got %s", jout)
	}
}

func TestTwoPoliciesTouchOneRecord(t *testing.T) {
	set, err := ParseFiles(
		Source{Name: "a.yaml", Data: []byte("policy: a\nversion: 3\nrules:\n  - {match: {field: email}, action: hash}\n")},
		Source{Name: "b.yaml", Data: []byte("policy: b\nversion: 9\napplies_to: {pipelines: [eu-payments]}\nrules:\n  - {match: {field: \"phones[]\"}, action: drop}\n  - {match: {field: email}, action: hash}\n")},
	)
	if err != nil {
		t.Fatal(err)
	}
	schema := `{"type":"record","name":"R","fields":[{"name":"email","type":"string"},{"name":"phones","type":{"type":"array","items":["null","string"]}}]}`
	plan := compile(t, set, Schema{Type: Avro, Text: schema, ID: 3})
	hs := hambaSchema(t, schema)
	in, _ := avro.Marshal(hs, map[string]any{"email": "a@b.c", "phones": []any{"1", nil, "2"}})
	out, res, err := plan.MaskAvro(in)
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, hs, out)
	if got["email"] != hexHMAC("a@b.c") || !reflect.DeepEqual(got["phones"], []any{nil, nil, nil}) {
		t.Fatalf("got %v", got)
	}
	if res.Header() != "a@3,b@9" || res.Touches[1].Count != 2 || res.Touches[1].Path != "phones[]" {
		t.Fatalf("result %+v", res)
	}
	if !reflect.DeepEqual(plan.Policies(), []string{"a@3", "b@9"}) {
		t.Fatalf("policies %v", plan.Policies())
	}
}
