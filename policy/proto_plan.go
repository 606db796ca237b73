package policy

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"

	"github.com/tributary-dev/tributary/internal/protoschema"
)

// This file compiles plans for Protobuf records: the schema's message as the
// compiler's record, repeated fields as arrays and map fields as maps (see
// proto_schema.go); MaskProto (mask_proto.go) runs them.

// buildProto compiles the plan node for a Protobuf value at l.
func (c *compiler) buildProto(l loc) *pnode {
	if c.tooBig || l.t == nil {
		return nil
	}
	act, n, done := c.cover(l)
	if done {
		return n
	}
	t := l.t
	if act == nil && len(l.S) == 0 && !t.hasTags() {
		return nil
	}
	key := stackKey(l, act)
	if n, ok := c.stack[key]; ok {
		return n // a recursive message: reuse the node being built
	}
	switch t.kind {
	case kRecord:
		if t.pb.timestamp && act != nil && act.r.Action == Generalize {
			if act.r.Truncate == "" {
				c.errorf(act, ".action", "generalize cannot apply to %s (google.protobuf.Timestamp): a timestamp needs truncate (hour, day, month or year)", c.field(l.path))
			}
			return c.node(l, modeLeaf, act)
		}
		n = c.walk(l, act, key, c.buildProto)
	case kArray, kMap:
		n = c.walk(l, act, key, c.buildProto)
	default: // scalars and enums
		if act == nil {
			return nil
		}
		if msg := protoLeafProblem(act.r, t); msg != "" {
			c.errorf(act, ".action", "%s cannot apply to %s (%s): %s", act.r.Action, c.field(l.path), t, msg)
		}
		return c.node(l, modeLeaf, act)
	}
	delete(c.stack, key)
	return n
}

// protoLeafProblem is leafProblem with the ranges of Protobuf's unsigned
// integer types.
func protoLeafProblem(r *Rule, t *stype) string {
	if msg := leafProblem(r, t); msg != "" {
		return msg
	}
	if r.Action == Bucket && t.pb != nil {
		for _, b := range r.Buckets {
			if msg := protoIntFits(b.Replacement, t.pb.kind); msg != "" {
				return "replacement " + literal(b.Replacement) + ": " + msg
			}
		}
	}
	return ""
}

// protoIntFits says why v is not a value of the integer kind k, or "".
func protoIntFits(v any, k protoschema.Kind) string {
	var f float64
	switch x := v.(type) {
	case int64:
		f = float64(x)
	case float64:
		f = x
	default:
		return ""
	}
	lo, hi, name := protoRange(k)
	switch {
	case name == "":
		return ""
	case f != math.Trunc(f):
		return "not an integer (the field is " + name + ")"
	case f < lo || f > hi:
		return "out of range for " + name
	}
	return ""
}

// protoRange is the range of an integer kind, as floats; name is "" for
// other kinds.
func protoRange(k protoschema.Kind) (lo, hi float64, name string) {
	switch k {
	case protoschema.Int32, protoschema.Sint32, protoschema.Sfixed32:
		return math.MinInt32, math.MaxInt32, k.String()
	case protoschema.Int64, protoschema.Sint64, protoschema.Sfixed64:
		return math.MinInt64, math.MaxInt64, k.String()
	case protoschema.Uint32, protoschema.Fixed32:
		return 0, math.MaxUint32, k.String()
	case protoschema.Uint64, protoschema.Fixed64:
		return 0, math.MaxUint64, k.String()
	}
	return 0, 0, ""
}

// protoDrop makes n remove the value from the wire: the reader then sees the
// field's default (proto3: zero, empty, unset; proto2: the declared
// default), or, for a map value, the entry's key with a default value.
func (c *compiler) protoDrop(n *pnode, l loc, cr *crule) {
	switch {
	case l.role == roleField && l.f != nil && l.f.required:
		c.errorf(cr, ".action", "drop cannot apply to %s (%s): it is a proto2 required field; use redact", c.field(l.path), l.t)
	case l.role == roleField, l.role == roleMapVal:
		n.del = true
	case l.role == roleElem:
		c.errorf(cr, ".action", "drop cannot apply to %s (%s): drop removes a field, not elements of a repeated field; drop the field, or use redact", c.field(l.path), l.t)
	default:
		c.errorf(cr, ".action", "drop cannot apply to %s: drop removes a field; use redact", c.field(l.path))
	}
}

// protoReplace makes n write the rule's value, encoded once here.
func (c *compiler) protoReplace(n *pnode, l loc, cr *crule) {
	v := cr.r.Value
	b, msg := protoValue(nil, l.t, v)
	if msg != "" {
		c.errorf(cr, ".value", "%s cannot replace %s (%s): %s", literal(v), c.field(l.path), l.t, msg)
	}
	n.konst = b
}

// protoValue appends the encoding of policy value v (without a field key)
// as a value of t, or says why it cannot.
func protoValue(dst []byte, t *stype, v any) ([]byte, string) {
	if t.pb == nil || t.kind == kRecord || t.kind == kArray || t.kind == kMap {
		return nil, "replace needs a scalar or enum field"
	}
	if t.kind == kEnum {
		s, _ := v.(string)
		i := slices.Index(t.symbols, s)
		if i < 0 {
			return nil, "want one of the enum's values " + strings.Join(t.symbols, ", ")
		}
		return binary.AppendUvarint(dst, uint64(int64(t.pb.nums[i]))), ""
	}
	k := t.pb.kind
	switch k {
	case protoschema.String, protoschema.Bytes:
		s, ok := v.(string)
		if !ok {
			return nil, "want a string"
		}
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		return append(dst, s...), ""
	case protoschema.Bool:
		b, ok := v.(bool)
		if !ok {
			return nil, "want true or false"
		}
		if b {
			return append(dst, 1), ""
		}
		return append(dst, 0), ""
	case protoschema.Double, protoschema.Float:
		var f float64
		switch x := v.(type) {
		case int64:
			f = float64(x)
		case float64:
			f = x
		default:
			return nil, "want a number"
		}
		return appendProtoFloat(dst, k, f), ""
	}
	var i int64
	switch x := v.(type) {
	case int64:
		i = x
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return nil, "want an integer (the field is " + k.String() + ")"
		}
		i = int64(x)
	default:
		return nil, "want an integer (the field is " + k.String() + ")"
	}
	if msg := protoIntFits(i, k); msg != "" {
		return nil, msg
	}
	return appendProtoInt(dst, k, uint64(i)), ""
}

// appendProtoInt appends an integer of kind k given as its 64-bit two's
// complement bits (int32 values sign-extended, as protobuf writes them).
func appendProtoInt(dst []byte, k protoschema.Kind, u uint64) []byte {
	switch k {
	case protoschema.Sint32:
		n := int32(u)
		return binary.AppendUvarint(dst, uint64(uint32(n<<1^n>>31)))
	case protoschema.Sint64:
		n := int64(u)
		return binary.AppendUvarint(dst, uint64(n<<1^n>>63))
	case protoschema.Fixed32, protoschema.Sfixed32:
		return binary.LittleEndian.AppendUint32(dst, uint32(u))
	case protoschema.Fixed64, protoschema.Sfixed64:
		return binary.LittleEndian.AppendUint64(dst, u)
	case protoschema.Int32:
		return binary.AppendUvarint(dst, uint64(int64(int32(u))))
	case protoschema.Uint32:
		return binary.AppendUvarint(dst, uint64(uint32(u)))
	}
	return binary.AppendUvarint(dst, u)
}

func appendProtoFloat(dst []byte, k protoschema.Kind, f float64) []byte {
	if k == protoschema.Float {
		return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f)))
	}
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f))
}
