package registry

import (
	"errors"
	"fmt"
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
