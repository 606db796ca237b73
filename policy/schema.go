package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
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
	closed      bool           // JSON: additionalProperties is false
	extra       *stype         // JSON: additionalProperties' schema, nil when untyped
	elem        *stype         // array items, map values
	branches    []*stype
	pb          *pbType
	nullIdx     int // union: index of the null branch, -1 when none
	tagsBelow   int8
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
		return parseJSONSchema(s.Text)
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

// parseJSONSchema models the parts of JSON Schema that matter for masking:
// types (and so nullability), properties with their tags, defaults and
// required-ness, items, additionalProperties, enums, and local $refs. allOf,
// anyOf and oneOf merge their branches; constraints such as pattern or
// minLength are not modelled (see doc.go).
func parseJSONSchema(text string) (*stype, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("json schema: %v", err)
	}
	c := &jsonConv{root: root, refs: map[string]*stype{}}
	return c.conv(root, 0), nil
}

type jsonConv struct {
	root any
	refs map[string]*stype
}

// maxSchemaDepth bounds nesting in JSON schemas (not through $ref, which is memoised).
const maxSchemaDepth = 200

func (c *jsonConv) conv(v any, depth int) *stype {
	m, ok := v.(map[string]any)
	if !ok || depth > maxSchemaDepth {
		return &stype{kind: kAny, json: true}
	}
	if ref, ok := m["$ref"].(string); ok {
		if t, ok := c.refs[ref]; ok {
			return t
		}
		target, ok := c.pointer(ref)
		if !ok {
			return &stype{kind: kAny, json: true}
		}
		// Reserve the slot first: a recursive $ref gets this stype back.
		t := &stype{json: true}
		c.refs[ref] = t
		*t = *c.conv(target, depth+1)
		return t
	}
	var parts []*stype
	types := map[string]bool{}
	switch ty := m["type"].(type) {
	case string:
		types[ty] = true
	case []any:
		for _, x := range ty {
			if s, ok := x.(string); ok {
				types[s] = true
			}
		}
	}
	if len(types) == 0 {
		if _, ok := m["properties"]; ok {
			types["object"] = true
		} else if _, ok := m["additionalProperties"]; ok {
			types["object"] = true
		}
		if _, ok := m["items"]; ok {
			types["array"] = true
		}
	}
	if vals, ok := m["enum"].([]any); ok {
		parts = append(parts, jsonEnum(vals))
		types = nil
	} else if cv, ok := m["const"]; ok {
		parts = append(parts, jsonEnum([]any{cv}))
		types = nil
	}
	names := make([]string, 0, len(types))
	for ty := range types {
		names = append(names, ty)
	}
	sort.Strings(names)
	for _, ty := range names {
		t := &stype{json: true}
		switch ty {
		case "null":
			t.kind = kNull
		case "boolean":
			t.kind = kBool
		case "integer":
			t.kind = kLong
		case "number":
			t.kind = kDouble
		case "string":
			t.kind = kString
			if f, ok := m["format"].(string); ok {
				t.logical = f
			}
		case "array":
			t.kind = kArray
			t.elem = c.conv(m["items"], depth+1)
		case "object":
			c.object(t, m, depth)
		default:
			continue
		}
		parts = append(parts, t)
	}
	for _, comb := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := m[comb].([]any); ok {
			for _, x := range list {
				parts = append(parts, c.conv(x, depth+1))
			}
		}
	}
	return mergeJSON(parts)
}

// object fills t from an object schema's properties and additionalProperties.
func (c *jsonConv) object(t *stype, m map[string]any, depth int) {
	props, _ := m["properties"].(map[string]any)
	addl, hasAddl := m["additionalProperties"]
	if len(props) == 0 && hasAddl {
		if am, ok := addl.(map[string]any); ok {
			t.kind = kMap
			t.elem = c.conv(am, depth+1)
			return
		}
	}
	t.kind = kRecord
	t.byName = map[string]int{}
	required := map[string]bool{}
	if req, ok := m["required"].([]any); ok {
		for _, x := range req {
			if s, ok := x.(string); ok {
				required[s] = true
			}
		}
	}
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ps := props[n]
		f := &sfield{name: n, t: c.conv(ps, depth+1), required: required[n]}
		if pm, ok := ps.(map[string]any); ok {
			f.tags = stringList(pm[tagsProp])
			if d, ok := pm["default"]; ok {
				f.hasDefault = true
				f.def, _ = json.Marshal(d)
			}
		}
		t.byName[n] = len(t.fields)
		t.fields = append(t.fields, f)
	}
	switch a := addl.(type) {
	case bool:
		t.closed = !a
	case map[string]any:
		t.extra = c.conv(a, depth+1)
	}
}

// pointer resolves a local JSON pointer ("#/definitions/Address", "#/$defs/x").
func (c *jsonConv) pointer(ref string) (any, bool) {
	if ref == "#" {
		return c.root, true
	}
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	cur := c.root
	for _, tok := range strings.Split(ref[2:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func jsonEnum(vals []any) *stype {
	t := &stype{kind: kEnum, json: true}
	for _, v := range vals {
		b, _ := json.Marshal(v)
		t.symbols = append(t.symbols, string(b))
	}
	return t
}

// mergeJSON combines the alternatives of one JSON schema: one kind each, record
// properties merged, a union when more than one kind remains.
func mergeJSON(parts []*stype) *stype {
	var out []*stype
	for _, p := range parts {
		if p.kind == kUnion {
			out = append(out, p.branches...)
		} else if p.kind != kAny {
			out = append(out, p)
		}
	}
	var merged []*stype
	for _, p := range out {
		i := slices.IndexFunc(merged, func(q *stype) bool { return sameJSONKind(p, q) })
		if i < 0 {
			merged = append(merged, p)
			continue
		}
		if p.kind == kRecord && merged[i].kind == kRecord {
			merged[i] = mergeRecords(merged[i], p)
		}
	}
	switch len(merged) {
	case 0:
		return &stype{kind: kAny, json: true}
	case 1:
		return merged[0]
	}
	u := &stype{kind: kUnion, json: true, nullIdx: -1, branches: merged}
	for i, b := range merged {
		if b.kind == kNull {
			u.nullIdx = i
		}
	}
	return u
}

func sameJSONKind(a, b *stype) bool {
	ka, kb := a.kind, b.kind
	if ka == kMap {
		ka = kRecord
	}
	if kb == kMap {
		kb = kRecord
	}
	return ka == kb
}

// mergeRecords returns a record with the properties of both; a property in
// both keeps the first's type and the tags of both.
func mergeRecords(a, b *stype) *stype {
	if a.kind == kMap {
		a, b = b, a
	}
	if b.kind == kMap {
		r := *a
		if r.extra == nil {
			r.extra = b.elem
		}
		return &r
	}
	r := &stype{kind: kRecord, json: true, byName: map[string]int{}, closed: a.closed && b.closed, extra: a.extra}
	if r.extra == nil {
		r.extra = b.extra
	}
	for _, f := range a.fields {
		g := *f
		r.byName[f.name] = len(r.fields)
		r.fields = append(r.fields, &g)
	}
	for _, f := range b.fields {
		if i, ok := r.byName[f.name]; ok {
			g := r.fields[i]
			for _, tag := range f.tags {
				if !slices.Contains(g.tags, tag) {
					g.tags = append(g.tags, tag)
				}
			}
			g.required = g.required || f.required
			continue
		}
		g := *f
		r.byName[f.name] = len(r.fields)
		r.fields = append(r.fields, &g)
	}
	return r
}

// jsonField finds a JSON object property by name.
func (t *stype) jsonField(name string) *sfield {
	if i, ok := t.byName[name]; ok {
		return t.fields[i]
	}
	return nil
}
