package protoschema

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Descriptor encodes the file as a serialized FileDescriptorProto, as protoc
// would for the same .proto text (for a linked file): map entry types with
// map_entry set, synthetic oneofs for proto3 optional fields, derived
// json_names, fully qualified type names. Type names that did not resolve
// are written as they are, without a type, for the reader's descriptor pool
// to resolve. Custom options the text names but no descriptor defines are
// left out; Confluent's meta options are kept (extension 1088). A file
// without a name is called name.
func (f *File) Descriptor(name string) []byte {
	var b []byte
	if f.Name != "" {
		name = f.Name
	}
	b = appendStringField(b, 1, name)
	if f.Package != "" {
		b = appendStringField(b, 2, f.Package)
	}
	for _, imp := range f.Imports {
		b = appendStringField(b, 3, imp.Path)
	}
	for _, m := range f.Messages {
		b = appendBytesField(b, 4, encodeMessage(f, m))
	}
	for _, e := range f.Enums {
		b = appendBytesField(b, 5, encodeEnum(e))
	}
	for _, s := range f.Services {
		b = appendBytesField(b, 6, encodeService(s))
	}
	for _, x := range f.Extensions {
		b = appendBytesField(b, 7, encodeField(f, x))
	}
	if len(f.Options) > 0 {
		b = appendBytesField(b, 8, encodeOptions(nil, f.Options, fileOptions))
	}
	for i, imp := range f.Imports {
		if imp.Public {
			b = appendVarintField(b, 10, uint64(i))
		}
	}
	for i, imp := range f.Imports {
		if imp.Weak {
			b = appendVarintField(b, 11, uint64(i))
		}
	}
	switch f.Syntax {
	case "proto3":
		b = appendStringField(b, 12, "proto3")
	case "editions":
		b = appendStringField(b, 12, "editions")
		b = appendVarintField(b, 14, editionNumbers[f.Edition])
	}
	return b
}

// DescriptorBase64 is Descriptor in standard base64, as the registry's
// ?format=serialized returns it.
func (f *File) DescriptorBase64(name string) string {
	return base64.StdEncoding.EncodeToString(f.Descriptor(name))
}

func encodeMessage(f *File, m *Message) []byte {
	var b []byte
	b = appendStringField(b, 1, m.Name)
	for _, fd := range m.Fields {
		b = appendBytesField(b, 2, encodeField(f, fd))
	}
	for _, sub := range m.Messages {
		b = appendBytesField(b, 3, encodeMessage(f, sub))
	}
	for _, e := range m.Enums {
		b = appendBytesField(b, 4, encodeEnum(e))
	}
	for _, r := range m.ExtensionRanges {
		b = appendBytesField(b, 5, encodeRange(r, 1))
	}
	for _, x := range m.Extensions {
		b = appendBytesField(b, 6, encodeField(f, x))
	}
	if len(m.Options) > 0 {
		b = appendBytesField(b, 7, encodeOptions(nil, m.Options, messageOptions))
	}
	for _, o := range m.Oneofs {
		var ob []byte
		ob = appendStringField(ob, 1, o.Name)
		if len(o.Options) > 0 {
			ob = appendBytesField(ob, 2, encodeOptions(nil, o.Options, oneofOptions))
		}
		b = appendBytesField(b, 8, ob)
	}
	for _, r := range m.ReservedRanges {
		b = appendBytesField(b, 9, encodeRange(r, 1))
	}
	for _, n := range m.ReservedNames {
		b = appendStringField(b, 10, n)
	}
	return b
}

// encodeRange writes a range whose end is exclusive when add is 1 (message
// ranges) or inclusive when 0 (enum ranges).
func encodeRange(r Range, add int64) []byte {
	var b []byte
	b = appendVarintField(b, 1, uint64(int64(r.Start)))
	return appendVarintField(b, 2, uint64(int64(r.End)+add))
}

func encodeField(f *File, fd *Field) []byte {
	var b []byte
	b = appendStringField(b, 1, fd.Name)
	if fd.Extendee != "" {
		ext := fd.Extendee
		if !strings.HasPrefix(ext, ".") {
			ext = "." + ext
		}
		b = appendStringField(b, 2, ext)
	}
	b = appendVarintField(b, 3, uint64(fd.Number))
	b = appendVarintField(b, 4, uint64(fd.Label))
	if fd.Kind != Named {
		b = appendVarintField(b, 5, uint64(fd.Kind))
	}
	if !fd.Kind.Scalar() {
		b = appendStringField(b, 6, fd.TypeName)
	}
	if fd.HasDefault {
		d := fd.Default
		if fd.Kind == Bytes {
			d = cEscape(d)
		}
		b = appendStringField(b, 7, d)
	}
	if len(fd.Options) > 0 {
		b = appendBytesField(b, 8, encodeOptions(nil, fd.Options, fieldOptions))
	}
	if fd.Oneof >= 0 {
		b = appendVarintField(b, 9, uint64(fd.Oneof))
	}
	if fd.Extendee == "" {
		jn := fd.JSONName
		if jn == "" {
			jn = JSONName(fd.Name)
		}
		b = appendStringField(b, 10, jn)
	}
	if fd.Proto3Optional {
		b = appendVarintField(b, 17, 1)
	}
	return b
}

func encodeEnum(e *Enum) []byte {
	var b []byte
	b = appendStringField(b, 1, e.Name)
	for _, v := range e.Values {
		var vb []byte
		vb = appendStringField(vb, 1, v.Name)
		vb = appendVarintField(vb, 2, uint64(int64(v.Number)))
		if len(v.Options) > 0 {
			vb = appendBytesField(vb, 3, encodeOptions(nil, v.Options, enumValueOptions))
		}
		b = appendBytesField(b, 2, vb)
	}
	if len(e.Options) > 0 {
		b = appendBytesField(b, 3, encodeOptions(nil, e.Options, enumOptions))
	}
	for _, r := range e.ReservedRanges {
		b = appendBytesField(b, 4, encodeRange(r, 0))
	}
	for _, n := range e.ReservedNames {
		b = appendStringField(b, 5, n)
	}
	return b
}

func encodeService(s *Service) []byte {
	var b []byte
	b = appendStringField(b, 1, s.Name)
	for _, m := range s.Methods {
		var mb []byte
		mb = appendStringField(mb, 1, m.Name)
		mb = appendStringField(mb, 2, dotted(m.Input))
		mb = appendStringField(mb, 3, dotted(m.Output))
		if len(m.Options) > 0 {
			mb = appendBytesField(mb, 4, encodeOptions(nil, m.Options, methodOptions))
		}
		if m.ClientStreaming {
			mb = appendVarintField(mb, 5, 1)
		}
		if m.ServerStreaming {
			mb = appendVarintField(mb, 6, 1)
		}
		b = appendBytesField(b, 2, mb)
	}
	if len(s.Options) > 0 {
		b = appendBytesField(b, 3, encodeOptions(nil, s.Options, serviceOptions))
	}
	return b
}

func dotted(name string) string {
	if strings.HasPrefix(name, ".") {
		return name
	}
	return "." + name
}

// cEscape escapes bytes as descriptor.proto's default_value does for bytes
// fields.
func cEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '"':
			b.WriteString(`\"`)
		case c == '\'':
			b.WriteString(`\'`)
		case c == '\\':
			b.WriteString(`\\`)
		case c < 0x20 || c >= 0x7f:
			b.WriteString(`\` + strconv.FormatInt(int64(c)+01000, 8)[1:])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
