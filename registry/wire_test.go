package registry

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

var testGUID = [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

func guidFrame(rest ...byte) []byte {
	return append(append([]byte{1}, testGUID[:]...), rest...)
}

func TestReadRef(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		typ    SchemaType
		want   SchemaRef
		n      int
		reason string
		offset int
	}{
		{name: "an avro frame yields the big-endian id", in: []byte{0, 0, 0, 1, 0x2a, 0xde, 0xad}, typ: Avro,
			want: SchemaRef{ID: 298}, n: 5},
		{name: "a frame without body is valid", in: []byte{0, 0, 0, 0, 7}, typ: JSON, want: SchemaRef{ID: 7}, n: 5},
		{name: "the largest id is negative as int32", in: []byte{0, 0xff, 0xff, 0xff, 0xff}, typ: Avro, want: SchemaRef{ID: -1}, n: 5},
		{name: "a guid frame yields the guid", in: guidFrame(9), typ: Avro, want: SchemaRef{Magic: MagicGUID, GUID: testGUID}, n: 17},
		{name: "protobuf's single zero byte means the first message", in: []byte{0, 0, 0, 0, 3, 0, 0x08}, typ: Protobuf,
			want: SchemaRef{ID: 3, Indexes: []int{0}}, n: 6},
		{name: "protobuf indexes are zig-zag varints after a count", in: []byte{0, 0, 0, 0, 3, 4, 2, 0, 0x08}, typ: Protobuf,
			want: SchemaRef{ID: 3, Indexes: []int{1, 0}}, n: 8},
		{name: "protobuf indexes past 63 take two bytes", in: []byte{0, 0, 0, 0, 3, 2, 0x80, 0x01}, typ: Protobuf,
			want: SchemaRef{ID: 3, Indexes: []int{64}}, n: 8},
		{name: "protobuf indexes follow a guid too", in: guidFrame(2, 6), typ: Protobuf,
			want: SchemaRef{Magic: MagicGUID, GUID: testGUID, Indexes: []int{3}}, n: 19},
		{name: "avro ignores bytes that look like indexes", in: []byte{0, 0, 0, 0, 3, 4, 2, 0}, typ: Avro,
			want: SchemaRef{ID: 3}, n: 5},

		{name: "empty input is short", in: nil, typ: Avro, reason: ReasonShort, offset: 0},
		{name: "a truncated id is short", in: []byte{0, 0, 1}, typ: Avro, reason: ReasonShort, offset: 3},
		{name: "a truncated guid is short", in: []byte{1, 2, 3, 4, 5}, typ: Avro, reason: ReasonShort, offset: 5},
		{name: "a json document is not framed", in: []byte(`{"a":1}`), typ: JSON, reason: ReasonBadMagic, offset: 0},
		{name: "magic byte 2 is unknown", in: []byte{2, 0, 0, 0, 1}, typ: Avro, reason: ReasonBadMagic, offset: 0},
		{name: "a missing index list is bad", in: []byte{0, 0, 0, 0, 1}, typ: Protobuf, reason: ReasonBadIndex, offset: 5},
		{name: "a negative count is bad", in: []byte{0, 0, 0, 0, 1, 1}, typ: Protobuf, reason: ReasonBadIndex, offset: 5},
		{name: "a count beyond the input is bad", in: []byte{0, 0, 0, 0, 1, 8, 2}, typ: Protobuf, reason: ReasonBadIndex, offset: 5},
		{name: "a truncated varint is bad", in: []byte{0, 0, 0, 0, 1, 2, 0x80}, typ: Protobuf, reason: ReasonBadIndex, offset: 6},
		{name: "a varint over 32 bits is bad", in: []byte{0, 0, 0, 0, 1, 2, 0xff, 0xff, 0xff, 0xff, 0x7f}, typ: Protobuf, reason: ReasonBadIndex, offset: 6},
		{name: "a negative index is bad", in: []byte{0, 0, 0, 0, 1, 2, 3}, typ: Protobuf, reason: ReasonBadIndex, offset: 6},
		{name: "more than 128 indexes are bad", in: append([]byte{0, 0, 0, 0, 1, 0x82, 0x02}, make([]byte, 129)...), typ: Protobuf, reason: ReasonBadIndex, offset: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, n, err := ReadRef(tt.in, tt.typ)
			if tt.reason != "" {
				var we *WireError
				if !errors.As(err, &we) {
					t.Fatalf("err = %v, want *WireError", err)
				}
				if we.Reason != tt.reason || we.Offset != tt.offset {
					t.Fatalf("got reason %q offset %d, want %q offset %d (%v)", we.Reason, we.Offset, tt.reason, tt.offset, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.n || !reflect.DeepEqual(ref, tt.want) {
				t.Fatalf("got %+v n=%d, want %+v n=%d", ref, n, tt.want, tt.n)
			}
		})
	}
}

func TestAppendRef(t *testing.T) {
	tests := []struct {
		name string
		ref  SchemaRef
		typ  SchemaType
		want []byte
	}{
		{"an id is magic 0 and four big-endian bytes", SchemaRef{ID: 258}, Avro, []byte{0, 0, 0, 1, 2}},
		{"a guid is magic 1 and sixteen bytes", SchemaRef{Magic: MagicGUID, GUID: testGUID}, JSON, guidFrame()},
		{"protobuf [0] is the single byte 0", SchemaRef{ID: 1, Indexes: []int{0}}, Protobuf, []byte{0, 0, 0, 0, 1, 0}},
		{"protobuf without indexes means [0]", SchemaRef{ID: 1}, Protobuf, []byte{0, 0, 0, 0, 1, 0}},
		{"protobuf [1 0] is count then indexes, zig-zag", SchemaRef{ID: 1, Indexes: []int{1, 0}}, Protobuf, []byte{0, 0, 0, 0, 1, 4, 2, 0}},
		{"indexes are dropped for avro", SchemaRef{ID: 1, Indexes: []int{1}}, Avro, []byte{0, 0, 0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendRef([]byte{}, tt.ref, tt.typ)
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("got % x, want % x", got, tt.want)
			}
			body := []byte("body")
			framed := AppendFrame(nil, tt.ref, tt.typ, body)
			ref, n, err := ReadRef(framed, tt.typ)
			if err != nil || !bytes.Equal(framed[n:], body) || ref.ID != tt.ref.ID || ref.GUID != tt.ref.GUID {
				t.Fatalf("round trip: %+v n=%d err=%v", ref, n, err)
			}
		})
	}
}

func TestParseHeaderValue(t *testing.T) {
	if _, err := ParseHeaderValue([]byte{0, 0, 0, 0, 1, 9}, Avro); !isReason(err, ReasonTrailing) {
		t.Fatalf("trailing byte: err = %v", err)
	}
	ref, err := ParseHeaderValue(guidFrame(0), Protobuf)
	if err != nil || ref.GUID != testGUID || !reflect.DeepEqual(ref.Indexes, []int{0}) {
		t.Fatalf("guid header with indexes: %+v, %v", ref, err)
	}
}

func TestGUIDFormat(t *testing.T) {
	s := FormatGUID(testGUID)
	if s != "6ba7b810-9dad-11d1-80b4-00c04fd430c8" {
		t.Fatalf("FormatGUID = %s", s)
	}
	g, err := ParseGUID(s)
	if err != nil || g != testGUID {
		t.Fatalf("ParseGUID = %v, %v", g, err)
	}
	if _, err := ParseGUID("6ba7b810-9dad-11d1-80b4-00c04fd430cz"); err == nil {
		t.Fatal("ParseGUID accepted a non-hex digit")
	}
	if got := (SchemaRef{ID: 5, Indexes: []int{1}}).String(); got != "id 5 indexes [1]" {
		t.Fatalf("String = %q", got)
	}
}

func isReason(err error, reason string) bool {
	var we *WireError
	return errors.As(err, &we) && we.Reason == reason
}

func TestLocate(t *testing.T) {
	framed := []byte{0, 0, 0, 0, 5, 'x'}
	tests := []struct {
		name       string
		key, value []byte
		headers    []Header
		mode       KeyMode
		wantK      Location
		wantV      Location
		reason     string
		part       string
	}{
		{name: "a framed value is located in the payload", value: framed,
			wantV: Location{Place: InPayload, Len: 5, Ref: SchemaRef{ID: 5}}},
		{name: "a tombstone has no reference", value: nil},
		{name: "a plain key is left alone", key: []byte("k1"), value: framed,
			wantV: Location{Place: InPayload, Len: 5, Ref: SchemaRef{ID: 5}}},
		{name: "a framed key is located when keys are framed", key: []byte{0, 0, 0, 0, 6, 'k'}, value: framed, mode: KeyFramed,
			wantK: Location{Place: InPayload, Len: 5, Ref: SchemaRef{ID: 6}},
			wantV: Location{Place: InPayload, Len: 5, Ref: SchemaRef{ID: 5}}},
		{name: "an unframed key is an error when keys are framed", key: []byte("k1"), value: framed, mode: KeyFramed,
			reason: ReasonBadMagic, part: "key"},
		{name: "detection finds a framed key", key: []byte{0, 0, 0, 0, 6, 'k'}, value: framed, mode: KeyDetect,
			wantK: Location{Place: InPayload, Len: 5, Ref: SchemaRef{ID: 6}},
			wantV: Location{Place: InPayload, Len: 5, Ref: SchemaRef{ID: 5}}},
		{name: "detection leaves a plain key alone", key: []byte("k1"), value: framed, mode: KeyDetect,
			wantV: Location{Place: InPayload, Len: 5, Ref: SchemaRef{ID: 5}}},
		{name: "an unframed value is an error", value: []byte("plain"), reason: ReasonBadMagic, part: "value"},
		{name: "a value header wins over the payload", value: []byte{0, 1, 2},
			headers: []Header{{Key: "trace", Value: []byte("t")}, {Key: ValueSchemaIDHeader, Value: guidFrame()}},
			wantV:   Location{Place: InHeader, Header: 1, Ref: SchemaRef{Magic: MagicGUID, GUID: testGUID}}},
		{name: "a key header is located even for plain keys", key: []byte("raw"), value: framed,
			headers: []Header{{Key: KeySchemaIDHeader, Value: []byte{0, 0, 0, 0, 9}}},
			wantK:   Location{Place: InHeader, Header: 0, Ref: SchemaRef{ID: 9}},
			wantV:   Location{Place: InPayload, Len: 5, Ref: SchemaRef{ID: 5}}},
		{name: "a duplicated value header is an error", value: []byte("x"),
			headers: []Header{{Key: ValueSchemaIDHeader, Value: guidFrame()}, {Key: ValueSchemaIDHeader, Value: guidFrame()}},
			reason:  ReasonDupHeader, part: "header " + ValueSchemaIDHeader},
		{name: "a malformed key header is an error", value: framed,
			headers: []Header{{Key: KeySchemaIDHeader, Value: []byte{1, 2}}},
			reason:  ReasonShort, part: "header " + KeySchemaIDHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, v, err := Locate(tt.key, tt.value, tt.headers, Avro, tt.mode)
			if tt.reason != "" {
				var we *WireError
				if !errors.As(err, &we) || we.Reason != tt.reason || we.Part != tt.part {
					t.Fatalf("err = %v, want reason %q part %q", err, tt.reason, tt.part)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(k, tt.wantK) || !reflect.DeepEqual(v, tt.wantV) {
				t.Fatalf("got key %+v value %+v, want key %+v value %+v", k, v, tt.wantK, tt.wantV)
			}
		})
	}
}

func TestWireErrorText(t *testing.T) {
	_, _, err := Locate(nil, []byte{0x7b}, nil, JSON, KeyPlain)
	want := "wire format: value: bad-magic at offset 0: first byte 0x7b, want 0x00 or 0x01"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// BenchmarkLocateReframe measures the wire-format part of translating one
// record: locate the value's reference and write the body under a new id.
func BenchmarkLocateReframe(b *testing.B) {
	value := AppendFrame(nil, SchemaRef{ID: 7}, Avro, make([]byte, 256))
	headers := []Header{{Key: "trace", Value: []byte("abc")}}
	dst := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		_, v, err := Locate([]byte("key"), value, headers, Avro, KeyPlain)
		if err != nil {
			b.Fatal(err)
		}
		dst = AppendFrame(dst[:0], SchemaRef{ID: 42}, Avro, value[v.Len:])
	}
}
