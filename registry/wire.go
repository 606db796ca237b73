package registry

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Magic bytes of the Confluent framing. The same encoding is used as a payload
// prefix and as the value of the schema-id headers.
const (
	// MagicID is followed by a 4-byte big-endian schema id (all Confluent
	// serializers up to 7.x, and the default of 8.x).
	MagicID byte = 0
	// MagicGUID is followed by the 16-byte GUID of the schema (Confluent 8.x
	// serializers that write the schema id into a header).
	MagicGUID byte = 1
)

// Header names under which Confluent 8.x serializers carry the schema reference
// instead of prefixing the payload. The payload is then the bare serialized body.
const (
	KeySchemaIDHeader   = "__key_schema_id"
	ValueSchemaIDHeader = "__value_schema_id"
)

// maxIndexes bounds the Protobuf message-index list. protoc rejects message
// nesting deeper than 100, so a longer list can only come from garbage input,
// and the bound keeps such input from allocating much.
const maxIndexes = 128

// SchemaRef is the schema reference a Confluent serializer puts in front of a
// record (or into a schema-id header).
type SchemaRef struct {
	// Magic is MagicID or MagicGUID and says which of ID and GUID is set.
	Magic byte
	// ID is the registry's schema id when Magic is MagicID.
	ID int32
	// GUID is the schema's GUID when Magic is MagicGUID.
	GUID [16]byte
	// Indexes is the Protobuf message-index path of the record's message type in
	// its .proto file ([0] for the first top-level message). It is nil for Avro
	// and JSON Schema.
	Indexes []int
}

// String formats the reference for logs and errors: "id 42", "guid
// 6ba7b810-9dad-11d1-80b4-00c04fd430c8", with " indexes [1 0]" for Protobuf.
func (r SchemaRef) String() string {
	var b strings.Builder
	if r.Magic == MagicGUID {
		b.WriteString("guid ")
		b.WriteString(FormatGUID(r.GUID))
	} else {
		b.WriteString("id ")
		b.WriteString(strconv.FormatInt(int64(r.ID), 10))
	}
	if r.Indexes != nil {
		fmt.Fprintf(&b, " indexes %v", r.Indexes)
	}
	return b.String()
}

// FormatGUID formats a GUID in the canonical 8-4-4-4-12 hex form.
func FormatGUID(g [16]byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], g[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], g[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], g[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], g[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], g[10:16])
	return string(buf[:])
}

// ParseGUID parses the 8-4-4-4-12 hex form of a GUID.
func ParseGUID(s string) ([16]byte, error) {
	var g [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("invalid guid %q", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(g[:], []byte(h)); err != nil {
		return g, fmt.Errorf("invalid guid %q", s)
	}
	return g, nil
}

// ReadRef parses the schema reference at the start of b: the magic byte, the
// id or GUID and, when t is Protobuf, the message-index list. It returns the
// number of bytes it consumed, so the serialized body is b[n:]. Errors are
// *WireError. Indexes never aliases b.
func ReadRef(b []byte, t SchemaType) (ref SchemaRef, n int, err error) {
	if len(b) == 0 {
		return ref, 0, &WireError{Reason: ReasonShort, Offset: 0, Detail: "empty input"}
	}
	ref.Magic = b[0]
	switch ref.Magic {
	case MagicID:
		if len(b) < 5 {
			return ref, 0, &WireError{Reason: ReasonShort, Offset: len(b),
				Detail: fmt.Sprintf("%d bytes, magic byte 0 needs 5 (magic + 4-byte schema id)", len(b))}
		}
		ref.ID = int32(binary.BigEndian.Uint32(b[1:5]))
		n = 5
	case MagicGUID:
		if len(b) < 17 {
			return ref, 0, &WireError{Reason: ReasonShort, Offset: len(b),
				Detail: fmt.Sprintf("%d bytes, magic byte 1 needs 17 (magic + 16-byte schema guid)", len(b))}
		}
		copy(ref.GUID[:], b[1:17])
		n = 17
	default:
		return ref, 0, &WireError{Reason: ReasonBadMagic, Offset: 0,
			Detail: fmt.Sprintf("first byte 0x%02x, want 0x00 or 0x01", b[0])}
	}
	if t != Protobuf {
		return ref, n, nil
	}
	idx, m, err := readIndexes(b, n)
	if err != nil {
		return ref, 0, err
	}
	ref.Indexes = idx
	return ref, n + m, nil
}

// readIndexes decodes the Protobuf message-index list at b[off:]: a zig-zag
// varint count followed by that many zig-zag varint indexes, or a single 0
// byte standing for [0].
func readIndexes(b []byte, off int) ([]int, int, error) {
	pos := off
	count, w, err := readVarint(b, pos)
	if err != nil {
		return nil, 0, err
	}
	pos += w
	if count == 0 {
		return []int{0}, pos - off, nil
	}
	if count < 0 || count > maxIndexes || int(count) > len(b)-pos {
		return nil, 0, &WireError{Reason: ReasonBadIndex, Offset: off,
			Detail: fmt.Sprintf("message-index count %d out of range (at most %d, %d bytes left)", count, maxIndexes, len(b)-pos)}
	}
	idx := make([]int, count)
	for i := range idx {
		v, w, err := readVarint(b, pos)
		if err != nil {
			return nil, 0, err
		}
		if v < 0 {
			return nil, 0, &WireError{Reason: ReasonBadIndex, Offset: pos,
				Detail: fmt.Sprintf("negative message index %d", v)}
		}
		idx[i] = int(v)
		pos += w
	}
	return idx, pos - off, nil
}

// readVarint decodes one zig-zag varint of at most 32 bits as Kafka's
// ByteUtils.readVarint does (at most 5 bytes).
func readVarint(b []byte, off int) (int32, int, error) {
	var u uint32
	for i := 0; i < 5; i++ {
		if off+i >= len(b) {
			return 0, 0, &WireError{Reason: ReasonBadIndex, Offset: off,
				Detail: "message-index varint runs past the end of the input"}
		}
		c := b[off+i]
		if i == 4 && c > 0x0f {
			return 0, 0, &WireError{Reason: ReasonBadIndex, Offset: off,
				Detail: "message-index varint overflows 32 bits"}
		}
		u |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int32(u>>1) ^ -int32(u&1), i + 1, nil
		}
	}
	return 0, 0, &WireError{Reason: ReasonBadIndex, Offset: off, Detail: "message-index varint longer than 5 bytes"}
}

func appendVarint(dst []byte, v int32) []byte {
	u := uint32(v<<1) ^ uint32(v>>31)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}

// AppendRef appends the encoding of ref to dst: magic byte, then the id
// (MagicID) or GUID (MagicGUID) and, when t is Protobuf, the message indexes
// (an empty list or [0] is written as the single byte 0, as Confluent does).
// Any Magic other than MagicGUID is written as MagicID.
func AppendRef(dst []byte, ref SchemaRef, t SchemaType) []byte {
	if ref.Magic == MagicGUID {
		dst = append(dst, MagicGUID)
		dst = append(dst, ref.GUID[:]...)
	} else {
		dst = append(dst, MagicID)
		dst = binary.BigEndian.AppendUint32(dst, uint32(ref.ID))
	}
	if t != Protobuf {
		return dst
	}
	if len(ref.Indexes) == 0 || (len(ref.Indexes) == 1 && ref.Indexes[0] == 0) {
		return append(dst, 0)
	}
	dst = appendVarint(dst, int32(len(ref.Indexes)))
	for _, i := range ref.Indexes {
		dst = appendVarint(dst, int32(i))
	}
	return dst
}

// AppendFrame appends a framed record to dst: the encoding of ref followed by
// body, the bare serialized record.
func AppendFrame(dst []byte, ref SchemaRef, t SchemaType, body []byte) []byte {
	return append(AppendRef(dst, ref, t), body...)
}

// ParseHeaderValue parses the value of a __key_schema_id or __value_schema_id
// header, which must hold exactly one schema reference (ReasonTrailing
// otherwise).
func ParseHeaderValue(v []byte, t SchemaType) (SchemaRef, error) {
	ref, n, err := ReadRef(v, t)
	if err != nil {
		return ref, err
	}
	if n != len(v) {
		return ref, &WireError{Reason: ReasonTrailing, Offset: n,
			Detail: fmt.Sprintf("%d bytes after the schema reference", len(v)-n)}
	}
	return ref, nil
}

// Header is one Kafka record header, as Locate reads it.
type Header struct {
	Key   string
	Value []byte
}

// Place says where a record carries the schema reference of its key or value.
type Place uint8

const (
	// Absent: no schema reference (a tombstone value, or a plain key).
	Absent Place = iota
	// InPayload: the key or value bytes start with the reference; the body
	// follows at Location.Len.
	InPayload
	// InHeader: headers[Location.Header] holds the reference and the key or
	// value bytes are the bare body.
	InHeader
)

func (p Place) String() string {
	switch p {
	case Absent:
		return "absent"
	case InPayload:
		return "payload"
	case InHeader:
		return "header"
	}
	return "place(" + strconv.Itoa(int(p)) + ")"
}

// Location is where the schema reference of a record's key or value lives.
// To translate it, rewrite the payload prefix (InPayload: AppendFrame(dst,
// newRef, t, data[Len:])) or the header value (InHeader: AppendRef(nil,
// newRef, t)).
type Location struct {
	Place Place
	// Header is the index into the headers passed to Locate when Place is InHeader.
	Header int
	// Len is the length of the payload prefix when Place is InPayload, 0 otherwise.
	Len int
	// Ref is the parsed reference (zero when Place is Absent).
	Ref SchemaRef
}

// KeyMode tells Locate whether record keys are expected to be framed.
type KeyMode uint8

const (
	// KeyPlain: keys are not framed (string or raw keys). A __key_schema_id
	// header is still located, so it is never passed through untranslated.
	KeyPlain KeyMode = iota
	// KeyFramed: non-empty keys must be framed; an unframed key is an error.
	KeyFramed
	// KeyDetect: a key is framed if it parses as a schema reference with
	// magic byte 0 and a body; otherwise it is plain. A heuristic for topics
	// that mix key formats; a plain key starting with a 0x00 byte is
	// misclassified.
	KeyDetect
)

// Locate reports where a record's key and value carry their schema
// references, for a topic whose values are of type t: in a
// __key_schema_id/__value_schema_id header (which takes precedence: with it the
// payload is a bare body), in a payload prefix, or nowhere (an empty value is a
// tombstone). A value without either is an error, as are malformed or
// duplicated schema-id headers, so no reference is ever passed through
// without the caller seeing it. Errors are *WireError with Part set.
func Locate(key, value []byte, headers []Header, t SchemaType, keys KeyMode) (k, v Location, err error) {
	kh, vh := -1, -1
	for i, h := range headers {
		switch h.Key {
		case KeySchemaIDHeader:
			if kh >= 0 {
				return k, v, &WireError{Reason: ReasonDupHeader, Part: "header " + KeySchemaIDHeader, Offset: 0,
					Detail: fmt.Sprintf("headers %d and %d", kh, i)}
			}
			kh = i
		case ValueSchemaIDHeader:
			if vh >= 0 {
				return k, v, &WireError{Reason: ReasonDupHeader, Part: "header " + ValueSchemaIDHeader, Offset: 0,
					Detail: fmt.Sprintf("headers %d and %d", vh, i)}
			}
			vh = i
		}
	}

	if vh >= 0 {
		ref, err := ParseHeaderValue(headers[vh].Value, t)
		if err != nil {
			return k, v, withPart(err, "header "+ValueSchemaIDHeader)
		}
		v = Location{Place: InHeader, Header: vh, Ref: ref}
	} else if len(value) > 0 {
		ref, n, err := ReadRef(value, t)
		if err != nil {
			return k, v, withPart(err, "value")
		}
		v = Location{Place: InPayload, Len: n, Ref: ref}
	}

	if kh >= 0 {
		ref, err := ParseHeaderValue(headers[kh].Value, t)
		if err != nil {
			return k, v, withPart(err, "header "+KeySchemaIDHeader)
		}
		k = Location{Place: InHeader, Header: kh, Ref: ref}
		return k, v, nil
	}
	if len(key) == 0 {
		return k, v, nil
	}
	switch keys {
	case KeyFramed:
		ref, n, err := ReadRef(key, t)
		if err != nil {
			return k, v, withPart(err, "key")
		}
		k = Location{Place: InPayload, Len: n, Ref: ref}
	case KeyDetect:
		if key[0] != MagicID {
			break
		}
		if ref, n, err := ReadRef(key, t); err == nil && n < len(key) {
			k = Location{Place: InPayload, Len: n, Ref: ref}
		}
	}
	return k, v, nil
}

func withPart(err error, part string) error {
	var we *WireError
	if errors.As(err, &we) {
		we.Part = part
	}
	return err
}
