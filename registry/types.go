package registry

import (
	"fmt"
	"strings"
)

// SchemaType is the kind of a registered schema, as the registry API spells it.
type SchemaType string

// Schema types. Avro is the default when a request omits schemaType.
const (
	Avro     SchemaType = "AVRO"
	JSON     SchemaType = "JSON"
	Protobuf SchemaType = "PROTOBUF"
)

// ParseSchemaType parses a schemaType field: "" means Avro, case is ignored.
func ParseSchemaType(s string) (SchemaType, error) {
	switch strings.ToUpper(s) {
	case "", "AVRO":
		return Avro, nil
	case "JSON":
		return JSON, nil
	case "PROTOBUF":
		return Protobuf, nil
	}
	return "", fmt.Errorf("%w: unknown schema type %q (want AVRO, JSON or PROTOBUF)", ErrInvalidSchema, s)
}

// Reference is a schema reference as the registry API carries it: the name the
// schema uses for it (an Avro full type name, a JSON Schema $ref URL, a
// Protobuf import path) and the subject version that holds it.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}
