package protoschema

import "strings"

// File is one .proto file, whichever form it came in (text or serialized
// FileDescriptorProto). Declarations keep their declaration order, which is
// what Confluent's message indexes count.
type File struct {
	// Name is the file's path as imports name it ("acme/money.proto"): the
	// descriptor's name field, or the name given to Parse.
	Name string
	// Syntax is "proto2", "proto3" or "editions".
	Syntax string
	// Edition is the edition of an editions file, as in "2023"; "" otherwise.
	Edition  string
	Package  string
	Imports  []Import
	Options  []Option
	Messages []*Message // top-level messages
	Enums    []*Enum    // top-level enums
	Services []*Service
	// Extensions are the fields of top-level extend blocks.
	Extensions []*Field
	// Tags are (confluent.file_meta).tags.
	Tags []string

	// byName indexes the file's messages and enums by full name (set by
	// index, used by resolution).
	byName map[string]any
}

// Import is one import statement.
type Import struct {
	Path         string
	Public, Weak bool
}

// Message is a message type. Map fields have a nested entry message (MapEntry
// set) at the position protoc puts it: where the map field is declared among
// the nested messages. Groups (proto2) have theirs too.
type Message struct {
	Name     string
	FullName string // without a leading dot: "acme.Payment.Card"
	Fields   []*Field
	Messages []*Message
	Enums    []*Enum
	Oneofs   []*Oneof
	// Extensions are the fields of extend blocks nested in the message.
	Extensions      []*Field
	ReservedRanges  []Range
	ReservedNames   []string
	ExtensionRanges []Range
	Options         []Option
	// MapEntry marks the synthesized entry type of a map field.
	MapEntry bool
	// Tags are (confluent.message_meta).tags.
	Tags []string
	// Parent is the enclosing message, nil at top level; File the file.
	Parent *Message
	File   *File
}

// Range is a range of field numbers, End included.
type Range struct{ Start, End int32 }

// Oneof is a oneof declaration. Synthetic oneofs are the ones protoc makes
// for proto3 optional fields; they hold exactly that one field.
type Oneof struct {
	Name      string
	Options   []Option
	Synthetic bool
}

// Label is a field's cardinality.
type Label uint8

// Labels, numbered as in FieldDescriptorProto.
const (
	Optional Label = 1 // singular: proto3 implicit presence, proto2 optional, oneof members
	Required Label = 2
	Repeated Label = 3
)

// Kind is a field's type: one of the scalar types, or Message, Group or Enum
// (named types, TypeName says which). The values are FieldDescriptorProto's.
type Kind uint8

// Kinds, numbered as in FieldDescriptorProto.Type.
const (
	Double   Kind = 1
	Float    Kind = 2
	Int64    Kind = 3
	Uint64   Kind = 4
	Int32    Kind = 5
	Fixed64  Kind = 6
	Fixed32  Kind = 7
	Bool     Kind = 8
	String   Kind = 9
	Group    Kind = 10
	MessageK Kind = 11
	Bytes    Kind = 12
	Uint32   Kind = 13
	EnumK    Kind = 14
	Sfixed32 Kind = 15
	Sfixed64 Kind = 16
	Sint32   Kind = 17
	Sint64   Kind = 18
	// Named is a type name the text form gives without saying whether it is
	// a message or an enum; resolution makes it MessageK or EnumK, and it
	// stays Named when the name cannot be resolved.
	Named Kind = 0
)

var scalarNames = map[string]Kind{
	"double": Double, "float": Float, "int64": Int64, "uint64": Uint64, "int32": Int32,
	"fixed64": Fixed64, "fixed32": Fixed32, "bool": Bool, "string": String, "bytes": Bytes,
	"uint32": Uint32, "sfixed32": Sfixed32, "sfixed64": Sfixed64, "sint32": Sint32, "sint64": Sint64,
}

// ScalarKind returns the kind of a scalar type name ("int32"), or false.
func ScalarKind(name string) (Kind, bool) {
	k, ok := scalarNames[name]
	return k, ok
}

// String returns the type's name in .proto syntax: "int32", "message",
// "enum", "group", or "named" for an unresolved name.
func (k Kind) String() string {
	for n, s := range scalarNames {
		if s == k {
			return n
		}
	}
	switch k {
	case MessageK:
		return "message"
	case EnumK:
		return "enum"
	case Group:
		return "group"
	}
	return "named"
}

// Scalar reports whether k is a scalar type (not a message, group or enum).
func (k Kind) Scalar() bool {
	return k >= Double && k <= Sint64 && k != Group && k != MessageK && k != EnumK
}

// WireType is the wire type values of kind k are encoded with outside packed
// repeated fields: 0 varint, 1 fixed 64-bit, 2 length-delimited, 3 start
// group, 5 fixed 32-bit.
func (k Kind) WireType() int {
	switch k {
	case Double, Fixed64, Sfixed64:
		return 1
	case Float, Fixed32, Sfixed32:
		return 5
	case String, Bytes, MessageK:
		return 2
	case Group:
		return 3
	}
	return 0
}

// Packable reports whether repeated fields of kind k may use the packed
// encoding (scalar numbers, bools and enums).
func (k Kind) Packable() bool {
	return k.Scalar() && k != String && k != Bytes || k == EnumK
}

// Field is a message field or an extension.
type Field struct {
	Name   string
	Number int32
	Label  Label
	Kind   Kind
	// TypeName names the message, group or enum type: as written in the text
	// form, fully qualified with a leading dot in the serialized form. After
	// resolution Message or Enum is set and TypeName is the full name with a
	// leading dot.
	TypeName string
	// Oneof is the index of the field's oneof in its message, -1 for none.
	Oneof int
	// Proto3Optional marks a proto3 "optional" field (explicit presence).
	Proto3Optional bool
	// Default is a proto2 default value as text; HasDefault says it is set.
	Default    string
	HasDefault bool
	// JSONName is an explicit json_name, "" for none.
	JSONName string
	// Options are the field's options other than default and json_name.
	Options []Option
	// Tags are (confluent.field_meta).tags.
	Tags []string
	// Extendee is the extended message of an extension, "" for fields.
	Extendee string

	// Message is the field's message or group type (the entry type for a
	// map), Enum its enum type, once resolved; nil otherwise.
	Message *Message
	Enum    *Enum

	// packed is an explicit packed option; nil when absent.
	packed *bool
	// file is the file the field is declared in, for its syntax.
	file *File
}

// Syntax is the syntax of the file f is declared in: "proto2", "proto3" or
// "editions" ("" before the file is indexed).
func (f *Field) Syntax() string {
	if f.file == nil {
		return ""
	}
	return f.file.Syntax
}

// IsMap reports whether f is a map field: repeated, of a map entry type.
func (f *Field) IsMap() bool {
	return f.Label == Repeated && f.Message != nil && f.Message.MapEntry
}

// MapKey and MapValue are a map field's entry fields (numbers 1 and 2); nil
// for other fields.
func (f *Field) MapKey() *Field   { return f.entryField(1) }
func (f *Field) MapValue() *Field { return f.entryField(2) }

func (f *Field) entryField(n int32) *Field {
	if !f.IsMap() {
		return nil
	}
	for _, g := range f.Message.Fields {
		if g.Number == n {
			return g
		}
	}
	return nil
}

// Packed reports whether a repeated field is written packed by default:
// proto3 and editions pack repeated scalar numbers unless [packed = false]
// (or features.repeated_field_encoding = EXPANDED) says otherwise; proto2
// packs only with [packed = true]. Decoders accept both encodings either way.
func (f *Field) Packed() bool {
	if f.Label != Repeated || !f.Kind.Packable() {
		return false
	}
	if f.packed != nil {
		return *f.packed
	}
	if f.file != nil && f.file.Syntax == "proto2" {
		return false
	}
	for _, o := range f.Options {
		if o.Name == "features" && o.Value.field("repeated_field_encoding") == "EXPANDED" {
			return false
		}
	}
	return true
}

// TypeString is the field's type as .proto text writes it: "int32",
// "map<string, acme.Line>", or the (resolved, dot-less) type name.
func (f *Field) TypeString() string {
	if f.IsMap() {
		k, v := f.MapKey(), f.MapValue()
		if k != nil && v != nil {
			return "map<" + k.TypeString() + ", " + v.TypeString() + ">"
		}
	}
	if f.Kind.Scalar() {
		return f.Kind.String()
	}
	return strings.TrimPrefix(f.TypeName, ".")
}

// Enum is an enum type.
type Enum struct {
	Name           string
	FullName       string
	Values         []EnumValue // declaration order; the first is the default
	Options        []Option
	ReservedRanges []Range
	ReservedNames  []string
	Parent         *Message
	File           *File
}

// EnumValue is one enum constant.
type EnumValue struct {
	Name    string
	Number  int32
	Options []Option
}

// Service is a service declaration; it matters for schema identity only.
type Service struct {
	Name    string
	Methods []Method
	Options []Option
}

// Method is one rpc of a service.
type Method struct {
	Name                             string
	Input, Output                    string
	ClientStreaming, ServerStreaming bool
	Options                          []Option
}

func qualify(scope, name string) string {
	if scope == "" {
		return name
	}
	return scope + "." + name
}

// walkMessages calls fn for every message of the file, nested ones included,
// depth first in declaration order.
func (f *File) walkMessages(fn func(*Message)) {
	var walk func(ms []*Message)
	walk = func(ms []*Message) {
		for _, m := range ms {
			fn(m)
			walk(m.Messages)
		}
	}
	walk(f.Messages)
}

// index fills byName and sets the back pointers of messages, enums and fields.
func (f *File) index() {
	f.byName = map[string]any{}
	for _, e := range f.Enums {
		e.File = f
		f.byName[e.FullName] = e
	}
	for _, x := range f.Extensions {
		x.file = f
	}
	f.walkMessages(func(m *Message) {
		m.File = f
		f.byName[m.FullName] = m
		for _, sub := range m.Messages {
			sub.Parent = m
		}
		for _, e := range m.Enums {
			e.Parent, e.File = m, f
			f.byName[e.FullName] = e
		}
		for _, fd := range m.Fields {
			fd.file = f
		}
		for _, x := range m.Extensions {
			x.file = f
		}
	})
}

// Lookup returns the message or enum of the file with the given full name
// (without a leading dot), or nil.
func (f *File) Lookup(full string) any {
	if f.byName == nil {
		f.index()
	}
	return f.byName[strings.TrimPrefix(full, ".")]
}
