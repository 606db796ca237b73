package policy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/hamba/avro/v2"
)

// hashKey is the HMAC key of the tests; never a production key.
var hashKey = []byte("test-hash-key-0123456789")

// hexHMAC is what hash makes of a string.
func hexHMAC(s string) string {
	m := hmac.New(sha256.New, hashKey)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

func rawHMAC(s string) []byte {
	m := hmac.New(sha256.New, hashKey)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// oneRule is a policy with a single rule on field v, written as a YAML flow
// mapping's remaining entries ("action: mask, keep_last: 2").
func oneRule(t testing.TB, field, rule string) *Set {
	t.Helper()
	src := "policy: t\nversion: 1\nrules:\n  - {match: {field: " + field + "}, " + rule + "}\n"
	set, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatalf("policy %q: %v", src, err)
	}
	return set
}

func mustParse(t testing.TB, file, src string) *Set {
	t.Helper()
	set, err := Parse(file, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// hambaSchema parses with a fresh cache: the tests reuse type names.
func hambaSchema(t testing.TB, text string) avro.Schema {
	t.Helper()
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatalf("schema %s: %v", text, err)
	}
	return s
}

func compile(t testing.TB, set *Set, schema Schema) *Plan {
	t.Helper()
	p, err := Compile(set, "eu-payments", "payments.card", schema, WithHashKey(hashKey))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func writeFile(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}
