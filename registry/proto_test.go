package registry

import "testing"

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
	p, err := parseSchema(Protobuf, good, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := p.proto
	if f.Package != "acme.orders.v1" || len(f.Messages) != 1 || len(f.Messages[0].Fields) != 6 {
		t.Fatalf("parsed %+v", f)
	}
	if got := f.Messages[0].Fields[2].MapValue().TypeName; got != ".acme.orders.v1.Order.Line" {
		t.Fatalf("the map value type Line resolves to %s", got)
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
