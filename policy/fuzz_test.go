package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// FuzzMaskAvro feeds arbitrary bytes to the plan of the design example. It
// must never panic; what it accepts must decode with the writer schema, with
// every PII field masked.
func FuzzMaskAvro(f *testing.F) {
	set, err := LoadFiles("testdata/good/payments.yaml")
	if err != nil {
		f.Fatal(err)
	}
	schema := loadSchema(f, "payment.avsc", 1)
	plan := compile(f, set, schema)
	hs := hambaSchema(f, schema.Text)
	good, _ := encodePayment(f, paymentRecord())
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	rec := paymentRecord()
	rec["customer"].(map[string]any)["email"] = nil
	rec["location"] = nil
	rec["attributes"] = map[string]any{}
	b, _ := avro.Marshal(hs, rec)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		out, res, err := plan.MaskAvro(data)
		if err != nil {
			var v *Violation
			if !errors.As(err, &v) || out != nil {
				t.Fatalf("error %v is not a violation, or there is output", err)
			}
			return
		}
		var got map[string]any
		if err := avro.Unmarshal(hs, out, &got); err != nil {
			t.Fatalf("accepted input, but the output does not decode: %v", err)
		}
		c := got["customer"].(map[string]any)
		if !hex64.MatchString(c["name"].(string)) || c["email"] != nil {
			t.Fatalf("customer left unmasked: %v", c)
		}
		if p, ok := c["phone"].(string); ok && !hex64.MatchString(p) {
			t.Fatalf("phone left unmasked: %q", p)
		}
		if n := []rune(got["card"].(map[string]any)["number"].(string)); len(n) > 0 && strings.Trim(string(n[:max(0, len(n)-4)]), "*") != "" {
			t.Fatalf("card number left unmasked: %q", string(n))
		}
		if len(res.Touches) < 2 {
			t.Fatalf("touches %+v", res.Touches)
		}
	})
}

// FuzzMaskJSON feeds arbitrary documents to a schema-less plan. It must never
// panic, never accept invalid JSON, and what it accepts must be valid JSON
// with the matched fields masked.
func FuzzMaskJSON(f *testing.F) {
	set := mustParse(f, "j.yaml", `policy: j
version: 1
rules:
  - {match: {field: customer.email}, action: redact}
  - {match: {field: "**.card"}, action: mask, keep_last: 4}
  - {match: {field: "items[].price"}, action: generalize, precision: 0}
  - {match: {field: notes}, action: drop}
  - {match: {field: "**.ssn"}, action: block}
`)
	plan := compile(f, set, Schema{})
	for _, s := range []string{
		`{"customer":{"email":"a@b.c","name":"x"},"items":[{"card":"4111111111111111","price":12.5}],"notes":"n"}`,
		`{"notes":1,"customer":{"email":null}}`,
		`{"a":[1,2,{"card":"12345"}],"ssn":null}`,
		`[{"customer":{"email":"\u0041"}}]`,
		`{"customer":{"email":"x"},"customer":{"email":"y"}}`,
		`  {"items":[{"price":1e3}], "ssn": "1"} `,
		`{"x":`, `"str"`, `nul`, `{"a":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, _, err := plan.MaskJSON(doc)
		if err != nil {
			var v *Violation
			if !errors.As(err, &v) || out != nil {
				t.Fatalf("error %v is not a violation, or there is output", err)
			}
			return
		}
		if !json.Valid(doc) {
			t.Fatalf("accepted invalid JSON %q", doc)
		}
		if !json.Valid(out) {
			t.Fatalf("output %q of %q is not JSON", out, doc)
		}
		var v any
		json.Unmarshal(out, &v)
		checkMaskedJSON(t, v, nil)
	})
}

// checkMaskedJSON walks a masked document: customer.email is "" or null,
// notes is gone.
func checkMaskedJSON(t *testing.T, v any, path []string) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			p := append(append([]string{}, path...), k)
			if k == "notes" && len(path) == 0 {
				t.Fatalf("notes survived")
			}
			if k == "email" && len(path) == 1 && path[0] == "customer" {
				if s, ok := c.(string); ok && s != "" {
					t.Fatalf("email left unmasked: %q", s)
				}
			}
			checkMaskedJSON(t, c, p)
		}
	case []any:
		for _, c := range x {
			checkMaskedJSON(t, c, append(path, "[]"))
		}
	}
}

// FuzzHeaderApply feeds arbitrary header names and values to a header plan.
// It must never panic, and a header a rule matches never leaves with its value:
// hashed to 64 hex digits, masked to mask characters, removed, or refused.
func FuzzHeaderApply(f *testing.F) {
	set := mustParse(f, "h.yaml", `policy: h
version: 1
rules:
  - {match: {header: "x-user-*"}, action: hash}
  - {match: {header: "x-card*"}, action: mask, keep_last: 2}
  - {match: {header: x-card-brand}, action: replace, value: card}
  - {match: {header: "*-debug"}, action: drop}
  - {match: {header: "x-*-ssn"}, action: block}
`)
	plan := compileHeaders(f, set)
	f.Add("x-user-id", []byte("u-1001"))
	f.Add("x-card", []byte("4111111111111111"))
	f.Add("x-card-brand", []byte("VISA"))
	f.Add("x-user-debug", []byte{0xff, 0x00})
	f.Add("x-user-ssn", []byte(""))
	f.Add("X-User-Id", []byte("not matched: names are case-sensitive"))
	f.Fuzz(func(t *testing.T, name string, value []byte) {
		var res Result
		out, keep, err := plan.Apply(name, value, &res)
		h, _ := plan.rule(name)
		if err != nil {
			var v *Violation
			if !errors.As(err, &v) || out != nil || keep || h == nil {
				t.Fatalf("error %v for %q, output %q, keep %t", err, name, out, keep)
			}
			return
		}
		switch {
		case h == nil:
			if !keep || string(out) != string(value) {
				t.Fatalf("header %q matches no rule but changed: %q", name, out)
			}
		case h.cr.r.Action == Drop:
			if keep {
				t.Fatalf("header %q was not dropped", name)
			}
		case value == nil:
			if h.cr.r.Action != Replace && out != nil {
				t.Fatalf("null header %q became %q", name, out)
			}
		case h.cr.r.Action == Hash:
			if !hex64.Match(out) {
				t.Fatalf("header %q hashed to %q", name, out)
			}
		case h.cr.r.Action == Mask:
			if n := []rune(string(out)); strings.Trim(string(n[:max(0, len(n)-2)]), "*") != "" {
				t.Fatalf("header %q masked to %q", name, out)
			}
		case h.cr.r.Action == Replace:
			if string(out) != "card" {
				t.Fatalf("header %q replaced by %q", name, out)
			}
		}
	})
}

// FuzzCompileJSONSchema compiles arbitrary JSON Schemas, with one reference
// named "ref.json", and masks a document with the plan. Reading a schema must
// never panic nor take long, whatever it holds; a plan that touches records
// must either reject the document with a *Violation or return valid JSON.
func FuzzCompileJSONSchema(f *testing.F) {
	set := mustParse(f, "j.yaml", `policy: j
version: 1
rules:
  - {match: {tag: PII}, action: redact}
  - {match: {field: "**.email"}, action: redact}
`)
	docs := []string{`{"email":"SECRET","a":[1,{"email":"SECRET"}],"n":{"name":"SECRET"}}`, `[{"x":"y"},"SECRET",3]`, `"SECRET"`}
	for _, dir := range []string{"testdata/jsonschema/reach", "testdata/jsonschema/unreadable"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			f.Fatal(err)
		}
		for i, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(b), `{"$id":"https://acme.example/x.json","properties":{"email":{"confluent:tags":["PII"]}}}`, docs[i%len(docs)])
		}
	}
	f.Fuzz(func(t *testing.T, schema, ref, doc string) {
		// The fuzzer has no timeout per input: a hang would only stall it.
		// Crashing the worker makes it save the input.
		watch := time.AfterFunc(10*time.Second, func() { panic("compiling a JSON Schema or masking with its plan took over 10s") })
		defer watch.Stop()
		s := Schema{Type: JSON, ID: 1, Text: schema, References: []string{ref}, ReferenceNames: []string{"ref.json"}}
		plan, err := Compile(set, "p", "t", s, WithHashKey(hashKey))
		if err == nil {
			out, _, err := plan.MaskJSON([]byte(doc))
			var v *Violation
			switch {
			case err != nil && !errors.As(err, &v):
				t.Fatalf("error %v is not a violation", err)
			case err == nil && plan.Touches() && !json.Valid(out):
				t.Fatalf("output %q is not JSON", out)
			}
		}
	})
}
