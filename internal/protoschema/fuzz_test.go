package protoschema

import (
	"strings"
	"testing"
)

// encodable reports whether Descriptor can write every option: standard
// ones, Confluent's meta options and raw extensions, but not custom options
// known only by the name the text gives them.
func encodable(opts []Option, m *optMsg) bool {
	for _, o := range opts {
		if o.Value.Kind == RawValue {
			continue
		}
		f := m.byName(o.Name)
		if f == nil {
			return false
		}
		if f.kind == MessageK && (o.Value.Kind != MessageValue || !encodable(o.Value.Fields, f.msg)) {
			return false
		}
	}
	return true
}

func fileEncodable(f *File) bool {
	ok := encodable(f.Options, fileOptions)
	f.walkMessages(func(m *Message) {
		ok = ok && encodable(m.Options, messageOptions)
		for _, o := range m.Oneofs {
			ok = ok && encodable(o.Options, oneofOptions)
		}
		for _, fd := range append(m.Fields, m.Extensions...) {
			ok = ok && encodable(fd.Options, fieldOptions)
		}
		for _, e := range m.Enums {
			ok = ok && enumEncodable(e)
		}
	})
	for _, e := range f.Enums {
		ok = ok && enumEncodable(e)
	}
	for _, x := range f.Extensions {
		ok = ok && encodable(x.Options, fieldOptions)
	}
	for _, s := range f.Services {
		ok = ok && encodable(s.Options, serviceOptions)
		for _, m := range s.Methods {
			ok = ok && encodable(m.Options, methodOptions)
		}
	}
	return ok
}

func enumEncodable(e *Enum) bool {
	ok := encodable(e.Options, enumOptions)
	for _, v := range e.Values {
		ok = ok && encodable(v.Options, enumValueOptions)
	}
	return ok
}

// roundTrip checks that f survives Descriptor and Decode with its canonical
// form.
func roundTrip(t *testing.T, f *File) {
	lim := DefaultLimits()
	if err := lim.Link(f, nil, false); err != nil {
		return // e.g. a field typed with an enum's name as a message
	}
	canon := f.Canonical()
	desc := f.Descriptor("fuzz.proto")
	back, err := Decode(desc)
	if err != nil {
		t.Fatalf("the descriptor of a parsed file does not decode: %v\n%s", err, canon)
	}
	if err := lim.Link(back, nil, false); err != nil {
		t.Fatalf("the decoded descriptor does not link: %v\n%s", err, canon)
	}
	if got := back.Canonical(); got != canon && fileEncodable(f) {
		t.Fatalf("round trip changed the canonical form:\n--- before\n%s--- after\n%s", canon, got)
	}
}

// FuzzParse feeds .proto text to the parser: no input may panic or exceed
// the limits' bounds, and what parses must survive the round trip through
// the serialized form. Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(`syntax = "proto3"; package a; message M { string s = 1 [(confluent.field_meta).tags = "PII"]; map<int32, M> m = 2; oneof o { bytes b = 3; } optional int64 n = 4; }`)
	f.Fuzz(func(t *testing.T, src string) {
		file, err := Parse("fuzz.proto", src)
		if err != nil {
			return
		}
		roundTrip(t, file)
	})
}

// FuzzDecode feeds bytes to the descriptor decoder: no input may panic, and
// what decodes must encode and decode again to the same canonical form.
// Seeds: testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("\n\x01a\x12\x01b\"\x0b\n\x01M\x12\x06\n\x01s\x18\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Decode(b)
		if err != nil {
			return
		}
		roundTrip(t, file)
	})
}

// FuzzLoad loads a schema as a registry holds it (.proto text or a base64
// serialized descriptor, in any of the alphabets) with one reference, as
// the masking plans and the registry server do. No input may panic; a
// base64 schema reads as its descriptor does; what loads, written as a
// base64 descriptor, loads again to the same canonical form. Seeds:
// testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	money := `syntax = "proto3"; package c; message Money { int64 cents = 1; string currency = 2 [(confluent.field_meta).tags = "PII"]; }`
	order := `syntax = "proto3"; package o; import "c.proto"; import "google/protobuf/timestamp.proto"; message Order { c.Money total = 1; google.protobuf.Timestamp at = 2; repeated Line lines = 3; message Line { string sku = 1; } }`
	f.Add(order, "c.proto", money)
	mf, err := Parse("c.proto", money)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mf.DescriptorBase64("c.proto"), "", "")
	f.Add(order, "c.proto", mf.DescriptorBase64("c.proto"))
	f.Add("CgFh", "", "")              // "\n\x01a": a file named a
	f.Add("Cg-_", "x.proto", "Cg==\n") // URL alphabet; a ref with a newline
	f.Add("Cv////8P", "", "")          // a length of 2^32-1 in 5 bytes
	f.Fuzz(func(t *testing.T, text, refName, refText string) {
		var refs []Ref
		if refName != "" || refText != "" {
			refs = []Ref{{Name: refName, Text: refText}}
		}
		file, err := Load("fuzz.proto", text, refs)
		if IsSerialized(text) {
			b, berr := SerializedBytes(text)
			if berr == nil {
				if _, derr := Decode(b); derr != nil && err == nil {
					t.Fatalf("the base64 schema loads, but its descriptor does not decode: %v", derr)
				}
			} else if err == nil {
				t.Fatalf("a schema of invalid base64 loads")
			}
		}
		if err != nil {
			return
		}
		canon := file.Canonical()
		back, err := Load("fuzz.proto", file.DescriptorBase64("fuzz.proto"), refs)
		if err != nil {
			t.Fatalf("the base64 descriptor of a loaded schema does not load: %v\n%s", err, canon)
		}
		if got := back.Canonical(); got != canon && fileEncodable(file) {
			t.Fatalf("a round trip through base64 changed the canonical form:\n--- before\n%s--- after\n%s", canon, got)
		}
	})
}

// TestExtensionJSONNameDropped: found by FuzzDecode (its input is
// testdata/fuzz/FuzzDecode/61b38b9f64fb9bb3). A descriptor giving an
// extension a json_name kept it in the model and the canonical form, but
// Descriptor writes none for extensions, so a round trip changed the
// schema's canonical form.
func TestExtensionJSONNameDropped(t *testing.T) {
	// extend "00…0" { optional string A0000000 = 48 [json_name = "000000"]; }
	in := []byte(":r\x180X0(\t2\b00000000R\x06000000Y00000000\n\bA00000002!000000000000000000000000000000000\x12\"0000000000000000000000000000000000")
	got, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Canonical(); strings.Contains(c, "json_name") {
		t.Fatalf("the extension kept a json_name:\n%s", c)
	}
	roundTrip(t, got)
}
