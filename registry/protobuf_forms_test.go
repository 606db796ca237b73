package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/riferrei/srclient"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	_ "google.golang.org/protobuf/types/known/timestamppb" // timestamp.proto in protoregistry.GlobalFiles

	"github.com/tributary-dev/tributary/internal/protoschema"
)

const paymentProto = `syntax = "proto3";
package acme.payments;
import "google/protobuf/timestamp.proto";
message Payment {
  string id = 1;
  string email = 2 [(confluent.field_meta).tags = "PII"];
  google.protobuf.Timestamp at = 3;
  map<string, string> attrs = 4;
  repeated Line lines = 5;
  message Line { int64 cents = 1; }
}
`

// serialized is what Confluent's Python client registers for a .proto file:
// the base64 of its FileDescriptorProto, here as protobuf-go encodes it.
func serialized(t *testing.T, text, name string) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(goDescriptor(t, text, name))
}

// goDescriptor is protobuf-go's serialized descriptor of a .proto text
// (protobuf-go checks and re-encodes this package's encoding of it).
func goDescriptor(t *testing.T, text, name string) []byte {
	t.Helper()
	f, err := protoschema.Load(name, text, nil)
	if err != nil {
		t.Fatal(err)
	}
	fd := checkDescriptor(t, f.Descriptor(name))
	b, err := proto.Marshal(protodesc.ToFileDescriptorProto(fd))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkDescriptor builds a protobuf-go file from descriptor bytes, as
// Confluent's Python deserializer builds one from ?format=serialized.
func checkDescriptor(t *testing.T, b []byte) protoreflect.FileDescriptor {
	t.Helper()
	var fdp descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(b, &fdp); err != nil {
		t.Fatalf("not a FileDescriptorProto: %v", err)
	}
	fd, err := protodesc.NewFile(&fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatalf("protobuf-go refuses the descriptor: %v", err)
	}
	return fd
}

func TestServerAcceptsBothProtobufForms(t *testing.T) {
	_, base := startServer(t, ServerOptions{})
	ser := serialized(t, paymentProto, "acme/payment.proto")
	var reg struct{ ID int }
	t.Run("a base64 FileDescriptorProto registers", func(t *testing.T) {
		if st, code := call(t, "POST", base+"/subjects/payments-value/versions", body(ser, `"schemaType":"PROTOBUF"`), &reg); st != 200 {
			t.Fatalf("status %d code %d", st, code)
		}
	})
	t.Run("the .proto text of the same file is the same schema", func(t *testing.T) {
		var got struct{ ID int }
		if st, _ := call(t, "POST", base+"/subjects/payments2-value/versions", body(paymentProto, `"schemaType":"PROTOBUF"`), &got); st != 200 || got.ID != reg.ID {
			t.Fatalf("status %d, id %d, want the serialized form's id %d", st, got.ID, reg.ID)
		}
		var found schemaJSON
		if st, _ := call(t, "POST", base+"/subjects/payments-value", body(paymentProto, `"schemaType":"PROTOBUF"`), &found); st != 200 || found.ID != reg.ID || found.Version != 1 {
			t.Fatalf("lookup of the text form: status %d, %+v", st, found)
		}
		reformatted := strings.ReplaceAll(paymentProto, "\n", "\n  // a comment\n")
		if st, _ := call(t, "POST", base+"/subjects/payments-value", body(reformatted, `"schemaType":"PROTOBUF"`), &found); st != 200 || found.ID != reg.ID {
			t.Fatalf("lookup of a reformatted text: status %d, %+v", st, found)
		}
	})
	var text struct{ ID int }
	call(t, "POST", base+"/subjects/other-value/versions", body(`syntax = "proto3"; message Other { string a = 1; }`, `"schemaType":"PROTOBUF"`), &text)

	for _, tt := range []struct {
		name string
		id   int
		want string // the schema without ?format
	}{
		{"registered serialized", reg.ID, ser},
		{"registered as text", text.ID, `syntax = "proto3"; message Other { string a = 1; }`},
	} {
		t.Run("a schema "+tt.name+" is served as registered and as ?format=serialized", func(t *testing.T) {
			var plain schemaJSON
			call(t, "GET", fmt.Sprintf("%s/schemas/ids/%d", base, tt.id), "", &plain)
			if plain.Schema != tt.want || plain.SchemaType != Protobuf {
				t.Fatalf("GET /schemas/ids/%d = %+v", tt.id, plain)
			}
			var subj []string
			call(t, "GET", fmt.Sprintf("%s/schemas/ids/%d/subjects", base, tt.id), "", &subj)
			var guid schemaJSON
			call(t, "GET", fmt.Sprintf("%s/schemas/ids/%d", base, tt.id), "", &guid)
			paths := []string{
				fmt.Sprintf("/schemas/ids/%d", tt.id),
				fmt.Sprintf("/schemas/ids/%d/schema", tt.id),
				"/subjects/" + url.PathEscape(subj[0]) + "/versions/1",
				"/subjects/" + url.PathEscape(subj[0]) + "/versions/latest/schema",
				"/schemas/guids/" + guid.GUID,
			}
			var first string
			for _, p := range paths {
				var got string
				if strings.HasSuffix(p, "/schema") {
					call(t, "GET", base+p+"?format=serialized", "", &got)
				} else {
					var s schemaJSON
					call(t, "GET", base+p+"?format=serialized", "", &s)
					got = s.Schema
				}
				b, err := base64.StdEncoding.DecodeString(got)
				if err != nil {
					t.Fatalf("%s?format=serialized is not standard base64: %q", p, got)
				}
				checkDescriptor(t, b)
				if first == "" {
					first = got
				} else if got != first {
					t.Fatalf("%s?format=serialized differs from %s's", p, paths[0])
				}
			}
			if tt.want == ser && first != ser {
				t.Fatal("a schema registered serialized is not served as registered")
			}
		})
	}
	t.Run("format=serialized leaves Avro schemas as they are", func(t *testing.T) {
		var a struct{ ID int }
		call(t, "POST", base+"/subjects/avro-value/versions", body(v1), &a)
		var got schemaJSON
		call(t, "GET", fmt.Sprintf("%s/schemas/ids/%d?format=serialized", base, a.ID), "", &got)
		if got.Schema != v1 {
			t.Fatalf("got %q", got.Schema)
		}
	})
	t.Run("compatibility compares the two forms", func(t *testing.T) {
		v2 := strings.Replace(paymentProto, "  string id = 1;", "  string id = 1;\n  int64 cents = 6;", 1)
		var got struct{ ID, Version int }
		if st, code := call(t, "POST", base+"/subjects/payments-value/versions", body(serialized(t, v2, "acme/payment.proto"), `"schemaType":"PROTOBUF"`), &got); st != 200 {
			t.Fatalf("adding a field (serialized, after text-equal v1): status %d code %d", st, code)
		}
		v3 := strings.Replace(v2, "string id = 1;", "int64 id = 1;", 1)
		if st, code := call(t, "POST", base+"/subjects/payments-value/versions", body(serialized(t, v3, "acme/payment.proto"), `"schemaType":"PROTOBUF"`), nil); st != 409 || code != CodeIncompatibleSchema {
			t.Fatalf("changing a field's type: status %d code %d, want 409", st, code)
		}
	})
}

func TestSerializedProtobufSurvivesARestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "registry.json")
	_, base := startServer(t, ServerOptions{DataFile: data})
	var first struct{ ID int }
	if st, _ := call(t, "POST", base+"/subjects/payments-value/versions", body(serialized(t, paymentProto, "p.proto"), `"schemaType":"PROTOBUF"`), &first); st != 200 {
		t.Fatalf("status %d", st)
	}
	_, base = startServer(t, ServerOptions{DataFile: data})
	var again struct{ ID int }
	if st, _ := call(t, "POST", base+"/subjects/other-value/versions", body(paymentProto, `"schemaType":"PROTOBUF"`), &again); st != 200 || again.ID != first.ID {
		t.Fatalf("status %d, id %d, want %d after the restart", st, again.ID, first.ID)
	}
}

func TestServerRefusesHostileSchemas(t *testing.T) {
	_, base := startServer(t, ServerOptions{})
	deep := strings.Repeat("message M { ", 100) + strings.Repeat("}", 100)
	var deepDesc []byte
	for i := 0; i < 100; i++ {
		var m []byte
		m = append(m, 0x0a, 0x01, 'M')
		if deepDesc != nil {
			m = append(m, 0x1a)
			m = appendUvarint(m, uint64(len(deepDesc)))
			m = append(m, deepDesc...)
		}
		deepDesc = m
	}
	deepDesc = append(append([]byte{0x22}, appendUvarint(nil, uint64(len(deepDesc)))...), deepDesc...)
	manyRefs := make([]string, maxReferences+1)
	for i := range manyRefs {
		manyRefs[i] = fmt.Sprintf(`{"name":"r%d.proto","subject":"r","version":1}`, i)
	}
	cases := []struct {
		name, body, want string
	}{
		{"an oversized Avro schema", body(`{"type":"record","name":"R","doc":"` + strings.Repeat("x", maxSchemaBytes) + `","fields":[]}`),
			"this registry accepts at most 1048576"},
		{"an oversized Protobuf schema", body("syntax = \"proto3\";"+strings.Repeat("\n", maxSchemaBytes), `"schemaType":"PROTOBUF"`),
			"this registry accepts at most 1048576"},
		{"Protobuf messages nested 100 deep", body(deep, `"schemaType":"PROTOBUF"`), "nested deeper than 64 levels"},
		{"a serialized descriptor nested 100 deep", body(base64.StdEncoding.EncodeToString(deepDesc), `"schemaType":"PROTOBUF"`), "messages nested deeper than 64 levels"},
		{"a Protobuf name of 2,000 characters", body("message "+strings.Repeat("N", 2000)+" {}", `"schemaType":"PROTOBUF"`), "longer than 1024 bytes"},
		{"257 references", body(`syntax = "proto3";`, `"schemaType":"PROTOBUF"`, `"references":[`+strings.Join(manyRefs, ",")+`]`),
			"the schema has 257 references; this registry accepts at most 256"},
	}
	for _, tt := range cases {
		t.Run(tt.name+" is a 422", func(t *testing.T) {
			var e APIError
			st, code := callErr(t, "POST", base+"/subjects/hostile-value/versions", tt.body, &e)
			if st != 422 || code != CodeInvalidSchema || !strings.Contains(e.Message, tt.want) {
				t.Fatalf("status %d code %d message %q, want 422 mentioning %q", st, code, e.Message, tt.want)
			}
		})
	}
	t.Run("references that double at every level are a 422", func(t *testing.T) {
		prev := ""
		var last struct {
			status, code int
			msg          string
		}
		for level := 0; level < 14; level++ {
			refs := ""
			if prev != "" {
				refs = fmt.Sprintf(`"references":[{"name":"a.proto","subject":%q,"version":1},{"name":"b.proto","subject":%q,"version":1}]`, prev, prev)
			}
			subject := fmt.Sprintf("level%d.proto", level)
			src := fmt.Sprintf(`syntax = "proto3"; message L%d { string s = 1; }`, level)
			extra := []string{`"schemaType":"PROTOBUF"`}
			if refs != "" {
				extra = append(extra, refs)
			}
			var e APIError
			last.status, last.code = callErr(t, "POST", base+"/subjects/"+subject+"/versions", body(src, extra...), &e)
			last.msg = e.Message
			if last.status != 200 {
				break
			}
			prev = subject
		}
		if last.status != 422 || !strings.Contains(last.msg, "references unfold to more than 4096 schemas") {
			t.Fatalf("status %d message %q", last.status, last.msg)
		}
	})
	t.Run("the registry still serves after them", func(t *testing.T) {
		if st, _ := call(t, "POST", base+"/subjects/fine-value/versions", body(paymentProto, `"schemaType":"PROTOBUF"`), nil); st != 200 {
			t.Fatalf("status %d", st)
		}
	})
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// callErr makes a request expected to fail and decodes its error body.
func callErr(t *testing.T, method, u, b string, e *APIError) (status, code int) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ContentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		return resp.StatusCode, 0
	}
	if err := json.NewDecoder(resp.Body).Decode(e); err != nil {
		t.Fatalf("%s %s: status %d with a body that is not an error: %v", method, u, resp.StatusCode, err)
	}
	return resp.StatusCode, e.Code
}

func TestClientAndTranslatorWithSerializedProtobuf(t *testing.T) {
	ctx := context.Background()
	t.Run("the client registers, looks up and reads the serialized form", func(t *testing.T) {
		reg := newTestRegistry(t, nil)
		c := reg.client(t)
		ser := serialized(t, paymentProto, "p.proto")
		id, err := c.Register(ctx, "payments-value", &Schema{Type: Protobuf, Text: ser})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Lookup(ctx, "payments-value", &Schema{Type: Protobuf, Text: paymentProto})
		if err != nil || got.ID != id || got.Version != 1 {
			t.Fatalf("Lookup of the text form = %+v, %v", got, err)
		}
		s, err := c.SchemaByID(ctx, id)
		if err != nil || s.Text != ser || s.Type != Protobuf {
			t.Fatalf("SchemaByID = %+v, %v", s, err)
		}
		if err := c.CheckCompatibility(ctx, "payments-value", &Schema{Type: Protobuf, Text: paymentProto}); err != nil {
			t.Fatalf("the text form is compatible with its serialized form: %v", err)
		}
	})
	t.Run("the translator carries a serialized schema and its reference", func(t *testing.T) {
		p := newPair(t, TranslatorOptions{Type: Protobuf})
		src := p.src.sr()
		money := serialized(t, `syntax = "proto3"; package acme; message Money { int64 cents = 1; }`, "acme/money.proto")
		mustCreate(t, src, "acme/money.proto", money, srclient.Protobuf)
		invoice := `syntax = "proto3"; package acme; import "acme/money.proto"; message Invoice { Money total = 1; }`
		invoiceSer := base64.StdEncoding.EncodeToString(invoiceDescriptor(t, invoice, money))
		id := mustCreate(t, src, "invoices-value", invoiceSer, srclient.Protobuf, srclient.Reference{Name: "acme/money.proto", Subject: "acme/money.proto", Version: 1})
		value := AppendFrame(nil, SchemaRef{ID: int32(id)}, Protobuf, []byte{0x0a, 0x02, 0x08, 0x01})
		res, err := p.tr.Translate(ctx, "eu.invoices", nil, value, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.dst.sr().GetSchema(int(res.ValueSchema.TargetID))
		if err != nil || got.Schema() != invoiceSer || !reflect.DeepEqual(got.References(), []srclient.Reference{{Name: "acme/money.proto", Subject: "acme/money.proto", Version: 1}}) {
			t.Fatalf("target schema %v, %v", got, err)
		}
		if !bytes.Equal(res.Value[5:], value[5:]) {
			t.Fatal("the body changed")
		}
	})
}

// invoiceDescriptor encodes a .proto text that imports acme/money.proto,
// given money's serialized form, with protobuf-go.
func invoiceDescriptor(t *testing.T, text, money string) []byte {
	t.Helper()
	files := new(protoregistry.Files)
	mb, _ := base64.StdEncoding.DecodeString(money)
	var mdp descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(mb, &mdp); err != nil {
		t.Fatal(err)
	}
	mfd, err := protodesc.NewFile(&mdp, files)
	if err != nil {
		t.Fatal(err)
	}
	if err := files.RegisterFile(mfd); err != nil {
		t.Fatal(err)
	}
	f, err := protoschema.Load("invoice.proto", text, []protoschema.Ref{{Name: "acme/money.proto", Text: money}})
	if err != nil {
		t.Fatal(err)
	}
	var fdp descriptorpb.FileDescriptorProto
	if err := proto.Unmarshal(f.Descriptor("invoice.proto"), &fdp); err != nil {
		t.Fatal(err)
	}
	fd, err := protodesc.NewFile(&fdp, files)
	if err != nil {
		t.Fatalf("protobuf-go refuses the invoice descriptor: %v", err)
	}
	b, err := proto.Marshal(protodesc.ToFileDescriptorProto(fd))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
