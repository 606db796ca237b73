package registry

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/hamba/avro/v2"
)

// Confluent Schema Registry parses Avro with Avro Java, and registers schemas
// that hamba/avro (stricter, and closer to the letter of the specification)
// refuses:
//
//   - Field defaults are not validated at registration: AvroSchemaProvider's
//     avro.validate.defaults (schema.providers.avro.validate.defaults on the
//     server) is false by default, so {"type":["null","string"],"default":"null"}
//     or an int field with default "x" register. hamba refuses them.
//   - Names follow Avro Java's NameValidator.UTF_VALIDATOR: a letter or "_",
//     then letters, digits or "_", where a letter is any Unicode letter; hamba
//     allows ASCII only. Avro Java checks only the last part of a full name,
//     never namespace parts ("com.my-company"), and never field aliases; hamba
//     checks every part and every alias.
//   - A non-string "doc" (or record/enum namespace) is ignored, a non-string
//     enum "default" means no default, and a field "order" is read ignoring
//     case; hamba refuses all of these.
//
// Karapace is as lenient (its Python parser does not check defaults either).
// A source registry full of such schemas must not make a tributary target
// registry refuse them, so parseAvroLenient accepts what Avro Java accepts, as
// follows. The schema is parsed strictly first; only when hamba refuses it is
// a relaxed copy built and parsed for the compatibility checker, while the
// registry keeps storing, returning and identifying the schema by its
// original text. In the copy:
//
//   - an invalid field default is replaced by a valid placeholder of the
//     field's type (the first branch of a union), so the field still "has a
//     default", which is all schema resolution looks at (Avro Java's
//     SchemaCompatibility only asks hasDefaultValue);
//   - a name part hamba refuses but Avro Java accepts becomes
//     _tributary<hex of its UTF-8>_, the same for every occurrence, so names
//     still match exactly where they matched; compatibility messages show the
//     original names again (demangle);
//   - non-string docs, namespaces and enum defaults are dropped, and orders
//     lower-cased.
//
// Each relaxation is described by a reason naming its JSON pointer in the
// schema document, never a name or a value; the server logs them.

// mangledPrefix starts a name part rewritten for hamba. A schema that itself
// uses a name of the form _tributary<hex>_ could meet a rewritten one; no real
// schema is expected to.
const mangledPrefix = "_tributary"

var mangledName = regexp.MustCompile(mangledPrefix + `((?:[0-9a-f]{2})*)_`)

// parseAvroLenient parses text into cache, strictly if hamba accepts it, else
// through a relaxed copy (see above). reasons lists the relaxations, empty for
// a strict parse; mangled says whether names were rewritten. A schema Avro
// Java would refuse too gets hamba's error for the original text.
func parseAvroLenient(text string, cache *avro.SchemaCache) (s avro.Schema, reasons []string, mangled bool, err error) {
	s, strictErr := avro.ParseWithCache(text, "", cache)
	if strictErr == nil {
		return s, nil, false, nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return nil, nil, false, strictErr
	}
	r := &relaxer{}
	doc = r.schema(doc, "")

	// Take the defaults out, parse to learn each field's type, then put back
	// the valid ones and placeholders for the others.
	defaults := map[string]any{}
	eachField(doc, "", func(f map[string]any, ptr string) {
		if d, ok := f["default"]; ok {
			defaults[ptr] = d
			delete(f, "default")
		}
	})
	if len(defaults) > 0 {
		probe := &avro.SchemaCache{}
		probe.AddAll(cache)
		bare, err := parseDoc(doc, probe)
		if err != nil {
			return nil, nil, false, strictErr
		}
		types := map[string]avro.Schema{}
		fieldTypes(doc, bare, "", types)
		eachField(doc, "", func(f map[string]any, ptr string) {
			d, ok := defaults[ptr]
			if !ok {
				return
			}
			typ := types[ptr]
			switch {
			case typ == nil || validDefault(typ, d):
				f["default"] = d // the final parse decides
			case r.mangled && validDefault(typ, mangledSymbol(typ, d)):
				f["default"] = mangledSymbol(typ, d) // a symbol rewritten above
			default:
				if z, ok := placeholder(typ, map[avro.Schema]bool{}); ok && validDefault(typ, z) {
					f["default"] = z
					r.notef("invalid default at %s accepted (Confluent does not validate defaults at registration)", ptr+"/default")
				} else {
					r.notef("invalid default at %s accepted and compared as no default", ptr+"/default")
				}
			}
		})
	}
	s, err = parseDoc(doc, cache)
	if err != nil {
		return nil, nil, false, strictErr
	}
	return s, r.reasons, r.mangled, nil
}

func parseDoc(doc any, cache *avro.SchemaCache) (avro.Schema, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return avro.ParseBytesWithCache(b.Bytes(), "", cache)
}

// relaxer rewrites a decoded Avro schema document into what hamba accepts,
// where Avro Java would accept the original.
type relaxer struct {
	reasons []string
	mangled bool
}

func (r *relaxer) notef(format string, args ...any) {
	r.reasons = append(r.reasons, fmt.Sprintf(format, args...))
}

var primitives = []string{"null", "boolean", "int", "long", "float", "double", "bytes", "string"}

// schema relaxes the schema at ptr and returns it.
func (r *relaxer) schema(node any, ptr string) any {
	switch n := node.(type) {
	case string:
		if slices.Contains(primitives, n) {
			return n
		}
		return r.fullName(n, ptr) // a reference to a named type
	case []any:
		for i, item := range n {
			n[i] = r.schema(item, ptr+"/"+strconv.Itoa(i))
		}
		return n
	case map[string]any:
		r.complex(n, ptr)
	}
	return node
}

func (r *relaxer) complex(m map[string]any, ptr string) {
	switch t := m["type"].(type) {
	case []any: // hamba reads {"type": [...]} as the union
		m["type"] = r.schema(t, ptr+"/type")
	case string:
		switch t {
		case "record", "error":
			r.named(m, ptr)
			r.doc(m, ptr)
			fields, _ := m["fields"].([]any)
			for i, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					continue
				}
				fp := ptr + "/fields/" + strconv.Itoa(i)
				if name, ok := fm["name"].(string); ok {
					fm["name"] = r.simpleName(name, fp+"/name")
				}
				if as, ok := fm["aliases"].([]any); ok {
					for j, a := range as {
						if s, ok := a.(string); ok && !hambaName(s) {
							as[j] = r.mangle(s, fp+"/aliases/"+strconv.Itoa(j), "field alias", "Avro Java does not check field aliases")
						}
					}
				}
				r.doc(fm, fp)
				if o, ok := fm["order"].(string); ok && o != strings.ToLower(o) {
					fm["order"] = strings.ToLower(o)
					r.notef("upper-case order at %s read as lower case", fp+"/order")
				}
				if ft, ok := fm["type"]; ok {
					fm["type"] = r.schema(ft, fp+"/type")
				}
			}
		case "enum":
			r.named(m, ptr)
			r.doc(m, ptr)
			syms, _ := m["symbols"].([]any)
			for i, s := range syms {
				if str, ok := s.(string); ok {
					syms[i] = r.simpleName(str, ptr+"/symbols/"+strconv.Itoa(i))
				}
			}
			switch d := m["default"].(type) {
			case nil, string:
				if str, ok := d.(string); ok && !hambaName(str) && javaName(str) {
					m["default"] = mangle(str)
				}
			default:
				delete(m, "default")
				r.notef("non-string enum default at %s ignored", ptr+"/default")
			}
		case "fixed":
			r.named(m, ptr)
		case "array":
			if items, ok := m["items"]; ok {
				m["items"] = r.schema(items, ptr+"/items")
			}
		case "map":
			if values, ok := m["values"]; ok {
				m["values"] = r.schema(values, ptr+"/values")
			}
		default:
			if !slices.Contains(primitives, t) {
				m["type"] = r.fullName(t, ptr+"/type")
			}
		}
	}
}

// named relaxes the name, namespace and aliases of a named type.
func (r *relaxer) named(m map[string]any, ptr string) {
	if name, ok := m["name"].(string); ok {
		m["name"] = r.fullName(name, ptr+"/name")
	}
	switch ns := m["namespace"].(type) {
	case nil:
	case string:
		parts := strings.Split(ns, ".")
		for i, p := range parts {
			if p != "" && !hambaName(p) {
				parts[i] = r.mangle(p, ptr+"/namespace", "namespace part", "Avro Java does not check namespaces")
			}
		}
		m["namespace"] = strings.Join(parts, ".")
	default:
		delete(m, "namespace")
		r.notef("non-string namespace at %s ignored", ptr+"/namespace")
	}
	if as, ok := m["aliases"].([]any); ok {
		for i, a := range as {
			if s, ok := a.(string); ok {
				as[i] = r.fullName(s, ptr+"/aliases/"+strconv.Itoa(i))
			}
		}
	}
}

func (r *relaxer) doc(m map[string]any, ptr string) {
	switch m["doc"].(type) {
	case nil, string:
	default:
		delete(m, "doc")
		r.notef("non-string doc at %s ignored", ptr+"/doc")
	}
}

// fullName relaxes a possibly dotted name: namespace parts are not checked by
// Avro Java, the last part is.
func (r *relaxer) fullName(name, ptr string) string {
	parts := strings.Split(name, ".")
	last := len(parts) - 1
	for i, p := range parts[:last] {
		if p != "" && !hambaName(p) {
			parts[i] = r.mangle(p, ptr, "namespace part", "Avro Java does not check namespaces")
		}
	}
	parts[last] = r.simpleName(parts[last], ptr)
	return strings.Join(parts, ".")
}

// simpleName relaxes a name Avro Java checks: rewritten when Avro Java
// accepts it and hamba does not, else left for hamba to refuse.
func (r *relaxer) simpleName(name, ptr string) string {
	if hambaName(name) || !javaName(name) {
		return name
	}
	return r.mangle(name, ptr, "non-ASCII name", "Avro Java allows Unicode letters and digits")
}

func (r *relaxer) mangle(s, ptr, what, why string) string {
	r.mangled = true
	r.notef("%s at %s accepted (%s)", what, ptr, why)
	return mangle(s)
}

func mangle(s string) string { return mangledPrefix + hex.EncodeToString([]byte(s)) + "_" }

// demangle shows the original names in a compatibility message.
func demangle(s string) string {
	return mangledName.ReplaceAllStringFunc(s, func(m string) string {
		b, err := hex.DecodeString(mangledName.FindStringSubmatch(m)[1])
		if err != nil {
			return m
		}
		return string(b)
	})
}

// hambaName is hamba's (and the specification's) name rule.
func hambaName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		ok := c == '_' || ('A' <= c && c <= 'Z') || ('a' <= c && c <= 'z') || (i > 0 && '0' <= c && c <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// javaName is Avro Java's NameValidator.UTF_VALIDATOR, which looks at UTF-16
// code units: a character outside the Basic Multilingual Plane is a surrogate
// pair, neither letter nor digit.
func javaName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c > 0xFFFF {
			return false
		}
		ok := c == '_' || unicode.IsLetter(c) || (i > 0 && unicode.IsDigit(c))
		if !ok {
			return false
		}
	}
	return true
}

// eachField calls fn for every record field of the schema document at ptr, with
// the field's JSON pointer.
func eachField(node any, ptr string, fn func(f map[string]any, ptr string)) {
	switch n := node.(type) {
	case []any:
		for i, item := range n {
			eachField(item, ptr+"/"+strconv.Itoa(i), fn)
		}
	case map[string]any:
		switch t := n["type"].(type) {
		case []any:
			eachField(t, ptr+"/type", fn)
		case string:
			switch t {
			case "record", "error":
				fields, _ := n["fields"].([]any)
				for i, f := range fields {
					if fm, ok := f.(map[string]any); ok {
						fp := ptr + "/fields/" + strconv.Itoa(i)
						fn(fm, fp)
						eachField(fm["type"], fp+"/type", fn)
					}
				}
			case "array":
				eachField(n["items"], ptr+"/items", fn)
			case "map":
				eachField(n["values"], ptr+"/values", fn)
			}
		}
	}
}

// fieldTypes records the parsed type of every record field of the document
// node, whose parsed form is s, by the field's JSON pointer.
func fieldTypes(node any, s avro.Schema, ptr string, out map[string]avro.Schema) {
	s = deref(s)
	switch n := node.(type) {
	case []any:
		u, ok := s.(*avro.UnionSchema)
		if !ok || len(u.Types()) != len(n) {
			return
		}
		for i, item := range n {
			fieldTypes(item, u.Types()[i], ptr+"/"+strconv.Itoa(i), out)
		}
	case map[string]any:
		switch t := n["type"].(type) {
		case []any:
			fieldTypes(t, s, ptr+"/type", out)
		case string:
			switch t {
			case "record", "error":
				rs, ok := s.(*avro.RecordSchema)
				fields, _ := n["fields"].([]any)
				if !ok || len(rs.Fields()) != len(fields) {
					return
				}
				for i, f := range fields {
					fp := ptr + "/fields/" + strconv.Itoa(i)
					out[fp] = rs.Fields()[i].Type()
					if fm, ok := f.(map[string]any); ok {
						fieldTypes(fm["type"], rs.Fields()[i].Type(), fp+"/type", out)
					}
				}
			case "array":
				if as, ok := s.(*avro.ArraySchema); ok {
					fieldTypes(n["items"], as.Items(), ptr+"/items", out)
				}
			case "map":
				if ms, ok := s.(*avro.MapSchema); ok {
					fieldTypes(n["values"], ms.Values(), ptr+"/values", out)
				}
			}
		}
	}
}

// mangledSymbol returns the rewritten form of a default that names an enum
// symbol relaxer.simpleName rewrote, for a field of enum type (or of a union
// whose first branch is one); else def.
func mangledSymbol(typ avro.Schema, def any) any {
	typ = deref(typ)
	if u, ok := typ.(*avro.UnionSchema); ok {
		typ = deref(u.Types()[0])
	}
	if str, ok := def.(string); ok && typ.Type() == avro.Enum && !hambaName(str) && javaName(str) {
		return mangle(str)
	}
	return def
}

// validDefault asks hamba whether def (as decoded from the document) is a
// valid default for a field of type typ.
func validDefault(typ avro.Schema, def any) bool {
	// hamba decodes numbers as float64 and converts the default in place:
	// hand it a fresh copy in that form.
	b, err := json.Marshal(def)
	if err != nil {
		return false
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return false
	}
	_, err = avro.NewField("f", typ, avro.WithDefault(v))
	return err == nil
}

// placeholder returns a valid default for typ: the zero value of its type, of
// a union's first branch, and for a record of each field. ok is false for a
// record that contains itself in every possible value.
func placeholder(typ avro.Schema, open map[avro.Schema]bool) (v any, ok bool) {
	typ = deref(typ)
	switch s := typ.(type) {
	case *avro.UnionSchema:
		return placeholder(s.Types()[0], open)
	case *avro.RecordSchema:
		if open[s] {
			return nil, false
		}
		open[s] = true
		defer delete(open, s)
		m := map[string]any{}
		for _, f := range s.Fields() {
			if m[f.Name()], ok = placeholder(f.Type(), open); !ok {
				return nil, false
			}
		}
		return m, true
	case *avro.EnumSchema:
		if len(s.Symbols()) == 0 {
			return nil, false
		}
		return s.Symbols()[0], true
	case *avro.FixedSchema:
		return strings.Repeat("\x00", s.Size()), true
	case *avro.ArraySchema:
		return []any{}, true
	case *avro.MapSchema:
		return map[string]any{}, true
	}
	switch typ.Type() {
	case avro.Null:
		return nil, true
	case avro.Boolean:
		return false, true
	case avro.Int, avro.Long, avro.Float, avro.Double:
		return 0, true
	case avro.String, avro.Bytes:
		return "", true
	}
	return nil, false
}

// warnLenient logs a new version whose schema was accepted leniently, so that
// an operator can have it fixed at its source: the subject, id, version and
// reasons (JSON pointers, never names, docs or defaults).
func (s *Server) warnLenient(subject string, id, version int, p *parsed) {
	if len(p.lenient) == 0 {
		return
	}
	s.log.Warn("registry: schema accepted as Confluent accepts it, though it breaks the Avro specification",
		"subject", subject, "id", id, "version", version, "reasons", strings.Join(p.lenient, "; "))
}
