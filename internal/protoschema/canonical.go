package protoschema

import (
	"slices"
	"strconv"
	"strings"
)

// Canonical renders the file in a normal form that decides "same schema":
// the text and serialized forms of one file render alike, and so do
// spellings that differ only in layout, comments, declaration grouping
// (fields, nested types and enums in any interleaving), option syntax
// ((a).b = 1 or (a) = {b: 1}), list shorthands, number spelling, the
// json_name protoc derives, and protoc's synthetic declarations (map entry
// types, proto3 optional oneofs). The file's name is left out: the text form
// has none. Type names render fully qualified once linked.
//
// Not normalized: custom options other than Confluent's meta options keep
// their written name in the text form and their extension number in the
// serialized form, so a schema with such options gets a different
// canonical form in each.
func (f *File) Canonical() string {
	var b strings.Builder
	if f.Syntax == "editions" {
		b.WriteString("edition = " + strconv.Quote(f.Edition) + ";\n")
	} else {
		b.WriteString("syntax = " + strconv.Quote(f.Syntax) + ";\n")
	}
	if f.Package != "" {
		b.WriteString("package " + f.Package + ";\n")
	}
	for _, imp := range f.Imports {
		b.WriteString("import ")
		if imp.Public {
			b.WriteString("public ")
		}
		if imp.Weak {
			b.WriteString("weak ")
		}
		b.WriteString(strconv.Quote(imp.Path) + ";\n")
	}
	writeOptionStmts(&b, "", f.Options)
	for _, m := range f.Messages {
		writeMessage(&b, f, m, "")
	}
	for _, e := range f.Enums {
		writeEnum(&b, e, "")
	}
	for _, s := range f.Services {
		b.WriteString("service " + s.Name + " {\n")
		writeOptionStmts(&b, "  ", s.Options)
		for _, m := range s.Methods {
			b.WriteString("  rpc " + m.Name + " (")
			if m.ClientStreaming {
				b.WriteString("stream ")
			}
			b.WriteString(strings.TrimPrefix(m.Input, ".") + ") returns (")
			if m.ServerStreaming {
				b.WriteString("stream ")
			}
			b.WriteString(strings.TrimPrefix(m.Output, ".") + ")")
			if len(m.Options) == 0 {
				b.WriteString(";\n")
				continue
			}
			b.WriteString(" {\n")
			writeOptionStmts(&b, "    ", m.Options)
			b.WriteString("  }\n")
		}
		b.WriteString("}\n")
	}
	for _, x := range f.Extensions {
		b.WriteString("extend " + strings.TrimPrefix(x.Extendee, ".") + " { ")
		writeField(&b, f, nil, x)
		b.WriteString("}\n")
	}
	return b.String()
}

func writeMessage(b *strings.Builder, f *File, m *Message, indent string) {
	if m.MapEntry {
		return // rendered as its map field
	}
	b.WriteString(indent + "message " + m.Name + " {\n")
	in := indent + "  "
	writeOptionStmts(b, in, withoutOption(m.Options, "map_entry"))
	for _, o := range m.Oneofs {
		if o.Synthetic {
			continue
		}
		b.WriteString(in + "oneof " + o.Name + " {")
		if len(o.Options) > 0 {
			b.WriteString("\n")
			writeOptionStmts(b, in+"  ", o.Options)
			b.WriteString(in)
		}
		b.WriteString("}\n")
	}
	for _, fd := range m.Fields {
		b.WriteString(in)
		writeField(b, f, m, fd)
	}
	writeRanges(b, in, "reserved", m.ReservedRanges, m.ReservedNames)
	writeRanges(b, in, "extensions", m.ExtensionRanges, nil)
	for _, sub := range m.Messages {
		writeMessage(b, f, sub, in)
	}
	for _, e := range m.Enums {
		writeEnum(b, e, in)
	}
	for _, x := range m.Extensions {
		b.WriteString(in + "extend " + strings.TrimPrefix(x.Extendee, ".") + " { ")
		writeField(b, f, m, x)
		b.WriteString("}\n")
	}
	b.WriteString(indent + "}\n")
}

// label is the label .proto text writes for a field.
func label(f *File, m *Message, fd *Field) string {
	switch {
	case fd.Label == Repeated && !fd.IsMap():
		return "repeated "
	case fd.Label == Required:
		return "required "
	case fd.Proto3Optional:
		return "optional "
	case f.Syntax == "proto2" && fd.Oneof < 0 && fd.Label == Optional:
		return "optional "
	}
	return ""
}

func writeField(b *strings.Builder, f *File, m *Message, fd *Field) {
	b.WriteString(label(f, m, fd))
	switch {
	case fd.IsMap():
		k, v := fd.MapKey(), fd.MapValue()
		b.WriteString("map<" + fieldType(k) + ", " + fieldType(v) + ">")
	case fd.Kind == Group:
		b.WriteString("group " + strings.TrimPrefix(fd.TypeName, "."))
	default:
		b.WriteString(fieldType(fd))
	}
	b.WriteString(" " + fd.Name + " = " + strconv.Itoa(int(fd.Number)))
	var opts []string
	if fd.Oneof >= 0 && m != nil && fd.Oneof < len(m.Oneofs) && !m.Oneofs[fd.Oneof].Synthetic {
		opts = append(opts, "oneof "+m.Oneofs[fd.Oneof].Name)
	}
	if fd.HasDefault {
		v := fd.Default
		if fd.Kind == String || fd.Kind == Bytes {
			v = strconv.Quote(v)
		}
		opts = append(opts, "default = "+v)
	}
	if fd.JSONName != "" && fd.JSONName != JSONName(fd.Name) {
		opts = append(opts, "json_name = "+strconv.Quote(fd.JSONName))
	}
	for _, o := range sortedOptions(fd.Options) {
		opts = append(opts, o.Name+" = "+renderValue(o.Value))
	}
	if len(opts) > 0 {
		b.WriteString(" [" + strings.Join(opts, ", ") + "]")
	}
	b.WriteString(";\n")
}

func fieldType(fd *Field) string {
	if fd == nil {
		return "?"
	}
	if fd.Kind.Scalar() {
		return fd.Kind.String()
	}
	return strings.TrimPrefix(fd.TypeName, ".")
}

func writeEnum(b *strings.Builder, e *Enum, indent string) {
	b.WriteString(indent + "enum " + e.Name + " {\n")
	in := indent + "  "
	writeOptionStmts(b, in, e.Options)
	for _, v := range e.Values {
		b.WriteString(in + v.Name + " = " + strconv.Itoa(int(v.Number)))
		if len(v.Options) > 0 {
			var opts []string
			for _, o := range sortedOptions(v.Options) {
				opts = append(opts, o.Name+" = "+renderValue(o.Value))
			}
			b.WriteString(" [" + strings.Join(opts, ", ") + "]")
		}
		b.WriteString(";\n")
	}
	writeRanges(b, in, "reserved", e.ReservedRanges, e.ReservedNames)
	b.WriteString(indent + "}\n")
}

func writeRanges(b *strings.Builder, indent, kw string, rs []Range, names []string) {
	var parts []string
	for _, r := range rs {
		if r.Start == r.End {
			parts = append(parts, strconv.Itoa(int(r.Start)))
		} else {
			parts = append(parts, strconv.Itoa(int(r.Start))+" to "+strconv.Itoa(int(r.End)))
		}
	}
	for _, n := range names {
		parts = append(parts, strconv.Quote(n))
	}
	if len(parts) > 0 {
		b.WriteString(indent + kw + " " + strings.Join(parts, ", ") + ";\n")
	}
}

func writeOptionStmts(b *strings.Builder, indent string, opts []Option) {
	for _, o := range sortedOptions(opts) {
		b.WriteString(indent + "option " + o.Name + " = " + renderValue(o.Value) + ";\n")
	}
}

func withoutOption(opts []Option, name string) []Option {
	return slices.DeleteFunc(slices.Clone(opts), func(o Option) bool { return o.Name == name })
}

// sortedOptions orders options by name, keeping the order of repeated ones.
func sortedOptions(opts []Option) []Option {
	out := slices.Clone(opts)
	slices.SortStableFunc(out, func(a, b Option) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func renderValue(v Value) string {
	switch v.Kind {
	case StringValue:
		return strconv.Quote(v.Text)
	case MessageValue:
		var parts []string
		for _, f := range sortedOptions(v.Fields) {
			parts = append(parts, f.Name+": "+renderValue(f.Value))
		}
		return "{" + strings.Join(parts, " ") + "}"
	case RawValue:
		return "raw(" + strconv.Itoa(v.Wire) + "," + strconv.Quote(v.Text) + ")"
	}
	return v.Text
}

// JSONName is the JSON name protoc derives from a field name: underscores
// dropped, the letter after each upper-cased ("card_number" is
// "cardNumber").
func JSONName(name string) string {
	var b strings.Builder
	up := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '_':
			up = true
		case up && c >= 'a' && c <= 'z':
			b.WriteByte(c - 'a' + 'A')
			up = false
		default:
			b.WriteByte(c)
			up = false
		}
	}
	return b.String()
}
