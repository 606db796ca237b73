package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hamba/avro/v2"
)

// SchemaType is the kind of a record's writer schema.
type SchemaType string

// The schema types a plan can be compiled for. The names are the Schema
// Registry's.
const (
	Avro SchemaType = "AVRO"
	JSON SchemaType = "JSON"
	// Raw is no schema at all: a key (or value) of plain bytes, read as a UTF-8
	// string, such as a VIN. Its only addressable field is the whole value
	// (match key: "."); see doc.go.
	Raw SchemaType = "RAW"
)

// Schema is a record's writer schema as the registry knows it. The policy
// package parses it itself; it never talks to a registry.
type Schema struct {
	// Type is Avro or JSON. A zero Schema means JSON records without a schema:
	// rules then match by field path only, and types come from the values.
	Type SchemaType
	// Text is the schema. For JSON it may be empty (no schema).
	Text string
	// ID is the registry's schema id; Cache keys plans by it.
	ID int
	// ProtoIndexes are a Protobuf record's message indexes, as Confluent's
	// wire format carries them after the schema id: which message of the
	// file the record is ([] or [0] the first top-level message, [1 0] the
	// first nested in the second). Cache keys plans by them too.
	ProtoIndexes []int
	// Name names the schema in messages, as in a subject or a file name.
	Name string
	// References are the texts of the schemas Text refers to (Avro named
	// types, JSON Schema $refs to other subjects), dependencies first, as the
	// registry resolves them.
	References []string
	// ReferenceNames are the registry names of References, by index (a JSON
	// Schema $ref names a reference by it, as in "customer.json"); "" or
	// missing when unknown. JSON Schema references are also found by their
	// $id. Nothing else is ever fetched: a $ref to anything else makes the
	// schema unreadable.
	ReferenceNames []string
}

// PIITag is the tag that marks a field as personal data: a PII-tagged field no
// rule covers sends the record to quarantine.
const PIITag = "PII"

// tagsProp is where Confluent keeps field tags, in Avro field properties and
// JSON Schema property schemas.
const tagsProp = "confluent:tags"

// kind is a schema type's kind. JSON Schema types map onto the Avro kinds:
// integer is kLong, number kDouble, object kRecord (kMap when it only has
// additionalProperties), a list of types a kUnion.
type kind uint8

const (
	kAny kind = iota // unknown: JSON without a schema, or a schema this package does not model
	kNull
	kBool
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kEnum
	kFixed
	kRecord
	kArray
	kMap
	kUnion
)

var kindNames = [...]string{"any", "null", "boolean", "int", "long", "float", "double", "bytes", "string", "enum", "fixed", "record", "array", "map", "union"}

// stype is a schema type, Avro or JSON Schema, in the form the compiler walks.
// Named Avro types are one stype each, so recursive schemas are cyclic graphs.
type stype struct {
	kind    kind
	json    bool
	name    string // full name of a named Avro type
	logical string // Avro logical type, or JSON Schema format
	// symbols are an enum's symbols; for JSON, the enum's values as JSON text.
	symbols     []string
	enumDefault int // index into symbols
	size        int // fixed
	fields      []*sfield
	byName      map[string]int // JSON: field index by name
	extra       *stype         // JSON: additionalProperties' schema, nil when untyped
	elem        *stype         // array items, map values
	branches    []*stype
	pb          *pbType
	nullIdx     int // union: index of the null branch, -1 when none
	tagsBelow   int8
	// tags are a JSON Schema position's tags (jsonschema.go), from every
	// subschema that applies there.
	tags []string
	// prefix are a JSON array's tuple element types (prefixItems, or items
	// as an array); elem is then the type of the elements after them.
	prefix []*stype
	// patterns are a JSON object's patternProperties; patAll is the type of
	// a member several patterns may match (see memberType).
	patterns []*spattern
	patAll   *stype
}

// sfield is a record field, or a JSON object property.
type sfield struct {
	name       string
	t          *stype
	tags       []string
	hasDefault bool
	def        any // Avro: the default as hamba parsed it; JSON: raw JSON text ([]byte)
	required   bool
}

func (t *stype) nullable() bool {
	return t.kind == kNull || t.kind == kUnion && t.nullIdx >= 0 ||
		t.kind == kEnum && t.json && slices.Contains(t.symbols, "null")
}

// String describes the type for messages: "long (timestamp-millis)",
// "record acme.Payment", "union [null, string]".
func (t *stype) String() string {
	if t == nil {
		return "any"
	}
	s := kindNames[t.kind]
	if t.json {
		switch t.kind {
		case kLong:
			s = "integer"
		case kDouble:
			s = "number"
		case kRecord, kMap:
			s = "object"
		}
	}
	switch {
	case t.kind == kUnion:
		parts := make([]string, len(t.branches))
		for i, b := range t.branches {
			parts[i] = b.String()
		}
		return "union [" + strings.Join(parts, ", ") + "]"
	case t.name != "":
		s += " " + t.name
	case t.logical != "":
		s += " (" + t.logical + ")"
	}
	return s
}

func (t *stype) isNumber() bool {
	return t.kind == kInt || t.kind == kLong || t.kind == kFloat || t.kind == kDouble
}

func (t *stype) isTimestamp() bool {
	switch t.logical {
	case "timestamp-millis", "timestamp-micros", "local-timestamp-millis", "local-timestamp-micros",
		"date", "time-millis", "time-micros", "date-time":
		return true
	}
	return false
}

// hasTags reports whether any field at or below t carries a tag.
func (t *stype) hasTags() bool {
	return t.tagsBelowVisit(map[*stype]bool{})
}

func (t *stype) tagsBelowVisit(seen map[*stype]bool) bool {
	if t == nil || seen[t] {
		return false
	}
	if t.tagsBelow != 0 {
		return t.tagsBelow > 0
	}
	seen[t] = true
	found := false
	for _, f := range t.fields {
		if len(f.tags) > 0 || f.t.tagsBelowVisit(seen) {
			found = true
		}
	}
	for _, b := range t.branches {
		found = found || b.tagsBelowVisit(seen)
	}
	found = found || t.elem.tagsBelowVisit(seen) || t.extra.tagsBelowVisit(seen)
	// Only cache answers that do not depend on a cycle still being explored.
	if found {
		t.tagsBelow = 1
	}
	return found
}

// parseSchema turns a Schema into the compiler's form; nil for JSON without one.
func parseSchema(s Schema) (*stype, error) {
	switch s.Type {
	case Avro:
		return parseAvro(s)
	case JSON, "":
		if strings.TrimSpace(s.Text) == "" {
			return nil, nil
		}
		return parseJSONSchema(s)
	case Protobuf:
		return parseProto(s)
	}
	return nil, fmt.Errorf("schema type %q is not supported (want AVRO or JSON)", s.Type)
}

// parseAvro parses with hamba/avro into a fresh cache (hamba's default cache is
// global, so a name another schema defined would otherwise resolve here).
func parseAvro(s Schema) (*stype, error) {
	cache := &avro.SchemaCache{}
	for i, ref := range s.References {
		if _, err := avro.ParseWithCache(ref, "", cache); err != nil {
			return nil, fmt.Errorf("avro schema reference %d: %v", i, err)
		}
	}
	as, err := avro.ParseWithCache(s.Text, "", cache)
	if err != nil {
		return nil, fmt.Errorf("avro schema: %v", err)
	}
	c := avroConv{named: map[string]*stype{}}
	return c.conv(as), nil
}

type avroConv struct{ named map[string]*stype }

func (c *avroConv) conv(s avro.Schema) *stype {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		if t, ok := c.named[n.FullName()]; ok {
			return t
		}
	}
	switch s := s.(type) {
	case *avro.RecordSchema:
		t := &stype{kind: kRecord, name: s.FullName()}
		c.named[s.FullName()] = t
		for _, f := range s.Fields() {
			sf := &sfield{name: f.Name(), t: c.conv(f.Type()), hasDefault: f.HasDefault(), def: f.Default(), required: true}
			sf.tags = stringList(f.Prop(tagsProp))
			t.fields = append(t.fields, sf)
		}
		return t
	case *avro.EnumSchema:
		t := &stype{kind: kEnum, name: s.FullName(), symbols: s.Symbols()}
		if s.HasDefault() {
			t.enumDefault = max(0, slices.Index(t.symbols, s.Default()))
		}
		c.named[s.FullName()] = t
		return t
	case *avro.FixedSchema:
		t := &stype{kind: kFixed, name: s.FullName(), size: s.Size()}
		if l := s.Logical(); l != nil {
			t.logical = string(l.Type())
		}
		c.named[s.FullName()] = t
		return t
	case *avro.ArraySchema:
		return &stype{kind: kArray, elem: c.conv(s.Items())}
	case *avro.MapSchema:
		return &stype{kind: kMap, elem: c.conv(s.Values())}
	case *avro.UnionSchema:
		t := &stype{kind: kUnion, nullIdx: -1}
		for i, b := range s.Types() {
			bt := c.conv(b)
			if bt.kind == kNull {
				t.nullIdx = i
			}
			t.branches = append(t.branches, bt)
		}
		return t
	case *avro.NullSchema:
		return &stype{kind: kNull}
	case *avro.PrimitiveSchema:
		t := &stype{}
		switch s.Type() {
		case avro.Null:
			t.kind = kNull
		case avro.Boolean:
			t.kind = kBool
		case avro.Int:
			t.kind = kInt
		case avro.Long:
			t.kind = kLong
		case avro.Float:
			t.kind = kFloat
		case avro.Double:
			t.kind = kDouble
		case avro.Bytes:
			t.kind = kBytes
		case avro.String:
			t.kind = kString
		}
		if l := s.Logical(); l != nil {
			t.logical = string(l.Type())
		}
		return t
	}
	return &stype{kind: kAny}
}

// stringList reads a tags property: a JSON array of strings (or one string).
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return v
	}
	return nil
}

// jsonField finds a JSON object property by name.
func (t *stype) jsonField(name string) *sfield {
	if i, ok := t.byName[name]; ok {
		return t.fields[i]
	}
	return nil
}
