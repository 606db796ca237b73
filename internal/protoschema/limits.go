package protoschema

import (
	"errors"
	"fmt"
)

// Limits bound what a schema may cost to read. A schema past a limit is an
// error (ErrLimit), never an out-of-memory or a stack overflow: schemas come
// from registries and are not trusted.
type Limits struct {
	// MaxBytes bounds a schema's text, or its serialized descriptor (after
	// base64 decoding).
	MaxBytes int
	// MaxDepth bounds nesting: messages in messages, blocks, and option
	// values in option values.
	MaxDepth int
	// MaxNameLen bounds identifiers and the full names built from them.
	MaxNameLen int
	// MaxRefs bounds the references (imported files) one schema may have,
	// counted transitively: each is read once.
	MaxRefs int
}

// DefaultLimits are the limits Parse, Decode and Load use: 1 MiB of schema
// (Confluent's registry keeps schemas in Kafka records of 1 MiB by default),
// 64 levels (protoc's own parser stops at 100; real schemas nest a handful),
// names of 1,024 bytes and 256 referenced files.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 1 << 20, MaxDepth: 64, MaxNameLen: 1024, MaxRefs: 256}
}

// ErrLimit is wrapped by every error that reports a schema past a limit.
var ErrLimit = errors.New("protoschema: schema exceeds a limit")

func limitErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLimit, fmt.Sprintf(format, args...))
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = d.MaxNameLen
	}
	if l.MaxRefs <= 0 {
		l.MaxRefs = d.MaxRefs
	}
	return l
}
