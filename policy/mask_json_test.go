package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// jsonCase masks member v of {"keep": "k", "v": <in>, "tail": 42}.
type jsonCase struct {
	name   string
	schema string // JSON Schema of v; "" for no schema at all
	in     string // v as JSON
	rule   string
	want   string // the whole masked document, compact; "" with err
	err    string
}

func TestMaskJSONActionsByType(t *testing.T) {
	const (
		str     = `{"type":"string"}`
		integer = `{"type":"integer"}`
		number  = `{"type":"number"}`
		boolean = `{"type":"boolean"}`
		enum    = `{"enum":["RED","GREEN","BLUE"]}`
		strs    = `{"type":"array","items":{"type":"string"}}`
		strMap  = `{"type":"object","additionalProperties":{"type":"string"}}`
		inner   = `{"type":"object","properties":{"inner":{"type":"string"},"n":{"type":"integer"}},"required":["inner","n"]}`
		nstr    = `{"type":["string","null"]}`
		when    = `{"type":"string","format":"date-time"}`
	)
	doc := func(v string) string { return `{"keep":"k","v":` + v + `,"tail":42}` }
	cases := []jsonCase{
		// string
		{"redact empties a string", str, `"alice@example.com"`, "action: redact", doc(`""`), ""},
		{"hash makes a string its hex HMAC", str, `"alice@example.com"`, "action: hash", doc(`"` + hexHMAC("alice@example.com") + `"`), ""},
		{"hash reads escapes first, so pseudonyms match Avro's", str, `"alice\u0040example.com"`, "action: hash", doc(`"` + hexHMAC("alice@example.com") + `"`), ""},
		{"mask keeps the last characters", str, `"4111111111111111"`, "action: mask, keep_last: 4", doc(`"************1111"`), ""},
		{"mask escapes what it keeps", str, `"a\"b\"c"`, "action: mask, keep_first: 2", doc(`"a\"***"`), ""},
		{"generalize truncates an RFC 3339 string", when, `"2024-05-17T13:45:12Z"`, "action: generalize, truncate: day", doc(`"2024-05-17T00:00:00Z"`), ""},
		{"generalize truncates a date string", str, `"2024-05-17"`, "action: generalize, truncate: year", doc(`"2024-01-01"`), ""},
		{"generalize of a non-timestamp string is unmaskable", str, `"soon"`, "action: generalize, truncate: day", "", ReasonUnmaskable},
		{"drop removes a member the schema does not require", str, `"x"`, "action: drop", `{"keep":"k","tail":42}`, ""},
		{"replace writes a fixed string", str, `"alice"`, "action: replace, value: anonymous", doc(`"anonymous"`), ""},
		{"replace of a string with a boolean is an error", str, `"alice"`, "action: replace, value: true", "", "want a string"},
		{"bucket cannot apply to a string", str, `"5"`, bucketRule, "", "bucket needs a numeric field"},
		{"block rejects a record with a string", str, `"x"`, "action: block", "", ReasonBlocked},

		// integer
		{"redact zeroes an integer", integer, `1234`, "action: redact", doc(`0`), ""},
		{"hash cannot apply to an integer", integer, `1234`, "action: hash", "", "hash needs"},
		{"mask cannot apply to an integer", integer, `1234`, "action: mask", "", "mask needs"},
		{"generalize rounds an integer", integer, `1250`, "action: generalize, precision: -2", doc(`1300`), ""},
		{"drop removes an integer member", integer, `1`, "action: drop", `{"keep":"k","tail":42}`, ""},
		{"replace writes an integer", integer, `1`, "action: replace, value: 7", doc(`7`), ""},
		{"replace of an integer needs an integer", integer, `1`, "action: replace, value: 7.5", "", "not a 64-bit integer"},
		{"bucket maps an integer", integer, `1234`, bucketRule, doc(`100`), ""},
		{"block rejects a record with an integer", integer, `0`, "action: block", "", ReasonBlocked},

		// number
		{"redact zeroes a number", number, `52.520008`, "action: redact", doc(`0`), ""},
		{"hash cannot apply to a number", number, `1.5`, "action: hash", "", "hash needs"},
		{"mask cannot apply to a number", number, `1.5`, "action: mask", "", "mask needs"},
		{"generalize rounds a number", number, `52.520008`, "action: generalize, precision: 2", doc(`52.52`), ""},
		{"generalize rounds an exponent number", number, `5.2520008e1`, "action: generalize, precision: 1", doc(`52.5`), ""},
		{"drop removes a number member", number, `1.5`, "action: drop", `{"keep":"k","tail":42}`, ""},
		{"replace writes a number", number, `1.5`, "action: replace, value: 2.25", doc(`2.25`), ""},
		{"bucket maps a number", number, `20000.5`, bucketRule, doc(`10000`), ""},
		{"block rejects a record with a number", number, `1.5`, "action: block", "", ReasonBlocked},

		// boolean
		{"redact makes a boolean false", boolean, `true`, "action: redact", doc(`false`), ""},
		{"hash cannot apply to a boolean", boolean, `true`, "action: hash", "", "hash needs"},
		{"mask cannot apply to a boolean", boolean, `true`, "action: mask", "", "mask needs"},
		{"generalize cannot apply to a boolean", boolean, `true`, "action: generalize, precision: 0", "", "generalize needs"},
		{"drop removes a boolean member", boolean, `true`, "action: drop", `{"keep":"k","tail":42}`, ""},
		{"replace writes a boolean", boolean, `true`, "action: replace, value: false", doc(`false`), ""},
		{"bucket cannot apply to a boolean", boolean, `true`, bucketRule, "", "bucket needs"},
		{"block rejects a record with a boolean", boolean, `false`, "action: block", "", ReasonBlocked},

		// enum
		{"redact sets an enum to its first value", enum, `"GREEN"`, "action: redact", doc(`"RED"`), ""},
		{"hash cannot apply to an enum", enum, `"GREEN"`, "action: hash", "", "cannot produce a value of the enum"},
		{"mask cannot apply to an enum", enum, `"GREEN"`, "action: mask", "", "cannot produce a value of the enum"},
		{"generalize cannot apply to an enum", enum, `"GREEN"`, "action: generalize, truncate: day", "", "cannot produce a value of the enum"},
		{"drop removes an enum member", enum, `"GREEN"`, "action: drop", `{"keep":"k","tail":42}`, ""},
		{"replace writes an enum value", enum, `"GREEN"`, "action: replace, value: BLUE", doc(`"BLUE"`), ""},
		{"replace of an enum needs one of its values", enum, `"GREEN"`, "action: replace, value: PINK", "", "not one of the enum's values"},
		{"bucket cannot apply to an enum", enum, `"GREEN"`, bucketRule, "", "cannot produce a value of the enum"},
		{"block rejects a record with an enum", enum, `"GREEN"`, "action: block", "", ReasonBlocked},

		// arrays
		{"redact empties each element of an array", strs, `["a1", "b22"]`, "action: redact", doc(`["", ""]`), ""},
		{"hash pseudonymises each element of an array", strs, `["a1"]`, "action: hash", doc(`["` + hexHMAC("a1") + `"]`), ""},
		{"mask masks each element of an array", strs, `["a1","b22"]`, "action: mask, keep_last: 2", doc(`["**","*22"]`), ""},
		{"generalize rounds each element of an array", `{"type":"array","items":{"type":"number"}}`, `[1.26,2.31]`, "action: generalize, precision: 1", doc(`[1.3,2.3]`), ""},
		{"drop removes an array member", strs, `["a"]`, "action: drop", `{"keep":"k","tail":42}`, ""},
		{"replace cannot apply to an array", strs, `["a"]`, "action: replace, value: x", "", "want an array"},
		{"bucket maps each element of an array", `{"type":"array","items":{"type":"integer"}}`, `[5,500]`, bucketRule, doc(`[0,100]`), ""},
		{"block rejects a record with an array", strs, `[]`, "action: block", "", ReasonBlocked},

		// maps
		{"redact empties each value of a map", strMap, `{"a":"x","b":"y"}`, "action: redact", doc(`{"a":"","b":""}`), ""},
		{"hash pseudonymises each value of a map", strMap, `{"a":"x"}`, "action: hash", doc(`{"a":"` + hexHMAC("x") + `"}`), ""},
		{"mask masks each value of a map", strMap, `{"a":"value"}`, "action: mask, keep_first: 1", doc(`{"a":"v****"}`), ""},
		{"generalize rounds each value of a map", `{"type":"object","additionalProperties":{"type":"integer"}}`, `{"a":1249}`, "action: generalize, precision: -2", doc(`{"a":1200}`), ""},
		{"drop removes a map member", strMap, `{"a":"x"}`, "action: drop", `{"keep":"k","tail":42}`, ""},
		{"replace cannot apply to a map", strMap, `{}`, "action: replace, value: 1", "", "want an object"},
		{"bucket maps each value of a map", `{"type":"object","additionalProperties":{"type":"number"}}`, `{"a":150}`, bucketRule, doc(`{"a":100}`), ""},
		{"block rejects a record with a map", strMap, `{}`, "action: block", "", ReasonBlocked},

		// nested objects
		{"redact empties every field of a nested object", inner, `{"inner":"x","n":5}`, "action: redact", doc(`{"inner":"","n":0}`), ""},
		{"hash of an object cannot apply to its integer", inner, `{"inner":"x","n":5}`, "action: hash", "", "field v.n of schema id 2 (integer)"},
		{"mask of an object cannot apply to its integer", inner, `{"inner":"x","n":5}`, "action: mask", "", "field v.n"},
		{"generalize of an object cannot apply to its string", inner, `{"inner":"x","n":5}`, "action: generalize, precision: 0", "", "field v.inner"},
		{"drop removes a nested object member", inner, `{"inner":"x","n":5}`, "action: drop", `{"keep":"k","tail":42}`, ""},
		{"replace cannot apply to an object", inner, `{"inner":"x","n":5}`, "action: replace, value: x", "", "want an object"},
		{"bucket of an object cannot apply to its string", inner, `{"inner":"x","n":5}`, bucketRule, "", "field v.inner"},
		{"block rejects a record with a nested object", inner, `{"inner":"x","n":5}`, "action: block", "", ReasonBlocked},

		// nullable
		{"redact nulls a nullable string", nstr, `"alice"`, "action: redact", doc(`null`), ""},
		{"hash pseudonymises a nullable string", nstr, `"alice"`, "action: hash", doc(`"` + hexHMAC("alice") + `"`), ""},
		{"mask masks a nullable string", nstr, `"alice"`, "action: mask, keep_first: 1", doc(`"a****"`), ""},
		{"generalize truncates a nullable timestamp", `{"type":["string","null"],"format":"date-time"}`, `"2024-05-17T13:45:12+02:00"`, "action: generalize, truncate: hour", doc(`"2024-05-17T13:00:00+02:00"`), ""},
		{"drop nulls a nullable member", nstr, `"alice"`, "action: drop", doc(`null`), ""},
		{"replace writes into a nullable string", nstr, `"alice"`, "action: replace, value: x", doc(`"x"`), ""},
		{"bucket maps a nullable integer", `{"type":["integer","null"]}`, `150`, bucketRule, doc(`100`), ""},
		{"block rejects a record whose nullable member has a value", nstr, `"x"`, "action: block", "", ReasonBlocked},
		{"hash leaves null alone", nstr, `null`, "action: hash", doc(`null`), ""},
		{"block lets a null through", nstr, `null`, "action: block", doc(`null`), ""},
		{"redact nulls a nullable object", `{"type":["object","null"],"properties":{"a":{"type":"string"}}}`, `{"a":"x"}`, "action: redact", doc(`null`), ""},
		{"a value of another kind than the schema's is unmaskable", str, `{"a":"x"}`, "action: redact", "", ReasonUnmaskable},
		{"hash of a uuid string is a uuid", `{"type":"string","format":"uuid"}`, `"0b3c5f9e-2f57-4d0e-9c39-1f2a3b4c5d6e"`, "action: hash", "uuid", ""},

		// no schema: types come from the values
		{"without a schema redact empties a string", "", `"alice"`, "action: redact", doc(`""`), ""},
		{"without a schema redact zeroes a number", "", `12.5`, "action: redact", doc(`0`), ""},
		{"without a schema redact makes a boolean false", "", `true`, "action: redact", doc(`false`), ""},
		{"without a schema redact empties a nested object's values", "", `{"a":"x","b":[1,true]}`, "action: redact", doc(`{"a":"","b":[0,false]}`), ""},
		{"without a schema hash of a number is unmaskable", "", `12`, "action: hash", "", ReasonUnmaskable},
		{"without a schema mask of a boolean is unmaskable", "", `true`, "action: mask", "", ReasonUnmaskable},
		{"without a schema generalize of a string with precision is unmaskable", "", `"x"`, "action: generalize, precision: 1", "", ReasonUnmaskable},
		{"without a schema generalize rounds a number", "", `12.345`, "action: generalize, precision: 1", doc(`12.3`), ""},
		{"without a schema drop removes the member", "", `"x"`, "action: drop", `{"keep":"k","tail":42}`, ""},
		{"without a schema replace writes any value", "", `{"x":1}`, "action: replace, value: gone", doc(`"gone"`), ""},
		{"without a schema bucket maps a number", "", `50`, bucketRule, doc(`0`), ""},
		{"without a schema bucket of a string is unmaskable", "", `"50"`, bucketRule, "", ReasonUnmaskable},
		{"without a schema block rejects a present member", "", `0`, "action: block", "", ReasonBlocked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			schema := Schema{Type: JSON, ID: 2}
			var st *stype
			if c.schema != "" {
				schema.Text = `{"type":"object","properties":{"keep":{"type":"string"},"v":` + c.schema + `,"tail":{"type":"integer"}},"required":["keep","tail"]}`
				var err error
				if st, err = parseSchema(schema); err != nil {
					t.Fatal(err)
				}
			}
			set := oneRule(t, "v", c.rule)
			plan, err := Compile(set, "p", "t", schema, WithHashKey(hashKey))
			var out []byte
			if err == nil {
				out, _, err = plan.MaskJSON([]byte(doc(c.in)))
			}
			if c.err != "" || err != nil {
				checkCase(t, string(out), err, c.want, c.err)
				return
			}
			var v any
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("output %s is not JSON: %v", out, err)
			}
			if st != nil {
				if err := conforms(st, v); err != nil {
					t.Fatalf("output %s does not conform to the schema: %v", out, err)
				}
			}
			if c.want == "uuid" {
				s, _ := v.(map[string]any)["v"].(string)
				if len(s) != 36 || s[14] != '8' {
					t.Fatalf("got %s, want a version-8 UUID", out)
				}
				return
			}
			if string(out) != c.want {
				t.Fatalf("got  %s\nwant %s", out, c.want)
			}
		})
	}
}

// conforms checks a decoded JSON value against the types of a JSON Schema:
// what masking promises to keep (types, enum values, required members).
func conforms(t *stype, v any) error {
	if t == nil || t.kind == kAny {
		return nil
	}
	switch t.kind {
	case kNull:
		if v == nil {
			return nil
		}
	case kBool:
		if _, ok := v.(bool); ok {
			return nil
		}
	case kLong:
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			return nil
		}
	case kDouble:
		if _, ok := v.(float64); ok {
			return nil
		}
	case kString:
		if _, ok := v.(string); ok {
			return nil
		}
	case kEnum:
		b, _ := json.Marshal(v)
		if slices.Contains(t.symbols, string(b)) {
			return nil
		}
	case kArray:
		if a, ok := v.([]any); ok {
			for i, x := range a {
				if err := conforms(t.elem, x); err != nil {
					return fmt.Errorf("[%d]: %w", i, err)
				}
			}
			return nil
		}
	case kMap, kRecord:
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		for k, x := range m {
			ft := t.elem
			if f := t.jsonField(k); f != nil {
				ft = f.t
			} else if t.kind == kRecord {
				ft = t.extra
			}
			if err := conforms(ft, x); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		for _, f := range t.fields {
			if _, ok := m[f.name]; f.required && !ok {
				return fmt.Errorf("%s: required member missing", f.name)
			}
		}
		return nil
	case kUnion:
		for _, b := range t.branches {
			if conforms(b, v) == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("%v is not a %s", v, t)
}

func TestMaskJSONKeepsUntouchedBytes(t *testing.T) {
	set := oneRule(t, "customer.email", "action: hash")
	plan := compile(t, set, Schema{})
	in := "{\n  \"id\" : 1.50E+2,\n  \"note\": \"caf\\u00e9\",\n  \"customer\": {\"email\": \"a@b.c\", \"x\": [1, 2 ,3]}\n}\n"
	out, res, err := plan.MaskJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(in, `"a@b.c"`, `"`+hexHMAC("a@b.c")+`"`, 1)
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	if len(res.Touches) != 1 || res.Touches[0].Path != "customer.email" || res.KeyID != KeyID(hashKey) {
		t.Fatalf("result %+v", res)
	}
}

func TestMaskJSONDropRemovesMembersAndCommas(t *testing.T) {
	set := mustParse(t, "t.yaml", "policy: t\nversion: 1\nrules:\n  - {match: {field: a}, action: drop}\n  - {match: {field: b}, action: drop}\n  - {match: {field: c}, action: drop}\n")
	plan := compile(t, set, Schema{})
	for in, want := range map[string]string{
		`{"a":1,"b":2,"c":3}`:           `{}`,
		`{"a":1,"x":2}`:                 `{"x":2}`,
		`{"x":1,"a":2}`:                 `{"x":1}`,
		`{"x":1,"b":2,"y":3}`:           `{"x":1,"y":3}`,
		`{ "a" : 1 , "x" : 2 , "c":3 }`: `{  "x" : 2  }`,
		`{"a":null}`:                    `{}`,
		`{"x":{"a":1},"a":[1,2]}`:       `{"x":{"a":1}}`,
	} {
		out, _, err := plan.MaskJSON([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if string(out) != want {
			t.Errorf("%s: got %s, want %s", in, out, want)
		}
		if !json.Valid(out) {
			t.Errorf("%s: output %s is not JSON", in, out)
		}
	}
}
