package registry

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzReadRef checks that the decoder never panics, fails only with a
// *WireError, never claims more bytes than it got, and that what it accepts
// re-encodes to a reference that decodes the same.
func FuzzReadRef(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 'x'}, false)
	f.Add([]byte{0, 0, 0, 0, 1, 0, 'x'}, true)
	f.Add([]byte{0, 0, 0, 0, 1, 4, 2, 0}, true)
	f.Add(guidFrame(2, 6), true)
	f.Fuzz(func(t *testing.T, b []byte, proto bool) {
		typ := Avro
		if proto {
			typ = Protobuf
		}
		ref, n, err := ReadRef(b, typ)
		if err != nil {
			var we *WireError
			if !errors.As(err, &we) {
				t.Fatalf("error %v is not a *WireError", err)
			}
			if we.Offset < 0 || we.Offset > len(b) {
				t.Fatalf("offset %d outside input of %d bytes", we.Offset, len(b))
			}
			return
		}
		if n < 5 || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		enc := AppendRef(nil, ref, typ)
		again, m, err := ReadRef(append(enc, b[n:]...), typ)
		if err != nil || m != len(enc) || !reflect.DeepEqual(again, ref) {
			t.Fatalf("re-encoding % x of %+v decodes to %+v (n=%d, err=%v)", enc, ref, again, m, err)
		}
		if !bytes.Equal(AppendFrame(nil, ref, typ, b[n:])[len(enc):], b[n:]) {
			t.Fatal("AppendFrame altered the body")
		}
	})
}

// FuzzLocate checks that Locate never panics and that the locations it
// reports lie inside the record.
func FuzzLocate(f *testing.F) {
	f.Add([]byte("k"), []byte{0, 0, 0, 0, 1, 'v'}, []byte{}, uint8(0), false)
	f.Add([]byte{0, 0, 0, 0, 2, 'k'}, []byte{}, guidFrame(), uint8(2), true)
	f.Fuzz(func(t *testing.T, key, value, header []byte, mode uint8, valueHeader bool) {
		name := KeySchemaIDHeader
		if valueHeader {
			name = ValueSchemaIDHeader
		}
		hs := []Header{{Key: "other", Value: header}, {Key: name, Value: header}}
		k, v, err := Locate(key, value, hs, Protobuf, KeyMode(mode%3))
		if err != nil {
			var we *WireError
			if !errors.As(err, &we) || we.Part == "" {
				t.Fatalf("error %v is not a *WireError naming its part", err)
			}
			return
		}
		for _, c := range []struct {
			loc  Location
			data []byte
		}{{k, key}, {v, value}} {
			switch c.loc.Place {
			case InPayload:
				if c.loc.Len > len(c.data) {
					t.Fatalf("prefix %d beyond %d bytes", c.loc.Len, len(c.data))
				}
			case InHeader:
				if c.loc.Header != 1 {
					t.Fatalf("header index %d", c.loc.Header)
				}
			}
		}
	})
}
