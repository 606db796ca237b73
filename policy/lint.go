package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// Report is what Lint found. Errors make a bundle unusable; warnings do not.
type Report struct {
	// Set is the parsed bundle; nil when the files have errors.
	Set *Set
	// Errors and Warnings are sorted by file, line and column.
	Errors, Warnings []*Error
}

// OK reports whether there are no errors.
func (r Report) OK() bool { return len(r.Errors) == 0 }

// Lint parses the policy files at paths (files, or folders whose *.yaml and
// *.yml files are read) and checks them against schemas, as `tributary policy
// lint` does. Besides everything ParseFiles checks, it reports as errors rules
// whose action cannot apply to a matched field's type (drop on a field without
// null or a default, hash on a number, a replace value of the wrong type...)
// and two policies with a common scope giving one field different actions; as
// warnings, rules that match no field of any schema and PII-tagged fields no
// rule covers.
func Lint(paths []string, schemas []Schema) Report {
	var srcs []Source
	var rep Report
	for _, p := range paths {
		files, err := policyFiles(p)
		if err != nil {
			rep.Errors = append(rep.Errors, &Error{File: p, Msg: err.Error()})
			continue
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				rep.Errors = append(rep.Errors, &Error{File: f, Msg: err.Error()})
				continue
			}
			srcs = append(srcs, Source{Name: f, Data: data})
		}
	}
	if len(rep.Errors) > 0 {
		return rep
	}
	set, err := ParseFiles(srcs...)
	if err != nil {
		rep.Errors = errorsOf(err)
		return rep
	}
	warnings, err := set.CheckSchemas(schemas)
	rep.Warnings = warnings
	if err != nil {
		rep.Errors = errorsOf(err)
		return rep
	}
	rep.Set = set
	return rep
}

// policyFiles lists path's policy files: path itself, or a folder's *.yaml and
// *.yml files.
func policyFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && isPolicyFile(e.Name()) {
			out = append(out, filepath.Join(path, e.Name()))
		}
	}
	return out, nil
}

func errorsOf(err error) []*Error {
	var list *ErrorList
	if errors.As(err, &list) {
		return list.Errors
	}
	return []*Error{{Msg: err.Error()}}
}

// CheckSchemas checks the set against the schemas its policies are meant for:
// each policy alone (rules whose action cannot apply to a field's type), and
// each pair of policies with a common scope (conflicting actions on one field).
// Problems come back as a *ErrorList. The warnings are rules that match no
// field of any schema, and PII-tagged fields no rule of any policy covers
// (their records would be quarantined).
func (s *Set) CheckSchemas(schemas []Schema) (warnings []*Error, err error) {
	return s.checkSchemas(Value, schemas)
}

// CheckKeySchemas is CheckSchemas for the schemas of record keys: it checks the
// key and tag rules (Schema{Type: Raw} stands for keys without a schema), and
// warns about key rules that match no field of any of them and PII-tagged key
// fields no rule covers.
func (s *Set) CheckKeySchemas(schemas []Schema) (warnings []*Error, err error) {
	return s.checkSchemas(Key, schemas)
}

func (s *Set) checkSchemas(part Part, schemas []Schema) (warnings []*Error, err error) {
	var errs []*Error
	seen := map[string]bool{}
	add := func(list []*Error, to *[]*Error) {
		for _, e := range list {
			if k := e.Error(); !seen[k] {
				seen[k] = true
				*to = append(*to, e)
			}
		}
	}
	matched := map[*Rule]bool{}
	typed := 0
	var names []string
	lint := &options{check: true}
	for _, sc := range schemas {
		var st *stype
		if sc.Type != Raw {
			var perr error
			if st, perr = parseSchema(sc); perr != nil {
				errs = append(errs, &Error{File: schemaLabel(sc), Msg: perr.Error()})
				continue
			}
			if st == nil {
				continue // JSON without a schema: nothing to check against
			}
		}
		typed++
		names = append(names, schemaLabel(sc))
		for _, p := range s.Policies {
			c, _ := compilePolicies([]*Policy{p}, part, st, sc, lint)
			add(c.errs, &errs)
			for i, cr := range c.rules {
				if c.matched[i] {
					matched[cr.r] = true
				}
			}
		}
		for i, p := range s.Policies {
			for _, q := range s.Policies[i+1:] {
				if overlap(p, q) == "" {
					continue
				}
				c, _ := compilePolicies([]*Policy{p, q}, part, st, sc, lint)
				add(c.errs, &errs)
			}
		}
		c, _ := compilePolicies(s.Policies, part, st, sc, lint)
		var ws []*Error
		for _, path := range c.unmatched {
			ws = append(ws, &Error{File: schemaLabel(sc), Path: path, Msg: "tagged PII but no rule of any policy covers it: its records will be quarantined"})
		}
		add(ws, &warnings)
	}
	if typed > 0 {
		// Warn about the rules these schemas are for: field and tag rules for
		// values, key rules for keys (tag rules are mostly meant for values).
		var ws []*Error
		known := "known schemas"
		if part == Key {
			known = "known key schemas"
		}
		for _, p := range s.Policies {
			for i := range p.Rules {
				r := &p.Rules[i]
				if !r.appliesTo(part) || part == Key && r.tagOnly() || matched[r] {
					continue
				}
				ws = append(ws, p.errAt(rulePath(i)+".match", "%s matches no field of the %s (%s)", r.Match, known, strings.Join(names, ", ")))
			}
		}
		add(ws, &warnings)
	}
	yamlerr.Sort(warnings)
	return warnings, yamlerr.Join(errs...)
}

// testKey is the hash key TestRecord uses when none is given, so that a
// compliance officer can try rules without the production key. Pseudonyms made
// with it differ from production ones (the key id says which key was used).
var testKey = []byte("tributary-policy-test-key")

// ForStream makes TestRecord apply only the policies that apply to pipeline's
// topic, as the daemon does; without it every policy of the set applies.
func ForStream(pipeline, topic string) Option {
	return func(o *options) { o.stream = &[2]string{pipeline, topic} }
}

// TestRecord masks one sample record with set, as `tributary policy test`
// does, and returns the record before and after as indented JSON, with what
// each rule touched. record is JSON: for Avro schemas, the record as plain JSON
// (unions as their value or as {"<branch>": value}, bytes as strings), which
// TestRecord encodes with the schema first. Without WithHashKey, hash rules use
// a fixed test key, so pseudonyms differ from production ones. A record the
// plan rejects gives a *Violation, with before filled in. Protobuf schemas
// are refused: their records are not read from JSON here.
func TestRecord(set *Set, schema Schema, record []byte, opts ...Option) (before, after []byte, touches []Touch, err error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	copts := append([]Option{WithHashKey(testKey)}, opts...)
	pipeline, topic := "", ""
	if o.stream != nil {
		pipeline, topic = o.stream[0], o.stream[1]
	} else {
		copts = append(copts, func(o *options) { o.all = true })
	}
	if schema.Type == Protobuf {
		return nil, nil, nil, errors.New("records are read as JSON for Avro and JSON Schema only; for a Protobuf schema, lint checks the rules against it")
	}
	plan, err := Compile(set, pipeline, topic, schema, copts...)
	if err != nil {
		return nil, nil, nil, err
	}
	if schema.Type != Avro {
		if !json.Valid(record) {
			return nil, nil, nil, errors.New("the record is not valid JSON")
		}
		before = indent(record)
		out, res, err := plan.MaskJSON(record)
		if err != nil {
			return before, nil, nil, err
		}
		return before, indent(out), res.Touches, nil
	}
	st, err := parseSchema(schema)
	if err != nil {
		return nil, nil, nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(record))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil, nil, fmt.Errorf("the record is not valid JSON: %w", err)
	}
	bin, err := encodeAvro(nil, st, v)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the record does not fit the schema: %w", err)
	}
	before, err = avroJSON(st, bin)
	if err != nil {
		return nil, nil, nil, err
	}
	out, res, err := plan.MaskAvro(bin)
	if err != nil {
		return before, nil, nil, err
	}
	after, err = avroJSON(st, out)
	if err != nil {
		return before, nil, nil, err
	}
	return before, after, res.Touches, nil
}

// avroJSON renders an Avro record as indented JSON.
func avroJSON(st *stype, bin []byte) ([]byte, error) {
	r := avroRun{in: bin, budget: len(bin) + maxItems}
	out, ok := r.appendAvroJSON(nil, st)
	if !ok {
		return nil, r.viol
	}
	return indent(out), nil
}

func indent(doc []byte) []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, doc, "", "  "); err != nil {
		return slices.Clone(doc)
	}
	return b.Bytes()
}
