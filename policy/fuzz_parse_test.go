package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addPolicyFiles adds every policy file of testdata/good and testdata/bad.
func addPolicyFiles(f *testing.F, add func(b []byte)) {
	for _, dir := range []string{"testdata/good", "testdata/bad"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			add(b)
		}
	}
}

// checkBundleRoundTrip fails unless s survives Encode and Decode: the same
// bytes, hash and protections.
func checkBundleRoundTrip(t *testing.T, s *Set) {
	t.Helper()
	b := s.Encode()
	back, err := Decode(b)
	if err != nil {
		t.Fatalf("the bundle of a valid set does not decode: %v\n%s", err, b)
	}
	if b2 := back.Encode(); !bytes.Equal(b, b2) {
		t.Fatalf("encoding changed on a round trip:\n%s\n%s", b, b2)
	}
	if back.Hash() != s.Hash() {
		t.Fatalf("hash changed on a round trip: %s, %s", s.Hash(), back.Hash())
	}
	if older, why := back.OlderThan(s); older {
		t.Fatalf("the decoded bundle is older than itself: %s", why)
	}
	if err := back.CheckAgainst(s); err != nil {
		t.Fatalf("the decoded bundle loosens itself: %v", err)
	}
}

// watchdog panics after d: the fuzzer has no timeout per input, and a hang
// would only stall it, while a crash makes it save the input.
func watchdog(d time.Duration, what string) *time.Timer {
	return time.AfterFunc(d, func() { panic(what + " took over " + d.String()) })
}

// FuzzParse parses arbitrary policy files. No input may panic or take long;
// an error is a list of problems naming the file; a file that parses gives a
// bundle that decodes to the same bytes, hash and protections. Seeds: the
// files of testdata/good and testdata/bad, and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	addPolicyFiles(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, src []byte) {
		defer watchdog(10*time.Second, "parsing a policy file").Stop()
		s, err := Parse("fuzz.yaml", src)
		if err != nil {
			var list *ErrorList
			if !errors.As(err, &list) || !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q (%T) is not a list of problems naming the file", err, err)
			}
			return
		}
		checkBundleRoundTrip(t, s)
	})
}

// FuzzDecodeBundle decodes arbitrary bytes as a policy bundle, as a node
// reads it from the Raft log or the leader from a proposal. No input may
// panic or take long; what decodes is one JSON value, validates, and
// encodes to bytes that decode to the same set again. Seeds: the bundles of
// the policy files in testdata, and testdata/fuzz/FuzzDecodeBundle.
func FuzzDecodeBundle(f *testing.F) {
	addPolicyFiles(f, func(b []byte) {
		if s, err := Parse("seed.yaml", b); err == nil {
			enc := s.Encode()
			f.Add(enc)
			f.Add(append(append([]byte{}, enc...), " {}"...))
		}
	})
	f.Add([]byte(`{"format":3,"files":[],"policies":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer watchdog(10*time.Second, "decoding a policy bundle").Stop()
		s, err := Decode(data)
		if err != nil {
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted a bundle that is not one JSON value: %q", data)
		}
		checkBundleRoundTrip(t, s)
	})
}

// TestDecodeRefusesTrailingData: found by FuzzDecodeBundle. Bytes after the
// bundle's JSON object were ignored, so a bundle with garbage appended passed
// the leader's checks (its hash is the files') and went into the Raft log.
func TestDecodeRefusesTrailingData(t *testing.T) {
	s := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules:\n  - {match: {tag: PII}, action: redact}\n")
	b := append(s.Encode(), " {}"...)
	_, err := Decode(b)
	if err == nil || !strings.Contains(err.Error(), "data after the bundle's JSON object at byte") {
		t.Fatalf("Decode: %v, want an error about the data after the bundle", err)
	}
	if _, err := Decode(append(s.Encode(), "\n"...)); err != nil {
		t.Fatalf("a bundle with a final newline: %v", err)
	}
}

// TestParseCarriageReturns: found by FuzzParse (after 4 minutes). YAML ends
// a line at a lone "\r", so a syntax error on line 32 of a file of "\r"s
// indexed the 1 line split at "\n" and panicked; the unquoted-"*" hint must
// also find its line in a file with "\r" or "\r\n" line ends.
func TestParseCarriageReturns(t *testing.T) {
	_, err := Parse("cr.yaml", []byte(strings.Repeat("\r", 31)+`"`))
	if err == nil || !strings.Contains(err.Error(), "cr.yaml:32") {
		t.Fatalf("Parse: %v, want a syntax error at cr.yaml:32", err)
	}
	for _, eol := range []string{"\r", "\r\n"} {
		src := strings.Join([]string{"policy: p", "version: 1", "rules:", "  - match: {field: **.ssn}", "    action: block", ""}, eol)
		_, err := Parse("star.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), `must be quoted, as in field: "**.ssn"`) {
			t.Errorf("line ends %q: %v, want the hint to quote **.ssn", eol, err)
		}
	}
}
