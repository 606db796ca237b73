package policy

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
)

func appendLong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

func appendString(dst []byte, s string) []byte {
	dst = appendLong(dst, int64(len(s)))
	return append(dst, s...)
}

// encodeAvro appends the binary encoding of a Go value of type t: defaults as
// hamba/avro parses them, replace values, and records read from JSON
// (TestRecord). Unions take nil for null, a one-key map {"<branch>": value} as
// in Avro's JSON encoding, or else the first branch the value fits.
func encodeAvro(dst []byte, t *stype, v any) ([]byte, error) {
	switch t.kind {
	case kNull:
		if v != nil {
			return nil, fmt.Errorf("want null, got %s", goKind(v))
		}
		return dst, nil
	case kBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want a boolean, got %s", goKind(v))
		}
		if b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case kInt, kLong:
		i, ok := toInt64(v)
		if !ok || t.kind == kInt && (i > math.MaxInt32 || i < math.MinInt32) {
			return nil, fmt.Errorf("want %s, got %s", article(kindNames[t.kind]), goKind(v))
		}
		return appendLong(dst, i), nil
	case kFloat, kDouble:
		f, ok := toFloat64(v)
		if !ok {
			return nil, fmt.Errorf("want %s, got %s", article(kindNames[t.kind]), goKind(v))
		}
		if t.kind == kFloat {
			return binary.LittleEndian.AppendUint32(dst, math.Float32bits(float32(f))), nil
		}
		return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case kString:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %s", goKind(v))
		}
		return appendString(dst, s), nil
	case kBytes:
		b, ok := toBytes(v)
		if !ok {
			return nil, fmt.Errorf("want bytes, got %s", goKind(v))
		}
		dst = appendLong(dst, int64(len(b)))
		return append(dst, b...), nil
	case kFixed:
		b, ok := toBytes(v)
		if !ok || len(b) != t.size {
			return nil, fmt.Errorf("want %d bytes, got %s", t.size, goKind(v))
		}
		return append(dst, b...), nil
	case kEnum:
		s, ok := v.(string)
		i := slices.Index(t.symbols, s)
		if !ok || i < 0 {
			return nil, fmt.Errorf("want one of the symbols %v", t.symbols)
		}
		return appendLong(dst, int64(i)), nil
	case kRecord:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("want a record, got %s", goKind(v))
		}
		for _, f := range t.fields {
			fv, ok := m[f.name]
			if !ok {
				if !f.hasDefault {
					return nil, fmt.Errorf("field %s: missing", f.name)
				}
				fv = f.def
			}
			var err error
			if dst, err = encodeAvro(dst, f.t, fv); err != nil {
				return nil, fmt.Errorf("field %s: %w", f.name, err)
			}
		}
		return dst, nil
	case kArray:
		items, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("want an array, got %s", goKind(v))
		}
		if len(items) > 0 {
			dst = appendLong(dst, int64(len(items)))
			for i, it := range items {
				var err error
				if dst, err = encodeAvro(dst, t.elem, it); err != nil {
					return nil, fmt.Errorf("[%d]: %w", i, err)
				}
			}
		}
		return appendLong(dst, 0), nil
	case kMap:
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("want a map, got %s", goKind(v))
		}
		if len(m) > 0 {
			dst = appendLong(dst, int64(len(m)))
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				dst = appendString(dst, k)
				var err error
				if dst, err = encodeAvro(dst, t.elem, m[k]); err != nil {
					return nil, fmt.Errorf("[%q]: %w", k, err)
				}
			}
		}
		return appendLong(dst, 0), nil
	case kUnion:
		if v == nil {
			if t.nullIdx < 0 {
				return nil, errors.New("null is not in the union")
			}
			return appendLong(dst, int64(t.nullIdx)), nil
		}
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			for k, inner := range m {
				for i, b := range t.branches {
					if branchName(b) == k || b.name != "" && shortName(b.name) == k {
						return encodeAvro(appendLong(dst, int64(i)), b, inner)
					}
				}
			}
		}
		var first error
		for i, b := range t.branches {
			if b.kind == kNull {
				continue
			}
			out, err := encodeAvro(appendLong(dst, int64(i)), b, v)
			if err == nil {
				return out, nil
			}
			if first == nil {
				first = err
			}
		}
		return nil, fmt.Errorf("fits no branch of the union: %v", first)
	}
	return nil, fmt.Errorf("unsupported type %s", t)
}

func branchName(t *stype) string {
	if t.name != "" {
		return t.name
	}
	return kindNames[t.kind]
}

func shortName(full string) string {
	for i := len(full) - 1; i >= 0; i-- {
		if full[i] == '.' {
			return full[i+1:]
		}
	}
	return full
}

func goKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case []byte:
		return "bytes"
	}
	if _, ok := toFloat64(v); ok {
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case float32:
		if float64(x) == math.Trunc(float64(x)) {
			return int64(x), true
		}
	case float64:
		if x == math.Trunc(x) && x >= -(1<<63) && x < 1<<63 {
			return int64(x), true
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
	}
	return 0, false
}

func toFloat64(v any) (float64, bool) {
	switch x := v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	if i, ok := toInt64(v); ok {
		return float64(i), true
	}
	return 0, false
}

// toBytes accepts []byte, strings, and fixed-size byte arrays (hamba/avro's
// fixed defaults).
func toBytes(v any) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		return x, true
	case string:
		return []byte(x), true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Array && rv.Type().Elem().Kind() == reflect.Uint8 {
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return b, true
	}
	return nil, false
}
