package protoschema

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Option is one option of a declaration, normalized so that the text and the
// serialized forms of a schema give equal options: sub-field assignments
// ("(confluent.field_meta).tags = "PII"") become message values, list
// shorthands ("tags: ["A", "B"]") repeated fields, and options of one name
// are merged.
type Option struct {
	// Name is a standard option's name ("java_package", "packed",
	// "features") or an extension's full name in parentheses
	// ("(confluent.field_meta)"). An extension the serialized form does not
	// name is "(#<number>)", with a RawValue.
	Name  string
	Value Value
}

// ValueKind is the kind of an option value.
type ValueKind uint8

// Option value kinds.
const (
	StringValue  ValueKind = iota + 1 // Text is the decoded string
	IdentValue                        // Text is an identifier: an enum value, true, false, inf, nan
	NumberValue                       // Text is the number, normalized: decimal integers, Go's shortest float form
	MessageValue                      // Fields are the message's fields in order; repeated ones repeat
	RawValue                          // Text holds the encoded value of wire type Wire
)

// Value is an option's value.
type Value struct {
	Kind   ValueKind
	Text   string
	Fields []Option
	Wire   int
}

// field returns the text of the first field called name of a message value.
func (v Value) field(name string) string {
	for _, f := range v.Fields {
		if f.Name == name {
			return f.Value.Text
		}
	}
	return ""
}

// optField describes a field of an options message (FileOptions,
// FieldOptions...) or of a message-typed option such as Confluent's Meta.
type optField struct {
	name     string
	num      int32
	kind     Kind
	enum     []string // enum names by number; "" for numbers without a name
	msg      *optMsg
	repeated bool
}

type optMsg struct {
	fields []*optField
}

func (m *optMsg) byName(name string) *optField {
	if m == nil {
		return nil
	}
	for _, f := range m.fields {
		if f.name == name {
			return f
		}
	}
	return nil
}

func (m *optMsg) byNum(num int32) *optField {
	if m == nil {
		return nil
	}
	for _, f := range m.fields {
		if f.num == num {
			return f
		}
	}
	return nil
}

func enumOf(names ...string) []string { return names }

func boolOpt(name string, num int32) *optField { return &optField{name: name, num: num, kind: Bool} }
func strOpt(name string, num int32) *optField  { return &optField{name: name, num: num, kind: String} }

var featureSet = &optMsg{fields: []*optField{
	{name: "field_presence", num: 1, kind: EnumK, enum: enumOf("", "EXPLICIT", "IMPLICIT", "LEGACY_REQUIRED")},
	{name: "enum_type", num: 2, kind: EnumK, enum: enumOf("", "OPEN", "CLOSED")},
	{name: "repeated_field_encoding", num: 3, kind: EnumK, enum: enumOf("", "PACKED", "EXPANDED")},
	{name: "utf8_validation", num: 4, kind: EnumK, enum: enumOf("", "", "VERIFY", "NONE")},
	{name: "message_encoding", num: 5, kind: EnumK, enum: enumOf("", "LENGTH_PREFIXED", "DELIMITED")},
	{name: "json_format", num: 6, kind: EnumK, enum: enumOf("", "ALLOW", "LEGACY_BEST_EFFORT")},
	{name: "enforce_naming_style", num: 7, kind: EnumK, enum: enumOf("", "STYLE2024", "STYLE_LEGACY")},
}}

// confluentMeta is confluent/meta.proto's Meta: the value of the
// (confluent.*_meta) options, extension number 1088 of each options message.
var confluentMeta = &optMsg{fields: []*optField{
	strOpt("doc", 1),
	{name: "params", num: 2, kind: MessageK, repeated: true, msg: &optMsg{fields: []*optField{strOpt("key", 1), strOpt("value", 2)}}},
	{name: "tags", num: 3, kind: String, repeated: true},
}}

const metaNumber = 1088

func metaExt(name string) *optField {
	return &optField{name: "(confluent." + name + ")", num: metaNumber, kind: MessageK, msg: confluentMeta}
}

// The options messages of descriptor.proto, with the fields this package
// names (the others are kept as raw values).
var (
	fileOptions = &optMsg{fields: []*optField{
		strOpt("java_package", 1), strOpt("java_outer_classname", 8),
		{name: "optimize_for", num: 9, kind: EnumK, enum: enumOf("", "SPEED", "CODE_SIZE", "LITE_RUNTIME")},
		boolOpt("java_multiple_files", 10), strOpt("go_package", 11), boolOpt("cc_generic_services", 16),
		boolOpt("java_generic_services", 17), boolOpt("py_generic_services", 18),
		boolOpt("java_generate_equals_and_hash", 20), boolOpt("deprecated", 23),
		boolOpt("java_string_check_utf8", 27), boolOpt("cc_enable_arenas", 31),
		strOpt("objc_class_prefix", 36), strOpt("csharp_namespace", 37), strOpt("swift_prefix", 39),
		strOpt("php_class_prefix", 40), strOpt("php_namespace", 41), strOpt("php_metadata_namespace", 44),
		strOpt("ruby_package", 45), {name: "features", num: 50, kind: MessageK, msg: featureSet},
		metaExt("file_meta"),
	}}
	messageOptions = &optMsg{fields: []*optField{
		boolOpt("message_set_wire_format", 1), boolOpt("no_standard_descriptor_accessor", 2),
		boolOpt("deprecated", 3), boolOpt("map_entry", 7), boolOpt("deprecated_legacy_json_field_conflicts", 11),
		{name: "features", num: 12, kind: MessageK, msg: featureSet}, metaExt("message_meta"),
	}}
	fieldOptions = &optMsg{fields: []*optField{
		{name: "ctype", num: 1, kind: EnumK, enum: enumOf("STRING", "CORD", "STRING_PIECE")},
		boolOpt("packed", 2), boolOpt("deprecated", 3), boolOpt("lazy", 5),
		{name: "jstype", num: 6, kind: EnumK, enum: enumOf("JS_NORMAL", "JS_STRING", "JS_NUMBER")},
		boolOpt("weak", 10), boolOpt("unverified_lazy", 15), boolOpt("debug_redact", 16),
		{name: "retention", num: 17, kind: EnumK, enum: enumOf("RETENTION_UNKNOWN", "RETENTION_RUNTIME", "RETENTION_SOURCE")},
		{name: "targets", num: 19, kind: EnumK, repeated: true, enum: enumOf("TARGET_TYPE_UNKNOWN", "TARGET_TYPE_FILE",
			"TARGET_TYPE_EXTENSION_RANGE", "TARGET_TYPE_MESSAGE", "TARGET_TYPE_FIELD", "TARGET_TYPE_ONEOF",
			"TARGET_TYPE_ENUM", "TARGET_TYPE_ENUM_ENTRY", "TARGET_TYPE_SERVICE", "TARGET_TYPE_METHOD")},
		{name: "features", num: 21, kind: MessageK, msg: featureSet}, metaExt("field_meta"),
	}}
	oneofOptions = &optMsg{fields: []*optField{{name: "features", num: 1, kind: MessageK, msg: featureSet}}}
	enumOptions  = &optMsg{fields: []*optField{
		boolOpt("allow_alias", 2), boolOpt("deprecated", 3), boolOpt("deprecated_legacy_json_field_conflicts", 6),
		{name: "features", num: 7, kind: MessageK, msg: featureSet}, metaExt("enum_meta"),
	}}
	enumValueOptions = &optMsg{fields: []*optField{
		boolOpt("deprecated", 1), {name: "features", num: 2, kind: MessageK, msg: featureSet},
		boolOpt("debug_redact", 3), metaExt("enum_value_meta"),
	}}
	serviceOptions = &optMsg{fields: []*optField{boolOpt("deprecated", 33), {name: "features", num: 34, kind: MessageK, msg: featureSet}}}
	methodOptions  = &optMsg{fields: []*optField{
		boolOpt("deprecated", 33),
		{name: "idempotency_level", num: 34, kind: EnumK, enum: enumOf("IDEMPOTENCY_UNKNOWN", "NO_SIDE_EFFECTS", "IDEMPOTENT")},
		{name: "features", num: 35, kind: MessageK, msg: featureSet},
	}}
)

// extName normalizes an extension name written in an option: without a
// leading dot, in parentheses.
func extName(name string) string {
	return "(" + strings.TrimPrefix(name, ".") + ")"
}

// metaTags returns the tags of Confluent's meta option called name
// ("(confluent.field_meta)") among opts, each once.
func metaTags(opts []Option, name string) []string {
	var out []string
	var seen map[string]bool
	for _, o := range opts {
		if o.Name != name || o.Value.Kind != MessageValue {
			continue
		}
		for _, f := range o.Value.Fields {
			if f.Name != "tags" || f.Value.Kind != StringValue || seen[f.Value.Text] {
				continue
			}
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[f.Value.Text] = true
			out = append(out, f.Value.Text)
		}
	}
	return out
}

// mergeOptions merges options of the same name whose values are messages
// (a field set twice in text format merges, unless it is repeated), keeping
// the order of first appearance. It is linear in the number of options: a
// hostile schema may have many.
func mergeOptions(opts []Option, m *optMsg) []Option {
	var out []Option
	var at map[string]int // message-valued options merged into out, by name
	for _, o := range opts {
		f := m.byName(o.Name)
		if o.Value.Kind == MessageValue && (f == nil || !f.repeated) {
			if i, ok := at[o.Name]; ok {
				out[i].Value.Fields = append(out[i].Value.Fields, o.Value.Fields...)
				continue
			}
			if at == nil {
				at = map[string]int{}
			}
			at[o.Name] = len(out)
			o.Value.Fields = slices.Clip(o.Value.Fields)
		}
		out = append(out, o)
	}
	for i := range out {
		if out[i].Value.Kind == MessageValue {
			var sub *optMsg
			if f := m.byName(out[i].Name); f != nil {
				sub = f.msg
			}
			out[i].Value.Fields = mergeOptions(out[i].Value.Fields, sub)
		}
	}
	return out
}

// checkOption checks a known option's value against its type.
func checkOption(o Option, m *optMsg) error {
	f := m.byName(o.Name)
	if f == nil {
		return nil
	}
	v := o.Value
	bad := func(want string) error {
		return fmt.Errorf("option %s: want %s", o.Name, want)
	}
	switch f.kind {
	case String:
		if v.Kind != StringValue {
			return bad("a string")
		}
	case Bool:
		if v.Kind != IdentValue || v.Text != "true" && v.Text != "false" {
			return bad("true or false")
		}
	case EnumK:
		if v.Kind != IdentValue || !slices.Contains(f.enum, v.Text) || v.Text == "" {
			return bad("one of " + strings.Join(slices.DeleteFunc(slices.Clone(f.enum), func(s string) bool { return s == "" }), ", "))
		}
	case MessageK:
		if v.Kind != MessageValue {
			return bad("a message value")
		}
		for _, sub := range v.Fields {
			if err := checkOption(sub, f.msg); err != nil {
				return fmt.Errorf("%s.%w", o.Name, err)
			}
		}
	}
	return nil
}

// decodeOptions decodes an options message (or a message-typed option value)
// described by m.
func decodeOptions(b []byte, m *optMsg, depth int) ([]Option, error) {
	if depth <= 0 {
		return nil, limitErr("option values nest too deep")
	}
	r := reader{b: b}
	var out []Option
	for !r.done() {
		num, wt, err := r.tag()
		if err != nil {
			return nil, err
		}
		f := m.byNum(num)
		if num == 999 && m != confluentMeta && f == nil {
			// uninterpreted_option: only parsers' intermediate output has it.
			if _, err := r.skip(num, wt, depth); err != nil {
				return nil, err
			}
			continue
		}
		if f == nil || !wireFits(f, wt) {
			v, err := r.skip(num, wt, depth)
			if err != nil {
				return nil, err
			}
			out = append(out, Option{Name: "(#" + strconv.Itoa(int(num)) + ")", Value: Value{Kind: RawValue, Text: string(v), Wire: wt}})
			continue
		}
		if wt == 2 && f.kind != String && f.kind != Bytes && f.kind != MessageK {
			// A packed repeated scalar.
			b, err := r.bytes()
			if err != nil {
				return nil, err
			}
			pr := reader{b: b}
			for !pr.done() {
				v, err := decodeScalar(&pr, f, f.kind.WireType())
				if err != nil {
					return nil, err
				}
				out = append(out, Option{Name: f.name, Value: v})
			}
			continue
		}
		if f.kind == MessageK {
			b, err := r.bytes()
			if err != nil {
				return nil, err
			}
			sub, err := decodeOptions(b, f.msg, depth-1)
			if err != nil {
				return nil, err
			}
			out = append(out, Option{Name: f.name, Value: Value{Kind: MessageValue, Fields: sub}})
			continue
		}
		v, err := decodeScalar(&r, f, wt)
		if err != nil {
			return nil, err
		}
		out = append(out, Option{Name: f.name, Value: v})
	}
	return mergeOptions(out, m), nil
}

func wireFits(f *optField, wt int) bool {
	if wt == f.kind.WireType() {
		return true
	}
	return wt == 2 && f.repeated && f.kind.Packable()
}

func decodeScalar(r *reader, f *optField, wt int) (Value, error) {
	switch wt {
	case 0:
		u, err := r.varint()
		if err != nil {
			return Value{}, err
		}
		switch f.kind {
		case Bool:
			return Value{Kind: IdentValue, Text: strconv.FormatBool(u != 0)}, nil
		case EnumK:
			if int(u) >= 0 && u < uint64(len(f.enum)) && f.enum[u] != "" {
				return Value{Kind: IdentValue, Text: f.enum[u]}, nil
			}
			return Value{Kind: NumberValue, Text: strconv.FormatInt(int64(int32(u)), 10)}, nil
		case Int32:
			return Value{Kind: NumberValue, Text: strconv.FormatInt(int64(int32(u)), 10)}, nil
		case Int64:
			return Value{Kind: NumberValue, Text: strconv.FormatInt(int64(u), 10)}, nil
		case Uint32:
			return Value{Kind: NumberValue, Text: strconv.FormatUint(uint64(uint32(u)), 10)}, nil
		case Sint32, Sint64:
			return Value{Kind: NumberValue, Text: strconv.FormatInt(int64(u>>1)^-int64(u&1), 10)}, nil
		}
		return Value{Kind: NumberValue, Text: strconv.FormatUint(u, 10)}, nil
	case 1:
		b, err := r.fixed(8)
		if err != nil {
			return Value{}, err
		}
		u := binary.LittleEndian.Uint64(b)
		switch f.kind {
		case Double:
			return floatValue(math.Float64frombits(u)), nil
		case Sfixed64:
			return Value{Kind: NumberValue, Text: strconv.FormatInt(int64(u), 10)}, nil
		}
		return Value{Kind: NumberValue, Text: strconv.FormatUint(u, 10)}, nil
	case 5:
		b, err := r.fixed(4)
		if err != nil {
			return Value{}, err
		}
		u := binary.LittleEndian.Uint32(b)
		switch f.kind {
		case Float:
			return floatValue(float64(math.Float32frombits(u))), nil
		case Sfixed32:
			return Value{Kind: NumberValue, Text: strconv.FormatInt(int64(int32(u)), 10)}, nil
		}
		return Value{Kind: NumberValue, Text: strconv.FormatUint(uint64(u), 10)}, nil
	case 2:
		b, err := r.bytes()
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: StringValue, Text: string(b)}, nil
	}
	return Value{}, fmt.Errorf("option %s: wire type %d", f.name, wt)
}

func floatValue(f float64) Value {
	switch {
	case math.IsInf(f, 1):
		return Value{Kind: IdentValue, Text: "inf"}
	case math.IsInf(f, -1):
		return Value{Kind: IdentValue, Text: "-inf"}
	case math.IsNaN(f):
		return Value{Kind: IdentValue, Text: "nan"}
	}
	return Value{Kind: NumberValue, Text: strconv.FormatFloat(f, 'g', -1, 64)}
}

// normNumber normalizes a number literal of .proto text (decimal, hex or
// octal integers, floats), with a leading minus when neg.
func normNumber(lit string, neg bool) (string, error) {
	sign := ""
	if neg {
		sign = "-"
	}
	if u, err := strconv.ParseUint(lit, 0, 64); err == nil {
		if neg {
			if u > 1<<63 {
				return "", fmt.Errorf("number %s%s out of range", sign, lit)
			}
			if u == 0 {
				return "0", nil
			}
			return "-" + strconv.FormatUint(u, 10), nil
		}
		return strconv.FormatUint(u, 10), nil
	}
	if len(lit) > 1 && lit[0] == '0' && !strings.ContainsAny(lit, ".eE") {
		return "", fmt.Errorf("invalid number %q", lit)
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSuffix(lit, "f"), "F"), 64)
	if err != nil {
		return "", fmt.Errorf("invalid number %q", lit)
	}
	if neg {
		f = -f
	}
	return floatValue(f).Text, nil
}

// encodeOptions appends opts as the options message m. Options this package
// cannot encode (a custom extension the text names but no descriptor
// defines) are left out.
func encodeOptions(dst []byte, opts []Option, m *optMsg) []byte {
	for _, o := range opts {
		if o.Value.Kind == RawValue {
			var num int
			if _, err := fmt.Sscanf(o.Name, "(#%d)", &num); err != nil {
				continue
			}
			dst = appendTag(dst, int32(num), o.Value.Wire)
			if o.Value.Wire == 2 {
				dst = appendVarint(dst, uint64(len(o.Value.Text)))
			}
			dst = append(dst, o.Value.Text...)
			continue
		}
		f := m.byName(o.Name)
		if f == nil {
			continue
		}
		dst = encodeValue(dst, f, o.Value)
	}
	return dst
}

func encodeValue(dst []byte, f *optField, v Value) []byte {
	switch f.kind {
	case MessageK:
		if v.Kind != MessageValue {
			return dst
		}
		return appendBytesField(dst, f.num, encodeOptions(nil, v.Fields, f.msg))
	case String, Bytes:
		if v.Kind != StringValue {
			return dst
		}
		return appendStringField(dst, f.num, v.Text)
	case Bool:
		if v.Text == "true" {
			return appendVarintField(dst, f.num, 1)
		}
		return appendVarintField(dst, f.num, 0)
	case EnumK:
		if i := slices.Index(f.enum, v.Text); i >= 0 && v.Text != "" {
			return appendVarintField(dst, f.num, uint64(i))
		}
		if n, err := strconv.ParseInt(v.Text, 10, 32); err == nil {
			return appendVarintField(dst, f.num, uint64(n))
		}
		return dst
	}
	return appendScalar(dst, f.num, f.kind, v.Text)
}

// appendScalar appends field num of scalar kind k with the value written as
// text (a normalized number, true/false, inf/nan); nothing when it does not
// parse.
func appendScalar(dst []byte, num int32, k Kind, text string) []byte {
	switch k {
	case Double, Float:
		var f float64
		switch text {
		case "inf":
			f = math.Inf(1)
		case "-inf":
			f = math.Inf(-1)
		case "nan":
			f = math.NaN()
		default:
			var err error
			if f, err = strconv.ParseFloat(text, 64); err != nil {
				return dst
			}
		}
		if k == Double {
			dst = appendTag(dst, num, 1)
			return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
		}
		dst = appendTag(dst, num, 5)
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f)))
	case Bool:
		if text == "true" {
			return appendVarintField(dst, num, 1)
		}
		return appendVarintField(dst, num, 0)
	}
	var u uint64
	if i, err := strconv.ParseInt(text, 10, 64); err == nil {
		u = uint64(i)
		if k == Sint32 || k == Sint64 {
			u = uint64(i<<1) ^ uint64(i>>63)
		}
	} else if x, err := strconv.ParseUint(text, 10, 64); err == nil {
		u = x
	} else {
		return dst
	}
	switch k {
	case Fixed32, Sfixed32:
		dst = appendTag(dst, num, 5)
		return binary.LittleEndian.AppendUint32(dst, uint32(u))
	case Fixed64, Sfixed64:
		dst = appendTag(dst, num, 1)
		return binary.LittleEndian.AppendUint64(dst, u)
	}
	return appendVarintField(dst, num, u)
}
