package registry

import (
	"fmt"
	"sort"
	"strings"

	"github.com/tributary-dev/tributary/internal/protoschema"
)

// protoScalars maps each scalar type to its wire-compatible group: values of
// types in one group decode as each other (possibly truncated, as the
// protobuf language guide describes).
var protoScalars = map[protoschema.Kind]string{
	protoschema.Int32: "varint", protoschema.Int64: "varint", protoschema.Uint32: "varint",
	protoschema.Uint64: "varint", protoschema.Bool: "varint",
	protoschema.Sint32: "zigzag", protoschema.Sint64: "zigzag",
	protoschema.Fixed32: "fixed32", protoschema.Sfixed32: "fixed32",
	protoschema.Fixed64: "fixed64", protoschema.Sfixed64: "fixed64",
	protoschema.Float: "float", protoschema.Double: "double",
	protoschema.String: "bytes", protoschema.Bytes: "bytes",
}

// messages are a message list without protoc's map entry types: the text
// form has none, and indexes among siblings are compared as Confluent's Java
// checker counts them.
func messages(ms []*protoschema.Message) []*protoschema.Message {
	out := make([]*protoschema.Message, 0, len(ms))
	for _, m := range ms {
		if !m.MapEntry {
			out = append(out, m)
		}
	}
	return out
}

// protoDiff reports the changes from orig to upd that Confluent's Protobuf
// checker treats as incompatible (the subset documented in doc.go). ol and ul
// name the two schemas in messages. Both files are linked, so type names are
// fully qualified where they resolve.
func protoDiff(orig, upd *protoschema.File, ol, ul string) []incompat {
	var out []incompat
	add := func(kind, path, format string, args ...any) {
		out = append(out, incompat{kind: kind, path: path, desc: fmt.Sprintf(format, args...), info: path})
	}
	if orig.Package != upd.Package {
		add("PACKAGE_CHANGED", "#/package", "The package changed from %q in the %s schema to %q in the %s schema", orig.Package, ol, upd.Package, ul)
	}
	var walk func(om, um []*protoschema.Message)
	walk = func(om, um []*protoschema.Message) {
		om, um = messages(om), messages(um)
		pos := map[string]int{}
		for i, m := range um {
			pos[m.Name] = i
		}
		for i, m := range om {
			j, ok := pos[m.Name]
			if !ok {
				add("MESSAGE_REMOVED", "#/"+m.FullName, "The message %s of the %s schema is missing in the %s schema", m.FullName, ol, ul)
				continue
			}
			if i != j {
				// Records name their message by index; a moved message
				// makes old indexes point elsewhere.
				add("MESSAGE_MOVED", "#/"+m.FullName, "The message %s moved from index %d in the %s schema to %d in the %s schema", m.FullName, i, ol, j, ul)
			}
			u := um[j]
			out = append(out, protoFields(m, u, ol, ul)...)
			walk(m.Messages, u.Messages)
		}
	}
	walk(orig.Messages, upd.Messages)
	return out
}

// oneofName is the real oneof a field belongs to: "" for none, and for the
// synthetic oneof of a proto3 optional field.
func oneofName(m *protoschema.Message, f *protoschema.Field) string {
	if f.Oneof < 0 || f.Oneof >= len(m.Oneofs) || m.Oneofs[f.Oneof].Synthetic {
		return ""
	}
	return m.Oneofs[f.Oneof].Name
}

func labelName(f *protoschema.Field) string {
	switch {
	case f.Label == protoschema.Repeated && !f.IsMap():
		return "repeated"
	case f.Label == protoschema.Required:
		return "required"
	case f.Proto3Optional:
		return "optional"
	}
	return ""
}

func protoFields(om, um *protoschema.Message, ol, ul string) []incompat {
	var out []incompat
	add := func(kind string, f *protoschema.Field, format string, args ...any) {
		path := fmt.Sprintf("#/%s/%d", om.FullName, f.Number)
		out = append(out, incompat{kind: kind, path: path,
			desc: fmt.Sprintf("Field %s.%s (number %d): ", om.FullName, f.Name, f.Number) + fmt.Sprintf(format, args...),
			info: om.FullName + "." + f.Name})
	}
	byNum := func(m *protoschema.Message) map[int32]*protoschema.Field {
		out := map[int32]*protoschema.Field{}
		for _, f := range m.Fields {
			out[f.Number] = f
		}
		return out
	}
	ofs, ufs := byNum(om), byNum(um)
	oldOneofs := map[string]bool{}
	for _, o := range om.Oneofs {
		if !o.Synthetic {
			oldOneofs[o.Name] = true
		}
	}
	movedToNew := map[string][]string{}

	nums := make([]int32, 0, len(ofs)+len(ufs))
	for n := range ofs {
		nums = append(nums, n)
	}
	for n := range ufs {
		if _, ok := ofs[n]; !ok {
			nums = append(nums, n)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	for _, n := range nums {
		o, u := ofs[n], ufs[n]
		switch {
		case u == nil:
			if o.Label == protoschema.Required {
				add("REQUIRED_FIELD_REMOVED", o, "required in the %s schema and removed in the %s schema", ol, ul)
			}
		case o == nil:
			if u.Label == protoschema.Required {
				add("REQUIRED_FIELD_ADDED", u, "added as required in the %s schema", ul)
			}
		default:
			ok, uk := protoKind(o), protoKind(u)
			oRep := o.Label == protoschema.Repeated && !o.IsMap()
			uRep := u.Label == protoschema.Repeated && !u.IsMap()
			switch {
			case oRep != uRep || !sameKind(ok, uk):
				add("FIELD_KIND_CHANGED", u, "%s %s in the %s schema, %s %s in the %s schema",
					labelName(o), o.TypeString(), ol, labelName(u), u.TypeString(), ul)
			case ok == "scalar" && protoScalars[o.Kind] != protoScalars[u.Kind]:
				add("FIELD_SCALAR_KIND_CHANGED", u, "type %s in the %s schema, %s in the %s schema", o.TypeString(), ol, u.TypeString(), ul)
			case ok != "scalar" && ok != "map" && protoTypeName(o) != protoTypeName(u):
				add("FIELD_NAMED_TYPE_CHANGED", u, "type %s in the %s schema, %s in the %s schema", protoTypeName(o), ol, protoTypeName(u), ul)
			case ok == "map" && (mapPart(o.MapKey()) != mapPart(u.MapKey()) || mapPart(o.MapValue()) != mapPart(u.MapValue())):
				add("FIELD_KIND_CHANGED", u, "%s in the %s schema, %s in the %s schema", o.TypeString(), ol, u.TypeString(), ul)
			}
			if o.Label != protoschema.Required && u.Label == protoschema.Required {
				add("REQUIRED_FIELD_ADDED", u, "made required in the %s schema", ul)
			} else if o.Label == protoschema.Required && u.Label != protoschema.Required {
				add("REQUIRED_FIELD_REMOVED", u, "no longer required in the %s schema", ul)
			}
			if oo, uo := oneofName(om, o), oneofName(um, u); oo == "" && uo != "" {
				if oldOneofs[uo] {
					add("FIELD_MOVED_TO_EXISTING_ONEOF", u, "moved into the existing oneof %s in the %s schema", uo, ul)
				} else {
					movedToNew[uo] = append(movedToNew[uo], u.Name)
				}
			}
		}
	}
	oneofs := make([]string, 0, len(movedToNew))
	for o := range movedToNew {
		oneofs = append(oneofs, o)
	}
	sort.Strings(oneofs)
	for _, o := range oneofs {
		if names := movedToNew[o]; len(names) > 1 {
			out = append(out, incompat{kind: "MULTIPLE_FIELDS_MOVED_TO_ONEOF", path: "#/" + om.FullName + "/" + o,
				desc: fmt.Sprintf("Fields %v of %s moved into the new oneof %s in the %s schema", names, om.FullName, o, ul),
				info: om.FullName + "." + o})
		}
	}
	return out
}

// protoKind classifies a field type: scalar, map, message, enum, or named (a
// type name that did not resolve, e.g. from an import without a reference).
func protoKind(f *protoschema.Field) string {
	switch {
	case f.IsMap():
		return "map"
	case f.Kind.Scalar():
		return "scalar"
	case f.Kind == protoschema.MessageK || f.Kind == protoschema.Group:
		return "message"
	case f.Kind == protoschema.EnumK:
		return "enum"
	}
	return "named"
}

// sameKind compares kinds; an unresolved name may be either a message or an
// enum (the serialized form says which, the text form does not).
func sameKind(a, b string) bool {
	if a == b {
		return true
	}
	named := func(k string) bool { return k == "message" || k == "enum" }
	return a == "named" && named(b) || b == "named" && named(a)
}

func protoTypeName(f *protoschema.Field) string { return strings.TrimPrefix(f.TypeName, ".") }

func mapPart(f *protoschema.Field) string {
	if f == nil {
		return ""
	}
	if f.Kind.Scalar() {
		return f.Kind.String()
	}
	return protoTypeName(f)
}
