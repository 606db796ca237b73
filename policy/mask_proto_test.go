package policy

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// protoCase masks field v of a message {keep: string, v: <typ>, tail: int64}
// (field numbers 1, 2, 3).
type protoCase struct {
	name string
	typ  string // the Protobuf type of v, with a label for repeated fields
	in   string // v as protobuf JSON
	rule string // the rule's entries besides match
	want string // v after masking as protobuf JSON (every field present); "" with err
	// err is a substring of the compile error, or a Violation reason.
	err string
}

const protoCaseSchema = `syntax = "proto3";
import "google/protobuf/timestamp.proto";
message M { string keep = 1; %s v = 2; int64 tail = 3; }
enum Color { RED = 0; GREEN = 1; BLUE = 2; }
message Inner { string inner = 1; int64 n = 2; }
`

func b64(s string) string { return `"` + base64.StdEncoding.EncodeToString([]byte(s)) + `"` }

func TestMaskProtoActionsByType(t *testing.T) {
	cases := []protoCase{
		// string
		{"redact empties a string", "string", `"alice@example.com"`, "action: redact", `""`, ""},
		{"hash makes a string its hex HMAC", "string", `"alice@example.com"`, "action: hash", `"` + hexHMAC("alice@example.com") + `"`, ""},
		{"mask keeps the last characters of a string", "string", `"4111111111111111"`, "action: mask, keep_last: 4", `"************1111"`, ""},
		{"mask counts characters, not bytes", "string", `"Müller"`, "action: mask, keep_first: 1, mask_char: '#'", `"M#####"`, ""},
		{"generalize truncates an RFC 3339 string", "string", `"2024-05-17T13:45:12.345+02:00"`, "action: generalize, truncate: hour", `"2024-05-17T13:00:00+02:00"`, ""},
		{"generalize of a string that is not a timestamp is unmaskable", "string", `"yesterday"`, "action: generalize, truncate: day", "", ReasonUnmaskable},
		{"generalize with precision only cannot apply to a string", "string", `"x"`, "action: generalize, precision: 1", "", "a string needs truncate"},
		{"drop removes a string: it reads as empty", "string", `"alice"`, "action: drop", `""`, ""},
		{"replace writes a fixed string", "string", `"alice"`, "action: replace, value: anonymous", `"anonymous"`, ""},
		{"replace of a string with a number is an error", "string", `"alice"`, "action: replace, value: 3", "", "want a string"},
		{"bucket cannot apply to a string", "string", `"x"`, bucketRule, "", "bucket needs a numeric field"},
		{"block rejects a record with a string", "string", `"x"`, "action: block", "", ReasonBlocked},
		{"block passes a record without the string", "string", `""`, "action: block", `""`, ""},

		// bytes
		{"redact empties bytes", "bytes", b64("alice"), "action: redact", `""`, ""},
		{"hash makes bytes their raw HMAC", "bytes", b64("alice"), "action: hash", `"` + base64.StdEncoding.EncodeToString(rawHMAC("alice")) + `"`, ""},
		{"mask keeps the last bytes", "bytes", b64("alice"), "action: mask, keep_last: 2", b64("***ce"), ""},
		{"mask of bytes needs an ASCII mask char", "bytes", b64("alice"), "action: mask, mask_char: 'é'", "", "mask_char must be an ASCII character"},
		{"replace writes bytes from a string", "bytes", b64("alice"), "action: replace, value: xyz", b64("xyz"), ""},

		// 32-bit integers
		{"redact zeroes an int32", "int32", `-1234`, "action: redact", `0`, ""},
		{"hash cannot apply to an int32", "int32", `1234`, "action: hash", "", "hash needs a string, bytes or fixed field"},
		{"mask cannot apply to an int32", "int32", `1234`, "action: mask", "", "mask needs a string or bytes field"},
		{"generalize rounds an int32 to hundreds", "int32", `1250`, "action: generalize, precision: -2", `1300`, ""},
		{"generalize rounds a negative int32", "int32", `-1250`, "action: generalize, precision: -2", `-1300`, ""},
		{"generalize of an int32 saturates at its range", "int32", `2147483600`, "action: generalize, precision: -3", `2147483000`, ""},
		{"replace writes an int32", "int32", `1234`, "action: replace, value: -7", `-7`, ""},
		{"replace of an int32 must fit 32 bits", "int32", `1234`, "action: replace, value: 3000000000", "", "out of range for int32"},
		{"bucket maps an int32 to its range", "int32", `1234`, bucketRule, `100`, ""},
		{"drop removes an int32: it reads as zero", "int32", `1234`, "action: drop", `0`, ""},
		{"block rejects a record with an int32", "int32", `1`, "action: block", "", ReasonBlocked},
		{"generalize rounds a sint32 (zig-zag)", "sint32", `-1250`, "action: generalize, precision: -2", `-1300`, ""},
		{"replace writes a negative sfixed32", "sfixed32", `5`, "action: replace, value: -9", `-9`, ""},
		{"generalize rounds a uint32 above the int32 range", "uint32", `4000000499`, "action: generalize, precision: -3", `4000000000`, ""},
		{"replace of a uint32 cannot be negative", "uint32", `5`, "action: replace, value: -1", "", "out of range for uint32"},
		{"bucket replacements must fit a fixed32", "fixed32", `5`, "action: bucket, buckets: [{replacement: -1}]", "", "out of range for fixed32"},
		{"bucket maps a fixed32", "fixed32", `123456`, bucketRule, `10000`, ""},

		// 64-bit integers
		{"redact zeroes an int64", "int64", `"123456"`, "action: redact", `"0"`, ""},
		{"generalize rounds an int64", "int64", `"-123456"`, "action: generalize, precision: -3", `"-123000"`, ""},
		{"replace of an int64 needs an integer", "int64", `"5"`, "action: replace, value: 1.5", "", "want an integer"},
		{"bucket maps an int64 to the open last range", "int64", `"123456"`, bucketRule, `"10000"`, ""},
		{"generalize rounds a sint64", "sint64", `"-123456"`, "action: generalize, precision: -2", `"-123500"`, ""},
		{"generalize of a uint64 saturates at its range", "uint64", `"18446744073709551615"`, "action: generalize, precision: -1", `"18446744073709551610"`, ""},
		{"redact zeroes a fixed64", "fixed64", `"99"`, "action: redact", `"0"`, ""},
		{"replace writes a negative sfixed64", "sfixed64", `"5"`, "action: replace, value: -5", `"-5"`, ""},

		// floating point
		{"redact zeroes a double", "double", `52.5208`, "action: redact", `0`, ""},
		{"hash cannot apply to a double", "double", `1`, "action: hash", "", "hash needs"},
		{"generalize rounds a double", "double", `52.5208`, "action: generalize, precision: 2", `52.52`, ""},
		{"generalize rounds a float", "float", `52.5208`, "action: generalize, precision: 1", `52.5`, ""},
		{"bucket maps a double", "double", `52.5`, bucketRule, `0`, ""},
		{"replace writes a float", "float", `1`, "action: replace, value: 2.5", `2.5`, ""},

		// bool and enums
		{"redact makes a bool false", "bool", `true`, "action: redact", `false`, ""},
		{"generalize cannot apply to a bool", "bool", `true`, "action: generalize, precision: 1", "", "generalize needs a number or a timestamp"},
		{"replace writes a bool", "bool", `true`, "action: replace, value: false", `false`, ""},
		{"redact writes an enum's first value", "Color", `"GREEN"`, "action: redact", `"RED"`, ""},
		{"replace writes an enum value by name", "Color", `"GREEN"`, "action: replace, value: BLUE", `"BLUE"`, ""},
		{"replace of an enum needs one of its names", "Color", `"GREEN"`, "action: replace, value: PURPLE", "", "want one of the enum's values RED, GREEN, BLUE"},
		{"hash cannot apply to an enum", "Color", `"GREEN"`, "action: hash", "", "hash needs"},

		// google.protobuf.Timestamp
		{"generalize truncates a Timestamp to the day", "google.protobuf.Timestamp", `"2024-05-17T13:45:12.345Z"`, "action: generalize, truncate: day", `"2024-05-17T00:00:00Z"`, ""},
		{"generalize truncates a Timestamp to the year", "google.protobuf.Timestamp", `"2024-05-17T13:45:12Z"`, "action: generalize, truncate: year", `"2024-01-01T00:00:00Z"`, ""},
		{"generalize of a Timestamp needs truncate", "google.protobuf.Timestamp", `"2024-05-17T13:45:12Z"`, "action: generalize, precision: 1", "", "a timestamp needs truncate"},
		{"redact zeroes a Timestamp's fields", "google.protobuf.Timestamp", `"2024-05-17T13:45:12.5Z"`, "action: redact", `"1970-01-01T00:00:00Z"`, ""},
		{"drop unsets a Timestamp", "google.protobuf.Timestamp", `"2024-05-17T13:45:12Z"`, "action: drop", `null`, ""},

		// messages
		{"redact on a message redacts every field inside", "Inner", `{"inner":"x","n":"5"}`, "action: redact", `{"inner":"","n":"0"}`, ""},
		{"hash on a message must suit every field inside", "Inner", `{"inner":"x","n":"5"}`, "action: hash", "", "hash cannot apply to field v.n"},
		{"drop unsets a message", "Inner", `{"inner":"x","n":"5"}`, "action: drop", `null`, ""},
		{"replace cannot apply to a message", "Inner", `{"inner":"x"}`, "action: replace, value: x", "", "replace needs a scalar or enum field"},
		{"block rejects a record with a message", "Inner", `{}`, "action: block", "", ReasonBlocked},

		// repeated fields
		{"hash applies to every element", "repeated string", `["a","b"]`, "action: hash", `["` + hexHMAC("a") + `","` + hexHMAC("b") + `"]`, ""},
		{"mask applies to every element", "repeated string", `["abcd","xy"]`, "action: mask, keep_last: 1", `["***d","*y"]`, ""},
		{"drop empties a repeated field", "repeated string", `["a","b"]`, "action: drop", `[]`, ""},
		{"replace cannot apply to a repeated field", "repeated string", `["a"]`, "action: replace, value: x", "", "replace needs a scalar or enum field"},
		{"redact shrinks a packed run of negative int32s", "repeated int32", `[-1, 1049, -7]`, "action: redact", `[0,0,0]`, ""},
		{"generalize rounds every element of a packed run", "repeated int32", `[1049, -7, 150]`, "action: generalize, precision: -2", `[1000,0,200]`, ""},
		{"generalize rounds packed doubles", "repeated double", `[1.26, 2.71]`, "action: generalize, precision: 1", `[1.3,2.7]`, ""},
		{"redact applies to repeated messages", "repeated Inner", `[{"inner":"a"},{"n":"7"}]`, "action: redact", `[{"inner":"","n":"0"},{"inner":"","n":"0"}]`, ""},
		{"block rejects a record with a non-empty repeated field", "repeated string", `["a"]`, "action: block", "", ReasonBlocked},

		// maps
		{"hash applies to every map value", "map<string, string>", `{"a":"x","b":"y"}`, "action: hash", `{"a":"` + hexHMAC("x") + `","b":"` + hexHMAC("y") + `"}`, ""},
		{"drop on a map empties it", "map<string, string>", `{"a":"x"}`, "action: drop", `{}`, ""},
		{"redact applies to message map values", "map<int32, Inner>", `{"7":{"inner":"x","n":"1"}}`, "action: redact", `{"7":{"inner":"","n":"0"}}`, ""},
		{"replace cannot apply to a map", "map<string, string>", `{"a":"x"}`, "action: replace, value: x", "", "replace needs a scalar or enum field"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(protoCaseSchema, "%s", tt.typ, 1)
			plan, err := compileProto(t, oneRule(t, "v", tt.rule), text)
			if tt.err != "" && !isReason(tt.err) {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("compile error %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			md := goMessage(t, goFile(t, text), "M")
			in := encodeProto(t, md, `{"keep":"k","v":`+tt.in+`,"tail":"7"}`)
			out, res, err := plan.MaskProto(in)
			if isReason(tt.err) {
				var v *Violation
				if !errors.As(err, &v) || v.Reason != tt.err || !strings.HasPrefix(v.FieldPath, "v") {
					t.Fatalf("error %v, want a %s violation on v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := decodeProto(t, md, out)
			if got["keep"] != "k" || got["tail"] != "7" {
				t.Fatalf("untouched fields changed: %v", got)
			}
			if want := jsonValue(t, tt.want); !reflect.DeepEqual(got["v"], want) {
				t.Fatalf("v = %#v, want %#v", got["v"], want)
			}
			if tt.in != tt.want && len(res.Touches) == 0 {
				t.Fatalf("the result reports no touch")
			}
		})
	}
}

func isReason(s string) bool {
	switch s {
	case ReasonBlocked, ReasonUnmaskable, ReasonUndecodable, ReasonUnmatchedPII:
		return true
	}
	return false
}

func TestDesignExampleMasksAProtobufPayment(t *testing.T) {
	set, err := LoadFiles("testdata/good/payments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := protoText(t, "payment.proto")
	plan, err := compileProto(t, set, text)
	if err != nil {
		t.Fatal(err)
	}
	md := goMessage(t, goFile(t, text), "Payment")
	in := encodeProto(t, md, paymentProtoJSON)
	out, res, err := plan.MaskProto(in)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeProto(t, md, out)
	want := decodeProto(t, md, in)
	want["customer"].(map[string]any)["name"] = hexHMAC("Alice Example")
	want["customer"].(map[string]any)["email"] = ""
	want["customer"].(map[string]any)["phone"] = hexHMAC("+49 30 1234567")
	want["card"].(map[string]any)["number"] = "************1111"
	want["location"].(map[string]any)["lat"] = 52.52
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("masked record\n got %v\nwant %v", got, want)
	}
	if h := res.Header(); h != "payments-pii@7" {
		t.Fatalf("header %q", h)
	}
	var paths []string
	for _, tc := range res.Touches {
		paths = append(paths, tc.Path+":"+string(tc.Action))
	}
	if want := "customer.name:hash customer.email:redact customer.phone:hash card.number:mask location.lat:generalize"; strings.Join(paths, " ") != want {
		t.Fatalf("touches %v, want %s", paths, want)
	}
	if res.KeyID != KeyID(hashKey) {
		t.Fatalf("key id %q", res.KeyID)
	}

	t.Run("the serialized form of the schema masks alike", func(t *testing.T) {
		ser := serializedOf(t, text)
		plan, err := compileProto(t, set, ser)
		if err != nil {
			t.Fatal(err)
		}
		out2, _, err := plan.MaskProto(in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatal("the text and serialized forms of the schema mask differently")
		}
	})
	t.Run("a record without the PII values passes unchanged", func(t *testing.T) {
		in := encodeProto(t, md, `{"payment_id":"p","amount_cents":"5"}`)
		out, res, err := plan.MaskProto(in)
		if err != nil || !bytes.Equal(out, in) || len(res.Touches) != 0 {
			t.Fatalf("out %x, touches %v, err %v", out, res.Touches, err)
		}
	})
}

const paymentProtoJSON = `{"payment_id":"0b3c5f9e-2f57-4d0e-9c39-1f2a3b4c5d6e","created_at":"2024-05-17T13:45:12Z",` +
	`"amount_cents":"129900","currency":"EUR","status":"SETTLED","merchant_id":"m-4711","merchant_category":5411,` +
	`"channel":"ecommerce","customer":{"id":"c-1001","name":"Alice Example","email":"alice@example.com",` +
	`"phone":"+49 30 1234567","country":"DE","loyalty_tier":"gold"},"card":{"number":"4111111111111111",` +
	`"brand":"VISA","expiry_month":12,"expiry_year":2027},"location":{"lat":52.520008,"lon":13.404954},` +
	`"ip_address":"203.0.113.7","risk_score":0.137,"three_ds":true,"attributes":{"device":"ios","email":"alice.alt@example.com"}}`

// serializedOf is the base64 FileDescriptorProto of a .proto text, as
// Confluent's Python client registers it (encoded by protobuf-go).
func serializedOf(t testing.TB, text string) string {
	t.Helper()
	fd := goFile(t, text)
	b, err := protoMarshalFile(fd)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

const shapesSchema = `syntax = "proto3";
import "confluent/meta.proto";
message Order {
  string id = 1;
  Customer customer = 2;
  repeated Item items = 3;
  map<string, string> attrs = 4;
  oneof payment {
    string iban = 5 [(confluent.field_meta).tags = "PII"];
    string wallet = 6;
  }
  map<int32, Customer> contacts = 7;
  repeated string notes = 8;
  message Item { string sku = 1; Card card = 2; repeated Item parts = 3; }
}
message Customer { string name = 1; string email = 2; }
message Card { string number = 1; int32 expiry_year = 2; }
`

const shapesRecord = `{"id":"o-1","customer":{"name":"Alice","email":"alice@example.com"},` +
	`"items":[{"sku":"a","card":{"number":"4111111111111111","expiry_year":2027},"parts":[{"sku":"p","card":{"number":"5500000000000004"}}]},{"sku":"b"}],` +
	`"attrs":{"email":"alt@example.com","device":"ios"},"iban":"DE89370400440532013000",` +
	`"contacts":{"1":{"name":"Bob","email":"bob@example.com"}},"notes":["call me","later"]}`

func TestMaskProtoWalksNestedRepeatedMapAndOneofFields(t *testing.T) {
	md := goMessage(t, goFile(t, shapesSchema), "Order")
	in := encodeProto(t, md, shapesRecord)
	cases := []struct {
		name   string
		policy string // rules
		check  map[string]any
		paths  string // touched paths, in schema order
	}{
		{"a nested field is reached by its path",
			`[{match: {field: customer.email}, action: hash}, {match: {tag: PII}, action: hash}]`,
			map[string]any{"customer.email": hexHMAC("alice@example.com"), "customer.name": "Alice", "iban": hexHMAC("DE89370400440532013000")},
			"customer.email iban"},
		{"items[].card.number masks every item's card, not the parts'",
			`[{match: {field: "items[].card.number"}, action: mask, keep_last: 4}, {match: {tag: PII}, action: redact}]`,
			nil, "items[].card.number iban"},
		{"**.number reaches the parts too",
			`[{match: {field: "**.number"}, action: mask, keep_last: 4}, {match: {tag: PII}, action: redact}]`,
			// Item is recursive: the parts reuse the items' plan node, so
			// their touches count under its path.
			nil, "items[].card.number iban"},
		{"attrs.* masks every map value",
			`[{match: {field: "attrs.*"}, action: hash}, {match: {tag: PII}, action: redact}]`,
			map[string]any{"attrs.email": hexHMAC("alt@example.com"), "attrs.device": hexHMAC("ios")}, "attrs.* iban"},
		{"attrs.email masks the value under that key only",
			`[{match: {field: attrs.email}, action: redact}, {match: {tag: PII}, action: redact}]`,
			map[string]any{"attrs.email": "", "attrs.device": "ios"}, "attrs.email iban"},
		{"drop on a map value keeps the key with an empty value",
			`[{match: {field: attrs.email}, action: drop}, {match: {tag: PII}, action: redact}]`,
			map[string]any{"attrs.email": "", "attrs.device": "ios"}, "attrs.email iban"},
		{"an integer-keyed map's values are walked",
			`[{match: {field: "contacts.*.email"}, action: hash}, {match: {tag: PII}, action: redact}]`,
			map[string]any{"contacts.1.email": hexHMAC("bob@example.com"), "contacts.1.name": "Bob"}, "iban contacts.*.email"},
		{"a oneof member is masked when set",
			`[{match: {tag: PII}, action: mask, keep_first: 4}]`,
			map[string]any{"iban": "DE89******************", "wallet": nil}, "iban"},
		{"drop on a oneof member leaves the oneof unset",
			`[{match: {tag: PII}, action: drop}]`,
			map[string]any{"iban": nil}, "iban"},
		{"a repeated string is masked element by element",
			`[{match: {field: notes}, action: mask, keep_first: 1}, {match: {tag: PII}, action: redact}]`,
			map[string]any{"notes": []any{"c******", "l****"}}, "iban notes[]"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules: "+tt.policy+"\n")
			plan, err := compileProto(t, set, shapesSchema)
			if err != nil {
				t.Fatal(err)
			}
			out, res, err := plan.MaskProto(in)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeProto(t, md, out)
			for path, want := range tt.check {
				if g := fieldOf(got, path); !reflect.DeepEqual(g, want) {
					t.Errorf("%s = %#v, want %#v", path, g, want)
				}
			}
			var paths []string
			for _, tc := range res.Touches {
				paths = append(paths, tc.Path)
			}
			if strings.Join(paths, " ") != tt.paths {
				t.Errorf("touched %v, want %s", paths, tt.paths)
			}
			if strings.Contains(tt.name, "number") {
				items := got["items"].([]any)
				if n := fieldOf(items[0].(map[string]any), "card.number"); n != "************1111" {
					t.Errorf("items[0].card.number = %v", n)
				}
				part, count := "5500000000000004", 1
				if strings.HasPrefix(tt.name, "**") {
					part, count = "************0004", 2
				}
				if n := fieldOf(items[0].(map[string]any)["parts"].([]any)[0].(map[string]any), "card.number"); n != part {
					t.Errorf("items[0].parts[0].card.number = %v, want %v", n, part)
				}
				if res.Touches[0].Count != count {
					t.Errorf("the number rule counted %d values, want %d", res.Touches[0].Count, count)
				}
			}
		})
	}
}

func TestMaskProtoFailsClosed(t *testing.T) {
	md := goMessage(t, goFile(t, shapesSchema), "Order")
	valid := encodeProto(t, md, shapesRecord)
	hashAll := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules: [{match: {tag: PII}, action: hash}, {match: {field: customer}, action: redact}]\n")
	plan, err := compileProto(t, hashAll, shapesSchema)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("alice@example.com")
	cases := []struct {
		name    string
		payload []byte
		detail  string
	}{
		{"a payload cut short is undecodable", valid[:len(valid)-3], "exceeds the message"},
		{"a varint cut short is undecodable", []byte{0x12, 0x80}, "unexpected end of data"},
		{"a length past the end is undecodable", []byte{0x12, 0x7f, 0x0a, 0x01, 'x'}, "exceeds the message"},
		{"field number zero is undecodable", []byte{0x02, 0x00}, "invalid field number 0"},
		{"wire type 7 is undecodable", []byte{0x0f}, "invalid wire type 7"},
		{"a touched field with another wire type is undecodable", []byte{0x10, 0x01}, "field customer has wire type 0 where the schema says 2"},
		{"a group the schema does not declare is undecodable", []byte{0x4b, 0x08, 0x01, 0x4c}, "field 9 is not declared in Order"},
		{"a stray end of group is undecodable", []byte{0x4c}, "unexpected end of group 9"},
		{"a ten-byte overflowing varint is undecodable", append([]byte{0x12}, bytes.Repeat([]byte{0xff}, 11)...), "varint longer than 10 bytes"},
		{"invalid UTF-8 in a string a rule reads is undecodable", append([]byte{0x2a, 0x03}, 0xff, 0xfe, 0xfd), "iban holds invalid UTF-8"},
		{"a nested message's inner garbage is undecodable", append([]byte{0x12, byte(len(secret) + 2), 0x12, byte(len(secret) + 5)}, secret...), "exceeds the message"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := plan.MaskProto(tt.payload)
			var v *Violation
			if !errors.As(err, &v) || v.Reason != ReasonUndecodable || !strings.Contains(v.Error(), tt.detail) {
				t.Fatalf("error %v, want an undecodable violation mentioning %q", err, tt.detail)
			}
			if strings.Contains(v.Error(), string(secret)) || strings.Contains(v.Error(), "DE89") {
				t.Fatalf("the violation quotes the record: %v", v)
			}
		})
	}

	t.Run("a PII-tagged field no rule covers rejects every record", func(t *testing.T) {
		set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules: [{match: {field: customer.email}, action: hash}]\n")
		plan, err := compileProto(t, set, shapesSchema)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = plan.MaskProto(valid)
		var v *Violation
		if !errors.As(err, &v) || v.Reason != ReasonUnmatchedPII || v.FieldPath != "iban" {
			t.Fatalf("error %v, want unmatched-pii on iban", err)
		}
	})
	t.Run("a message's tags tag every field of it", func(t *testing.T) {
		src := `syntax = "proto3"; message M { string id = 1; Person p = 2; }
			message Person { option (confluent.message_meta).tags = "PII"; string name = 1; string email = 2; }`
		set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules: [{match: {field: p.name}, action: hash}]\n")
		plan, err := compileProto(t, set, src)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = plan.MaskProto(nil)
		var v *Violation
		if !errors.As(err, &v) || v.Reason != ReasonUnmatchedPII || v.FieldPath != "p.email" {
			t.Fatalf("error %v, want unmatched-pii on p.email", err)
		}
	})
	t.Run("a block rule rejects a record holding the field", func(t *testing.T) {
		set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules: [{match: {tag: PII}, action: hash}, {match: {field: \"**.number\"}, action: block}]\n")
		plan, err := compileProto(t, set, shapesSchema)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = plan.MaskProto(valid)
		var v *Violation
		if !errors.As(err, &v) || v.Reason != ReasonBlocked || v.FieldPath != "items[].card.number" || v.Rule != "p@1 rules[1]" {
			t.Fatalf("error %v, want blocked on items[].card.number", err)
		}
		if _, _, err := plan.MaskProto(encodeProto(t, md, `{"id":"x","items":[{"sku":"a"}]}`)); err != nil {
			t.Fatalf("a record without card numbers: %v", err)
		}
	})
}

// Wire builders for the strict-walk tests: a varint field, a
// length-delimited field holding s, and one holding the concatenated parts
// (a message, a map entry, a packed run).
func pbVarint(num int, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, protowire.Number(num), protowire.VarintType), v)
}

func pbString(num int, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, protowire.Number(num), protowire.BytesType), s)
}

func pbBytes(num int, parts ...[]byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, protowire.Number(num), protowire.BytesType), bytes.Join(parts, nil))
}

// pbGroup is a group field holding the concatenated parts.
func pbGroup(num int, parts ...[]byte) []byte {
	b := protowire.AppendTag(nil, protowire.Number(num), protowire.StartGroupType)
	b = append(b, bytes.Join(parts, nil)...)
	return protowire.AppendTag(b, protowire.Number(num), protowire.EndGroupType)
}

// hasUnknown reports whether m holds fields its descriptor does not declare,
// at any depth.
func hasUnknown(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				found = found || hasUnknown(mv.Message())
				return !found
			})
		case fd.IsList() && fd.Message() != nil:
			for i := 0; i < v.List().Len() && !found; i++ {
				found = hasUnknown(v.List().Get(i).Message())
			}
		case !fd.IsMap() && !fd.IsList() && fd.Message() != nil:
			found = hasUnknown(v.Message())
		}
		return !found
	})
	return found
}

const strictRecord = `{"id":"p-1","customer":{"name":"Alice","email":"alice@example.com"},` +
	`"card":{"number":"4111111111111111","expiry_year":2027},"lines":[{"sku":"a","card":{"number":"5500000000000004"}}],` +
	`"contacts":{"boss":{"name":"Bob","email":"bob@example.com"},"x":{"name":"Eve"}},"wallet":"w-1",` +
	`"qty":[1,2,300],"codes":[4,5],"created_at":"2024-05-17T13:45:12Z","attrs":{"email":"alt@example.com","device":"ios"},` +
	`"seen_at":"2024-05-17T13:45:12Z","cards":{"7":{"number":"4000000000000002"}}}`

func TestMaskProtoRejectsUndeclaredFields(t *testing.T) {
	text := protoText(t, "strict.proto")
	md := goMessage(t, goFile(t, text), "Payment")
	set := mustParse(t, "p.yaml", `policy: p
version: 1
rules:
  - {match: {field: customer.email}, action: hash}
  - {match: {field: contacts.boss.email}, action: hash}
  - {match: {field: attrs.email}, action: redact}
  - {match: {field: seen_at}, action: generalize, truncate: day}
`)
	plan, err := compileProto(t, set, text)
	if err != nil {
		t.Fatal(err)
	}
	valid := encodeProto(t, md, strictRecord)
	const secret = "alice@example.com"
	cases := []struct {
		name  string
		extra []byte // appended to a valid record
		// path and detail are the violation's FieldPath and Detail; detail
		// is "" when the record passes.
		path, detail string
	}{
		{"a record with every field declared passes", nil, "", ""},
		{"a oneof member is declared", pbString(6, "DE89"), "", ""},
		{"a packed run of a repeated scalar passes", pbBytes(8, []byte{1, 2, 0xac, 0x02}), "", ""},
		{"unpacked elements of a packed repeated scalar pass", append(pbVarint(8, 1), pbVarint(8, 2)...), "", ""},
		{"a packed run of a repeated scalar declared unpacked passes", pbBytes(9, []byte{4, 5}), "", ""},
		{"a map entry without its value passes", pbBytes(13, pbVarint(1, 8)), "", ""},

		{"an undeclared top-level field is rejected", pbString(99, secret),
			"", "field 99 is not declared in leak.Payment"},
		{"a reserved number is rejected", pbString(15, secret),
			"", "field 15 is not declared in leak.Payment"},
		{"an undeclared field in a sub-message a rule touches is rejected", pbBytes(2, pbString(3, secret)),
			"", "field 3 is not declared in leak.Customer (at customer)"},
		{"an undeclared field in a sub-message no rule touches is rejected", pbBytes(3, pbString(9, secret)),
			"", "field 9 is not declared in leak.Card (at card)"},
		{"an undeclared field in a repeated message element is rejected", pbBytes(4, pbString(9, secret)),
			"", "field 9 is not declared in leak.Line (at lines[])"},
		{"an undeclared field two untouched levels down is rejected", pbBytes(4, pbBytes(2, pbString(9, secret))),
			"", "field 9 is not declared in leak.Card (at lines[].card)"},
		{"an undeclared field in a map value a rule names is rejected", pbBytes(5, pbString(1, "boss"), pbBytes(2, pbString(9, secret))),
			"", "field 9 is not declared in leak.Customer (at contacts.boss)"},
		{"an undeclared field in a map value no rule names is rejected", pbBytes(5, pbString(1, "y"), pbBytes(2, pbString(9, secret))),
			"", "field 9 is not declared in leak.Customer (at contacts.*)"},
		{"an undeclared field in a value of an untouched map is rejected", pbBytes(13, pbVarint(1, 7), pbBytes(2, pbString(9, secret))),
			"", "field 9 is not declared in leak.Card (at cards.*)"},
		{"an undeclared field in an entry of an untouched map is rejected", pbBytes(13, pbVarint(1, 7), pbString(3, secret)),
			"", "field 3 is not declared in leak.Payment.CardsEntry (at cards)"},
		{"an undeclared field in an entry of a map a rule touches is rejected", pbBytes(11, pbString(1, "device"), pbString(3, secret)),
			"", "field 3 is not declared in leak.Payment.AttrsEntry (at attrs)"},
		{"an undeclared field in an untouched Timestamp is rejected", pbBytes(10, pbString(3, secret)),
			"", "field 3 is not declared in google.protobuf.Timestamp (at created_at)"},
		{"an undeclared field in a Timestamp a rule truncates is rejected", pbBytes(12, pbString(3, secret)),
			"", "field 3 is not declared in google.protobuf.Timestamp (at seen_at)"},

		{"a declared string written as a varint in an untouched message is rejected", pbBytes(3, pbVarint(1, 5)),
			"card.number", "field card.number has wire type 0 where the schema says 2"},
		{"a declared message written as a varint is rejected", pbVarint(3, 1),
			"card", "field card has wire type 0 where the schema says 2"},
		{"a declared integer written as bytes in an untouched message is rejected", pbBytes(3, pbString(2, secret)),
			"card.expiry_year", "field card.expiry_year has wire type 2 where the schema says 0"},
		{"an untouched Timestamp's seconds written as bytes are rejected", pbBytes(10, pbString(1, secret)),
			"created_at.seconds", "field created_at.seconds has wire type 2 where the schema says 0"},
		{"a truncated Timestamp's seconds written as bytes are rejected", pbBytes(12, pbString(1, secret)),
			"seen_at.seconds", "field seen_at.seconds has wire type 2 where the schema says 0"},
		{"a map value of another wire type is rejected", pbBytes(13, pbVarint(1, 7), pbVarint(2, 1)),
			"cards.*", "field cards.* has wire type 0 where the schema says 2"},
		{"a map value of another wire type in a map a rule touches is rejected", pbBytes(11, pbString(1, "email"), pbVarint(2, 1)),
			"attrs.*", "field attrs.* has wire type 0 where the schema says 2"},
		{"a map key of another wire type is rejected", pbBytes(11, pbVarint(1, 5)),
			"attrs", "field attrs has a map key of wire type 0 where the schema says 2"},
		{"a packed run that ends inside a varint is rejected", pbBytes(8, []byte{1, 0x80}),
			"qty", "field qty holds a packed run that ends inside a value"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			in := append(slicesClone(valid), tt.extra...)
			out, res, err := plan.MaskProto(in)
			if tt.detail == "" {
				if err != nil {
					t.Fatal(err)
				}
				m := dynamicpb.NewMessage(md)
				if err := proto.Unmarshal(out, m); err != nil {
					t.Fatalf("the output does not decode: %v", err)
				}
				if hasUnknown(m) {
					t.Fatal("the output holds undeclared fields")
				}
				if got := fieldOf(decodeProto(t, md, out), "customer.email"); got != hexHMAC("alice@example.com") || len(res.Touches) == 0 {
					t.Fatalf("customer.email = %v, touches %v", got, res.Touches)
				}
				return
			}
			var v *Violation
			if !errors.As(err, &v) || out != nil {
				t.Fatalf("error %v (output %x), want a violation", err, out)
			}
			if v.Reason != ReasonUndecodable || v.FieldPath != tt.path || v.Detail != tt.detail {
				t.Fatalf("violation %+v, want undecodable at %q: %q", *v, tt.path, tt.detail)
			}
			if strings.Contains(v.Error(), secret) {
				t.Fatalf("the violation quotes the record: %v", v)
			}
		})
	}

	t.Run("a stream no rule applies to passes undeclared fields untouched", func(t *testing.T) {
		// The schema has no PII tags and the rule matches none of its
		// fields: the plan has nothing to do and never decodes.
		set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules: [{match: {tag: PII}, action: redact}]\n")
		plan, err := compileProto(t, set, text)
		if err != nil {
			t.Fatal(err)
		}
		if plan.Touches() {
			t.Fatal("the plan touches records")
		}
		in := append(slicesClone(valid), pbString(99, secret)...)
		out, _, err := plan.MaskProto(in)
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("out %x, err %v; want the payload as it is", out, err)
		}
	})
}

func TestMaskProtoRejectsUndeclaredProto2Fields(t *testing.T) {
	text := protoText(t, "strict2.proto")
	md := goMessage(t, goFile(t, text), "Legacy")
	set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules: [{match: {field: email}, action: hash}]\n")
	plan, err := compileProto(t, set, text)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "alice@example.com"
	valid := encodeProto(t, md, `{"id":"l-1","email":"alice@example.com","line":[{"sku":"a"},{"sku":"b"}]}`)
	cases := []struct {
		name         string
		extra        []byte
		path, detail string
	}{
		{"a record whose groups hold declared fields passes", pbGroup(3, pbString(4, "c")), "", ""},
		{"an undeclared field in a group is rejected", pbGroup(3, pbString(9, secret)),
			"", "field 9 is not declared in leak.Legacy.Line (at line[])"},
		{"a reserved number is rejected", pbString(7, secret),
			"", "field 7 is not declared in leak.Legacy"},
		{"a number in an extension range is rejected", pbString(100, secret),
			"", "field 100 is not declared in leak.Legacy (an extension: extensions are not masked)"},
		{"a declared extension is rejected: no rule reaches extensions", pbString(150, secret),
			"", "field 150 is not declared in leak.Legacy (an extension: extensions are not masked)"},
		{"a group field written length-delimited is rejected", pbBytes(3, pbString(4, "c")),
			"line", "field line has wire type 2 where the schema says 3"},
		{"an unclosed group is rejected", protowire.AppendTag(nil, 3, protowire.StartGroupType),
			"", "group 3 is not closed"},
		{"a group closed by another field's end is rejected", append(protowire.AppendTag(nil, 3, protowire.StartGroupType), protowire.AppendTag(nil, 4, protowire.EndGroupType)...),
			"", "unexpected end of group 4"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			in := append(slicesClone(valid), tt.extra...)
			out, _, err := plan.MaskProto(in)
			if tt.detail == "" {
				if err != nil {
					t.Fatal(err)
				}
				m := dynamicpb.NewMessage(md)
				if err := proto.Unmarshal(out, m); err != nil || hasUnknown(m) {
					t.Fatalf("the output does not decode without undeclared fields: %v", err)
				}
				if got := decodeProto(t, md, out)["email"]; got != hexHMAC("alice@example.com") {
					t.Fatalf("email = %v", got)
				}
				return
			}
			var v *Violation
			if !errors.As(err, &v) || out != nil {
				t.Fatalf("error %v (output %x), want a violation", err, out)
			}
			if v.Reason != ReasonUndecodable || v.FieldPath != tt.path || !strings.HasSuffix(v.Detail, tt.detail) {
				t.Fatalf("violation %+v, want undecodable at %q ending %q", *v, tt.path, tt.detail)
			}
			if strings.Contains(v.Error(), secret) {
				t.Fatalf("the violation quotes the record: %v", v)
			}
		})
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

func TestMaskProtoSelectsTheMessageByIndexes(t *testing.T) {
	src := `syntax = "proto3";
message Envelope { string id = 1; message Inner { string secret = 1 [(confluent.field_meta).tags = "PII"]; } }
message Other { string secret = 1 [(confluent.field_meta).tags = "PII"]; string plain = 2; }`
	set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules: [{match: {tag: PII}, action: redact}]\n")
	fd := goFile(t, src)
	cases := []struct {
		name    string
		indexes []int
		msg     string
		record  string
	}{
		{"no indexes select the first message", nil, "Envelope", `{"id":"e"}`},
		{"[1] selects the second top-level message", []int{1}, "Other", `{"secret":"s","plain":"p"}`},
		{"[0 0] selects the first message nested in the first", []int{0, 0}, "Envelope.Inner", `{"secret":"s"}`},
	}
	cache := NewCache(WithHashKey(hashKey))
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := cache.Plan(set, "eu-payments", "payments.card", Schema{Type: Protobuf, Text: src, ID: 5, ProtoIndexes: tt.indexes})
			if err != nil {
				t.Fatal(err)
			}
			md := goMessage(t, fd, tt.msg)
			out, _, err := plan.MaskProto(encodeProto(t, md, tt.record))
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := decodeProto(t, md, out)["secret"]; ok && s != "" {
				t.Fatalf("secret = %v", s)
			}
		})
	}
	t.Run("indexes out of range are a compile error", func(t *testing.T) {
		if _, err := compileProto(t, set, src, 2); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestCompileProtoRefusesRulesTheWireCannotKeep(t *testing.T) {
	cases := []struct{ name, src, rules, want string }{
		{"drop on a proto2 required field",
			`syntax = "proto2"; message M { required string s = 1; }`, `[{match: {field: s}, action: drop}]`,
			"drop cannot apply to field s of schema \"test.proto\" (string): it is a proto2 required field"},
		{"drop on the elements of a repeated field",
			`syntax = "proto3"; message M { repeated string s = 1; }`, `[{match: {field: "s[]"}, action: drop}]`,
			"drop removes a field, not elements of a repeated field"},
		{"an unresolved type",
			`syntax = "proto3"; message M { acme.Money m = 1; }`, `[{match: {field: m}, action: redact}]`,
			"type acme.Money is not defined in the schema or its references"},
		{"a schema without messages",
			`syntax = "proto3"; enum E { A = 0; }`, `[{match: {field: m}, action: redact}]`,
			"declares no message"},
	}
	for _, tt := range cases {
		t.Run(tt.name+" is an error", func(t *testing.T) {
			set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules: "+tt.rules+"\n")
			_, err := compileProto(t, set, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestMaskProtoWalksProto2Groups(t *testing.T) {
	src := `syntax = "proto2"; message M { optional string id = 1; repeated group Line = 2 { optional string card = 3; optional int32 qty = 4; } }`
	md := goMessage(t, goFile(t, src), "M")
	set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules: [{match: {field: line.card}, action: mask, keep_last: 2}]\n")
	plan, err := compileProto(t, set, src)
	if err != nil {
		t.Fatal(err)
	}
	out, res, err := plan.MaskProto(encodeProto(t, md, `{"id":"x","line":[{"card":"123456","qty":2},{"card":"98"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := decodeProto(t, md, out)
	lines := got["line"].([]any)
	if lines[0].(map[string]any)["card"] != "****56" || lines[1].(map[string]any)["card"] != "**" || res.Touches[0].Count != 2 {
		t.Fatalf("masked %v (touches %v)", got, res.Touches)
	}
}

func TestLintChecksProtobufSchemas(t *testing.T) {
	set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules:\n  - {match: {field: customer.name}, action: hash}\n  - {match: {field: card.expiry_year}, action: hash}\n")
	warnings, err := set.CheckSchemas([]Schema{{Type: Protobuf, Text: protoText(t, "payment.proto"), Name: "payment.proto"}})
	if err == nil || !strings.Contains(err.Error(), "hash cannot apply to field card.expiry_year of schema \"payment.proto\" (int)") {
		t.Fatalf("error %v", err)
	}
	var w []string
	for _, e := range warnings {
		w = append(w, e.Path)
	}
	if strings.Join(w, " ") != "customer.email customer.phone" {
		t.Fatalf("warnings on %v, want the uncovered PII fields", w)
	}
	if _, _, _, err := TestRecord(set, Schema{Type: Protobuf, Text: protoText(t, "payment.proto")}, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "lint checks the rules") {
		t.Fatalf("TestRecord on a Protobuf schema: %v", err)
	}
}
