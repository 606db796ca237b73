// Package registry is tributary's schema governance: the Confluent wire
// format, a client per cluster's registry, schema-id translation between
// registries, schema compatibility, and an embedded Confluent-compatible
// schema registry server. It never decides about masking; it only tells the pipeline
// which schema a record was written with and whether that schema may land.
//
// # Wire format (wire.go)
//
// ReadRef and AppendRef parse and write the schema reference Confluent
// serializers put in front of a record: magic byte 0 and a 4-byte big-endian
// schema id, or (Confluent 8.x) magic byte 1 and a 16-byte schema GUID. For
// Protobuf the message-index list follows: a zig-zag varint count and that many
// zig-zag varint indexes, with the list [0] written as the single byte 0.
// Every failure is a *WireError with a stable Reason (ReasonShort,
// ReasonBadMagic, ReasonBadIndex, ReasonTrailing, ReasonDupHeader) and the byte
// Offset; the quarantine reason code is built from it.
//
// Confluent 8.x serializers may instead put the reference into the record
// headers __key_schema_id / __value_schema_id (value: the same encoding) and
// leave the payload bare. Locate reports, for a key, value and headers, where
// each reference lives (InPayload with its prefix length, InHeader with the
// header index, or Absent), so the caller rewrites it there. A header takes
// precedence over the payload; a duplicated or malformed schema-id header and
// an unframed non-empty value are errors, so a reference is never passed
// through untranslated. Whether keys are framed is the caller's choice
// (KeyMode). The decoder is fuzzed (FuzzReadRef, FuzzLocate; seeds in
// testdata/fuzz).
//
// # Embedded registry (server.go, store.go)
//
// NewServer returns an http.Handler that speaks Confluent's REST API with its
// content type application/vnd.schemaregistry.v1+json, status codes and error
// bodies {"error_code":N,"message":"..."}. Serve runs it on an address until
// its context ends. Endpoints:
//
//	GET    /subjects                                   ?deleted=true, ?subjectPrefix=
//	GET    /subjects/{s}/versions                      ?deleted=true
//	POST   /subjects/{s}/versions                      register; id and version honoured in IMPORT mode
//	GET    /subjects/{s}/versions/{v|latest|-1}        ?deleted=true, ?format=serialized
//	GET    /subjects/{s}/versions/{v}/schema           the schema text only; ?format=serialized
//	GET    /subjects/{s}/versions/{v}/referencedby
//	DELETE /subjects/{s}/versions/{v}                  soft; ?permanent=true after a soft delete
//	POST   /subjects/{s}                               lookup; ?deleted=true
//	DELETE /subjects/{s}                               soft; ?permanent=true after a soft delete
//	GET    /schemas/ids/{id}  (/schema, /versions, /subjects)   ?format=serialized on /schemas/ids/{id}[/schema]
//	GET    /schemas/guids/{guid}                       ?format=serialized
//	GET    /schemas/types
//	GET|PUT|DELETE /config, /config/{s}                ?defaultToGlobal=true on GET /config/{s}
//	GET|PUT /mode, GET|PUT|DELETE /mode/{s}            READWRITE, READONLY, IMPORT; ?force=true
//	POST   /compatibility/subjects/{s}/versions/{v}    one version; ?verbose=true
//	POST   /compatibility/subjects/{s}/versions        every version the level requires
//
// Semantics follow Confluent's: ids start at 1 and are global; the same schema
// (same type, canonical text and references) gets the same id in every
// subject; registering a schema a live version of the subject already has
// returns that id and version; versions count up from the highest ever used
// (soft-deleted ones included) and restart only after a permanent delete;
// soft-deleted versions are hidden from listings (unless ?deleted=true) and
// ignored by compatibility checks, while their ids keep resolving for data
// written with them; an id disappears from /schemas/ids when no version uses
// it any more. A version referenced by another schema cannot be deleted
// (42206). References are resolved recursively (depth 32): Avro named types
// are parsed into the schema's own name cache, JSON Schema $refs naming a
// reference resolve to its document. READONLY rejects registrations and
// deletions (42205); IMPORT skips compatibility checks and keeps the caller's
// id and version, refusing an id or version that holds a different schema
// (42205); switching to IMPORT needs an empty registry or subject unless
// ?force=true. Error codes: 40401 subject not found, 40402 version not found,
// 40403 schema not found, 40404 subject soft-deleted, 40405 subject not
// soft-deleted, 40406 version soft-deleted, 40407 version not soft-deleted,
// 40408 subject compatibility not configured, 40409 subject mode not
// configured, 409 incompatible, 42201 invalid schema, 42202 invalid version,
// 42203 invalid compatibility level, 42204 invalid mode, 42205 operation not
// permitted, 42206 reference exists, 50001 store error, 400 malformed body.
//
// Protobuf schemas come in either form Confluent accepts: .proto text, or
// the base64 of a serialized FileDescriptorProto, which Confluent's Python
// client registers. Both are stored as given and served as given; with
// ?format=serialized a Protobuf schema is served as a base64
// FileDescriptorProto (a text one encoded from its model, type names
// resolved through its references), as Confluent's Python deserializer asks
// for it. Other formats, and other schema types, are served as stored:
// Confluent ignores formats it does not know. (Confluent stores the text it
// renders from its model instead of what was given; ids and compatibility
// agree either way.)
//
// A hostile schema is a 422, never an out-of-memory or a stack overflow: at
// most 1 MiB of schema text (maxSchemaBytes; Confluent keeps a schema in one
// record of its _schemas topic, 1 MiB by default), Protobuf messages and
// option values nested at most 64 deep and names of at most 1,024 bytes
// (protoLimits), at most 256 references per schema and 256 distinct schemas
// reached through references, each resolved once, and a reference tree of
// at most 4,096 nodes once unfolded (maxRefExpansion: diamonds repeated at
// every level would otherwise double it at each).
//
// With ServerOptions.DataFile the whole state is written on every change as a
// JSON snapshot (temporary file, fsync, rename, directory fsync) and read at
// start; a failed write answers 50001 and leaves the served state unchanged.
// Without it the registry lives in memory.
//
// Locking: Server.mu guards the state and is held for writing across a whole
// mutation and its store write; Server.parsedMu guards the cache of parsed
// schemas. Lock order: mu, then parsedMu.
//
// # Leniency (lenient.go)
//
// The registry accepts the Avro schemas Confluent Schema Registry accepts even
// where hamba/avro, which parses them, is stricter: field defaults that do not
// match their type (Confluent's avro.validate.defaults is false by default,
// e.g. "default":"null" on ["null","string"]), Unicode letters in names and
// enum symbols, namespace parts and field aliases that are not Avro names,
// non-string docs, upper-case field orders. Only when the strict parse fails
// is a relaxed copy parsed for the compatibility checker (invalid defaults
// become placeholders of the right type, names hamba refuses are rewritten
// consistently and shown as written in messages); the original text is what
// is stored, returned and identified. Each new version registered this way is
// logged as a warning with its subject, id, version and the JSON pointers of
// what was relaxed, never names or values. A source registry full of such
// schemas thus does not make a tributary target registry refuse them.
//
// # Canonical form ("same schema, same id")
//
// Avro and JSON Schema: the JSON re-marshalled with sorted keys and no
// insignificant whitespace (numbers as written). Avro's Parsing Canonical
// Form is deliberately not used: it drops defaults, aliases, doc and custom
// attributes such as "confluent:tags", so a schema that adds a default or a
// PII tag would silently get the old id and text, and the policy would never
// see the tag. Semantically equal spellings ({"type":"string"} vs "string")
// therefore get different ids, as in Confluent without ?normalize=true.
// Protobuf: the normal form of internal/protoschema (File.Canonical), which
// the text and serialized forms of one file share, as Confluent gives both
// one id (it canonicalises either into the same rendered text): layout,
// comments, declaration grouping, option spelling, protoc's derived
// json_names, map entry types and synthetic oneofs do not matter; type
// names compare fully qualified, resolved through the schema's references.
// Custom options other than Confluent's meta options are not normalized
// across the two forms, so a schema using them may get two ids. The
// registry returns compact JSON (key order kept) for Avro and JSON Schema and
// the schema as first registered for Protobuf.
//
// # Compatibility (compat*.go)
//
// Levels NONE, BACKWARD, FORWARD, FULL and their _TRANSITIVE forms. BACKWARD
// checks that the new schema reads data written with the old, FORWARD the
// reverse, FULL both; non-transitive levels compare with the latest live
// version, transitive ones with every live version (newest first, reporting
// the first that fails). POST /compatibility/.../versions/{v} compares with
// that version only. Messages follow Confluent's verbose format:
// {errorType:'...', description:'...', additionalInfo:'...'} followed by
// {oldSchemaVersion: N}, {oldSchema: '...'} and {compatibility: '...'}.
//
// Avro follows the specification's schema resolution rules, the same ones as
// Avro Java's SchemaCompatibility (which Confluent uses): promotions int to
// long, float, double; long to float, double; float to double; string to
// bytes and bytes to string. Records, enums and fixed match by unqualified
// name or a reader alias naming the writer's full name. Each reader field is
// found in the writer by name or by a reader field alias; a field missing
// from the writer needs a default. Writer enum symbols must exist in the
// reader unless the reader enum has a default. Fixed sizes must be equal.
// Every branch of a writer union must be readable by the reader; a reader
// union reads a writer type when any of its branches does. Arrays and maps
// compare items and values; logical types are ignored; recursive types
// terminate. Messages name the dotted field path (customer.address.zip, with
// [] for array items and {} for map values) and the JSON pointer. The checker
// is our own: hamba/avro/v2's SchemaCompatibility memoises verdicts by
// Parsing Canonical Form fingerprint, which omits defaults, so a checker that
// has seen a field without a default keeps failing schemas that add one; it
// also stops at the first problem and names no path. hamba/avro parses the
// schemas (with a fresh name cache per schema, never its global one).
//
// JSON Schema follows Confluent's content-model rules: the reader must accept
// every document the writer accepts. Checked: type (integer counts as
// number); enum and const; maximum, exclusiveMaximum, maxLength, maxItems,
// maxProperties may only grow and their minimum counterparts only shrink, and
// none may be added; pattern and multipleOf may not be added or changed
// (multipleOf may become a divisor); uniqueItems may not be added;
// properties: a property added to an open content model, or removed from a
// closed one, is incompatible (PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL,
// PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL); an additionalProperties schema
// stands in for absent properties; a newly required property needs a default;
// closing or narrowing additionalProperties is incompatible; items (schema or
// tuple); oneOf/anyOf/allOf branch by branch when both sides have the same
// number, a reader union accepting a non-union writer, every branch of a
// writer union; not must be unchanged. $ref is followed within the document
// and into referenced schemas; an unresolvable $ref compares by its text.
// Not checked: patternProperties, dependencies, if/then/else, contains,
// propertyNames, format, $id-based resolution. Schemas are validated
// structurally (keyword types, resolvable local $refs), not against a
// metaschema.
//
// Protobuf is read by internal/protoschema (no descriptor library): .proto
// text or a serialized FileDescriptorProto, with syntax, package, imports,
// options, messages with nested messages, enums, oneofs, maps, groups,
// reserved ranges, extensions, extend blocks and services. Imports resolve to
// the schema's references by name and to the well-known files Confluent
// knows; a type name that resolves nowhere compares by its text. Protoc's map
// entry types are left out of message indexes here, as Confluent's Java
// checker counts them. Compared, as changes from the writer's schema to the
// reader's, by
// field number: PACKAGE_CHANGED, MESSAGE_REMOVED, MESSAGE_MOVED (a message's
// index among its siblings changed, which re-points the wire format's message
// indexes), FIELD_KIND_CHANGED (scalar/message/enum/map or repeated changed),
// FIELD_SCALAR_KIND_CHANGED (outside the wire-compatible groups int32, int64,
// uint32, uint64, bool / sint32, sint64 / fixed32, sfixed32 / fixed64,
// sfixed64 / string, bytes), FIELD_NAMED_TYPE_CHANGED,
// REQUIRED_FIELD_ADDED, REQUIRED_FIELD_REMOVED, FIELD_MOVED_TO_EXISTING_ONEOF,
// MULTIPLE_FIELDS_MOVED_TO_ONEOF are incompatible. Adding or removing
// optional fields, renaming fields, adding messages at the end and enum
// changes are compatible.
//
// # Client (client.go)
//
// NewClient builds one Client per cluster from config.SchemaRegistry: basic
// auth, TLS verified with ca_file (which replaces the system roots), a client
// certificate, a per-request timeout (ClientOptions.Timeout, default 10s) and
// a cache of schemas by id (ClientOptions.CacheSize, default 10,000). srclient
// makes the calls it does right (GetSchema, CreateSchema, LookupSchema,
// GetCompatibilityLevel) with its own caches switched off: they are unbounded
// maps and "subject-latest" never expires. Our own small calls cover what it
// lacks: POST /compatibility/subjects/{s}/versions?verbose=true (every version
// the level requires), GET /schemas/guids/{guid}, and GET
// /subjects/{s}/versions/{v}?deleted=true (a stored schema may reference a
// soft-deleted version). The version of a registration is read back with
// POST /subjects/{s} because srclient reports 0; the latest version is never
// read at all.
//
// The client's round tripper adds basic auth (to the registry's own host
// only, not to a redirect's) and rewrites every error response that is not a
// Confluent {"error_code","message"} body (a proxy's 502 page, a 401 from an
// authenticating proxy) into one carrying the HTTP status as the code, since
// srclient otherwise returns just the status text. So every registry answer
// arrives as *APIError (srclient.Error is converted), and errors classify:
// ErrSchemaNotFound for 40403 and, where a schema is asked for by subject and
// version, 40401/40402; ErrGUIDUnsupported for a 404/405 on the guid
// endpoint; *IncompatibleError for a failed check or a 409; IsRetryable for
// outages (network errors, timeouts, 5xx, 429, 408). Errors that are none of
// these (401/403, TLS verification, 422) are configuration problems: not
// retryable and never a reason to quarantine. srclient takes no context, so
// its calls check ctx before they start and are otherwise bounded by the
// timeout; our own calls honour ctx.
//
// # Translation (translate.go)
//
// A Translator (one per pipeline: it knows the format and the KeyMode) moves
// a record's schema references from the source cluster's registry to the
// target's. For a key or value that carries one (Locate): the writer schema
// by id (or GUID) from the source; its references, depth first, each looked
// up in the source by subject and version and made a version of the subject
// of the same name in the target; then the target subject by
// TopicNameStrategy on the renamed topic (<topic>-value, <topic>-key).
// Making a schema a version of a subject (ensure) is: POST /subjects/{s} (if
// a live version holds it, that is the answer, without a check, as
// registration would do); else the subject's level (GET
// /config/{s}?defaultToGlobal=true) and, unless NONE, the check against every
// version the level requires; then registration, which checks again. The id
// is rewritten where the record carries it: payload prefix or schema-id
// header, with the Protobuf message indexes and the body copied byte for
// byte. A GUID reference becomes an id reference (magic byte 0), because
// GUIDs are random per registry and every deserializer reads ids.
//
// Answers are cached per (source registry, reference, subject): the source
// registry is the Translator's own, the key is the id or GUID, the target
// topic and the part. Translations never expire (ids are immutable); a
// target subject deleted by hand is noticed only after a restart.
// Rejections (*RecordError: not-wire-format for a schema of another type
// than the pipeline's, unknown-schema-id, incompatible-schema,
// bad-schema-reference) are cached in a separate bounded map, so a flood of
// bad ids cannot evict good translations, for TranslatorOptions.NegativeTTL
// (default one minute), after which an operator's fix takes effect. Registry
// outages are not cached. Concurrent first records of one schema share one
// resolution (singleflight). A warm record costs Locate, one read-locked map
// lookup and one allocation for the rewritten bytes (key and value share it;
// the header form adds the copied header slice); see BenchmarkTranslate.
//
// The caches (cache.go) are bounded maps with CLOCK eviction, an LRU
// approximation whose hits take only the read lock. Each cache has one
// RWMutex and is never locked together with another lock.
//
// # srclient v0.7.3 (github.com/riferrei/srclient)
//
// Observed against this server (see the tests): GetLatestSchema caches
// "subject-latest" until ResetCache, so it never sees a newer version;
// CreateSchema re-reads GET /schemas/ids/{id}, which carries no version, and
// reports version 0; IsSchemaCompatible calls
// /compatibility/subjects/{s}/versions/{v}, which checks one version, so a
// transitive level is only enforced by registration or by
// POST /compatibility/subjects/{s}/versions; DeleteSubject and
// DeleteSubjectByVersion with permanent=true issue the soft delete first and
// fail if it was already done (40404/40406).
package registry
