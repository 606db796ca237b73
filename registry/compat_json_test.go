package registry

import "testing"

// jsonPairs: backward means the new schema accepts all data the old one
// accepted; forward the reverse. They follow Confluent's content-model rules.
var jsonPairs = []compatPair{
	{name: "adding a property to an open content model breaks backward",
		old:      `{"type":"object","properties":{"a":{"type":"string"}}}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`,
		backward: false, forward: true, wantInMessage: "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"},
	{name: "removing a property from an open content model breaks forward",
		old:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"}}}`,
		backward: true, forward: false, wantInMessage: "#/properties/b"},
	{name: "adding an optional property to a closed content model breaks forward",
		old:      `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false}`,
		backward: true, forward: false, wantInMessage: "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"},
	{name: "removing a property from a closed content model breaks backward",
		old:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`,
		backward: false, forward: true},
	{name: "adding a required property breaks backward",
		old:      `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["b"],"additionalProperties":false}`,
		backward: false, forward: false, wantInMessage: "REQUIRED_ATTRIBUTE_ADDED",
		wantInForward: "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"},
	{name: "a required property with a default may be added",
		old:      `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer","default":0}},"required":["b"],"additionalProperties":false}`,
		backward: true, forward: false},
	{name: "integer widens to number", old: `{"type":"integer"}`, new: `{"type":"number"}`,
		backward: true, forward: false, wantInMessage: "TYPE_"},
	{name: "string does not become integer", old: `{"type":"string"}`, new: `{"type":"integer"}`, wantInMessage: "TYPE_CHANGED"},
	{name: "a nullable type list accepts the old type", old: `{"type":"string"}`, new: `{"type":["string","null"]}`,
		backward: true, forward: false},
	{name: "an enum extended breaks forward", old: `{"enum":["a","b"]}`, new: `{"enum":["a","b","c"]}`,
		backward: true, forward: false, wantInMessage: "ENUM_ARRAY_NARROWED"},
	{name: "a shorter maxLength breaks backward", old: `{"type":"string","maxLength":10}`, new: `{"type":"string","maxLength":5}`,
		backward: false, forward: true, wantInMessage: "MAX_LENGTH_DECREASED"},
	{name: "an added minimum breaks backward", old: `{"type":"number"}`, new: `{"type":"number","minimum":0}`,
		backward: false, forward: true, wantInMessage: "MINIMUM_ADDED"},
	{name: "nested property types are compared with their path",
		old:           `{"type":"object","properties":{"customer":{"type":"object","properties":{"zip":{"type":"string"}}}}}`,
		new:           `{"type":"object","properties":{"customer":{"type":"object","properties":{"zip":{"type":"integer"}}}}}`,
		wantInMessage: "#/properties/customer/properties/zip"},
	{name: "local references are followed",
		old:           `{"type":"object","properties":{"c":{"$ref":"#/definitions/C"}},"definitions":{"C":{"type":"string"}}}`,
		new:           `{"type":"object","properties":{"c":{"$ref":"#/$defs/C"}},"$defs":{"C":{"type":"integer"}}}`,
		wantInMessage: "#/properties/c"},
	{name: "array items are compared", old: `{"type":"array","items":{"type":"integer"}}`, new: `{"type":"array","items":{"type":"number"}}`,
		backward: true, forward: false},
	{name: "closing the content model breaks backward", old: `{"type":"object","properties":{"a":{"type":"string"}}}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`,
		backward: false, forward: true, wantInMessage: "ADDITIONAL_PROPERTIES_REMOVED"},
	{name: "descriptions do not matter", old: `{"type":"string","description":"x"}`, new: `{"type":"string","title":"y"}`,
		backward: true, forward: true},
	{name: "a oneOf branch added breaks forward",
		old: `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, new: `{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}`,
		backward: false, forward: false, wantInMessage: "COMBINED_TYPE"},
	{name: "a type widened into a oneOf is backward compatible",
		old: `{"type":"string"}`, new: `{"oneOf":[{"type":"string"},{"type":"integer"}]}`,
		backward: true, forward: false},
	{name: "a recursive definition terminates",
		old:      `{"$ref":"#/definitions/N","definitions":{"N":{"type":"object","properties":{"next":{"$ref":"#/definitions/N"}}}}}`,
		new:      `{"$ref":"#/definitions/N","definitions":{"N":{"type":"object","properties":{"next":{"$ref":"#/definitions/N"}},"description":"d"}}}`,
		backward: true, forward: true},
}

func TestJSONSchemaCompatibility(t *testing.T) {
	testCompatPairs(t, JSON, jsonPairs)
}

func TestJSONSchemaInvalid(t *testing.T) {
	for name, s := range map[string]string{
		"not json":                  `{"type":`,
		"a number is not a schema":  `42`,
		"unknown type":              `{"type":"text"}`,
		"properties not an object":  `{"properties":[1]}`,
		"required not strings":      `{"required":[1]}`,
		"unresolvable local ref":    `{"$ref":"#/definitions/missing"}`,
		"empty oneOf":               `{"oneOf":[]}`,
		"maxLength not a number":    `{"maxLength":"5"}`,
		"nested schema not allowed": `{"properties":{"a":"string"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSchema(JSON, s, nil); err == nil {
				t.Fatalf("schema %s accepted", s)
			}
		})
	}
}

// protoPairs follow the subset of Confluent's Protobuf rules in doc.go.
var protoPairs = []compatPair{
	{name: "adding a field is compatible",
		old: `syntax = "proto3"; package acme; message Order { string id = 1; }`,
		new: `syntax = "proto3"; package acme; message Order { string id = 1; int64 cents = 2; }`, backward: true, forward: true},
	{name: "removing a field is compatible",
		old: `syntax = "proto3"; package acme; message Order { string id = 1; int64 cents = 2; }`,
		new: `syntax = "proto3"; package acme; message Order { string id = 1; reserved 2; }`, backward: true, forward: true},
	{name: "renaming a field keeps its number and is compatible",
		old: `syntax = "proto3"; message Order { string id = 1; }`,
		new: `syntax = "proto3"; message Order { string order_id = 1; }`, backward: true, forward: true},
	{name: "int32 and int64 share the varint encoding",
		old: `syntax = "proto3"; message M { int32 n = 1; }`, new: `syntax = "proto3"; message M { int64 n = 1; }`, backward: true, forward: true},
	{name: "string and bytes share the length-delimited encoding",
		old: `syntax = "proto3"; message M { string s = 1; }`, new: `syntax = "proto3"; message M { bytes s = 1; }`, backward: true, forward: true},
	{name: "changing a scalar kind is incompatible",
		old: `syntax = "proto3"; message M { int32 n = 1; }`, new: `syntax = "proto3"; message M { string n = 1; }`,
		wantInMessage: "FIELD_SCALAR_KIND_CHANGED"},
	{name: "a scalar becoming a message is incompatible",
		old: `syntax = "proto3"; message M { string a = 1; } message A { string s = 1; }`,
		new: `syntax = "proto3"; message M { A a = 1; } message A { string s = 1; }`, wantInMessage: "FIELD_KIND_CHANGED"},
	{name: "a singular field becoming repeated is incompatible",
		old: `syntax = "proto3"; message M { string a = 1; }`, new: `syntax = "proto3"; message M { repeated string a = 1; }`,
		wantInMessage: "FIELD_KIND_CHANGED"},
	{name: "a field's message type changing is incompatible",
		old: `syntax = "proto3"; message M { A a = 1; } message A {} message B {}`,
		new: `syntax = "proto3"; message M { B a = 1; } message A {} message B {}`, wantInMessage: "FIELD_NAMED_TYPE_CHANGED"},
	{name: "removing a message breaks backward",
		old: `syntax = "proto3"; message M { string a = 1; } message N { string b = 1; }`,
		new: `syntax = "proto3"; message M { string a = 1; }`, backward: false, forward: true, wantInMessage: "MESSAGE_REMOVED"},
	{name: "adding a message at the end is compatible backward",
		old: `syntax = "proto3"; message M { string a = 1; }`,
		new: `syntax = "proto3"; message M { string a = 1; } message N { string b = 1; }`, backward: true, forward: false},
	{name: "inserting a message before another moves its index",
		old: `syntax = "proto3"; message M { string a = 1; }`,
		new: `syntax = "proto3"; message N { string b = 1; } message M { string a = 1; }`, wantInMessage: "MESSAGE_MOVED"},
	{name: "changing the package is incompatible",
		old: `syntax = "proto3"; package a; message M { string a = 1; }`,
		new: `syntax = "proto3"; package b; message M { string a = 1; }`, wantInMessage: "PACKAGE_CHANGED"},
	{name: "adding a required field is incompatible",
		old: `syntax = "proto2"; message M { optional string a = 1; }`,
		new: `syntax = "proto2"; message M { optional string a = 1; required int32 b = 2; }`, wantInMessage: "REQUIRED_FIELD"},
	{name: "moving a field into an existing oneof is incompatible",
		old: `syntax = "proto3"; message M { string a = 1; oneof o { string b = 2; } }`,
		new: `syntax = "proto3"; message M { oneof o { string a = 1; string b = 2; } }`, backward: false, forward: true,
		wantInMessage: "FIELD_MOVED_TO_EXISTING_ONEOF"},
	{name: "nested messages are compared",
		old: `syntax = "proto3"; message M { message Inner { int32 x = 1; } Inner i = 1; }`,
		new: `syntax = "proto3"; message M { message Inner { double x = 1; } Inner i = 1; }`, wantInMessage: "M.Inner.x"},
	{name: "a map's value type changing is incompatible",
		old: `syntax = "proto3"; message M { map<string, int32> m = 1; }`,
		new: `syntax = "proto3"; message M { map<string, string> m = 1; }`, wantInMessage: "FIELD_KIND_CHANGED"},
	{name: "a map with the same types is compatible",
		old: `syntax = "proto3"; message M { map<string, V> m = 1; message V {} }`,
		new: `syntax = "proto3"; message M { map<string, M.V> m = 1; message V {} }`, backward: true, forward: true},
	{name: "proto2 groups are messages",
		old: `syntax = "proto2"; message M { optional group G = 1 { optional int32 x = 2; } }`,
		new: `syntax = "proto2"; message M { optional group G = 1 { optional string x = 2; } }`, wantInMessage: "M.G.x"},
	{name: "comments and layout do not matter",
		old: `syntax = "proto3"; message M { string a = 1; }`,
		new: "syntax = \"proto3\";\n// an order\nmessage M {\n  string a = 1 [json_name = \"a\"]; /* id */\n}\n", backward: true, forward: true},
}

func TestProtobufCompatibility(t *testing.T) {
	testCompatPairs(t, Protobuf, protoPairs)
}

func TestProtobufParse(t *testing.T) {
	good := `
syntax = "proto3";
package acme.orders.v1;
import "google/protobuf/timestamp.proto";
option java_package = "com.acme";
option (my.opt) = { a: 1 b: "x;" };
message Order {
  reserved 4, 6 to 8;
  reserved "old";
  enum Status { STATUS_UNSPECIFIED = 0; STATUS_OPEN = 1 [deprecated = true]; NEG = -1; }
  string id = 1;
  Status status = 2;
  map<string, Line> lines = 3;
  google.protobuf.Timestamp at = 5;
  oneof payment { string card = 9; string iban = 10; }
  message Line { int64 cents = 1; repeated string tags = 2 [packed = false]; }
}
service Orders { rpc Get(Order) returns (Order) { option (x) = {}; } }
`
	f, _, err := parseProto(good)
	if err != nil {
		t.Fatal(err)
	}
	if f.pkg != "acme.orders.v1" || len(f.messages) != 1 || len(f.messages[0].fields) != 6 {
		t.Fatalf("parsed %+v", f)
	}
	if got := f.resolve("acme.orders.v1.Order", "Line"); got != "acme.orders.v1.Order.Line" {
		t.Fatalf("resolve Line = %s", got)
	}
	for name, s := range map[string]string{
		"missing semicolon":     `syntax = "proto3"; message M { string a = 1 }`,
		"duplicate number":      `syntax = "proto3"; message M { string a = 1; string b = 1; }`,
		"unknown syntax":        `syntax = "proto4";`,
		"unterminated message":  `message M { string a = 1;`,
		"field number zero":     `message M { string a = 0; }`,
		"stray token":           `message M { string a = 1; } }`,
		"unterminated comment":  `/* message M {}`,
		"not a proto file":      `{"type":"record"}`,
		"empty enum":            `enum E {}`,
		"unknown top-level kwd": `messages M {}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSchema(Protobuf, s, nil); err == nil {
				t.Fatalf("schema %q accepted", s)
			}
		})
	}
}
