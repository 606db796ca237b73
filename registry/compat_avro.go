package registry

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// avroChecker applies the Avro specification's schema resolution rules
// ("Schema Resolution"), as Avro Java's SchemaCompatibility does, collecting
// every incompatibility with its location instead of stopping at the first.
//
// hamba/avro's SchemaCompatibility was evaluated and is not used: it memoises
// verdicts by Parsing Canonical Form fingerprint, which leaves out field
// defaults, enum defaults and aliases, so a checker that saw a field without a
// default reports the same error for a later schema that adds the default; it
// also stops at the first problem and names no path.
type avroChecker struct {
	rl, wl string // "new"/"old": what reader and writer are called in messages
	// inProgress holds the named (reader, writer) pairs being compared, so
	// recursive types terminate: a pair met again is assumed compatible, the
	// usual co-inductive reading also used by Avro Java.
	inProgress map[[2]any]bool
}

// check returns why data written with w cannot be read with r. ptr is the JSON
// pointer of the location in the reader schema; field the dotted field path.
func (c *avroChecker) check(r, w avro.Schema, ptr, field string) []incompat {
	r, w = deref(r), deref(w)

	if wu, ok := w.(*avro.UnionSchema); ok {
		// Each branch the writer may have chosen must be readable.
		var out []incompat
		for _, wb := range wu.Types() {
			out = append(out, c.check(r, wb, ptr, field)...)
		}
		return out
	}
	if ru, ok := r.(*avro.UnionSchema); ok {
		if c.unionHas(ru, w, ptr, field) {
			return nil
		}
		return []incompat{{kind: "MISSING_UNION_BRANCH", path: ptr,
			desc: fmt.Sprintf("The %s schema is missing a type inside a union field at path '%s' (%s) in the %s schema: %s",
				c.rl, orRoot(field), orRoot(ptr), c.wl, typeName(w)),
			info: "reader union lacking writer type: " + strings.ToUpper(typeName(w))}}
	}

	if r.Type() != w.Type() {
		if promotable(w.Type(), r.Type()) {
			return nil
		}
		return []incompat{{kind: "TYPE_MISMATCH", path: ptr,
			desc: fmt.Sprintf("The type of the field at path '%s' (%s) in the %s schema (%s) does not match the %s schema (%s)",
				orRoot(field), orRoot(ptr), c.rl, typeName(r), c.wl, typeName(w)),
			info: fmt.Sprintf("reader type: %s not compatible with writer type: %s", strings.ToUpper(string(r.Type())), strings.ToUpper(string(w.Type())))}}
	}

	switch rs := r.(type) {
	case *avro.RecordSchema:
		ws := w.(*avro.RecordSchema)
		key := [2]any{rs, ws}
		if c.inProgress[key] {
			return nil
		}
		c.inProgress[key] = true
		defer delete(c.inProgress, key)
		var out []incompat
		if bad := c.name(rs, ws, ptr, field); bad != nil {
			out = append(out, *bad)
		}
		for i, rf := range rs.Fields() {
			fptr := ptr + "/fields/" + strconv.Itoa(i)
			fpath := join(field, rf.Name())
			wf := writerField(ws, rf)
			if wf == nil {
				if !rf.HasDefault() {
					out = append(out, incompat{kind: "READER_FIELD_MISSING_DEFAULT_VALUE", path: fptr,
						desc: fmt.Sprintf("The field '%s' at path '%s' in the %s schema has no default value and is missing in the %s schema",
							fpath, fptr, c.rl, c.wl),
						info: rf.Name()})
				}
				continue
			}
			out = append(out, c.check(rf.Type(), wf.Type(), fptr+"/type", fpath)...)
		}
		return out

	case *avro.EnumSchema:
		ws := w.(*avro.EnumSchema)
		var out []incompat
		if bad := c.name(rs, ws, ptr, field); bad != nil {
			out = append(out, *bad)
		}
		var missing []string
		for _, s := range ws.Symbols() {
			if !slices.Contains(rs.Symbols(), s) {
				missing = append(missing, s)
			}
		}
		// Since Avro 1.9 a reader enum's default stands in for unknown symbols.
		if len(missing) > 0 && !rs.HasDefault() {
			out = append(out, incompat{kind: "MISSING_ENUM_SYMBOLS", path: ptr + "/symbols",
				desc: fmt.Sprintf("The %s schema is missing enum symbols '%s' at path '%s' (%s) in the %s schema, and has no enum default",
					c.rl, strings.Join(missing, ","), orRoot(field), ptr+"/symbols", c.wl),
				info: "[" + strings.Join(missing, ", ") + "]"})
		}
		return out

	case *avro.FixedSchema:
		ws := w.(*avro.FixedSchema)
		var out []incompat
		if bad := c.name(rs, ws, ptr, field); bad != nil {
			out = append(out, *bad)
		}
		if rs.Size() != ws.Size() {
			out = append(out, incompat{kind: "FIXED_SIZE_MISMATCH", path: ptr + "/size",
				desc: fmt.Sprintf("The size of FIXED type field at path '%s' (%s) in the %s schema (%d) does not match the %s schema (%d)",
					orRoot(field), ptr+"/size", c.rl, rs.Size(), c.wl, ws.Size()),
				info: fmt.Sprintf("expected: %d, found: %d", ws.Size(), rs.Size())})
		}
		return out

	case *avro.ArraySchema:
		return c.check(rs.Items(), w.(*avro.ArraySchema).Items(), ptr+"/items", field+"[]")

	case *avro.MapSchema:
		return c.check(rs.Values(), w.(*avro.MapSchema).Values(), ptr+"/values", field+"{}")
	}
	// Same primitive type (logical types are annotations: resolution ignores
	// them, as Avro Java's checker does).
	return nil
}

// unionHas reports whether some branch of the reader union can read w.
func (c *avroChecker) unionHas(ru *avro.UnionSchema, w avro.Schema, ptr, field string) bool {
	for _, rb := range ru.Types() {
		if len(c.check(rb, w, ptr, field)) == 0 {
			return true
		}
	}
	return false
}

// name applies the rule that named types match when their unqualified names
// are equal or a reader alias names the writer.
func (c *avroChecker) name(r, w avro.NamedSchema, ptr, field string) *incompat {
	if r.Name() == w.Name() || slices.Contains(r.Aliases(), w.FullName()) {
		return nil
	}
	return &incompat{kind: "NAME_MISMATCH", path: ptr + "/name",
		desc: fmt.Sprintf("The name of the schema at path '%s' (%s) has changed: %s schema %s, %s schema %s, and no alias of the %s schema matches",
			orRoot(field), ptr+"/name", c.rl, r.FullName(), c.wl, w.FullName(), c.rl),
		info: fmt.Sprintf("expected: %s", w.FullName())}
}

// writerField finds the writer's field for reader field rf: by name, then by
// the reader field's aliases.
func writerField(w *avro.RecordSchema, rf *avro.Field) *avro.Field {
	for _, f := range w.Fields() {
		if f.Name() == rf.Name() {
			return f
		}
	}
	for _, a := range rf.Aliases() {
		for _, f := range w.Fields() {
			if f.Name() == a {
				return f
			}
		}
	}
	return nil
}

// promotable lists the spec's promotions: int to long, float or double; long
// to float or double; float to double; string to bytes and bytes to string.
func promotable(writer, reader avro.Type) bool {
	switch writer {
	case avro.Int:
		return reader == avro.Long || reader == avro.Float || reader == avro.Double
	case avro.Long:
		return reader == avro.Float || reader == avro.Double
	case avro.Float:
		return reader == avro.Double
	case avro.String:
		return reader == avro.Bytes
	case avro.Bytes:
		return reader == avro.String
	}
	return false
}

func deref(s avro.Schema) avro.Schema {
	if r, ok := s.(*avro.RefSchema); ok {
		return r.Schema()
	}
	return s
}

func typeName(s avro.Schema) string {
	s = deref(s)
	if n, ok := s.(avro.NamedSchema); ok {
		return string(s.Type()) + " " + n.FullName()
	}
	return string(s.Type())
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orRoot(s string) string {
	if s == "" {
		return "/"
	}
	return s
}
