package policy

import (
	"encoding/binary"
	"math"
	"strconv"
	"unicode/utf8"
)

// appendAvroJSON decodes one value of type t and appends it as JSON, records in
// field order, unions as their value, bytes and fixed as Avro's JSON encoding
// does (one character per byte). TestRecord uses it to show records.
func (r *avroRun) appendAvroJSON(dst []byte, t *stype) ([]byte, bool) {
	switch t.kind {
	case kNull:
		return append(dst, "null"...), true
	case kBool:
		b, ok := r.span(1)
		if !ok {
			return nil, false
		}
		return strconv.AppendBool(dst, b[0] == 1), true
	case kInt, kLong:
		v, ok := r.long()
		return strconv.AppendInt(dst, v, 10), ok
	case kFloat, kDouble:
		size := 8
		if t.kind == kFloat {
			size = 4
		}
		b, ok := r.span(size)
		if !ok {
			return nil, false
		}
		var f float64
		if size == 4 {
			f = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
			return appendJSONFloat(dst, f, 32), true
		}
		f = math.Float64frombits(binary.LittleEndian.Uint64(b))
		return appendJSONFloat(dst, f, 64), true
	case kString:
		s, ok := r.bytes()
		return appendJSONString(dst, s), ok
	case kBytes, kFixed:
		var s []byte
		var ok bool
		if t.kind == kFixed {
			s, ok = r.span(t.size)
		} else {
			s, ok = r.bytes()
		}
		if !ok {
			return nil, false
		}
		rs := make([]rune, len(s))
		for i, c := range s {
			rs[i] = rune(c)
		}
		return appendJSONString(dst, []byte(string(rs))), true
	case kEnum:
		i, ok := r.int()
		if !ok || i < 0 || int(i) >= len(t.symbols) {
			return nil, r.fail("invalid enum index")
		}
		return appendJSONString(dst, []byte(t.symbols[i])), true
	case kRecord:
		dst = append(dst, '{')
		for i, f := range t.fields {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, []byte(f.name))
			dst = append(dst, ':')
			var ok bool
			if dst, ok = r.appendAvroJSON(dst, f.t); !ok {
				return nil, false
			}
		}
		return append(dst, '}'), true
	case kArray, kMap:
		open, close := byte('['), byte(']')
		if t.kind == kMap {
			open, close = '{', '}'
		}
		dst = append(dst, open)
		first := true
		for {
			n, ok := r.blockCount(false)
			if !ok {
				return nil, false
			}
			if n == 0 {
				return append(dst, close), true
			}
			for range n {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				if t.kind == kMap {
					k, ok := r.bytes()
					if !ok {
						return nil, false
					}
					dst = appendJSONString(dst, k)
					dst = append(dst, ':')
				}
				if dst, ok = r.appendAvroJSON(dst, t.elem); !ok {
					return nil, false
				}
			}
		}
	case kUnion:
		i, ok := r.long()
		if !ok || i < 0 || i >= int64(len(t.branches)) {
			return nil, r.fail("invalid union index")
		}
		return r.appendAvroJSON(dst, t.branches[i])
	}
	return nil, r.fail("unsupported type %s", t)
}

// appendJSONFloat writes a float as JSON; NaN and infinities, which JSON
// cannot hold, as strings.
func appendJSONFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.AppendQuote(dst, strconv.FormatFloat(f, 'g', -1, bits))
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

// appendJSONString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does.
func appendJSONString(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
