package protoschema

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/sourcecontextpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// goFiles is a protobuf-go registry with the files payment.proto imports:
// protobuf-go's own timestamp.proto and descriptor.proto, and
// confluent/meta.proto built from this package's text.
func goFiles(t testing.TB) *protoregistry.Files {
	t.Helper()
	files := new(protoregistry.Files)
	for _, fd := range []protoreflect.FileDescriptor{timestamppb.File_google_protobuf_timestamp_proto, descriptorpb.File_google_protobuf_descriptor_proto} {
		if err := files.RegisterFile(fd); err != nil {
			t.Fatal(err)
		}
	}
	meta, err := Load("confluent/meta.proto", wellKnown["confluent/meta.proto"], nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GoFile(files, meta.Descriptor("")); err != nil {
		t.Fatalf("confluent/meta.proto: %v", err)
	}
	return files
}

// GoFile builds and registers a protobuf-go file descriptor from serialized
// descriptor bytes: protodesc validates them as protoc's output would be.
func GoFile(files *protoregistry.Files, b []byte) (protoreflect.FileDescriptor, error) {
	var fdp descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(b, &fdp); err != nil {
		return nil, err
	}
	fd, err := protodesc.NewFile(&fdp, files)
	if err != nil {
		return nil, err
	}
	return fd, files.RegisterFile(fd)
}

func TestTextAndSerializedFormsGiveTheSameModel(t *testing.T) {
	text := readFile(t, "payment.proto")
	fromText, err := Load("acme/payment.proto", text, nil)
	if err != nil {
		t.Fatal(err)
	}
	// protobuf-go validates this package's encoding of the text, and its
	// own encoding of the result is the independent serialized form.
	gofd, err := GoFile(goFiles(t), fromText.Descriptor("acme/payment.proto"))
	if err != nil {
		t.Fatalf("protobuf-go refuses the descriptor encoded from the text: %v", err)
	}
	goBytes, err := proto.Marshal(protodesc.ToFileDescriptorProto(gofd))
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]string{
		"protobuf-go's encoding, standard base64": base64.StdEncoding.EncodeToString(goBytes),
		"protobuf-go's encoding, unpadded":        base64.RawStdEncoding.EncodeToString(goBytes),
		"this package's encoding":                 fromText.DescriptorBase64(""),
	}
	for name, serialized := range forms {
		t.Run(name+" has the text's canonical form", func(t *testing.T) {
			fromDesc, err := Load("", serialized, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fromDesc.Canonical(), fromText.Canonical(); got != want {
				t.Fatalf("canonical forms differ:\n--- serialized\n%s\n--- text\n%s", got, want)
			}
			if fromDesc.Name != "acme/payment.proto" && name != "this package's encoding" {
				t.Errorf("the descriptor's file name is lost: %q", fromDesc.Name)
			}
		})
	}

	fromDesc, err := Load("", forms["protobuf-go's encoding, standard base64"], nil)
	if err != nil {
		t.Fatal(err)
	}
	for form, f := range map[string]*File{"text": fromText, "serialized": fromDesc} {
		t.Run("the "+form+" form models fields, maps, oneofs and tags", func(t *testing.T) {
			checkPaymentModel(t, f)
		})
	}
}

func checkPaymentModel(t *testing.T, f *File) {
	t.Helper()
	pay := f.Message("acme.payments.Payment")
	if pay == nil {
		t.Fatal("no message acme.payments.Payment")
	}
	field := func(m *Message, name string) *Field {
		t.Helper()
		for _, fd := range m.Fields {
			if fd.Name == name {
				return fd
			}
		}
		t.Fatalf("%s has no field %s", m.FullName, name)
		return nil
	}
	if fd := field(pay, "created_at"); fd.Kind != MessageK || fd.Message == nil || fd.Message.FullName != "google.protobuf.Timestamp" {
		t.Errorf("created_at resolves to %v %v", fd.Kind, fd.TypeName)
	}
	if fd := field(pay, "currency"); fd.Kind != EnumK || fd.Enum == nil || fd.Enum.Values[0].Name != "CURRENCY_UNSPECIFIED" {
		t.Errorf("currency is %v %s", fd.Kind, fd.TypeName)
	}
	attrs := field(pay, "attributes")
	if !attrs.IsMap() || attrs.MapKey().Kind != String || attrs.MapValue().Kind != String || !slices.Equal(attrs.Tags, []string{"PII"}) {
		t.Errorf("attributes: map %v, tags %v", attrs.IsMap(), attrs.Tags)
	}
	slot := field(field(pay, "items").Message, "cards_by_slot")
	if !slot.IsMap() || slot.MapKey().Kind != Int32 || slot.MapValue().Message == nil || slot.MapValue().Message.FullName != "acme.payments.Card" {
		t.Errorf("cards_by_slot is not a map<int32, Card>")
	}
	iban := field(pay, "iban")
	if iban.Oneof < 0 || pay.Oneofs[iban.Oneof].Name != "method" || !slices.Equal(iban.Tags, []string{"PII", "BANK"}) {
		t.Errorf("iban: oneof %d, tags %v", iban.Oneof, iban.Tags)
	}
	note := field(pay, "note")
	if !note.Proto3Optional || note.Oneof < 0 || !pay.Oneofs[note.Oneof].Synthetic {
		t.Errorf("note is not a proto3 optional field with a synthetic oneof")
	}
	if fd := field(pay, "adjustments"); fd.Packed() || fd.Kind != Sint64 || fd.Label != Repeated {
		t.Errorf("adjustments: packed %v (written [packed = false])", fd.Packed())
	}
	if fd := field(pay, "codes"); !fd.Packed() {
		t.Errorf("codes: a proto3 repeated fixed32 is packed by default")
	}
	cust := f.Message("acme.payments.Customer")
	if !slices.Equal(cust.Tags, []string{"CUSTOMER"}) {
		t.Errorf("Customer's message tags are %v", cust.Tags)
	}
	for name, want := range map[string][]string{"id": nil, "name": {"PII"}, "email": {"PII"}, "phone": {"PII"}, "photo": nil} {
		if got := field(cust, name).Tags; !slices.Equal(got, want) {
			t.Errorf("Customer.%s tags %v, want %v", name, got, want)
		}
	}
	if fd := field(cust, "email"); fd.JSONName != "mail" {
		t.Errorf("email's json_name is %q", fd.JSONName)
	}
	if m, err := f.MessageAt([]int{0, 0}); err != nil || m.FullName != "acme.payments.Payment.Item" {
		t.Errorf("indexes [0 0] select %v (%v), want Payment.Item", m, err)
	}
}

func TestConfluentTagsInEveryOptionSyntax(t *testing.T) {
	cases := []struct {
		name, decl string
		want       []string
	}{
		{"an aggregate with a list", `string s = 1 [(confluent.field_meta) = { tags: ["PII", "GDPR"] }];`, []string{"PII", "GDPR"}},
		{"an aggregate with one string", `string s = 1 [(confluent.field_meta) = { tags: "PII" }];`, []string{"PII"}},
		{"an aggregate repeating the field", `string s = 1 [(confluent.field_meta) = { tags: "PII" tags: "X" }];`, []string{"PII", "X"}},
		{"a sub-field assignment", `string s = 1 [(confluent.field_meta).tags = "PII"];`, []string{"PII"}},
		{"two sub-field assignments merged", `string s = 1 [(confluent.field_meta).tags = "PII", (confluent.field_meta).tags = "X"];`, []string{"PII", "X"}},
		{"a fully qualified extension name", `string s = 1 [(.confluent.field_meta) = { tags: ["PII"] }];`, []string{"PII"}},
		{"angle brackets and a doc", `string s = 1 [(confluent.field_meta) = < doc: "d", tags: ["PII"] >];`, []string{"PII"}},
		{"other options around it", `string s = 1 [deprecated = true, (confluent.field_meta) = { params: { key: "k" value: "v" } tags: ["PII"] }, json_name = "S"];`, []string{"PII"}},
		{"no meta option", `string s = 1 [deprecated = true];`, nil},
		{"a map field", `map<string, string> s = 1 [(confluent.field_meta).tags = "PII"];`, []string{"PII"}},
	}
	for _, tt := range cases {
		t.Run(tt.name+" gives the tags", func(t *testing.T) {
			src := `syntax = "proto3"; import "confluent/meta.proto"; message M { ` + tt.decl + ` }`
			f, err := Load("", src, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Messages[0].Fields[0].Tags; !slices.Equal(got, tt.want) {
				t.Fatalf("tags %v, want %v", got, tt.want)
			}
			// And the serialized form carries them as extension 1088.
			g, err := Load("", f.DescriptorBase64(""), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Messages[0].Fields[0].Tags; !slices.Equal(got, tt.want) {
				t.Fatalf("serialized: tags %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("message tags come from message_meta in both syntaxes", func(t *testing.T) {
		src := `syntax = "proto3"; message A { option (confluent.message_meta) = { tags: ["PII"] }; string s = 1; }
			message B { option (confluent.message_meta).tags = "PII"; string s = 1; }`
		f, err := Parse("", src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range f.Messages {
			if !slices.Equal(m.Tags, []string{"PII"}) {
				t.Errorf("%s tags %v", m.Name, m.Tags)
			}
		}
	})
}

// TestWellKnownFilesMatchProtobufGo checks the well-known files written out
// in wellknown.go against protobuf-go's descriptors of the same files:
// same messages, fields, numbers and types (options aside: ours declare
// none).
func TestWellKnownFilesMatchProtobufGo(t *testing.T) {
	for _, fd := range []protoreflect.FileDescriptor{
		anypb.File_google_protobuf_any_proto, durationpb.File_google_protobuf_duration_proto,
		emptypb.File_google_protobuf_empty_proto, fieldmaskpb.File_google_protobuf_field_mask_proto,
		structpb.File_google_protobuf_struct_proto, timestamppb.File_google_protobuf_timestamp_proto,
		wrapperspb.File_google_protobuf_wrappers_proto, sourcecontextpb.File_google_protobuf_source_context_proto,
	} {
		t.Run(fd.Path()+" declares what protobuf-go's does", func(t *testing.T) {
			b, err := proto.Marshal(protodesc.ToFileDescriptorProto(fd))
			if err != nil {
				t.Fatal(err)
			}
			goFile, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := Parse(fd.Path(), wellKnown[fd.Path()])
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []*File{goFile, ours} {
				f.Options = nil
				if err := DefaultLimits().Link(f, nil, true); err != nil {
					t.Fatal(err)
				}
			}
			if got, want := ours.Canonical(), goFile.Canonical(); got != want {
				t.Fatalf("ours:\n%s\nprotobuf-go's:\n%s", got, want)
			}
		})
	}
}

func TestParseErrorsSayWhere(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"a missing semicolon", "syntax = \"proto3\";\nmessage M { string a = 1 }", `2:26: at "}": expected ";"`},
		{"a duplicate field number", `syntax = "proto3"; message M { string a = 1; string b = 1; }`, "fields a and b share number 1"},
		{"a duplicate field name", `syntax = "proto3"; message M { string a = 1; string a = 2; }`, "duplicate field a"},
		{"a duplicate message", `message M {} message M {}`, "duplicate message M"},
		{"an unknown syntax", `syntax = "proto4";`, `1:10: at "\"proto4\"": unknown syntax`},
		{"an unterminated message", `message M { string a = 1;`, "unexpected end of input"},
		{"field number zero", `message M { string a = 0; }`, "field number must be 1..536870911"},
		{"a stray brace", `message M { string a = 1; } }`, "expected a declaration"},
		{"an unterminated comment", "/* message M {}", "1:1: unterminated comment"},
		{"JSON", `{"type":"record"}`, "expected a declaration"},
		{"an empty enum", `enum E {}`, "enum E has no values"},
		{"an unknown keyword", `messages M {}`, "unknown declaration"},
		{"a bool option with a string", `message M { string a = 1 [packed = "yes"]; }`, "option packed: want true or false"},
		{"an unknown enum option value", `option optimize_for = FAST;`, "option optimize_for: want one of SPEED, CODE_SIZE, LITE_RUNTIME"},
		{"a float map key", `message M { map<double, string> m = 1; }`, "map keys must be an integer type, bool or string"},
		{"required in proto3", `syntax = "proto3"; message M { required string a = 1; }`, "required fields are not allowed in proto3"},
		{"a bad escape", `option java_package = "a\q";`, `unknown escape \q`},
		{"an unclosed aggregate", `option (x) = { a: 1 `, `missing "}"`},
		{"a label in a oneof", `message M { oneof o { optional string a = 1; } }`, "oneof fields have no label"},
		{"a serialized form that is not a descriptor", `CgVoZWxsbxIC`, "serialized descriptor"},
		{"base64 that is not base64", `a`, "neither .proto text nor a base64 descriptor"},
	}
	for _, tt := range cases {
		t.Run(tt.name+" is an error", func(t *testing.T) {
			_, err := ParseSchema("", tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func nested(depth int, inner string) string {
	return strings.Repeat("message M { ", depth) + inner + strings.Repeat("}", depth)
}

func TestLimitsMakeHostileSchemasCleanErrors(t *testing.T) {
	lim := DefaultLimits()
	deepDesc := func(depth int) string {
		var msg []byte
		for i := 0; i < depth; i++ {
			var m []byte
			m = appendStringField(m, 1, "M")
			if msg != nil {
				m = appendBytesField(m, 3, msg)
			}
			msg = m
		}
		return base64.StdEncoding.EncodeToString(appendBytesField(nil, 4, msg))
	}
	cases := []struct{ name, src string }{
		{"a schema over the size limit", "syntax = \"proto3\";\n" + strings.Repeat("// padding\n", lim.MaxBytes/11+1)},
		{"messages nested too deep", nested(lim.MaxDepth+1, "")},
		{"messages nested a million deep", nested(1_000_000, "")},
		{"option values nested too deep", "option (x) = " + strings.Repeat("{ a ", lim.MaxDepth+1) + strings.Repeat("}", lim.MaxDepth+1) + ";"},
		{"a name over the length limit", "message " + strings.Repeat("N", lim.MaxNameLen+1) + " {}"},
		{"a full name over the length limit", nested(lim.MaxDepth-1, "message "+strings.Repeat("N", lim.MaxNameLen-10)+" {}")},
		{"a serialized descriptor nested too deep", deepDesc(lim.MaxDepth + 1)},
		{"a serialized descriptor over the size limit", base64.StdEncoding.EncodeToString(make([]byte, lim.MaxBytes+1))},
	}
	for _, tt := range cases {
		t.Run(tt.name+" is refused with ErrLimit", func(t *testing.T) {
			_, err := ParseSchema("", tt.src)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("error %v, want ErrLimit", err)
			}
		})
	}
	t.Run("nesting at the limit is accepted", func(t *testing.T) {
		if _, err := ParseSchema("", nested(lim.MaxDepth, "")); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSchema("", deepDesc(lim.MaxDepth)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("too many references are refused", func(t *testing.T) {
		refs := make([]Ref, lim.MaxRefs+1)
		for i := range refs {
			refs[i] = Ref{Name: strings.Repeat("r", i+1) + ".proto", Text: `syntax = "proto3";`}
		}
		if _, err := Load("", `syntax = "proto3";`, refs); !errors.Is(err, ErrLimit) {
			t.Fatalf("error %v, want ErrLimit", err)
		}
	})
	t.Run("a length prefix past the end is an error, not an allocation", func(t *testing.T) {
		b := appendTag(nil, 4, 2)
		b = appendVarint(b, 1<<62)
		if _, err := Decode(b); err == nil {
			t.Fatal("decoded")
		}
	})
}

func TestMessageAtFollowsConfluentIndexes(t *testing.T) {
	src := `syntax = "proto3";
message A { message A1 {} message A2 { message A21 {} } }
message B { map<string, string> m = 1; message B1 {} }
message C { message C1 {} map<string, string> m = 1; message C2 {} }
message D { map<string, string> m = 1; message D1 {} message D2 {} }`
	f, err := Load("", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		idx  []int
		want string // full name, or an error substring
	}{
		{nil, "A"},
		{[]int{0}, "A"},
		{[]int{1}, "B"},
		{[]int{0, 1}, "A.A2"},
		{[]int{0, 1, 0}, "A.A2.A21"},
		{[]int{2, 0}, "C.C1"},
		{[]int{4}, "out of range"},
		{[]int{0, -1}, "out of range"},
		{[]int{1, 0}, "B.B1"}, // counting entries, [1 0] is a map entry: no record's type
		{[]int{2, 1}, "C.C2"},
		{[]int{2, 2}, "C.C2"}, // out of range without entries
		{[]int{3, 1}, "ambiguous: D.D1 when map entry types count, D.D2 when they do not"},
		{[]int{1, 0, 0}, "out of range"},
	}
	for _, tt := range cases {
		t.Run("indexes "+fmt.Sprint(tt.idx)+" select "+tt.want, func(t *testing.T) {
			m, err := f.MessageAt(tt.idx)
			switch {
			case err != nil:
				if !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
			case m.FullName != tt.want:
				t.Fatalf("selected %s, want %s", m.FullName, tt.want)
			}
		})
	}
}

func TestLoadResolvesReferencesByName(t *testing.T) {
	money := Ref{Name: "acme/money.proto", Text: `syntax = "proto3"; package acme; message Money { int64 cents = 1 [(confluent.field_meta).tags = "FIN"]; }`}
	invoice := `syntax = "proto3"; package acme.billing; import "acme/money.proto"; import "google/protobuf/timestamp.proto";
message Invoice { acme.Money total = 1; google.protobuf.Timestamp at = 2; Line line = 3; message Line { .acme.Money price = 1; } }`
	t.Run("an import resolves to the reference of its name", func(t *testing.T) {
		f, err := Load("", invoice, []Ref{money})
		if err != nil {
			t.Fatal(err)
		}
		total := f.Messages[0].Fields[0]
		if total.Message == nil || total.TypeName != ".acme.Money" || !slices.Equal(total.Message.Fields[0].Tags, []string{"FIN"}) {
			t.Fatalf("total resolves to %q", total.TypeName)
		}
	})
	t.Run("a reference given twice (a diamond) is read once", func(t *testing.T) {
		f, err := Load("", invoice, []Ref{money, money, money})
		if err != nil {
			t.Fatal(err)
		}
		if f.Messages[0].Fields[0].Message == nil {
			t.Fatal("unresolved")
		}
	})
	t.Run("a reference in the serialized form works alike", func(t *testing.T) {
		m, err := Load("acme/money.proto", money.Text, nil)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Load("", invoice, []Ref{{Name: money.Name, Text: m.DescriptorBase64("")}})
		if err != nil {
			t.Fatal(err)
		}
		if f.Messages[0].Fields[0].Message == nil {
			t.Fatal("unresolved")
		}
	})
	t.Run("a type no file declares is an error", func(t *testing.T) {
		_, err := Load("", invoice, nil)
		if err == nil || !strings.Contains(err.Error(), "field acme.billing.Invoice.total: type acme.Money is not defined") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("a broken reference names the reference", func(t *testing.T) {
		_, err := Load("", invoice, []Ref{{Name: "acme/money.proto", Text: "message {"}})
		if err == nil || !strings.Contains(err.Error(), `reference 0 ("acme/money.proto")`) {
			t.Fatalf("error %v", err)
		}
	})
}
