package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// leaf is a string value of a JSON document and where it is: object keys,
// and "[]" for array elements.
type leaf struct {
	path []string
	s    string
}

// stringLeaves lists every string value of doc, duplicate object keys
// included (a consumer's parser may read the first or the last).
func stringLeaves(doc []byte) ([]leaf, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out []leaf
	var walk func(path []string) error
	walk = func(path []string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case string:
			out = append(out, leaf{append([]string{}, path...), v})
		case json.Delim:
			switch v {
			case '{':
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					if err := walk(append(path, k.(string))); err != nil {
						return err
					}
				}
			case '[':
				for dec.More() {
					if err := walk(append(path, "[]")); err != nil {
						return err
					}
				}
			}
			if _, err := dec.Token(); err != nil { // the closing delimiter
				return err
			}
		}
		return nil
	}
	if err := walk(nil); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the document")
	}
	return out, nil
}

// touchSegments splits a Touch path ("a.b[].c", "attrs.*") into the
// segments stringLeaves uses; ok is false for paths with keys it cannot
// tell apart (a key with '.', '[' or '*' in the document).
func touchSegments(p string) []string {
	if p == "" {
		return nil
	}
	var segs []string
	for _, part := range strings.Split(p, ".") {
		name, arrays := part, 0
		for strings.HasSuffix(name, "[]") {
			name, arrays = strings.TrimSuffix(name, "[]"), arrays+1
		}
		if name != "" {
			segs = append(segs, name)
		}
		for range arrays {
			segs = append(segs, "[]")
		}
	}
	return segs
}

func pathMatches(pattern, path []string) bool {
	if len(pattern) != len(path) {
		return false
	}
	for i, p := range pattern {
		if p != path[i] && !(p == "*" && path[i] != "[]") {
			return false
		}
	}
	return true
}

// FuzzJSONSchemaPII compiles arbitrary JSON Schemas (seeds: the PII
// discovery cases of testdata/jsonschema/reach, which tag fields through
// applicators, $ref, $defs and recursion) with rules that only redact, and
// masks an arbitrary document. Beyond FuzzCompileJSONSchema's properties: no
// non-empty string the input holds at a path the plan reports as touched
// appears at that path in the output, under any duplicate key. Seeds:
// testdata/fuzz/FuzzJSONSchemaPII.
func FuzzJSONSchemaPII(f *testing.F) {
	set := mustParse(f, "j.yaml", `policy: j
version: 1
rules:
  - {match: {tag: PII}, action: redact}
  - {match: {field: "**.email"}, action: redact}
`)
	files, err := filepath.Glob("testdata/jsonschema/reach/*.json")
	if err != nil {
		f.Fatal(err)
	}
	docs := []string{
		`{"contacts":{"home":"SECRET-1"},"profile":{"id":"x","nick":"SECRET-2"},"email":"SECRET-3"}`,
		`{"customer":{"name":"SECRET","email":"SECRET","email":"SECRET-DUP"},"items":[{"email":"S1"},{"email":"S2"}]}`,
		`[{"a":"SECRET"},"SECRET",{"email":"SECRET"}]`,
	}
	for i, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), docs[i%len(docs)])
	}
	f.Fuzz(func(t *testing.T, schema, doc string) {
		defer watchdog(10*time.Second, "compiling a JSON Schema or masking with its plan").Stop()
		plan, err := Compile(set, "p", "t", Schema{Type: JSON, ID: 1, Text: schema}, WithHashKey(hashKey))
		if err != nil {
			return
		}
		out, res, err := plan.MaskJSON([]byte(doc))
		if err != nil {
			return
		}
		in, err := stringLeaves([]byte(doc))
		if err != nil {
			return // not one JSON value: FuzzMaskJSON holds the plans to that
		}
		got, err := stringLeaves(out)
		if err != nil {
			t.Fatalf("output %q is not JSON: %v", out, err)
		}
		for _, touch := range res.Touches {
			if touch.Action != Redact {
				t.Fatalf("touch %+v: only redact rules exist", touch)
			}
			pat := touchSegments(touch.Path)
			secrets := map[string]bool{}
			for _, l := range in {
				if l.s != "" && pathMatches(pat, l.path) {
					secrets[l.s] = true
				}
			}
			for _, l := range got {
				if secrets[l.s] && pathMatches(pat, l.path) {
					t.Fatalf("%q left at %s, which the plan redacted (touch %s)\nin:  %s\nout: %s", l.s, strings.Join(l.path, "/"), touch.Path, doc, out)
				}
			}
		}
	})
}
