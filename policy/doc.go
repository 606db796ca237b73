// Package policy parses, validates and compiles the PII-masking policies that
// compliance officers write, and applies them to decoded records before they
// land in the central cluster.
//
// It is a leaf: it imports the standard library, go.yaml.in/yaml/v3,
// internal/yamlerr (the error type and YAML decoding helpers it shares with
// package config), internal/protoschema (the standard-library-only Protobuf
// schema model it shares with package registry) and github.com/hamba/avro/v2
// (to parse Avro schemas) only. It sees policy files,
// schemas and record payloads — never Kafka, a registry or the network. The
// daemon reads the policy folder with LoadDir, checks the new Set against the
// active one with CheckAgainst, puts Set.Encode into the Raft log, and every
// node Decodes the same bytes at the same log index. For each (bundle, pipeline,
// topic, part, schema id, Protobuf message indexes) a Cache compiles a Plan once: one for the record's
// value (Cache.Plan) and one for its key (Cache.PlanPart with Key); and per
// stream a HeaderPlan for its headers (Cache.Headers). Plan.Apply (MaskAvro,
// MaskJSON, MaskProto, or the whole key for Raw) and HeaderPlan.Apply mask a record or
// return a *Violation, and the caller quarantines the record with
// Violation.Reason. The caller merges the Results of key, value and headers
// (Result.Merge) into one tributary-policy header.
//
// # How it works
//
// Parsing walks the yaml.Node tree with its own strict decoder (parse.go), so
// that unknown keys, duplicate keys and wrong types are errors, every problem of
// every file is reported at once, and each error carries file:line:col and the
// key path. Policy.check (validate.go) checks one policy; Set.validate checks
// policies against each other.
//
// Compile (compile.go) turns the applicable rules into a plan tree shaped like
// the schema. Field patterns are matched by a small NFA whose state is a set of
// (rule, position) pairs; each schema node records the rule that applies there
// and, for leaf-wise actions on records, arrays and maps, passes it down as
// inherited. Nodes no rule touches are cut off, so masking skips their bytes
// without decoding them. Recursive types make the plan a graph; the compiler
// reuses the node being built when it meets the same (type, state) again.
//
// Avro schemas are parsed with hamba/avro (schema.go); JSON Schemas are read
// by jsonschema.go, which describes each place a value can sit by the set of
// subschemas that apply there (every applicator keyword, $refs into the
// schema's references included) and gives the compiler the union of their
// members and tags, so that a tag in any branch counts. What it cannot read
// soundly makes Compile return a plan that rejects every record
// ("schema-unreadable") instead of an error.
//
// MaskAvro (mask_avro.go) rewrites the Avro binary encoding in place of decoding
// and re-encoding it: untouched bytes are copied as they are, which keeps output
// deterministic and fast (see BenchmarkMaskAvro). The constants it writes (a
// dropped field's default, a replace value) are encoded once, by the compiler,
// with encodeAvro (avro_encode.go), which also turns TestRecord's JSON input
// into Avro; appendAvroJSON (avro_json.go) shows Avro records as JSON. MaskJSON
// (json.go) does the same for JSON text: a validating scan that replaces only
// the spans of the values it changes, keeping key order, whitespace and number
// spelling. Both check that the whole record decodes, since an undecodable
// record must be quarantined, not forwarded.
//
// Protobuf schemas (.proto text or a base64 FileDescriptorProto) are read by
// internal/protoschema and converted by proto_schema.go into the compiler's
// types: the message Schema.ProtoIndexes selects becomes the record, repeated
// fields arrays, map fields maps; each type keeps its wire facts (field
// numbers, scalar encodings) in stype.pb. buildProto (proto_plan.go) compiles
// them like Avro records, and MaskProto (mask_proto.go) rewrites the wire
// format as MaskAvro does: fields in wire order, untouched and unknown fields
// skipped by wire type and copied as they are (their framing checked, not
// their contents), changed values re-encoded, and the length prefix of every
// enclosing message fixed when a length changed (see BenchmarkMaskProto).
//
// # Policy file reference
//
// One policy per file; the daemon reads every *.yaml and *.yml file of the
// policies folder. Keys are case-sensitive and strict: an unknown key is an
// error ("did you mean ...?"). A field pattern starting with "*" must be quoted
// (an unquoted * starts a YAML alias).
//
//	policy: payments-pii             # required: unique name; letters, digits, . _ -
//	version: 7                       # required: integer >= 1; raise it on every change
//	owner: compliance@acme.example   # optional: who to ask
//	description: card payments       # optional
//	applies_to:                      # optional: without it, the policy applies everywhere
//	  pipelines: [eu-payments]       #   pipeline names from the node config (none: all)
//	  topics: ['payments\..*']       #   regexes matching the whole source topic (none: all)
//	rules:                           # required: at least one
//	  - match: {tag: PII}            # fields tagged PII in the key's or the value's schema
//	    action: hash
//	  - match: {field: card.number}  # a field path; both field and tag: must match both
//	    action: mask
//	    keep_last: 4
//	    description: PCI DSS 3.3     # optional, per rule
//	  - match: {key: customer_id}    # a field path in the record key's schema
//	    action: hash
//	  - match: {key: "."}            # the whole key (a key without a schema: a VIN)
//	    action: hash
//	  - match: {header: "x-user-*"}  # a header: exact name, or a glob with *
//	    action: drop
//	on_unmatched_pii: quarantine     # optional; the only value (fail closed)
//	retired_rules:                   # optional: matches of rules this version removes on purpose
//	  - {field: customer.phone}
//	retired: [marketing-pii]         # optional: policies this bundle removes on purpose
//
// Field patterns (match.field) are dot-separated names: "customer.email".
// "*" matches one level (a field, or a map key), "**" any number of levels
// including none ("**.ssn" is ssn at any depth). "items[].card" names the card
// field of each element of the array items; the "[]" may be left out
// ("items.card" matches too), and "attrs[]" or "attrs.*" matches every value of
// the map attrs, "attrs.email" the value under the key "email". Array indexes
// ("items[0]") are not supported. Paths use the schema's field names; for JSON,
// an object's member names.
//
// Tags (match.tag) come from the schema: the Avro field property
// "confluent:tags" (["PII"]) on any field, nested records included, or
// "confluent:tags" on any JSON Schema subschema: a property's, and those
// reached through $ref (local, or to a referenced subject by its reference
// name or $id), $defs, patternProperties, additionalProperties,
// unevaluatedProperties, items, prefixItems, contains, allOf, anyOf, oneOf,
// if/then/else and dependentSchemas. A member tagged in any branch is tagged;
// where branches give it different types, the value's own type decides. Tags
// under not are ignored; tags in a contentSchema make the whole string PII.
// Recursive schemas are followed as deep as the data goes. Protobuf fields
// are tagged by Confluent's option, written [(confluent.field_meta) = { tags:
// ["PII"] }] or [(confluent.field_meta).tags = "PII"]; a Protobuf message's
// own tags (option (confluent.message_meta).tags = "PII") tag each of its
// fields.
//
// A match names one part of the record: field (the value), key or header, at
// most one of them (a lint error otherwise). A tag alone applies to the key and
// the value; with field or key it narrows them; headers have no tags.
//
// # Keys
//
// A record's key is masked by its own plan (Part Key), compiled for the key's
// schema: key rules and tag rules apply there, field rules do not (and key
// rules do not apply to values). match.key takes a field path with field's
// syntax, in the key's schema. A PII-tagged key field no rule covers
// quarantines the record ("unmatched-pii"), as in values. Paths in touches and
// violations start with "key": "key.customer_id", and "key" for the whole key.
//
// A key without a schema (no Confluent wire-format prefix) is compiled with
// Schema{Type: Raw}: plain bytes, read as a UTF-8 string, such as a VIN. We
// chose to give it exactly one addressable field, the whole key, written
// match: {key: "."} ("**" matches it too). On it hash gives the same pseudonym
// as hashing the same string in a value field, so keys and values still join;
// redact makes the key empty (not null); mask keeps keep_first/keep_last
// characters (bytes that are not UTF-8 are "unmaskable"); replace writes its
// value, which must be a string; drop makes the key null (Plan.Apply returns
// nil; the record keeps its partition, which is the source partition); block
// quarantines a record whose key is not null. generalize and bucket are
// compile errors there: raw bytes have no number or timestamp. A null key stays
// null except under replace. "." also names the whole key of a key with a
// schema. A JSON key without a registry schema is compiled with Schema{Type:
// JSON}, so that key paths address its members.
//
// # Headers
//
// Kafka headers and Pub/Sub attributes (which become headers) are masked by a
// HeaderPlan. match.header is an exact, case-sensitive header name, or a glob
// where "*" matches any run of characters ("x-user-*"; "*" alone matches every
// header). Values are read as UTF-8 strings (bytes when they are not valid
// UTF-8, which mask then rejects as "unmaskable"). hash gives 64 hex digits,
// as for strings; redact an empty value; mask and replace (a string value) as
// for strings; drop removes the header; block quarantines a record that has the
// header with a non-null value. generalize and bucket are lint errors: a header
// value has no number to round or timestamp to truncate. When several header
// rules of one policy match a header, block wins, then an exact name over a
// glob, then the rule written first, as for fields. Two policies that apply to
// the stream and give one header different actions are a lint error when their
// matches are equal; when only globs overlap (known per header name) the record
// is refused ("policy-conflict"). Touch.Path is "header." and the rule's match
// ("header.x-user-*"), so a glob's touches add up into one Touch.
//
// When several rules of one policy match a field, a block rule wins, then the
// most specific: a path without wildcards beats one with wildcards, which beats
// a tag alone; a tag added to a path narrows it. Remaining ties go to the rule
// written first. A rule on a record, array or map applies to every value inside
// it, unless a rule matches an inner field itself. Two policies that apply to
// the same stream and give one field different actions are an error.
//
// A field tagged PII that no rule covers sends every record of its schema to
// quarantine (reason "unmatched-pii"), as does a record that does not decode
// ("undecodable"), a block rule ("blocked") and a JSON Schema the masker
// cannot read in full ("schema-unreadable": a $ref to anything but the schema
// itself and its references, which are never fetched; a $ref cycle that never
// reaches a value; tags on propertyNames; nesting deeper than 200 levels; a
// keyword holding no schema where one is due). Masking never changes the
// writer schema: every output decodes with the schema the input was written
// with. A rule that cannot keep that promise for a field is an error when the
// schema is known (Compile, Lint), and otherwise rejects the record ("unmaskable").
//
// Actions and their parameters:
//
//	redact       no parameters. null where the type allows null (a union with
//	             null, a nullable JSON type); otherwise "" for strings, 0 for
//	             numbers, false for booleans, empty bytes, zero bytes for fixed,
//	             the enum's default symbol (else its first) for enums, the nil
//	             UUID for uuid strings. On records: every field inside.
//	hash         no parameters. HMAC-SHA256 with the key from TRIBUTARY_HASH_KEY
//	             or a key file: the same input gives the same pseudonym on every
//	             node and after restarts, in Avro and JSON alike. Strings become
//	             64 lower-case hex digits (uuid strings: a UUID), bytes the 32 raw
//	             HMAC bytes, fixed(n) n bytes of it. Numbers, booleans and enums
//	             cannot be hashed into a valid value of their type: an error.
//	             Result.KeyID names the key, so keys can rotate.
//	mask         keep_first: N, keep_last: N (default 0), mask_char (default "*",
//	             one character; ASCII for bytes). Replaces each character but the
//	             first and last ones kept; when the kept ones would cover the
//	             whole value, everything is masked. Strings, bytes and fixed
//	             (same length); not numbers.
//	generalize   precision: N (numbers: round to N decimal places; a negative N
//	             rounds to tens, hundreds...: integers need a negative N to change)
//	             and/or truncate: hour | day | month | year (timestamps: Avro
//	             long timestamp-millis/-micros, local-timestamp-*, int date, and
//	             RFC 3339 strings, truncated in their own offset). A string that
//	             is not a timestamp is rejected ("unmaskable").
//	drop         no parameters. null where the type allows it, else the field's
//	             default (Avro default, JSON Schema "default"); a JSON member the
//	             schema does not require (or any member, without a schema) is
//	             removed. Elsewhere an error.
//	replace      value: a fixed string, number or boolean of the field's type:
//	             an integer for int/long (in range), a symbol for enums, a
//	             string of the fixed size for fixed, any string for bytes.
//	bucket       buckets: [{min, max, replacement}]: a value in [min, max)
//	             becomes replacement, a number that fits the field (integers for
//	             int and long). Buckets must be sorted and must not overlap; the
//	             first may leave out min and the last max (open ranges). A value
//	             outside every bucket is rejected ("unmaskable").
//	block        no parameters. A record whose matched field holds a value (not
//	             null, or present in JSON) is quarantined ("blocked").
//
// Null values stay null under every action except replace (and drop, which
// may remove a null JSON member or write the field's default). JSON
// Schema constraints beyond types (pattern, format, minLength...) are not
// checked: a hashed email no longer has format "email".
//
// Protobuf: a field absent from the wire holds its default value and is left
// alone by every action (replace included); a present value, even a zero
// written explicitly, is masked. Field paths use the .proto field names
// (customer.email, items[].card, attrs.* for map values; map keys are not
// masked). redact writes the zero value (an enum's first value, zero seconds
// and nanos for a google.protobuf.Timestamp), hash and mask work on string
// and bytes fields, generalize and bucket on every integer type (unsigned
// ones included) and on float and double, and generalize with truncate on
// google.protobuf.Timestamp (in UTC). drop removes the field from the wire,
// so the reader sees its default (proto3: zero, empty or unset; a map value:
// the entry keeps its key with an empty value); it cannot apply to proto2
// required fields or to elements of a repeated field. replace writes a value
// of a scalar or enum field (an enum value by name). block rejects a record
// in which the field occurs at all. Whenever a plan touches the stream (a
// rule applies to some field, or the schema has PII tags), every field of
// the record, at every depth (messages no rule touches, repeated elements,
// map entries and values, groups), must be declared by the writer schema's
// message at its position, with the wire type the schema gives it (a
// repeated scalar packed or not): a field the schema does not declare (a
// newer writer's, a reserved number, an extension, even one an extend block
// declares: no rule reaches extensions) could carry PII no rule can reach,
// and makes the record undecodable, with a Detail such as "field 99 is not
// declared in leak.Payment (at customer)". A plan that touches nothing
// passes records as they are. A field whose wire type contradicts the
// schema, broken framing, and invalid UTF-8 in a proto3 string a rule reads
// make the record undecodable too. Confluent's clients
// count message indexes two ways (with or without protoc's map entry types,
// see protoschema.File.MessageAt): indexes that mean different messages in
// the two countings make Compile fail rather than guess. Result.Touches
// lists Protobuf fields in schema order (the wire order may differ).
//
// Errors read "payments.yaml:14:7: rules[2].action: unknown action "hsah"
// (did you mean "hash"?)". YAML syntax errors have a line but no column.
//
// # Removing protection on purpose
//
// Deleting a policy file, renaming a policy or deleting a rule removes
// protection, so the new bundle must say it means it (Set.CheckAgainst, run
// before a bundle is proposed):
//
//   - A policy of the active bundle missing from the new one is an error,
//     unless a file of the new bundle lists its name under retired:, a
//     top-level list of policy names. Any policy file may hold it, and a file
//     may hold only retired: (so that the last policy can go). A retired name
//     must not also be a policy of the bundle. Once the bundle is active the
//     entry may stay or go.
//   - A rule is known by its match (field, key, header and tag). A match of
//     the active version missing from the new version is an error, whatever
//     the version, unless the policy lists it under retired_rules:, in match
//     syntax ({field: customer.email}). Changing a rule's match removes the old
//     match; changing only its action or parameters does not (policy diff
//     flags loosening). A retired match must not also be a rule's match.
//   - Versions never go down, and a policy whose content (rules,
//     retired_rules, scope, owner, description) changed needs a higher
//     version. A policy the active bundle does not have is new, whatever its
//     version: one retired earlier that comes back is not compared with its
//     last version, which the active bundle no longer holds; give it a higher
//     one so that <name>@<version> stays unambiguous in the audit trail.
//
// Set.OlderThan tells the daemon that its folder is an older copy than the
// cluster's bundle (a policy missing and not retired, or versions only lower),
// so that a lagging node never proposes it.
//
// # Audit trail
//
// Set.Files lists each file's sha256 and Set.Hash the bundle's, computable by
// hand as `cd policies && LC_ALL=C sha256sum *.yaml | sha256sum`. A record a
// policy touched carries tributary-policy: <name>@<version> (Result.Header).
package policy
