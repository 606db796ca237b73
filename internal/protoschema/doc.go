// Package protoschema models Protobuf schema files for tributary: the
// registry's compatibility checks and the policy package's masking plans
// read the same model, whichever form a schema came in.
//
// It reads both forms a Confluent Schema Registry accepts: .proto text
// (Parse) and a serialized google.protobuf.FileDescriptorProto, base64
// encoded as Confluent's Python client registers it (Decode, ParseSchema
// detects which). Load reads a schema with its references and links every
// type name; MessageAt picks the message Confluent's wire-format message
// indexes select. Canonical renders the normal form that decides "same
// schema" (the text and serialized forms of one file render alike), and
// Descriptor encodes a file as protoc would, for ?format=serialized.
//
// The package imports the standard library only, so package policy, a leaf,
// can use it: the descriptor is decoded by a small hand-written wire reader
// (wire.go), not by google.golang.org/protobuf (the tests use that library
// to check the model against its descriptors).
//
// # The model
//
// File, Message, Field, Enum, Oneof and Service keep declaration order,
// since message indexes count it. A map field is, as in descriptors, a
// repeated field of a nested entry type (MapEntry) placed where the map is
// declared; groups likewise. A proto3 optional field has its synthetic
// oneof. Options are normalized (options.go): standard options by name,
// Confluent's meta options ((confluent.field_meta), message_meta,
// file_meta...) by their extension name whichever syntax set them, other
// extensions of the serialized form as raw values. Field.Tags,
// Message.Tags and File.Tags are the meta options' tags.
//
// # Limits
//
// Schemas come from registries and are not trusted. Limits bounds the
// schema's size, nesting (of messages and of option values), name length and
// the number of references; a schema past one is an error wrapping
// ErrLimit. Parsing and decoding never recurse deeper than MaxDepth, and each
// reference is read once. FuzzParse and FuzzDecode (seeds in testdata/fuzz)
// check that no input panics and that what parses survives an encode and
// decode round trip with the same canonical form.
//
// # Well-known files
//
// Imports of Google's well-known types (google/protobuf/timestamp.proto...),
// google/type's common types and Confluent's confluent/meta.proto and
// confluent/type/decimal.proto resolve without references, as in a Confluent
// registry (wellknown.go; TestWellKnownFilesMatchProtobufGo checks them
// against protobuf-go's descriptors).
package protoschema
