package policy

import (
	"errors"
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"
)

// keyPolicy is a policy whose rules are given as YAML flow mappings, one a line.
func keyPolicy(t testing.TB, rules ...string) *Set {
	t.Helper()
	src := "policy: keys\nversion: 2\nrules:\n"
	for _, r := range rules {
		src += "  - " + r + "\n"
	}
	return mustParse(t, "keys.yaml", src)
}

func compileKey(t testing.TB, set *Set, schema Schema) *Plan {
	t.Helper()
	p, err := CompilePart(set, "eu-payments", "payments.card", Key, schema, WithHashKey(hashKey))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAvroKeys masks the key schema testdata/schemas/payment-key.avsc:
// customer_id (a string tagged PII) and region_code (a long).
func TestAvroKeys(t *testing.T) {
	ks := loadSchema(t, "payment-key.avsc", 11)
	hs := hambaSchema(t, ks.Text)
	in, err := avro.Marshal(hs, map[string]any{"customer_id": "c-1001", "region_code": int64(49)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		rules []string
		want  map[string]any // the key after masking
		paths []string       // the touches' paths
		// viol is the violation's reason and field path.
		viol [2]string
	}{
		{name: "a tag rule hashes the tagged key field", rules: []string{"{match: {tag: PII}, action: hash}"},
			want: map[string]any{"customer_id": hexHMAC("c-1001"), "region_code": int64(49)}, paths: []string{"key.customer_id"}},
		{name: "a key rule masks a key field", rules: []string{"{match: {key: customer_id}, action: mask, keep_last: 2}"},
			want: map[string]any{"customer_id": "****01", "region_code": int64(49)}, paths: []string{"key.customer_id"}},
		{name: "a key rule with a tag needs the field to carry the tag", rules: []string{"{match: {key: region_code, tag: PII}, action: redact}", "{match: {key: customer_id, tag: PII}, action: redact}"},
			want: map[string]any{"customer_id": "", "region_code": int64(49)}, paths: []string{"key.customer_id"}},
		{name: "the whole key is the key rule \".\"", rules: []string{`{match: {key: "."}, action: redact}`},
			want: map[string]any{"customer_id": "", "region_code": int64(0)}, paths: []string{"key.customer_id", "key.region_code"}},
		{name: "a PII-tagged key field no rule covers quarantines the record", rules: []string{"{match: {key: region_code}, action: redact}"},
			viol: [2]string{ReasonUnmatchedPII, "key.customer_id"}},
		{name: "a field rule of the same name does not cover a key field", rules: []string{"{match: {field: customer_id}, action: hash}"},
			viol: [2]string{ReasonUnmatchedPII, "key.customer_id"}},
		{name: "a block rule on a key field quarantines the record", rules: []string{"{match: {tag: PII}, action: hash}", "{match: {key: region_code}, action: block}"},
			viol: [2]string{ReasonBlocked, "key.region_code"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := compileKey(t, keyPolicy(t, c.rules...), ks)
			out, res, err := plan.Apply(in)
			if c.viol[0] != "" {
				var v *Violation
				if !errors.As(err, &v) || v.Reason != c.viol[0] || v.FieldPath != c.viol[1] {
					t.Fatalf("got %v, want %s at %s", err, c.viol[0], c.viol[1])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := decode(t, hs, out); !reflect.DeepEqual(got, c.want) {
				t.Errorf("key %v, want %v", got, c.want)
			}
			var paths []string
			for _, tc := range res.Touches {
				paths = append(paths, tc.Path)
			}
			if !reflect.DeepEqual(paths, c.paths) {
				t.Errorf("touches %v, want %v", paths, c.paths)
			}
		})
	}
}

func TestKeyAndValueRulesStayInTheirPart(t *testing.T) {
	set := keyPolicy(t, "{match: {key: customer.email}, action: redact}", "{match: {field: vin}, action: hash}")
	value := compile(t, set, Schema{Type: JSON})
	out, res, err := value.MaskJSON([]byte(`{"customer":{"email":"a@b.c"},"vin":"V1"}`))
	if err != nil || string(out) != `{"customer":{"email":"a@b.c"},"vin":"`+hexHMAC("V1")+`"}` || res.Touches[0].Path != "vin" {
		t.Fatalf("a value plan applied a key rule, or missed its field rule: %s %+v %v", out, res, err)
	}
	key := compileKey(t, set, Schema{Type: JSON})
	out, res, err = key.MaskJSON([]byte(`{"customer":{"email":"a@b.c"},"vin":"V1"}`))
	if err != nil || string(out) != `{"customer":{"email":""},"vin":"V1"}` || len(res.Touches) != 1 || res.Touches[0].Path != "key.customer.email" {
		t.Fatalf("a key plan applied a field rule, or missed its key rule: %s %+v %v", out, res, err)
	}
	if p := compileKey(t, keyPolicy(t, "{match: {field: vin}, action: hash}"), Schema{Type: Raw}); p.Touches() {
		t.Fatal("a field rule touches a key without a schema")
	}
	untagged := Schema{Type: Avro, Text: `{"type":"record","name":"R","fields":[{"name":"vin","type":"string"}]}`}
	if p := compile(t, keyPolicy(t, `{match: {key: "."}, action: hash}`, `{match: {key: vin}, action: hash}`), untagged); p.Touches() {
		t.Fatal("a rule for the whole key touches values")
	}
}

func TestJSONKeys(t *testing.T) {
	const vinSchema = `{"type":"object","properties":{"vin":{"type":"string","confluent:tags":["PII"]},"fleet":{"type":"string"}}}`
	cases := []struct {
		name   string
		schema Schema
		rules  []string
		in     string
		want   string
		path   string // of the one touch, or of the violation
		viol   string
	}{
		{"a key rule hashes a member of a JSON key with a schema", Schema{Type: JSON, Text: vinSchema, ID: 4}, []string{"{match: {key: vin}, action: hash}"},
			`{"vin":"WVWZZZ1JZXW000001","fleet":"eu"}`, `{"vin":"` + hexHMAC("WVWZZZ1JZXW000001") + `","fleet":"eu"}`, "key.vin", ""},
		{"a PII-tagged member of a JSON key with no rule quarantines", Schema{Type: JSON, Text: vinSchema, ID: 4}, []string{"{match: {key: fleet}, action: redact}"},
			`{"vin":"WVWZZZ1JZXW000001","fleet":"eu"}`, "", "key.vin", ReasonUnmatchedPII},
		{"a key rule redacts a member of a JSON key without a schema", Schema{Type: JSON}, []string{"{match: {key: driver.name}, action: redact}"},
			`{"driver":{"name":"Bob"}}`, `{"driver":{"name":""}}`, "key.driver.name", ""},
		{"a block rule names the key field", Schema{Type: JSON}, []string{`{match: {key: "**.ssn"}, action: block}`},
			`{"a":{"ssn":"1"}}`, "", "key.a.ssn", ReasonBlocked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := compileKey(t, keyPolicy(t, c.rules...), c.schema)
			out, res, err := plan.Apply([]byte(c.in))
			if c.viol != "" {
				var v *Violation
				if !errors.As(err, &v) || v.Reason != c.viol || v.FieldPath != c.path {
					t.Fatalf("got %v, want %s at %s", err, c.viol, c.path)
				}
				return
			}
			if err != nil || string(out) != c.want {
				t.Fatalf("got %s %v, want %s", out, err, c.want)
			}
			if len(res.Touches) != 1 || res.Touches[0].Path != c.path {
				t.Fatalf("touches %+v, want one at %s", res.Touches, c.path)
			}
		})
	}
}

// TestRawKeys masks a key without a schema, such as a VIN: every action but
// generalize and bucket applies to the whole key.
func TestRawKeys(t *testing.T) {
	const vin = "WVWZZZ1JZXW000001"
	cases := []struct {
		name string
		rule string
		in   []byte
		want []byte // nil: a null key
		// touched says a Touch at "key" is expected; viol is a violation reason.
		touched bool
		viol    string
	}{
		{"hash makes the key its hex HMAC", "action: hash", []byte(vin), []byte(hexHMAC(vin)), true, ""},
		{"redact makes the key empty, not null", "action: redact", []byte(vin), []byte{}, true, ""},
		{"mask keeps the last characters", "action: mask, keep_last: 4", []byte(vin), []byte("*************0001"), true, ""},
		{"mask counts characters, not bytes", "action: mask, keep_first: 1", []byte("Zoë"), []byte("Z**"), true, ""},
		{"mask of bytes that are not UTF-8 is unmaskable", "action: mask, keep_last: 4", []byte{0xff, 0xfe, 'a'}, nil, false, ReasonUnmaskable},
		{"hash takes bytes that are not UTF-8", "action: hash", []byte{0xff, 0xfe}, []byte(hexHMAC("\xff\xfe")), true, ""},
		{"replace writes the value", "action: replace, value: REDACTED-VIN", []byte(vin), []byte("REDACTED-VIN"), true, ""},
		{"drop makes the key null", "action: drop", []byte(vin), nil, true, ""},
		{"block quarantines a record with a key", "action: block", []byte(vin), nil, false, ReasonBlocked},
		{"block lets a record with a null key pass", "action: block", nil, nil, false, ""},
		{"a null key stays null under hash", "action: hash", nil, nil, false, ""},
		{"replace writes the value over a null key", "action: replace, value: REDACTED-VIN", nil, []byte("REDACTED-VIN"), true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := compileKey(t, keyPolicy(t, `{match: {key: "."}, `+c.rule+`}`), Schema{Type: Raw})
			if !plan.Touches() {
				t.Fatal("the plan touches nothing")
			}
			out, res, err := plan.Apply(c.in)
			if c.viol != "" {
				var v *Violation
				if !errors.As(err, &v) || v.Reason != c.viol || v.FieldPath != "key" || v.Rule != "keys@2 rules[0]" || out != nil {
					t.Fatalf("got %v (%q), want %s at key", err, out, c.viol)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (out == nil) != (c.want == nil) || string(out) != string(c.want) {
				t.Fatalf("key %q (nil %t), want %q (nil %t)", out, out == nil, c.want, c.want == nil)
			}
			if !c.touched {
				if len(res.Touches) != 0 {
					t.Fatalf("touches %+v", res.Touches)
				}
				return
			}
			if len(res.Touches) != 1 || res.Touches[0].Path != "key" || res.Touches[0].Count != 1 || res.Header() != "keys@2" {
				t.Fatalf("result %+v", res)
			}
			if (res.KeyID != "") != (res.Touches[0].Action == Hash) {
				t.Fatalf("key id %q for %s", res.KeyID, res.Touches[0].Action)
			}
		})
	}
}

func TestAnyDepthPatternMatchesTheWholeRawKey(t *testing.T) {
	plan := compileKey(t, keyPolicy(t, `{match: {key: "**"}, action: redact}`), Schema{Type: Raw})
	out, res, err := plan.Apply([]byte("WVWZZZ1JZXW000001"))
	if err != nil || out == nil || len(out) != 0 || len(res.Touches) != 1 || res.Touches[0].Path != "key" {
		t.Fatalf("got %q %+v %v", out, res, err)
	}
	if p := compileKey(t, keyPolicy(t, `{match: {key: "*"}, action: redact}`), Schema{Type: Raw}); p.Touches() {
		t.Fatal(`"*" (one level down) matches a key without a schema`)
	}
}

func TestHashedKeysJoinHashedValueFields(t *testing.T) {
	const vin = "WVWZZZ1JZXW000001"
	set := keyPolicy(t, `{match: {key: "."}, action: hash}`, "{match: {field: vin}, action: hash}")
	key, _, err := compileKey(t, set, Schema{Type: Raw}).Apply([]byte(vin))
	if err != nil {
		t.Fatal(err)
	}
	value, _, err := compile(t, set, Schema{Type: JSON}).Apply([]byte(`{"vin":"` + vin + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"vin":"` + string(key) + `"}`; string(value) != want {
		t.Fatalf("the key's pseudonym %s differs from the value field's: %s", key, value)
	}
	ks := Schema{Type: Avro, Text: `"string"`, ID: 9}
	avroKey, _ := avro.Marshal(hambaSchema(t, ks.Text), vin)
	out, _, err := compileKey(t, set, ks).Apply(avroKey)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	if err := avro.Unmarshal(hambaSchema(t, ks.Text), out, &got); err != nil || got != string(key) {
		t.Fatalf("an Avro string key hashes to %q, a raw key to %q (%v)", got, key, err)
	}
}

func TestRawKeyPlansNeedAHashKeyAndRefuseOtherApplies(t *testing.T) {
	set := keyPolicy(t, `{match: {key: "."}, action: hash}`)
	_, err := CompilePart(set, "", "", Key, Schema{Type: Raw})
	var list *ErrorList
	if !errors.As(err, &list) || list.Errors[0].Error() != "keys.yaml:4:33: rules[0].action: hash rules need a key: set TRIBUTARY_HASH_KEY or a key file" {
		t.Fatalf("got %v", err)
	}
	plan := compileKey(t, set, Schema{Type: Raw})
	for name, mask := range map[string]func([]byte) ([]byte, Result, error){"MaskJSON": plan.MaskJSON, "MaskAvro": plan.MaskAvro} {
		if out, _, err := mask([]byte(`"x"`)); err == nil || out != nil {
			t.Errorf("%s on a plan for a raw key passed the key through", name)
		}
	}
}

func TestCacheKeepsKeyAndValuePlansApart(t *testing.T) {
	set := keyPolicy(t, "{match: {key: vin}, action: redact}", "{match: {field: vin}, action: hash}")
	c := NewCache(WithHashKey(hashKey))
	s := Schema{Type: JSON, ID: 3}
	kp, err := c.PlanPart(set, "p", "t", Key, s)
	if err != nil {
		t.Fatal(err)
	}
	vp, err := c.Plan(set, "p", "t", s)
	if err != nil {
		t.Fatal(err)
	}
	if kp == vp {
		t.Fatal("the key and the value share a plan")
	}
	if again, _ := c.PlanPart(set, "p", "t", Key, s); again != kp {
		t.Fatal("the key plan was compiled twice")
	}
	k, _, _ := kp.Apply([]byte(`{"vin":"V"}`))
	v, _, _ := vp.Apply([]byte(`{"vin":"V"}`))
	if string(k) != `{"vin":""}` || string(v) != `{"vin":"`+hexHMAC("V")+`"}` {
		t.Fatalf("key %s, value %s", k, v)
	}
}
