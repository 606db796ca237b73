package protoschema

// wellKnown are the files a Confluent Schema Registry resolves without
// references (its ProtobufSchema.KNOWN_DEPENDENCIES), for the types records
// use: Google's well-known types, google/type's common types, and
// Confluent's meta and decimal. Only the declarations that matter for the
// wire format and tags are written out; descriptor.proto, api.proto and
// type.proto are left out (a schema that uses their messages as field types
// must reference them).
var wellKnown = map[string]string{
	"google/protobuf/any.proto": `syntax = "proto3"; package google.protobuf;
message Any { string type_url = 1; bytes value = 2; }`,
	"google/protobuf/duration.proto": `syntax = "proto3"; package google.protobuf;
message Duration { int64 seconds = 1; int32 nanos = 2; }`,
	"google/protobuf/empty.proto": `syntax = "proto3"; package google.protobuf;
message Empty {}`,
	"google/protobuf/field_mask.proto": `syntax = "proto3"; package google.protobuf;
message FieldMask { repeated string paths = 1; }`,
	"google/protobuf/struct.proto": `syntax = "proto3"; package google.protobuf;
message Struct { map<string, Value> fields = 1; }
message Value {
  oneof kind {
    NullValue null_value = 1; double number_value = 2; string string_value = 3;
    bool bool_value = 4; Struct struct_value = 5; ListValue list_value = 6;
  }
}
enum NullValue { NULL_VALUE = 0; }
message ListValue { repeated Value values = 1; }`,
	"google/protobuf/timestamp.proto": `syntax = "proto3"; package google.protobuf;
message Timestamp { int64 seconds = 1; int32 nanos = 2; }`,
	"google/protobuf/wrappers.proto": `syntax = "proto3"; package google.protobuf;
message DoubleValue { double value = 1; }
message FloatValue { float value = 1; }
message Int64Value { int64 value = 1; }
message UInt64Value { uint64 value = 1; }
message Int32Value { int32 value = 1; }
message UInt32Value { uint32 value = 1; }
message BoolValue { bool value = 1; }
message StringValue { string value = 1; }
message BytesValue { bytes value = 1; }`,
	"google/protobuf/source_context.proto": `syntax = "proto3"; package google.protobuf;
message SourceContext { string file_name = 1; }`,
	"google/type/date.proto": `syntax = "proto3"; package google.type;
message Date { int32 year = 1; int32 month = 2; int32 day = 3; }`,
	"google/type/timeofday.proto": `syntax = "proto3"; package google.type;
message TimeOfDay { int32 hours = 1; int32 minutes = 2; int32 seconds = 3; int32 nanos = 4; }`,
	"google/type/latlng.proto": `syntax = "proto3"; package google.type;
message LatLng { double latitude = 1; double longitude = 2; }`,
	"google/type/money.proto": `syntax = "proto3"; package google.type;
message Money { string currency_code = 1; int64 units = 2; int32 nanos = 3; }`,
	"google/type/dayofweek.proto": `syntax = "proto3"; package google.type;
enum DayOfWeek { DAY_OF_WEEK_UNSPECIFIED = 0; MONDAY = 1; TUESDAY = 2; WEDNESDAY = 3; THURSDAY = 4;
  FRIDAY = 5; SATURDAY = 6; SUNDAY = 7; }`,
	"google/type/month.proto": `syntax = "proto3"; package google.type;
enum Month { MONTH_UNSPECIFIED = 0; JANUARY = 1; FEBRUARY = 2; MARCH = 3; APRIL = 4; MAY = 5; JUNE = 6;
  JULY = 7; AUGUST = 8; SEPTEMBER = 9; OCTOBER = 10; NOVEMBER = 11; DECEMBER = 12; }`,
	"google/type/postal_address.proto": `syntax = "proto3"; package google.type;
message PostalAddress {
  int32 revision = 1; string region_code = 2; string language_code = 3; string postal_code = 4;
  string sorting_code = 5; string administrative_area = 6; string locality = 7; string sublocality = 8;
  repeated string address_lines = 9; repeated string recipients = 10; string organization = 11;
}`,
	"google/type/phone_number.proto": `syntax = "proto3"; package google.type;
message PhoneNumber {
  oneof kind { string e164_number = 1; ShortCode short_code = 2; }
  string extension = 3;
  message ShortCode { string region_code = 1; string number = 2; }
}`,
	"confluent/meta.proto": `syntax = "proto3"; package confluent;
import "google/protobuf/descriptor.proto";
message Meta { string doc = 1; map<string, string> params = 2; repeated string tags = 3; }
extend google.protobuf.FileOptions { Meta file_meta = 1088; }
extend google.protobuf.MessageOptions { Meta message_meta = 1088; }
extend google.protobuf.FieldOptions { Meta field_meta = 1088; }
extend google.protobuf.EnumOptions { Meta enum_meta = 1088; }
extend google.protobuf.EnumValueOptions { Meta enum_value_meta = 1088; }`,
	"confluent/type/decimal.proto": `syntax = "proto3"; package confluent.type;
message Decimal { bytes value = 1; uint32 precision = 2; int32 scale = 3; }`,
}

// IsWellKnown reports whether an import path names a file Load resolves
// without a reference.
func IsWellKnown(path string) bool {
	_, ok := wellKnown[path]
	return ok
}
