package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hamba/avro/v2"
)

func TestFailClosed(t *testing.T) {
	payment := loadSchema(t, "payment.avsc", 1)
	only := func(src string) *Set { return mustParse(t, "p.yaml", "policy: p\nversion: 2\nrules:\n"+src) }
	good, _ := encodePayment(t, paymentRecord())

	cases := []struct {
		name   string
		set    *Set
		schema Schema
		record []byte
		reason string
		field  string
	}{
		{"a PII field without a rule quarantines every record", only("  - {match: {field: customer.name}, action: redact}\n"), payment, good, ReasonUnmatchedPII, "customer.email"},
		{"no applicable policy at all still quarantines PII", &Set{}, payment, good, ReasonUnmatchedPII, "customer.name"},
		{"a block rule quarantines the record", only("  - {match: {tag: PII}, action: redact}\n  - {match: {field: three_ds}, action: block}\n"), payment, good, ReasonBlocked, "three_ds"},
		{"truncated Avro is undecodable", only("  - {match: {tag: PII}, action: redact}\n"), payment, good[:len(good)-3], ReasonUndecodable, ""},
		{"trailing bytes are undecodable", only("  - {match: {tag: PII}, action: redact}\n"), payment, append(append([]byte{}, good...), 0), ReasonUndecodable, ""},
		{"garbage is undecodable", only("  - {match: {tag: PII}, action: redact}\n"), payment, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, ReasonUndecodable, ""},
		{"invalid JSON is undecodable", only("  - {match: {field: email}, action: redact}\n"), Schema{Type: JSON}, []byte(`{"email": "a@b.c",`), ReasonUndecodable, ""},
		{"JSON with trailing data is undecodable", only("  - {match: {field: email}, action: redact}\n"), Schema{Type: JSON}, []byte(`{"email": "a@b.c"} {}`), ReasonUndecodable, ""},
		{"JSON with a bad escape is undecodable", only("  - {match: {field: email}, action: redact}\n"), Schema{Type: JSON}, []byte(`{"x": "\q", "email": "a@b.c"}`), ReasonUndecodable, ""},
		{"too deep JSON is undecodable", only("  - {match: {field: email}, action: redact}\n"), Schema{Type: JSON}, []byte(strings.Repeat("[", 10000) + strings.Repeat("]", 10000)), ReasonUndecodable, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan, err := Compile(c.set, "eu-payments", "payments", c.schema, WithHashKey(hashKey))
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := plan.Apply(c.record)
			var v *Violation
			if !errors.As(err, &v) {
				t.Fatalf("got %q, %v; want a violation", out, err)
			}
			if v.Reason != c.reason || c.field != "" && v.FieldPath != c.field {
				t.Fatalf("got %+v, want %s on %s", v, c.reason, c.field)
			}
			if out != nil {
				t.Fatal("a rejected record has output")
			}
			for _, raw := range []string{"Alice", "alice@", "4111", "a@b.c"} {
				if strings.Contains(v.Error(), raw) {
					t.Fatalf("the violation %q quotes the record", v)
				}
			}
		})
	}
}

func TestUntouchedSchemasPassWithoutDecoding(t *testing.T) {
	set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules:\n  - {match: {field: customer.email}, action: redact}\n")
	schema := Schema{Type: Avro, ID: 8, Text: `{"type":"record","name":"Order","fields":[{"name":"sku","type":"string"},{"name":"qty","type":"int"}]}`}
	plan := compile(t, set, schema)
	if plan.Touches() {
		t.Fatal("a plan for a schema no rule touches touches records")
	}
	in := []byte("not even avro")
	out, res, err := plan.Apply(in)
	if err != nil || &out[0] != &in[0] || len(res.Touches) != 0 {
		t.Fatalf("got %q %+v %v", out, res, err)
	}
	// Records the plan touches but leaves unchanged come back as they are.
	plan = compile(t, set, Schema{Type: JSON})
	in = []byte(`{"customer": {"name": "x"}}`)
	out, res, err = plan.MaskJSON(in)
	if err != nil || &out[0] != &in[0] || len(res.Touches) != 0 || res.Header() != "" {
		t.Fatalf("got %q %+v %v", out, res, err)
	}
}

func TestHashKeys(t *testing.T) {
	set := oneRule(t, "email", "action: hash")
	if _, err := Compile(set, "p", "t", Schema{Type: JSON}); err == nil || !strings.Contains(err.Error(), "t.yaml:4:37: rules[0].action: hash rules need a key: set TRIBUTARY_HASH_KEY or a key file") {
		t.Fatalf("got %v", err)
	}
	// Two nodes with the same key make the same pseudonyms; another key does not.
	in := []byte(`{"email":"alice@example.com"}`)
	var outs []string
	for _, key := range [][]byte{hashKey, hashKey, []byte("another-key-0123456789")} {
		plan, err := Compile(set, "p", "t", Schema{Type: JSON}, WithHashKey(key))
		if err != nil {
			t.Fatal(err)
		}
		out, res, err := plan.MaskJSON(in)
		if err != nil || res.KeyID != KeyID(key) {
			t.Fatal(err, res)
		}
		outs = append(outs, string(out))
	}
	if outs[0] != outs[1] || outs[0] == outs[2] {
		t.Fatalf("pseudonyms %v", outs)
	}
	// The same value hashes alike in Avro and JSON, so pseudonyms join across formats.
	aplan := compile(t, set, Schema{Type: Avro, ID: 1, Text: `{"type":"record","name":"R","fields":[{"name":"email","type":"string"}]}`})
	aout, _, err := aplan.MaskAvro(appendString(nil, "alice@example.com"))
	if err != nil || !strings.Contains(outs[0], string(aout[2:])) {
		t.Fatalf("avro %q vs json %s: %v", aout, outs[0], err)
	}

	if KeyID(hashKey) != KeyID(append([]byte{}, hashKey...)) || len(KeyID(hashKey)) != 8 {
		t.Fatal("KeyID")
	}
	dir := t.TempDir()
	kf := filepath.Join(dir, "key")
	os.WriteFile(kf, append(append([]byte{}, hashKey...), '\n'), 0o600)
	shared := filepath.Join(dir, "shared-key")
	os.WriteFile(shared, hashKey, 0o600)
	os.Chmod(shared, 0o640)
	for _, c := range []struct {
		file, env string
		want      string
	}{
		{kf, "", string(hashKey)},
		{"", "env-key-0123456789", "env-key-0123456789"},
		{"", "", "no hash key"},
		{"", "short", "hash key is 5 bytes; at least 16 are required"},
		{filepath.Join(dir, "missing"), "", "reading hash key"},
		{shared, "", "hash key file " + shared + " has mode 0640: it must be readable by its owner only"},
	} {
		key, err := LoadHashKey(c.file, func(k string) string {
			if k == HashKeyEnv {
				return c.env
			}
			return ""
		})
		if err != nil && !strings.Contains(err.Error(), c.want) || err == nil && string(key) != c.want {
			t.Errorf("LoadHashKey(%q, %q) = %q, %v; want %q", c.file, c.env, key, err, c.want)
		}
	}
}

func TestCacheCompilesOncePerSetAndSchema(t *testing.T) {
	set := oneRule(t, "email", "action: redact")
	cache := NewCache(WithHashKey(hashKey))
	schema := Schema{Type: Avro, ID: 11, Text: `{"type":"record","name":"R","fields":[{"name":"email","type":"string"}]}`}
	var wg sync.WaitGroup
	plans := make([]*Plan, 16)
	for i := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := cache.Plan(set, "p", "t", schema)
			if err != nil {
				t.Error(err)
			}
			out, _, err := p.MaskAvro(appendString(nil, "secret"))
			if err != nil || len(out) != 1 {
				t.Error(out, err)
			}
			plans[i] = p
		}()
	}
	wg.Wait()
	p1, _ := cache.Plan(set, "p", "t", schema)
	if p2, _ := cache.Plan(set, "p", "t", schema); p1 != p2 {
		t.Fatal("the cache compiled twice")
	}
	other := oneRule(t, "email", "action: hash")
	p3, err := cache.Plan(other, "p", "t", schema)
	if err != nil || p3 == p1 {
		t.Fatal("a new set must get new plans", err)
	}
	bad := Schema{Type: Avro, ID: 12, Text: `{"type":"record","name":"R","fields":[{"name":"email","type":"long"}]}`}
	if _, err := cache.Plan(other, "p", "t", bad); err == nil {
		t.Fatal("want a compile error")
	}
	if _, err := cache.Plan(other, "p", "t", Schema{Type: Avro, ID: 13, Text: `{"type":`}); err == nil {
		t.Fatal("want a schema error")
	}
}

func TestBlockOnlyWhenPresentAndArraysRewriteBlockSizes(t *testing.T) {
	// Java writers may use negative block counts with byte sizes; masking
	// changes sizes, so the plan rewrites those headers.
	set := oneRule(t, "names", "action: hash")
	schema := `{"type":"record","name":"R","fields":[{"name":"names","type":{"type":"array","items":"string"}}]}`
	plan := compile(t, set, Schema{Type: Avro, Text: schema, ID: 2})
	var in []byte
	items := appendString(appendString(nil, "a"), "bb")
	in = appendLong(in, -2)
	in = appendLong(in, int64(len(items)))
	in = append(in, items...)
	in = appendLong(in, 0)
	out, res, err := plan.MaskAvro(in)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := avro.Unmarshal(hambaSchema(t, schema), out, &got); err != nil {
		t.Fatal(err)
	}
	if names := got["names"].([]any); len(names) != 2 || names[1] != hexHMAC("bb") || res.Touches[0].Count != 2 {
		t.Fatalf("got %v %+v", got, res)
	}
}
