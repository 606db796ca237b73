package protoschema

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// editionNumbers maps editions to descriptor.proto's Edition values.
var editionNumbers = map[string]uint64{"2023": 1000, "2024": 1001}

// Decode reads a serialized FileDescriptorProto with DefaultLimits.
func Decode(b []byte) (*File, error) { return DefaultLimits().Decode(b) }

// Decode reads a serialized google.protobuf.FileDescriptorProto, as
// Confluent's clients register Protobuf schemas (base64-encoded; see
// ParseSchema). Source code info is ignored, and unknown fields are skipped
// as protobuf decoders do. Options become Options, standard ones by name,
// Confluent's meta options by their extension name, others as raw values.
func (l Limits) Decode(b []byte) (*File, error) {
	l = l.withDefaults()
	if len(b) > l.MaxBytes {
		return nil, limitErr("descriptor is %d bytes, more than %d", len(b), l.MaxBytes)
	}
	d := descDecoder{lim: l}
	f, err := d.file(b)
	if err != nil {
		return nil, fmt.Errorf("serialized descriptor: %w", err)
	}
	f.index()
	if err := f.validate(l); err != nil {
		return nil, fmt.Errorf("serialized descriptor: %w", err)
	}
	return f, nil
}

// ParseSchema reads a schema as a registry holds it, with DefaultLimits.
func ParseSchema(name, text string) (*File, error) { return DefaultLimits().ParseSchema(name, text) }

// ParseSchema reads a schema as a Schema Registry carries it: .proto text,
// or a base64-encoded serialized FileDescriptorProto (what Confluent's
// Python client registers). Text made only of base64 characters is taken
// for the latter: .proto text always has a ';' or a brace.
func (l Limits) ParseSchema(name, text string) (*File, error) {
	if IsSerialized(text) {
		l = l.withDefaults()
		if len(text) > l.MaxBytes/3*4+4 {
			return nil, limitErr("schema is %d bytes, more than %d", len(text), l.MaxBytes)
		}
		b, err := decodeBase64(strings.TrimSpace(text))
		if err != nil {
			return nil, fmt.Errorf("schema is neither .proto text nor a base64 descriptor: %w", err)
		}
		f, err := l.Decode(b)
		if err != nil {
			return nil, err
		}
		if f.Name == "" {
			f.Name = name
		}
		return f, nil
	}
	return l.Parse(name, text)
}

// IsSerialized reports whether a schema text is a base64-encoded descriptor
// rather than .proto text: non-empty and only base64 characters.
func IsSerialized(text string) bool {
	s := strings.TrimSpace(text)
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isIdentStart(c) && c != '_' || isDigit(c) || c == '+' || c == '/' || c == '=' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// SerializedBytes returns the descriptor bytes of a schema text in the
// serialized form (IsSerialized), or an error for .proto text and invalid
// base64.
func SerializedBytes(text string) ([]byte, error) {
	if !IsSerialized(text) {
		return nil, errors.New("not a base64 serialized descriptor")
	}
	return decodeBase64(strings.TrimSpace(text))
}

// decodeBase64 accepts standard and URL-safe alphabets, padded or not.
func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("invalid base64")
}

type descDecoder struct {
	lim Limits
}

// each calls fn for every field of the message in b.
func each(b []byte, depth int, fn func(r *reader, num int32, wt int) (bool, error)) error {
	r := reader{b: b}
	for !r.done() {
		num, wt, err := r.tag()
		if err != nil {
			return err
		}
		handled, err := fn(&r, num, wt)
		if err != nil {
			return fmt.Errorf("field %d: %w", num, err)
		}
		if !handled {
			if _, err := r.skip(num, wt, depth); err != nil {
				return err
			}
		}
	}
	return nil
}

func wantWire(wt, want int) error {
	if wt != want {
		return fmt.Errorf("wire type %d, want %d", wt, want)
	}
	return nil
}

func (d *descDecoder) str(r *reader, wt int) (string, error) {
	if err := wantWire(wt, 2); err != nil {
		return "", err
	}
	b, err := r.bytes()
	if err != nil {
		return "", err
	}
	if len(b) > d.lim.MaxNameLen && len(b) > 4096 {
		return "", limitErr("a string of %d bytes", len(b))
	}
	return string(b), nil
}

func (d *descDecoder) name(r *reader, wt int) (string, error) {
	s, err := d.str(r, wt)
	if err == nil && len(s) > d.lim.MaxNameLen {
		return "", limitErr("a name is longer than %d bytes", d.lim.MaxNameLen)
	}
	return s, err
}

func (d *descDecoder) uint(r *reader, wt int) (uint64, error) {
	if err := wantWire(wt, 0); err != nil {
		return 0, err
	}
	return r.varint()
}

func (d *descDecoder) sub(r *reader, wt int) ([]byte, error) {
	if err := wantWire(wt, 2); err != nil {
		return nil, err
	}
	return r.bytes()
}

func (d *descDecoder) options(r *reader, wt int, m *optMsg) ([]Option, error) {
	b, err := d.sub(r, wt)
	if err != nil {
		return nil, err
	}
	return decodeOptions(b, m, d.lim.MaxDepth)
}

// ints reads a repeated int32 field, packed or not.
func (d *descDecoder) ints(r *reader, wt int, out *[]int32) error {
	if wt == 2 {
		b, err := r.bytes()
		if err != nil {
			return err
		}
		pr := reader{b: b}
		for !pr.done() {
			v, err := pr.varint()
			if err != nil {
				return err
			}
			*out = append(*out, int32(v))
		}
		return nil
	}
	v, err := d.uint(r, wt)
	*out = append(*out, int32(v))
	return err
}

func (d *descDecoder) file(b []byte) (*File, error) {
	f := &File{Syntax: "proto2"}
	var public, weak []int32
	var syntax string
	var edition uint64
	var messages, enums [][]byte
	err := each(b, d.lim.MaxDepth, func(r *reader, num int32, wt int) (bool, error) {
		var err error
		switch num {
		case 1:
			f.Name, err = d.str(r, wt)
		case 2:
			f.Package, err = d.name(r, wt)
		case 3:
			var s string
			s, err = d.str(r, wt)
			f.Imports = append(f.Imports, Import{Path: s})
		case 10:
			err = d.ints(r, wt, &public)
		case 11:
			err = d.ints(r, wt, &weak)
		case 4:
			var raw []byte
			raw, err = d.sub(r, wt)
			messages = append(messages, raw)
		case 5:
			var raw []byte
			raw, err = d.sub(r, wt)
			enums = append(enums, raw)
		case 6:
			var s *Service
			s, err = d.service(r, wt)
			if s != nil {
				f.Services = append(f.Services, s)
			}
		case 7:
			var x *Field
			x, err = d.field(r, wt)
			if x != nil {
				f.Extensions = append(f.Extensions, x)
			}
		case 8:
			f.Options, err = d.options(r, wt, fileOptions)
		case 12:
			syntax, err = d.str(r, wt)
		case 14:
			edition, err = d.uint(r, wt)
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	for _, list := range [][]int32{public, weak} {
		for _, i := range list {
			if i < 0 || int(i) >= len(f.Imports) {
				return nil, fmt.Errorf("dependency index %d out of range", i)
			}
		}
	}
	for _, i := range public {
		f.Imports[i].Public = true
	}
	for _, i := range weak {
		f.Imports[i].Weak = true
	}
	switch syntax {
	case "", "proto2":
		f.Syntax = "proto2"
	case "proto3":
		f.Syntax = "proto3"
	case "editions":
		f.Syntax = "editions"
		for name, n := range editionNumbers {
			if n == edition {
				f.Edition = name
			}
		}
		if f.Edition == "" {
			return nil, fmt.Errorf("unknown edition %d", edition)
		}
	default:
		return nil, fmt.Errorf("unknown syntax %q", syntax)
	}
	if len(f.Package) > d.lim.MaxNameLen {
		return nil, limitErr("package name longer than %d bytes", d.lim.MaxNameLen)
	}
	// Declarations are read once the package is known, whatever the order
	// of the descriptor's fields.
	for _, raw := range messages {
		m, err := d.messageBytes(raw, f.Package, 1)
		if err != nil {
			return nil, err
		}
		f.Messages = append(f.Messages, m)
	}
	for _, raw := range enums {
		e, err := d.enumBytes(raw, f.Package)
		if err != nil {
			return nil, err
		}
		f.Enums = append(f.Enums, e)
	}
	f.Tags = metaTags(f.Options, "(confluent.file_meta)")
	return f, nil
}

func (d *descDecoder) messageBytes(b []byte, scope string, depth int) (*Message, error) {
	if depth > d.lim.MaxDepth {
		return nil, limitErr("messages nested deeper than %d levels", d.lim.MaxDepth)
	}
	m := &Message{}
	var fields, exts [][]byte
	var nested [][]byte
	var enums [][]byte
	err := each(b, d.lim.MaxDepth, func(r *reader, num int32, wt int) (bool, error) {
		var err error
		switch num {
		case 1:
			m.Name, err = d.name(r, wt)
		case 2, 6, 3, 4:
			var raw []byte
			raw, err = d.sub(r, wt)
			switch num {
			case 2:
				fields = append(fields, raw)
			case 6:
				exts = append(exts, raw)
			case 3:
				nested = append(nested, raw)
			case 4:
				enums = append(enums, raw)
			}
		case 5, 9:
			var rg Range
			rg, err = d.rng(r, wt)
			if num == 5 {
				rg.End-- // ExtensionRange's end is exclusive
				m.ExtensionRanges = append(m.ExtensionRanges, rg)
			} else {
				rg.End--
				m.ReservedRanges = append(m.ReservedRanges, rg)
			}
		case 7:
			m.Options, err = d.options(r, wt, messageOptions)
		case 8:
			var sb []byte
			sb, err = d.sub(r, wt)
			if err == nil {
				o := &Oneof{}
				err = each(sb, d.lim.MaxDepth, func(r *reader, num int32, wt int) (bool, error) {
					var err error
					switch num {
					case 1:
						o.Name, err = d.name(r, wt)
					case 2:
						o.Options, err = d.options(r, wt, oneofOptions)
					default:
						return false, nil
					}
					return true, err
				})
				m.Oneofs = append(m.Oneofs, o)
			}
		case 10:
			var s string
			s, err = d.name(r, wt)
			m.ReservedNames = append(m.ReservedNames, s)
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	m.FullName = qualify(scope, m.Name)
	if len(m.FullName) > d.lim.MaxNameLen {
		return nil, limitErr("the full name of message %s is longer than %d bytes", m.Name, d.lim.MaxNameLen)
	}
	for _, raw := range fields {
		fd, err := d.fieldBody(raw)
		if err != nil {
			return nil, fmt.Errorf("message %s: %w", m.FullName, err)
		}
		m.Fields = append(m.Fields, fd)
	}
	for _, raw := range exts {
		x, err := d.fieldBody(raw)
		if err != nil {
			return nil, fmt.Errorf("message %s: %w", m.FullName, err)
		}
		m.Extensions = append(m.Extensions, x)
	}
	for _, raw := range nested {
		sm, err := d.messageBytes(raw, m.FullName, depth+1)
		if err != nil {
			return nil, err
		}
		m.Messages = append(m.Messages, sm)
	}
	for _, raw := range enums {
		e, err := d.enumBytes(raw, m.FullName)
		if err != nil {
			return nil, err
		}
		m.Enums = append(m.Enums, e)
	}
	for _, o := range m.Options {
		if o.Name == "map_entry" && o.Value.Text == "true" {
			m.MapEntry = true
		}
	}
	for _, fd := range m.Fields {
		if fd.Proto3Optional && fd.Oneof >= 0 && fd.Oneof < len(m.Oneofs) {
			m.Oneofs[fd.Oneof].Synthetic = true
		}
	}
	m.Tags = metaTags(m.Options, "(confluent.message_meta)")
	return m, nil
}

func (d *descDecoder) rng(r *reader, wt int) (Range, error) {
	b, err := d.sub(r, wt)
	if err != nil {
		return Range{}, err
	}
	var rg Range
	err = each(b, d.lim.MaxDepth, func(r *reader, num int32, wt int) (bool, error) {
		switch num {
		case 1, 2:
			v, err := d.uint(r, wt)
			if num == 1 {
				rg.Start = int32(v)
			} else {
				rg.End = int32(v)
			}
			return true, err
		}
		return false, nil
	})
	return rg, err
}

func (d *descDecoder) field(r *reader, wt int) (*Field, error) {
	b, err := d.sub(r, wt)
	if err != nil {
		return nil, err
	}
	return d.fieldBody(b)
}

func (d *descDecoder) fieldBody(b []byte) (*Field, error) {
	fd := &Field{Oneof: -1, Label: Optional}
	err := each(b, d.lim.MaxDepth, func(r *reader, num int32, wt int) (bool, error) {
		var err error
		var v uint64
		switch num {
		case 1:
			fd.Name, err = d.name(r, wt)
		case 2:
			fd.Extendee, err = d.name(r, wt)
		case 3:
			v, err = d.uint(r, wt)
			fd.Number = int32(v)
			if v > maxFieldNumber {
				fd.Number = -1
			}
		case 4:
			v, err = d.uint(r, wt)
			fd.Label = Label(min(v, 255))
		case 5:
			v, err = d.uint(r, wt)
			fd.Kind = Kind(min(v, 255))
			if v == 0 {
				fd.Kind = 255
			}
		case 6:
			fd.TypeName, err = d.name(r, wt)
		case 7:
			fd.Default, err = d.str(r, wt)
			fd.HasDefault = true
		case 8:
			fd.Options, err = d.options(r, wt, fieldOptions)
		case 9:
			v, err = d.uint(r, wt)
			fd.Oneof = int(min(v, 1<<20))
		case 10:
			fd.JSONName, err = d.str(r, wt)
		case 17:
			v, err = d.uint(r, wt)
			fd.Proto3Optional = v != 0
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	if fd.TypeName != "" && fd.Kind == 255 {
		fd.Kind = Named // type_name without type: resolution decides
	}
	if fd.Extendee != "" {
		// An extension has no JSON name of its own (JSON writes it as
		// "[full.name]"; protoc refuses json_name on one), and Descriptor
		// writes none: one read from a descriptor did not survive a round
		// trip (found by FuzzDecode).
		fd.JSONName = ""
	}
	fd.Tags = metaTags(fd.Options, "(confluent.field_meta)")
	for _, o := range fd.Options {
		if o.Name == "packed" {
			p := o.Value.Text == "true"
			fd.packed = &p
		}
	}
	if fd.HasDefault && fd.Kind == Bytes {
		// descriptor.proto C-escapes bytes defaults; the model keeps bytes.
		s, err := unquote(`"` + fd.Default + `"`)
		if err != nil {
			return nil, fmt.Errorf("field %s: default: %w", fd.Name, err)
		}
		fd.Default = s
	}
	if fd.HasDefault && (fd.Kind != String && fd.Kind != Bytes && fd.Kind != EnumK && fd.Kind != Named && fd.Kind != Bool) {
		if s, err := normNumber(strings.TrimPrefix(fd.Default, "-"), strings.HasPrefix(fd.Default, "-")); err == nil {
			fd.Default = s
		}
	}
	return fd, nil
}

func (d *descDecoder) enumBytes(b []byte, scope string) (*Enum, error) {
	e := &Enum{}
	err := each(b, d.lim.MaxDepth, func(r *reader, num int32, wt int) (bool, error) {
		var err error
		switch num {
		case 1:
			e.Name, err = d.name(r, wt)
		case 2:
			var vb []byte
			vb, err = d.sub(r, wt)
			if err == nil {
				var v EnumValue
				err = each(vb, d.lim.MaxDepth, func(r *reader, num int32, wt int) (bool, error) {
					var err error
					switch num {
					case 1:
						v.Name, err = d.name(r, wt)
					case 2:
						var n uint64
						n, err = d.uint(r, wt)
						v.Number = int32(n)
					case 3:
						v.Options, err = d.options(r, wt, enumValueOptions)
					default:
						return false, nil
					}
					return true, err
				})
				e.Values = append(e.Values, v)
			}
		case 3:
			e.Options, err = d.options(r, wt, enumOptions)
		case 4:
			var rg Range
			rg, err = d.rng(r, wt) // EnumReservedRange's end is inclusive
			e.ReservedRanges = append(e.ReservedRanges, rg)
		case 5:
			var s string
			s, err = d.name(r, wt)
			e.ReservedNames = append(e.ReservedNames, s)
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	e.FullName = qualify(scope, e.Name)
	if len(e.FullName) > d.lim.MaxNameLen {
		return nil, limitErr("the full name of enum %s is longer than %d bytes", e.Name, d.lim.MaxNameLen)
	}
	return e, nil
}

func (d *descDecoder) service(r *reader, wt int) (*Service, error) {
	b, err := d.sub(r, wt)
	if err != nil {
		return nil, err
	}
	s := &Service{}
	err = each(b, d.lim.MaxDepth, func(r *reader, num int32, wt int) (bool, error) {
		var err error
		switch num {
		case 1:
			s.Name, err = d.name(r, wt)
		case 2:
			var mb []byte
			mb, err = d.sub(r, wt)
			if err == nil {
				var m Method
				err = each(mb, d.lim.MaxDepth, func(r *reader, num int32, wt int) (bool, error) {
					var err error
					var v uint64
					switch num {
					case 1:
						m.Name, err = d.name(r, wt)
					case 2:
						m.Input, err = d.name(r, wt)
					case 3:
						m.Output, err = d.name(r, wt)
					case 4:
						m.Options, err = d.options(r, wt, methodOptions)
					case 5:
						v, err = d.uint(r, wt)
						m.ClientStreaming = v != 0
					case 6:
						v, err = d.uint(r, wt)
						m.ServerStreaming = v != 0
					default:
						return false, nil
					}
					return true, err
				})
				s.Methods = append(s.Methods, m)
			}
		case 3:
			s.Options, err = d.options(r, wt, serviceOptions)
		default:
			return false, nil
		}
		return true, err
	})
	return s, err
}
