package policy

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tributary-dev/tributary/internal/protoschema"
)

// The Protobuf tests encode records and decode masked outputs with
// protobuf-go (dynamicpb and protojson), never with MaskProto's own reader:
// an output that protobuf-go cannot decode with the writer schema fails the
// test.

// goFile builds the protobuf-go descriptor of a schema (.proto text or
// base64 descriptor) as the file "test.proto", with timestamp.proto and
// confluent/meta.proto available to import.
func goFile(t testing.TB, text string) protoreflect.FileDescriptor {
	t.Helper()
	files := new(protoregistry.Files)
	for _, fd := range []protoreflect.FileDescriptor{timestamppb.File_google_protobuf_timestamp_proto, descriptorpb.File_google_protobuf_descriptor_proto} {
		if err := files.RegisterFile(fd); err != nil {
			t.Fatal(err)
		}
	}
	meta, err := os.ReadFile("testdata/schemas/confluent/meta.proto")
	if err != nil {
		t.Fatal(err)
	}
	register := func(name, text string) protoreflect.FileDescriptor {
		t.Helper()
		f, err := protoschema.Load(name, text, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var fdp descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(f.Descriptor(name), &fdp); err != nil {
			t.Fatal(err)
		}
		fd, err := protodesc.NewFile(&fdp, files)
		if err != nil {
			t.Fatalf("protobuf-go refuses %s: %v", name, err)
		}
		if err := files.RegisterFile(fd); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	register("confluent/meta.proto", string(meta))
	return register("test.proto", text)
}

// goMessage finds a message of fd by its name relative to the package
// ("Payment", "Payment.Item").
func goMessage(t testing.TB, fd protoreflect.FileDescriptor, name string) protoreflect.MessageDescriptor {
	t.Helper()
	full := protoreflect.FullName(name)
	if pkg := fd.Package(); pkg != "" {
		full = pkg + "." + full
	}
	var find func(ms protoreflect.MessageDescriptors) protoreflect.MessageDescriptor
	find = func(ms protoreflect.MessageDescriptors) protoreflect.MessageDescriptor {
		for i := 0; i < ms.Len(); i++ {
			if ms.Get(i).FullName() == full {
				return ms.Get(i)
			}
			if m := find(ms.Get(i).Messages()); m != nil {
				return m
			}
		}
		return nil
	}
	md := find(fd.Messages())
	if md == nil {
		t.Fatalf("no message %s", full)
	}
	return md
}

// encodeProto encodes a record given as protobuf JSON.
func encodeProto(t testing.TB, md protoreflect.MessageDescriptor, js string) []byte {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	if err := protojson.Unmarshal([]byte(js), m); err != nil {
		t.Fatalf("record %s: %v", js, err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeProto decodes a masked record with the writer schema and returns it
// as protobuf JSON with every field present, read into Go values.
func decodeProto(t testing.TB, md protoreflect.MessageDescriptor, b []byte) map[string]any {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatalf("the output does not decode with the writer schema: %v", err)
	}
	js, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// jsonValue reads a JSON literal of a test table.
func jsonValue(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return v
}

func protoText(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/schemas/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// compileProto compiles set for a Protobuf schema (selecting its message by
// indexes) with the test key.
func compileProto(t testing.TB, set *Set, text string, indexes ...int) (*Plan, error) {
	t.Helper()
	return Compile(set, "eu-payments", "payments.card", Schema{Type: Protobuf, Text: text, ID: 1, Name: "test.proto", ProtoIndexes: indexes}, WithHashKey(hashKey))
}

// fieldOf walks a decoded record along a dotted path.
func fieldOf(rec map[string]any, path string) any {
	var v any = rec
	for _, p := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// protoMarshalFile is protobuf-go's own serialized form of a file.
func protoMarshalFile(fd protoreflect.FileDescriptor) ([]byte, error) {
	return proto.Marshal(protodesc.ToFileDescriptorProto(fd))
}
