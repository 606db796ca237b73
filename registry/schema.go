package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/tributary-dev/tributary/internal/protoschema"
)

// parsed is a validated schema with its canonical form.
type parsed struct {
	typ SchemaType
	// text is what the registry stores and returns: compact JSON for Avro and
	// JSON Schema (key order kept), the text as given for Protobuf.
	text string
	// canonical decides "same schema": for Avro and JSON Schema the JSON
	// re-marshalled with sorted keys and no insignificant whitespace; for
	// Protobuf the file's normal form (protoschema.File.Canonical), the same
	// for its text and serialized forms.
	canonical string

	avro  avro.Schema
	json  *jsonDoc
	proto *protoschema.File

	// lenient lists why an Avro schema hamba refuses was accepted (see
	// parseAvroLenient), empty for most; mangled says whether avro's names
	// were rewritten, so that messages naming them need demangle.
	lenient []string
	mangled bool
}

// dep is a referenced schema, resolved from a Reference.
type dep struct {
	name string // the Reference name
	typ  SchemaType
	text string
	deps []dep // its own references
	// subject and version hold it (the server's resolver keys on them).
	subject string
	version int
}

// parseSchema validates text as a schema of type t. deps are its references,
// each with its own references resolved.
func parseSchema(t SchemaType, text string, deps []dep) (*parsed, error) {
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("%w: empty schema", ErrInvalidSchema)
	}
	switch t {
	case Avro:
		return parseAvro(text, deps)
	case JSON:
		return parseJSONSchema(text, deps)
	case Protobuf:
		return parseProtobuf(text, deps)
	}
	return nil, fmt.Errorf("%w: unknown schema type %q", ErrInvalidSchema, t)
}

// parseAvro parses with a fresh hamba cache per call: hamba's default cache is
// global, so a name another schema defined would otherwise resolve here.
// Referenced schemas are parsed into the cache first, dependencies first, as
// Confluent's AvroSchemaProvider does. Schemas Confluent accepts and hamba
// refuses are accepted too (parseAvroLenient); the stored text and the
// canonical form stay those of the original.
func parseAvro(text string, deps []dep) (*parsed, error) {
	canon, compact, err := canonicalJSON(text)
	if err != nil {
		return nil, fmt.Errorf("%w: avro schema is not valid JSON: %v", ErrInvalidSchema, err)
	}
	cache := &avro.SchemaCache{}
	seen := map[string]bool{}
	var load func(ds []dep) error
	load = func(ds []dep) error {
		for _, d := range ds {
			if seen[d.name] {
				continue
			}
			seen[d.name] = true
			if err := load(d.deps); err != nil {
				return err
			}
			if d.typ != Avro {
				return fmt.Errorf("%w: reference %q is a %s schema, not AVRO", ErrInvalidSchema, d.name, d.typ)
			}
			if _, _, _, err := parseAvroLenient(d.text, cache); err != nil {
				return fmt.Errorf("%w: reference %q: %v", ErrInvalidSchema, d.name, err)
			}
		}
		return nil
	}
	if err := load(deps); err != nil {
		return nil, err
	}
	s, lenient, mangled, err := parseAvroLenient(text, cache)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return &parsed{typ: Avro, text: compact, canonical: canon, avro: s, lenient: lenient, mangled: mangled}, nil
}

// canonicalJSON returns text re-marshalled with sorted keys (numbers kept as
// written) and text compacted with its key order kept.
func canonicalJSON(text string) (canon, compact string, err error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", "", err
	}
	if dec.More() {
		return "", "", fmt.Errorf("data after the top-level value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", "", err
	}
	var cb bytes.Buffer
	if err := json.Compact(&cb, []byte(text)); err != nil {
		return "", "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), cb.String(), nil
}

func parseJSONSchema(text string, deps []dep) (*parsed, error) {
	canon, compact, err := canonicalJSON(text)
	if err != nil {
		return nil, fmt.Errorf("%w: json schema is not valid JSON: %v", ErrInvalidSchema, err)
	}
	doc, err := newJSONDoc(text, deps)
	if err != nil {
		return nil, err
	}
	return &parsed{typ: JSON, text: compact, canonical: canon, json: doc}, nil
}

// protoLimits are the limits on Protobuf schemas: a hostile schema is a 422,
// never an out-of-memory or a stack overflow.
func protoLimits() protoschema.Limits {
	l := protoschema.DefaultLimits()
	l.MaxBytes = maxSchemaBytes
	l.MaxRefs = maxReferences
	return l
}

// parseProtobuf reads .proto text or a base64 serialized FileDescriptorProto
// (what Confluent's Python client registers) and links it with its
// references, each parsed once. Type names that resolve nowhere (an import
// without a reference) are kept as written: compatibility compares them by
// name.
func parseProtobuf(text string, deps []dep) (*parsed, error) {
	lim := protoLimits()
	f, err := lim.ParseSchema("", text)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	var files []*protoschema.File
	seen := map[string]bool{}
	var load func(ds []dep) error
	load = func(ds []dep) error {
		for _, d := range ds {
			if seen[d.name] {
				continue
			}
			seen[d.name] = true
			if d.typ != Protobuf {
				return fmt.Errorf("%w: reference %q is a %s schema, not PROTOBUF", ErrInvalidSchema, d.name, d.typ)
			}
			df, err := lim.ParseSchema(d.name, d.text)
			if err != nil {
				return fmt.Errorf("%w: reference %q: %v", ErrInvalidSchema, d.name, err)
			}
			df.Name = d.name
			files = append(files, df)
			if err := load(d.deps); err != nil {
				return err
			}
		}
		return nil
	}
	if err := load(deps); err != nil {
		return nil, err
	}
	if err := lim.Link(f, files, false); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return &parsed{typ: Protobuf, text: text, canonical: f.Canonical(), proto: f}, nil
}

// schemaKey is the identity of a schema across subjects: the same key gets the
// same id.
func schemaKey(t SchemaType, canonical string, refs []Reference) string {
	var b strings.Builder
	b.WriteString(string(t))
	b.WriteByte(0)
	b.WriteString(canonical)
	for _, r := range refs {
		fmt.Fprintf(&b, "\x00%s\x00%s\x00%d", r.Name, r.Subject, r.Version)
	}
	return b.String()
}
