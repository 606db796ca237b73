package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

const (
	enumType   = `{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"],"default":"BLUE"}`
	fixedType  = `{"type":"fixed","name":"F4","size":4}`
	innerType  = `{"type":"record","name":"Inner","fields":[{"name":"inner","type":"string"},{"name":"n","type":"long"}]}`
	bucketRule = `action: bucket, buckets: [{max: 100, replacement: 0}, {min: 100, max: 10000, replacement: 100}, {min: 10000, replacement: 10000}]`
)

// avroCase masks field v of a record {keep: string, v: <typ>, tail: long}.
type avroCase struct {
	name string
	typ  string // Avro type of v
	in   any    // v as hamba/avro encodes it
	rule string // the rule's entries besides match
	want any    // v after masking, as hamba/avro decodes it
	// err is a substring of the compile error, or a Violation reason.
	err string
}

func TestMaskAvroActionsByType(t *testing.T) {
	ts := time.Date(2024, 5, 17, 13, 45, 12, 345e6, time.UTC)
	cases := []avroCase{
		// string
		{"redact empties a string", `"string"`, "alice@example.com", "action: redact", "", ""},
		{"hash makes a string its hex HMAC", `"string"`, "alice@example.com", "action: hash", hexHMAC("alice@example.com"), ""},
		{"mask keeps the last characters of a string", `"string"`, "4111111111111111", "action: mask, keep_last: 4", "************1111", ""},
		{"mask keeps the first characters with a mask char", `"string"`, "Müller", "action: mask, keep_first: 1, mask_char: '#'", "M#####", ""},
		{"mask of a value shorter than what it keeps masks all", `"string"`, "abc", "action: mask, keep_last: 4", "***", ""},
		{"generalize truncates an RFC 3339 string", `"string"`, "2024-05-17T13:45:12.345+02:00", "action: generalize, truncate: hour", "2024-05-17T13:00:00+02:00", ""},
		{"generalize of a string that is not a timestamp is unmaskable", `"string"`, "yesterday", "action: generalize, truncate: day", nil, ReasonUnmaskable},
		{"generalize with precision only cannot apply to a string", `"string"`, "x", "action: generalize, precision: 1", nil, "a string needs truncate"},
		{"drop cannot apply to a string without null or default", `"string"`, "x", "action: drop", nil, "does not allow null and the field has no default"},
		{"replace writes a fixed string", `"string"`, "alice", "action: replace, value: anonymous", "anonymous", ""},
		{"replace of a string with a number is an error", `"string"`, "alice", "action: replace, value: 3", nil, "want a string"},
		{"bucket cannot apply to a string", `"string"`, "x", bucketRule, nil, "bucket needs a numeric field"},
		{"block rejects a record with a string", `"string"`, "x", "action: block", nil, ReasonBlocked},

		// int
		{"redact zeroes an int", `"int"`, 1234, "action: redact", 0, ""},
		{"hash cannot apply to an int", `"int"`, 1234, "action: hash", nil, "hash needs a string, bytes or fixed field"},
		{"mask cannot apply to an int", `"int"`, 1234, "action: mask", nil, "mask needs a string or bytes field"},
		{"generalize rounds an int to hundreds", `"int"`, 1250, "action: generalize, precision: -2", 1300, ""},
		{"generalize of an int saturates at the int range", `"int"`, 2147483600, "action: generalize, precision: -3", 2147483000, ""},
		{"drop cannot apply to an int", `"int"`, 1, "action: drop", nil, "does not allow null"},
		{"replace writes an int", `"int"`, 1234, "action: replace, value: 7", 7, ""},
		{"replace of an int must fit 32 bits", `"int"`, 1234, "action: replace, value: 3000000000", nil, "want an int"},
		{"bucket maps an int to its range", `"int"`, 1234, bucketRule, 100, ""},
		{"block rejects a record with an int", `"int"`, 1, "action: block", nil, ReasonBlocked},

		// long
		{"redact zeroes a long", `"long"`, int64(123456), "action: redact", int64(0), ""},
		{"hash cannot apply to a long", `"long"`, int64(1), "action: hash", nil, "hash needs a string"},
		{"mask cannot apply to a long", `"long"`, int64(1), "action: mask, keep_last: 2", nil, "mask needs"},
		{"generalize rounds a long", `"long"`, int64(-123456), "action: generalize, precision: -3", int64(-123000), ""},
		{"generalize with precision 0 leaves a long", `"long"`, int64(123456), "action: generalize, precision: 0", int64(123456), ""},
		{"drop cannot apply to a long", `"long"`, int64(1), "action: drop", nil, "does not allow null"},
		{"replace writes a long", `"long"`, int64(5), "action: replace, value: -9", int64(-9), ""},
		{"replace of a long needs an integer", `"long"`, int64(5), "action: replace, value: 1.5", nil, "want a long"},
		{"bucket maps a long to the open last range", `"long"`, int64(123456), bucketRule, int64(10000), ""},
		{"block rejects a record with a long", `"long"`, int64(1), "action: block", nil, ReasonBlocked},

		// float and double
		{"redact zeroes a float", `"float"`, float32(52.5208), "action: redact", float32(0), ""},
		{"hash cannot apply to a float", `"float"`, float32(1), "action: hash", nil, "hash needs"},
		{"mask cannot apply to a float", `"float"`, float32(1), "action: mask", nil, "mask needs"},
		{"generalize rounds a float", `"float"`, float32(52.5208), "action: generalize, precision: 1", float32(52.5), ""},
		{"drop cannot apply to a float", `"float"`, float32(1), "action: drop", nil, "does not allow null"},
		{"replace writes a float", `"float"`, float32(1), "action: replace, value: 2.5", float32(2.5), ""},
		{"bucket maps a float", `"float"`, float32(52.5), bucketRule, float32(0), ""},
		{"block rejects a record with a float", `"float"`, float32(1), "action: block", nil, ReasonBlocked},
		{"redact zeroes a double", `"double"`, 52.520008, "action: redact", 0.0, ""},
		{"hash cannot apply to a double", `"double"`, 1.0, "action: hash", nil, "hash needs"},
		{"mask cannot apply to a double", `"double"`, 1.0, "action: mask", nil, "mask needs"},
		{"generalize rounds a double to 2 places", `"double"`, 52.520008, "action: generalize, precision: 2", 52.52, ""},
		{"generalize rounds a double to tens", `"double"`, 1234.5, "action: generalize, precision: -1", 1230.0, ""},
		{"drop cannot apply to a double", `"double"`, 1.0, "action: drop", nil, "does not allow null"},
		{"replace writes a double from an integer", `"double"`, 1.5, "action: replace, value: 3", 3.0, ""},
		{"bucket maps a double", `"double"`, 150.0, bucketRule, 100.0, ""},
		{"bucket rejects a value outside every range", `"double"`, 5.0, "action: bucket, buckets: [{min: 10, max: 20, replacement: 10}]", nil, ReasonUnmaskable},
		{"block rejects a record with a double", `"double"`, 1.0, "action: block", nil, ReasonBlocked},

		// boolean
		{"redact makes a boolean false", `"boolean"`, true, "action: redact", false, ""},
		{"hash cannot apply to a boolean", `"boolean"`, true, "action: hash", nil, "hash needs"},
		{"mask cannot apply to a boolean", `"boolean"`, true, "action: mask", nil, "mask needs"},
		{"generalize cannot apply to a boolean", `"boolean"`, true, "action: generalize, precision: 1", nil, "generalize needs a number or a timestamp"},
		{"drop cannot apply to a boolean", `"boolean"`, true, "action: drop", nil, "does not allow null"},
		{"replace writes a boolean", `"boolean"`, true, "action: replace, value: false", false, ""},
		{"bucket cannot apply to a boolean", `"boolean"`, true, bucketRule, nil, "bucket needs"},
		{"block rejects a record with a boolean", `"boolean"`, false, "action: block", nil, ReasonBlocked},

		// bytes
		{"redact empties bytes", `"bytes"`, []byte("secret"), "action: redact", []byte{}, ""},
		{"hash makes bytes the raw HMAC", `"bytes"`, []byte("secret"), "action: hash", rawHMAC("secret"), ""},
		{"mask masks bytes", `"bytes"`, []byte("secret"), "action: mask, keep_last: 2", []byte("****et"), ""},
		{"mask of bytes needs an ASCII mask char", `"bytes"`, []byte("secret"), "action: mask, mask_char: 'é'", nil, "ASCII"},
		{"generalize cannot apply to bytes", `"bytes"`, []byte("x"), "action: generalize, precision: 1", nil, "generalize needs"},
		{"drop cannot apply to bytes", `"bytes"`, []byte("x"), "action: drop", nil, "does not allow null"},
		{"replace writes bytes", `"bytes"`, []byte("x"), "action: replace, value: xyz", []byte("xyz"), ""},
		{"bucket cannot apply to bytes", `"bytes"`, []byte("x"), bucketRule, nil, "bucket needs"},
		{"block rejects a record with bytes", `"bytes"`, []byte("x"), "action: block", nil, ReasonBlocked},

		// fixed
		{"redact zeroes a fixed", fixedType, [4]byte{1, 2, 3, 4}, "action: redact", [4]byte{}, ""},
		{"hash fills a fixed with the HMAC", fixedType, [4]byte{1, 2, 3, 4}, "action: hash", [4]byte(rawHMAC("\x01\x02\x03\x04")[:4]), ""},
		{"mask masks a fixed", fixedType, [4]byte{1, 2, 3, 4}, "action: mask, keep_last: 2", [4]byte{'*', '*', 3, 4}, ""},
		{"generalize cannot apply to a fixed", fixedType, [4]byte{}, "action: generalize, precision: 1", nil, "generalize needs"},
		{"drop cannot apply to a fixed", fixedType, [4]byte{}, "action: drop", nil, "does not allow null"},
		{"replace writes a fixed of the right size", fixedType, [4]byte{}, "action: replace, value: abcd", [4]byte{'a', 'b', 'c', 'd'}, ""},
		{"replace of a fixed needs the right size", fixedType, [4]byte{}, "action: replace, value: abc", nil, "want 4 bytes"},
		{"bucket cannot apply to a fixed", fixedType, [4]byte{}, bucketRule, nil, "bucket needs"},
		{"block rejects a record with a fixed", fixedType, [4]byte{}, "action: block", nil, ReasonBlocked},

		// enum
		{"redact sets an enum to its default", enumType, "GREEN", "action: redact", "BLUE", ""},
		{"hash cannot apply to an enum", enumType, "GREEN", "action: hash", nil, "hash needs"},
		{"mask cannot apply to an enum", enumType, "GREEN", "action: mask", nil, "mask needs"},
		{"generalize cannot apply to an enum", enumType, "GREEN", "action: generalize, truncate: day", nil, "generalize needs"},
		{"drop cannot apply to an enum", enumType, "GREEN", "action: drop", nil, "does not allow null"},
		{"replace writes an enum symbol", enumType, "GREEN", "action: replace, value: RED", "RED", ""},
		{"replace of an enum needs a symbol", enumType, "GREEN", "action: replace, value: PURPLE", nil, "want one of the symbols"},
		{"bucket cannot apply to an enum", enumType, "GREEN", bucketRule, nil, "bucket needs"},
		{"block rejects a record with an enum", enumType, "GREEN", "action: block", nil, ReasonBlocked},

		// arrays
		{"redact empties each element of an array", `{"type":"array","items":"string"}`, []any{"a1", "b22"}, "action: redact", []any{"", ""}, ""},
		{"hash pseudonymises each element of an array", `{"type":"array","items":"string"}`, []any{"a1", "b22"}, "action: hash", []any{hexHMAC("a1"), hexHMAC("b22")}, ""},
		{"mask masks each element of an array", `{"type":"array","items":"string"}`, []any{"a1", "b22"}, "action: mask, keep_last: 2", []any{"**", "*22"}, ""},
		{"generalize rounds each element of an array", `{"type":"array","items":"double"}`, []any{1.26, 2.31}, "action: generalize, precision: 1", []any{1.3, 2.3}, ""},
		{"drop cannot apply to an array without null or default", `{"type":"array","items":"string"}`, []any{}, "action: drop", nil, "does not allow null"},
		{"replace cannot apply to an array", `{"type":"array","items":"string"}`, []any{}, "action: replace, value: x", nil, "want an array"},
		{"bucket maps each element of an array", `{"type":"array","items":"long"}`, []any{int64(5), int64(500)}, bucketRule, []any{int64(0), int64(100)}, ""},
		{"block rejects a record with an array", `{"type":"array","items":"string"}`, []any{}, "action: block", nil, ReasonBlocked},
		{"an empty array stays empty", `{"type":"array","items":"string"}`, []any{}, "action: hash", []any{}, ""},

		// maps
		{"redact empties each value of a map", `{"type":"map","values":"string"}`, map[string]any{"k": "v1", "l": "v2"}, "action: redact", map[string]any{"k": "", "l": ""}, ""},
		{"hash pseudonymises each value of a map", `{"type":"map","values":"string"}`, map[string]any{"k": "v1"}, "action: hash", map[string]any{"k": hexHMAC("v1")}, ""},
		{"mask masks each value of a map", `{"type":"map","values":"string"}`, map[string]any{"k": "value"}, "action: mask, keep_first: 1", map[string]any{"k": "v****"}, ""},
		{"generalize rounds each value of a map", `{"type":"map","values":"int"}`, map[string]any{"k": 1249}, "action: generalize, precision: -2", map[string]any{"k": 1200}, ""},
		{"drop cannot apply to a map", `{"type":"map","values":"string"}`, map[string]any{}, "action: drop", nil, "does not allow null"},
		{"replace cannot apply to a map", `{"type":"map","values":"string"}`, map[string]any{}, "action: replace, value: 1", nil, "want a map"},
		{"bucket maps each value of a map", `{"type":"map","values":"double"}`, map[string]any{"k": 20000.0}, bucketRule, map[string]any{"k": 10000.0}, ""},
		{"block rejects a record with a map", `{"type":"map","values":"string"}`, map[string]any{}, "action: block", nil, ReasonBlocked},

		// nested records
		{"redact empties every field of a nested record", innerType, map[string]any{"inner": "x", "n": int64(5)}, "action: redact", map[string]any{"inner": "", "n": int64(0)}, ""},
		{"hash of a record cannot apply to its long field", innerType, map[string]any{"inner": "x", "n": int64(5)}, "action: hash", nil, "field v.n of schema id 1 (long)"},
		{"mask of a record cannot apply to its long field", innerType, map[string]any{"inner": "x", "n": int64(5)}, "action: mask", nil, "field v.n"},
		{"generalize of a record cannot apply to its string field", innerType, map[string]any{"inner": "x", "n": int64(5)}, "action: generalize, precision: 0", nil, "field v.inner"},
		{"drop cannot apply to a record", innerType, map[string]any{"inner": "x", "n": int64(5)}, "action: drop", nil, "does not allow null"},
		{"replace cannot apply to a record", innerType, map[string]any{"inner": "x", "n": int64(5)}, "action: replace, value: x", nil, "want a record"},
		{"bucket of a record cannot apply to its string field", innerType, map[string]any{"inner": "x", "n": int64(5)}, bucketRule, nil, "field v.inner"},
		{"block rejects a record with a nested record", innerType, map[string]any{"inner": "x", "n": int64(5)}, "action: block", nil, ReasonBlocked},

		// unions with null
		{"redact nulls a nullable string", `["null","string"]`, "alice", "action: redact", nil, ""},
		{"hash pseudonymises a nullable string", `["null","string"]`, "alice", "action: hash", hexHMAC("alice"), ""},
		{"mask masks a nullable string", `["null","string"]`, "alice", "action: mask, keep_first: 1", "a****", ""},
		{"generalize truncates a nullable timestamp", `["null",{"type":"long","logicalType":"timestamp-millis"}]`, ts, "action: generalize, truncate: day", time.Date(2024, 5, 17, 0, 0, 0, 0, time.UTC), ""},
		{"drop nulls a nullable string", `["null","string"]`, "alice", "action: drop", nil, ""},
		{"replace writes into the string branch", `["null","string"]`, "alice", "action: replace, value: x", "x", ""},
		{"bucket maps a nullable long", `["null","long"]`, int64(150), bucketRule, int64(100), ""},
		{"block rejects a record whose nullable field has a value", `["null","string"]`, "x", "action: block", nil, ReasonBlocked},
		{"hash leaves null alone", `["null","string"]`, nil, "action: hash", nil, ""},
		{"mask leaves null alone", `["null","string"]`, nil, "action: mask", nil, ""},
		{"block lets a null through", `["null","string"]`, nil, "action: block", nil, ""},
		{"redact of a multi-type union with null writes null", `["null","string","long"]`, int64(3), "action: redact", nil, ""},
		{"hash of a union with a long branch is an error", `["null","string","long"]`, "x", "action: hash", nil, "(long)"},
		{"a union without null keeps the branch when redacted", `["string","long"]`, int64(3), "action: redact", int64(0), ""},
		{"redact of a nullable record nulls it", `["null",` + innerType + `]`, map[string]any{"Inner": map[string]any{"inner": "x", "n": int64(5)}}, "action: redact", nil, ""},

		// logical types
		{"generalize truncates timestamp-millis to the day", `{"type":"long","logicalType":"timestamp-millis"}`, ts, "action: generalize, truncate: day", time.Date(2024, 5, 17, 0, 0, 0, 0, time.UTC), ""},
		{"generalize truncates timestamp-micros to the hour", `{"type":"long","logicalType":"timestamp-micros"}`, ts, "action: generalize, truncate: hour", time.Date(2024, 5, 17, 13, 0, 0, 0, time.UTC), ""},
		{"generalize truncates a date to the month", `{"type":"int","logicalType":"date"}`, ts, "action: generalize, truncate: month", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), ""},
		{"generalize truncates a time of day to the hour", `{"type":"int","logicalType":"time-millis"}`, 13*time.Hour + 45*time.Minute, "action: generalize, truncate: hour", 13 * time.Hour, ""},
		{"generalize of a timestamp needs truncate", `{"type":"long","logicalType":"timestamp-millis"}`, ts, "action: generalize, precision: 2", nil, "a timestamp needs truncate"},
		{"hash of a uuid string is a uuid", `{"type":"string","logicalType":"uuid"}`, "0b3c5f9e-2f57-4d0e-9c39-1f2a3b4c5d6e", "action: hash", "uuid", ""},
		{"redact of a uuid string is the nil uuid", `{"type":"string","logicalType":"uuid"}`, "0b3c5f9e-2f57-4d0e-9c39-1f2a3b4c5d6e", "action: redact", zeroUUID, ""},
		{"mask cannot apply to a uuid", `{"type":"string","logicalType":"uuid"}`, "0b3c5f9e-2f57-4d0e-9c39-1f2a3b4c5d6e", "action: mask", nil, "uuid invalid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := maskAvroField(t, c.typ, "", c.in, c.rule)
			checkCase(t, got, err, c.want, c.err)
		})
	}
}

func TestMaskAvroDropWritesTheFieldDefault(t *testing.T) {
	for _, c := range []struct{ typ, def string }{
		{`"string"`, `"n/a"`}, {`"long"`, `-1`}, {enumType, `"RED"`}, {`{"type":"array","items":"string"}`, `[]`},
		{`"bytes"`, `"\u00ff"`},
	} {
		t.Run(c.typ, func(t *testing.T) {
			sch := `{"type":"record","name":"D","fields":[{"name":"v","type":` + c.typ + `,"default":` + c.def + `}]}`
			set := oneRule(t, "v", "action: drop")
			plan := compile(t, set, Schema{Type: Avro, Text: sch, ID: 3})
			hs := hambaSchema(t, sch)
			var in map[string]any
			switch {
			case strings.Contains(c.typ, "long"):
				in = map[string]any{"v": int64(5)}
			case strings.Contains(c.typ, "array"):
				in = map[string]any{"v": []any{"x"}}
			case strings.Contains(c.typ, "bytes"):
				in = map[string]any{"v": []byte("secret")}
			case strings.Contains(c.typ, "enum"):
				in = map[string]any{"v": "GREEN"}
			default:
				in = map[string]any{"v": "secret"}
			}
			bin, err := avro.Marshal(hs, in)
			if err != nil {
				t.Fatal(err)
			}
			out, _, err := plan.MaskAvro(bin)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := avro.Unmarshal(hs, out, &got); err != nil {
				t.Fatalf("output does not decode: %v", err)
			}
			want := map[string]any{}
			defBin, _ := avro.Marshal(hs, map[string]any{})
			if err := avro.Unmarshal(hs, defBin, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want the default %#v", got, want)
			}
		})
	}
}

// maskAvroField masks v of {keep: string, v: typ, tail: long}, checks that the
// output decodes with the same schema and that keep and tail are untouched, and
// returns v. extraFields are more fields after tail, for paths.
func maskAvroField(t *testing.T, typ, extraFields string, in any, rule string) (any, error) {
	t.Helper()
	sch := `{"type":"record","name":"T","fields":[{"name":"keep","type":"string"},{"name":"v","type":` + typ + `},{"name":"tail","type":"long"}` + extraFields + `]}`
	set := oneRule(t, "v", rule)
	plan, err := Compile(set, "p", "t", Schema{Type: Avro, Text: sch, ID: 1}, WithHashKey(hashKey))
	if err != nil {
		return nil, err
	}
	hs := hambaSchema(t, sch)
	bin, err := avro.Marshal(hs, map[string]any{"keep": "k", "v": in, "tail": int64(42)})
	if err != nil {
		t.Fatalf("encoding the input: %v", err)
	}
	out, res, err := plan.MaskAvro(bin)
	if err != nil {
		return nil, err
	}
	var got map[string]any
	if err := avro.Unmarshal(hs, out, &got); err != nil {
		t.Fatalf("the output does not decode with the writer schema: %v", err)
	}
	if got["keep"] != "k" || got["tail"] != int64(42) {
		t.Fatalf("untouched fields changed: %v", got)
	}
	for _, tc := range res.Touches {
		if tc.Policy != "t" || tc.Version != 1 || tc.Rule != 0 || tc.Count < 1 || !strings.HasPrefix(tc.Path, "v") {
			t.Errorf("unexpected touch %+v", tc)
		}
	}
	return got["v"], nil
}

// checkCase compares a masked value or an error with the expectation.
func checkCase(t *testing.T, got any, err error, want any, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if err == nil {
			t.Fatalf("got %#v, want an error with %q", got, wantErr)
		}
		var v *Violation
		if errors.As(err, &v) {
			if v.Reason != wantErr {
				t.Fatalf("got violation %v, want reason %s", v, wantErr)
			}
			return
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("got error %q, want it to contain %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if want == "uuid" {
		s, _ := got.(string)
		if len(s) != 36 || s[14] != '8' {
			t.Fatalf("got %q, want a version-8 UUID", s)
		}
		return
	}
	if tm, ok := got.(time.Time); ok {
		if wt, ok := want.(time.Time); !ok || !tm.Equal(wt) {
			t.Fatalf("got %v, want %v", tm, want)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v (%T), want %#v (%T)", got, got, want, want)
	}
}
