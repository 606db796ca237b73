package registry

import (
	"errors"
	"fmt"
	"strings"
)

// Stable reason codes of WireError. They are part of the contract: the
// quarantine header tributary-error starts with one of them.
const (
	// ReasonShort: the input ends before the magic byte and the 4-byte id (or
	// 16-byte GUID) are complete.
	ReasonShort = "short"
	// ReasonBadMagic: the first byte is neither MagicID nor MagicGUID.
	ReasonBadMagic = "bad-magic"
	// ReasonBadIndex: the Protobuf message-index list is malformed (truncated
	// or overlong varint, negative index, count out of range).
	ReasonBadIndex = "bad-index"
	// ReasonTrailing: a schema-id header value has bytes after the reference.
	ReasonTrailing = "trailing"
	// ReasonDupHeader: a record carries __key_schema_id or __value_schema_id
	// more than once, so which one a consumer uses is ambiguous.
	ReasonDupHeader = "dup-header"
)

// WireError reports input that is not in the Confluent wire format. It never
// contains record bytes beyond the offending byte's value.
type WireError struct {
	// Reason is one of the Reason* codes.
	Reason string
	// Offset is the byte offset of the problem within the parsed bytes.
	Offset int
	// Part names what was parsed: "key", "value" or "header __value_schema_id";
	// empty when the caller parsed bytes directly.
	Part string
	// Detail is a human explanation.
	Detail string
}

func (e *WireError) Error() string {
	part := ""
	if e.Part != "" {
		part = e.Part + ": "
	}
	return fmt.Sprintf("wire format: %s%s at offset %d: %s", part, e.Reason, e.Offset, e.Detail)
}

// ErrInvalidSchema is wrapped by errors about schemas that do not parse, and
// by the server's 42201 responses.
var ErrInvalidSchema = errors.New("registry: invalid schema")

// Confluent Schema Registry error codes used by the embedded server.
const (
	CodeSubjectNotFound            = 40401
	CodeVersionNotFound            = 40402
	CodeSchemaNotFound             = 40403
	CodeSubjectSoftDeleted         = 40404
	CodeSubjectNotSoftDeleted      = 40405
	CodeVersionSoftDeleted         = 40406
	CodeVersionNotSoftDeleted      = 40407
	CodeSubjectCompatNotConfigured = 40408
	CodeSubjectModeNotConfigured   = 40409
	CodeIncompatibleSchema         = 409
	CodeInvalidSchema              = 42201
	CodeInvalidVersion             = 42202
	CodeInvalidCompatibility       = 42203
	CodeInvalidMode                = 42204
	CodeOperationNotPermitted      = 42205
	CodeReferenceExists            = 42206
	CodeStoreError                 = 50001
)

// APIError is an error response of a Confluent-compatible registry:
// {"error_code": Code, "message": Message} with HTTP status Status.
type APIError struct {
	Status  int    `json:"-"`
	Code    int    `json:"error_code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string {
	return fmt.Sprintf("schema registry error %d: %s", e.Code, e.Message)
}

func apiErr(status, code int, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrSchemaNotFound is wrapped by Client errors for a schema the registry
// does not have: an unknown id or GUID (40403), or a subject or version that
// does not exist where a schema was asked for (40401, 40402).
var ErrSchemaNotFound = errors.New("registry: schema not found")

// ErrGUIDUnsupported is wrapped by Client.SchemaByGUID when the registry has
// no GET /schemas/guids/{guid} endpoint (Confluent before 8.0): records
// framed with magic byte 1 cannot be resolved there.
var ErrGUIDUnsupported = errors.New("registry: schema guids not supported by this registry")

// IncompatibleError reports that a schema may not be registered under a
// subject because it breaks the subject's compatibility level. Messages are
// the registry's explanations (Confluent's verbose format when it gives one).
type IncompatibleError struct {
	Subject  string
	Messages []string
}

func (e *IncompatibleError) Error() string {
	return fmt.Sprintf("registry: schema incompatible with subject %q: %s", e.Subject, strings.Join(e.Messages, "; "))
}

// Reason codes of RecordError. They are part of the contract: the
// quarantine header tributary-error starts with one of them, and the
// tributary_schema_translations_total{result} label takes its values from
// them.
const (
	// ReasonNotWireFormat: the key or value is not in the Confluent wire
	// format (short, bad magic byte, malformed message indexes or schema-id
	// header), or its schema is not of the pipeline's format.
	ReasonNotWireFormat = "not-wire-format"
	// ReasonUnknownSchemaID: the source registry does not know the schema id
	// or GUID the record carries.
	ReasonUnknownSchemaID = "unknown-schema-id"
	// ReasonIncompatibleSchema: the writer schema (or a schema it references)
	// may not be registered in the target subject: it breaks the subject's
	// compatibility level, or the target registry rejects it as invalid.
	ReasonIncompatibleSchema = "incompatible-schema"
	// ReasonBadSchemaReference: a schema reference of the writer schema does
	// not resolve in the source registry, nests too deep or is circular.
	ReasonBadSchemaReference = "bad-schema-reference"
)

// RecordError reports that a record cannot be translated because of the
// record itself (its bytes or its schema). The caller quarantines the record;
// retrying it gives the same answer. Msg never contains record bytes.
type RecordError struct {
	// Reason is one of the Reason* codes of RecordError.
	Reason string
	// Msg is a human explanation naming the part (key or value), schema id
	// and subject concerned.
	Msg string
	// Err is the underlying error (*WireError, ErrSchemaNotFound,
	// *IncompatibleError, ...), or nil.
	Err error
}

func (e *RecordError) Error() string { return e.Reason + ": " + e.Msg }

// Unwrap returns the underlying error.
func (e *RecordError) Unwrap() error { return e.Err }
