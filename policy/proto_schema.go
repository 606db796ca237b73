package policy

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/tributary-dev/tributary/internal/protoschema"
)

// Protobuf is the schema type of Protobuf records: Schema.Text is .proto
// text or a base64 serialized FileDescriptorProto (Confluent's Python client
// registers that form), Schema.References are the files it imports, each in
// either form, with Schema.ReferenceNames their import paths (without names,
// every reference is visible to every import), and Schema.ProtoIndexes picks
// the record's message. Imports of the well-known files a Schema Registry
// knows (google/protobuf/timestamp.proto, confluent/meta.proto...) need no
// reference.
const Protobuf SchemaType = "PROTOBUF"

// pbType is what masking needs of a Protobuf type beyond the stype: how its
// values are encoded. It is stype.pb, nil for Avro and JSON types.
type pbType struct {
	// kind is a scalar's or an enum's wire kind (protoschema.EnumK for enums).
	kind protoschema.Kind
	// utf8 says a string must be valid UTF-8 (proto3 and editions files).
	utf8 bool
	// A message's fields, parallel to stype.fields, and the field index of
	// each number: dense for small numbers (index+1, 0 for none), sparse
	// above.
	fields []pbField
	dense  []int32
	sparse map[int32]int
	// ext are a message's extension ranges: numbers in them are not
	// declared (extensions are not masked), but an error says why.
	ext []protoschema.Range
	// timestamp marks google.protobuf.Timestamp, which generalize truncates.
	timestamp bool
	// nums are an enum's numbers by symbol index.
	nums []int32
	// key is a map's key kind, entry the full name of its entry type.
	key   protoschema.Kind
	entry string
}

// pbField is a message field's number and encoding.
type pbField struct {
	num      int32
	required bool // proto2 required: drop cannot remove it
	group    bool // a proto2 group: start and end tags, no length
	// What the strict walk of fields no rule touches needs (see
	// protoRun.check): wire is the wire type of one value outside packed
	// runs, packed says a packed run (wire type 2) is legal too, walk is
	// the type to descend into (the message of a message or group field or
	// of its elements, the map type of a map field; nil for scalars and
	// enums), and seg is the field's step in a path ("items[]").
	wire   uint8
	packed bool
	walk   *stype
	seg    string
}

// newPBField describes field fd whose stype is ft.
func newPBField(fd *protoschema.Field, ft *stype) pbField {
	f := pbField{num: fd.Number, required: fd.Label == protoschema.Required, group: fd.Kind == protoschema.Group, seg: fd.Name}
	vt := ft
	switch ft.kind {
	case kMap:
		f.wire, f.walk = 2, ft
		return f
	case kArray:
		vt = ft.elem
		f.seg += "[]"
	}
	f.wire = uint8(wireOf(vt, f.group))
	if vt.kind == kRecord {
		f.walk = vt
	} else {
		f.packed = ft.kind == kArray && packable(vt)
	}
	return f
}

// lookup returns the index of the field with number num, or -1.
func (p *pbType) lookup(num int32) int {
	if int(num) < len(p.dense) {
		return int(p.dense[num]) - 1
	}
	if i, ok := p.sparse[num]; ok {
		return i
	}
	return -1
}

// parseProto reads a Protobuf schema and its references and returns the type
// of the message the schema's message indexes select.
func parseProto(s Schema) (*stype, error) {
	refs := make([]protoschema.Ref, len(s.References))
	for i, text := range s.References {
		refs[i].Text = text
		if i < len(s.ReferenceNames) {
			refs[i].Name = s.ReferenceNames[i]
		}
	}
	f, err := protoschema.Load(s.Name, s.Text, refs)
	if err != nil {
		return nil, fmt.Errorf("protobuf schema: %w", err)
	}
	if len(f.Messages) == 0 {
		return nil, fmt.Errorf("protobuf schema declares no message")
	}
	m, err := f.MessageAt(s.ProtoIndexes)
	if err != nil {
		return nil, fmt.Errorf("protobuf schema: %w", err)
	}
	c := protoConv{msgs: map[*protoschema.Message]*stype{}, enums: map[*protoschema.Enum]*stype{}}
	return c.message(m), nil
}

type protoConv struct {
	msgs  map[*protoschema.Message]*stype
	enums map[*protoschema.Enum]*stype
}

// message converts a message type; recursive types become cyclic graphs, as
// named Avro types do.
func (c *protoConv) message(m *protoschema.Message) *stype {
	if t, ok := c.msgs[m]; ok {
		return t
	}
	t := &stype{kind: kRecord, name: m.FullName, pb: &pbType{timestamp: m.FullName == "google.protobuf.Timestamp", ext: m.ExtensionRanges}}
	c.msgs[m] = t
	maxDense := int32(0)
	for _, fd := range m.Fields {
		if fd.Number < 256 && fd.Number > maxDense {
			maxDense = fd.Number
		}
	}
	t.pb.dense = make([]int32, maxDense+1)
	for i, fd := range m.Fields {
		sf := &sfield{name: fd.Name, t: c.field(fd), required: fd.Label == protoschema.Required}
		// A message's own tags tag each of its fields: a message tagged PII
		// holds personal data in every field.
		sf.tags = slices.Clone(fd.Tags)
		for _, tag := range m.Tags {
			if !slices.Contains(sf.tags, tag) {
				sf.tags = append(sf.tags, tag)
			}
		}
		t.fields = append(t.fields, sf)
		t.pb.fields = append(t.pb.fields, newPBField(fd, sf.t))
		if fd.Number <= maxDense {
			t.pb.dense[fd.Number] = int32(i + 1)
		} else {
			if t.pb.sparse == nil {
				t.pb.sparse = map[int32]int{}
			}
			t.pb.sparse[fd.Number] = i
		}
	}
	return t
}

// field converts a field's type: repeated fields are arrays of their
// element type, map fields maps of their value type.
func (c *protoConv) field(fd *protoschema.Field) *stype {
	if fd.IsMap() {
		return &stype{kind: kMap, elem: c.value(fd.MapValue()), pb: &pbType{key: fd.MapKey().Kind, entry: fd.Message.FullName}}
	}
	if fd.Label == protoschema.Repeated {
		return &stype{kind: kArray, elem: c.value(fd)}
	}
	return c.value(fd)
}

// protoKinds maps scalar kinds to the stype kinds the compiler checks rules
// against; the proto type name becomes the logical type for messages, so
// that a uint32 reads "long (uint32)".
var protoKinds = map[protoschema.Kind]kind{
	protoschema.Double: kDouble, protoschema.Float: kFloat, protoschema.Bool: kBool,
	protoschema.String: kString, protoschema.Bytes: kBytes,
	protoschema.Int32: kInt, protoschema.Sint32: kInt, protoschema.Sfixed32: kInt,
	protoschema.Int64: kLong, protoschema.Sint64: kLong, protoschema.Sfixed64: kLong,
	protoschema.Uint32: kLong, protoschema.Fixed32: kLong, protoschema.Uint64: kLong, protoschema.Fixed64: kLong,
}

// value converts the type of one value of a field (an element, for
// repeated fields).
func (c *protoConv) value(fd *protoschema.Field) *stype {
	switch {
	case fd.Message != nil:
		return c.message(fd.Message)
	case fd.Enum != nil:
		return c.enum(fd.Enum)
	}
	t := &stype{kind: protoKinds[fd.Kind], pb: &pbType{kind: fd.Kind}}
	switch fd.Kind {
	case protoschema.Int32, protoschema.Int64, protoschema.Double, protoschema.Float, protoschema.Bool,
		protoschema.String, protoschema.Bytes:
	default:
		t.logical = fd.Kind.String()
	}
	t.pb.utf8 = fd.Kind == protoschema.String && protoUTF8(fd)
	return t
}

// protoUTF8 reports whether a string field must hold valid UTF-8: proto3
// and editions say so (proto2 does not check).
func protoUTF8(fd *protoschema.Field) bool {
	for _, o := range fd.Options {
		if o.Name == "features" {
			for _, sub := range o.Value.Fields {
				if sub.Name == "utf8_validation" {
					return sub.Value.Text != "NONE"
				}
			}
		}
	}
	return fd.Syntax() != "proto2"
}

func (c *protoConv) enum(e *protoschema.Enum) *stype {
	if t, ok := c.enums[e]; ok {
		return t
	}
	t := &stype{kind: kEnum, name: e.FullName, pb: &pbType{kind: protoschema.EnumK}}
	for _, v := range e.Values {
		t.symbols = append(t.symbols, v.Name)
		t.pb.nums = append(t.pb.nums, v.Number)
	}
	// The default of a Protobuf enum is its first value (proto3 requires it
	// to be 0), which is what redact writes.
	c.enums[e] = t
	return t
}

// protoIndexKey is the cache key of message indexes: [] and [0] are the same
// message.
func protoIndexKey(idx []int) string {
	if len(idx) == 0 {
		return "0"
	}
	b := make([]byte, 0, 2*len(idx))
	for i, x := range idx {
		if i > 0 {
			b = append(b, ' ')
		}
		b = strconv.AppendInt(b, int64(x), 10)
	}
	return string(b)
}
