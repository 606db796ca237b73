package registry

import (
	"fmt"
	"sort"
)

// protoScalars maps each scalar type to its wire-compatible group: values of
// types in one group decode as each other (possibly truncated, as the
// protobuf language guide describes).
var protoScalars = map[string]string{
	"int32": "varint", "int64": "varint", "uint32": "varint", "uint64": "varint", "bool": "varint",
	"sint32": "zigzag", "sint64": "zigzag",
	"fixed32": "fixed32", "sfixed32": "fixed32",
	"fixed64": "fixed64", "sfixed64": "fixed64",
	"float": "float", "double": "double",
	"string": "bytes", "bytes": "bytes",
}

// protoDiff reports the changes from orig to upd that Confluent's Protobuf
// checker treats as incompatible (the subset documented in doc.go). ol and ul
// name the two schemas in messages.
func protoDiff(orig, upd *protoFile, ol, ul string) []incompat {
	var out []incompat
	add := func(kind, path, format string, args ...any) {
		out = append(out, incompat{kind: kind, path: path, desc: fmt.Sprintf(format, args...), info: path})
	}
	if orig.pkg != upd.pkg {
		add("PACKAGE_CHANGED", "#/package", "The package changed from %q in the %s schema to %q in the %s schema", orig.pkg, ol, upd.pkg, ul)
	}
	var walk func(om, um []*protoMessage)
	walk = func(om, um []*protoMessage) {
		pos := map[string]int{}
		for i, m := range um {
			pos[m.name] = i
		}
		for i, m := range om {
			j, ok := pos[m.name]
			if !ok {
				add("MESSAGE_REMOVED", "#/"+m.full, "The message %s of the %s schema is missing in the %s schema", m.full, ol, ul)
				continue
			}
			if i != j {
				// Records name their message by index; a moved message
				// makes old indexes point elsewhere.
				add("MESSAGE_MOVED", "#/"+m.full, "The message %s moved from index %d in the %s schema to %d in the %s schema", m.full, i, ol, j, ul)
			}
			u := um[j]
			out = append(out, protoFields(orig, upd, m, u, ol, ul)...)
			walk(m.messages, u.messages)
		}
	}
	walk(orig.messages, upd.messages)
	return out
}

func protoFields(of, uf *protoFile, om, um *protoMessage, ol, ul string) []incompat {
	var out []incompat
	add := func(kind string, f *protoField, format string, args ...any) {
		path := fmt.Sprintf("#/%s/%d", om.full, f.number)
		out = append(out, incompat{kind: kind, path: path,
			desc: fmt.Sprintf("Field %s.%s (number %d): ", om.full, f.name, f.number) + fmt.Sprintf(format, args...),
			info: om.full + "." + f.name})
	}
	byNum := func(m *protoMessage) map[int]*protoField {
		out := map[int]*protoField{}
		for _, f := range m.fields {
			out[f.number] = f
		}
		return out
	}
	ofs, ufs := byNum(om), byNum(um)
	oldOneofs := map[string]bool{}
	for _, o := range om.oneofs {
		oldOneofs[o] = true
	}
	movedToNew := map[string][]string{}

	nums := make([]int, 0, len(ofs)+len(ufs))
	for n := range ofs {
		nums = append(nums, n)
	}
	for n := range ufs {
		if _, ok := ofs[n]; !ok {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	for _, n := range nums {
		o, u := ofs[n], ufs[n]
		switch {
		case u == nil:
			if o.label == "required" {
				add("REQUIRED_FIELD_REMOVED", o, "required in the %s schema and removed in the %s schema", ol, ul)
			}
		case o == nil:
			if u.label == "required" {
				add("REQUIRED_FIELD_ADDED", u, "added as required in the %s schema", ul)
			}
		default:
			ok, uk := protoKind(of, o), protoKind(uf, u)
			switch {
			case (o.label == "repeated") != (u.label == "repeated") || ok != uk:
				add("FIELD_KIND_CHANGED", u, "%s %s in the %s schema, %s %s in the %s schema", o.label, o.typ, ol, u.label, u.typ, ul)
			case ok == "scalar" && protoScalars[o.typ] != protoScalars[u.typ]:
				add("FIELD_SCALAR_KIND_CHANGED", u, "type %s in the %s schema, %s in the %s schema", o.typ, ol, u.typ, ul)
			case (ok == "message" || ok == "enum" || ok == "named") && of.resolve(o.scope, o.typ) != uf.resolve(u.scope, u.typ):
				add("FIELD_NAMED_TYPE_CHANGED", u, "type %s in the %s schema, %s in the %s schema",
					of.resolve(o.scope, o.typ), ol, uf.resolve(u.scope, u.typ), ul)
			case ok == "map" && (protoMapPart(of, o, 0) != protoMapPart(uf, u, 0) || protoMapPart(of, o, 1) != protoMapPart(uf, u, 1)):
				add("FIELD_KIND_CHANGED", u, "%s in the %s schema, %s in the %s schema", o.typ, ol, u.typ, ul)
			}
			if o.label != "required" && u.label == "required" {
				add("REQUIRED_FIELD_ADDED", u, "made required in the %s schema", ul)
			} else if o.label == "required" && u.label != "required" {
				add("REQUIRED_FIELD_REMOVED", u, "no longer required in the %s schema", ul)
			}
			if o.oneof == "" && u.oneof != "" {
				if oldOneofs[u.oneof] {
					add("FIELD_MOVED_TO_EXISTING_ONEOF", u, "moved into the existing oneof %s in the %s schema", u.oneof, ul)
				} else {
					movedToNew[u.oneof] = append(movedToNew[u.oneof], u.name)
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
			out = append(out, incompat{kind: "MULTIPLE_FIELDS_MOVED_TO_ONEOF", path: "#/" + om.full + "/" + o,
				desc: fmt.Sprintf("Fields %v of %s moved into the new oneof %s in the %s schema", names, om.full, o, ul),
				info: om.full + "." + o})
		}
	}
	return out
}

// protoKind classifies a field type: scalar, map, message, enum, or named (a
// type this file does not declare, e.g. imported).
func protoKind(f *protoFile, fd *protoField) string {
	if fd.isMap {
		return "map"
	}
	if _, ok := protoScalars[fd.typ]; ok {
		return "scalar"
	}
	full := f.resolve(fd.scope, fd.typ)
	if _, ok := f.byName[full]; ok {
		return "message"
	}
	if f.enumSet[full] {
		return "enum"
	}
	return "named"
}

func protoMapPart(f *protoFile, fd *protoField, i int) string {
	t := fd.mapKV[i]
	if _, ok := protoScalars[t]; ok {
		return t
	}
	return f.resolve(fd.scope, t)
}
