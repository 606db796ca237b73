package registry

import (
	"reflect"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/riferrei/srclient"
)

// TestFramedRecordDecodesWithFetchedSchema is the path a mirrored record
// takes: framed with a registry id, located, its schema fetched by id through
// srclient, then decoded both with hamba/avro and with srclient's goavro codec.
func TestFramedRecordDecodesWithFetchedSchema(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	c := newClient(url)
	registered, err := c.CreateSchema("orders-value", v2, srclient.Avro)
	if err != nil {
		t.Fatal(err)
	}
	writer := avro.MustParse(v2)
	in := map[string]any{"id": "o-1", "cents": int64(1250)}
	payload, err := avro.Marshal(writer, in)
	if err != nil {
		t.Fatal(err)
	}
	value := AppendFrame(nil, SchemaRef{ID: int32(registered.ID())}, Avro, payload)

	_, loc, err := Locate([]byte("o-1"), value, nil, Avro, KeyPlain)
	if err != nil || loc.Place != InPayload {
		t.Fatalf("locate: %+v, %v", loc, err)
	}
	fetched, err := c.GetSchema(int(loc.Ref.ID))
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := avro.Unmarshal(avro.MustParse(fetched.Schema()), value[loc.Len:], &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("hamba decoded %v, want %v", out, in)
	}
	codec := fetched.Codec()
	if codec == nil {
		t.Fatal("srclient could not build a goavro codec from the stored schema")
	}
	native, _, err := codec.NativeFromBinary(value[loc.Len:])
	if err != nil {
		t.Fatal(err)
	}
	if m := native.(map[string]any); m["id"] != "o-1" || m["cents"] != int64(1250) {
		t.Fatalf("goavro decoded %v", native)
	}

	// Translation: the same body under another id.
	moved := AppendFrame(nil, SchemaRef{ID: 42}, Avro, value[loc.Len:])
	if ref, n, err := ReadRef(moved, Avro); err != nil || ref.ID != 42 || string(moved[n:]) != string(payload) {
		t.Fatalf("reframed: %+v %d %v", ref, n, err)
	}
}

func TestJSONSchemaCompilesInSrclient(t *testing.T) {
	_, url := startServer(t, ServerOptions{})
	c := newClient(url)
	js := `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`
	s, err := c.CreateSchema("events-value", js, srclient.Json)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetSchema(s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.JsonSchema() == nil {
		t.Fatal("srclient could not compile the stored JSON schema")
	}
	if err := got.JsonSchema().Validate(map[string]any{"id": "x"}); err != nil {
		t.Fatal(err)
	}
}
