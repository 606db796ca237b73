package registry

import "testing"

// jsonPairs: backward means the new schema accepts all data the old one
// accepted; forward the reverse. They follow Confluent's content-model rules.
var jsonPairs = []compatPair{
	{name: "adding a property to an open content model breaks backward",
		old:      `{"type":"object","properties":{"a":{"type":"string"}}}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`,
		backward: false, forward: true, wantInMessage: "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"},
	{name: "removing a property from an open content model breaks forward",
		old:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"}}}`,
		backward: true, forward: false, wantInMessage: "#/properties/b"},
	{name: "adding an optional property to a closed content model breaks forward",
		old:      `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false}`,
		backward: true, forward: false, wantInMessage: "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"},
	{name: "removing a property from a closed content model breaks backward",
		old:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"additionalProperties":false}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`,
		backward: false, forward: true},
	{name: "adding a required property breaks backward",
		old:      `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["b"],"additionalProperties":false}`,
		backward: false, forward: false, wantInMessage: "REQUIRED_ATTRIBUTE_ADDED",
		wantInForward: "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"},
	{name: "a required property with a default may be added",
		old:      `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer","default":0}},"required":["b"],"additionalProperties":false}`,
		backward: true, forward: false},
	{name: "integer widens to number", old: `{"type":"integer"}`, new: `{"type":"number"}`,
		backward: true, forward: false, wantInMessage: "TYPE_"},
	{name: "string does not become integer", old: `{"type":"string"}`, new: `{"type":"integer"}`, wantInMessage: "TYPE_CHANGED"},
	{name: "a nullable type list accepts the old type", old: `{"type":"string"}`, new: `{"type":["string","null"]}`,
		backward: true, forward: false},
	{name: "an enum extended breaks forward", old: `{"enum":["a","b"]}`, new: `{"enum":["a","b","c"]}`,
		backward: true, forward: false, wantInMessage: "ENUM_ARRAY_NARROWED"},
	{name: "a shorter maxLength breaks backward", old: `{"type":"string","maxLength":10}`, new: `{"type":"string","maxLength":5}`,
		backward: false, forward: true, wantInMessage: "MAX_LENGTH_DECREASED"},
	{name: "an added minimum breaks backward", old: `{"type":"number"}`, new: `{"type":"number","minimum":0}`,
		backward: false, forward: true, wantInMessage: "MINIMUM_ADDED"},
	{name: "nested property types are compared with their path",
		old:           `{"type":"object","properties":{"customer":{"type":"object","properties":{"zip":{"type":"string"}}}}}`,
		new:           `{"type":"object","properties":{"customer":{"type":"object","properties":{"zip":{"type":"integer"}}}}}`,
		wantInMessage: "#/properties/customer/properties/zip"},
	{name: "local references are followed",
		old:           `{"type":"object","properties":{"c":{"$ref":"#/definitions/C"}},"definitions":{"C":{"type":"string"}}}`,
		new:           `{"type":"object","properties":{"c":{"$ref":"#/$defs/C"}},"$defs":{"C":{"type":"integer"}}}`,
		wantInMessage: "#/properties/c"},
	{name: "array items are compared", old: `{"type":"array","items":{"type":"integer"}}`, new: `{"type":"array","items":{"type":"number"}}`,
		backward: true, forward: false},
	{name: "closing the content model breaks backward", old: `{"type":"object","properties":{"a":{"type":"string"}}}`,
		new:      `{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`,
		backward: false, forward: true, wantInMessage: "ADDITIONAL_PROPERTIES_REMOVED"},
	{name: "descriptions do not matter", old: `{"type":"string","description":"x"}`, new: `{"type":"string","title":"y"}`,
		backward: true, forward: true},
	{name: "a oneOf branch added breaks forward",
		old: `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, new: `{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"boolean"}]}`,
		backward: false, forward: false, wantInMessage: "COMBINED_TYPE"},
	{name: "a type widened into a oneOf is backward compatible",
		old: `{"type":"string"}`, new: `{"oneOf":[{"type":"string"},{"type":"integer"}]}`,
		backward: true, forward: false},
	{name: "a recursive definition terminates",
		old:      `{"$ref":"#/definitions/N","definitions":{"N":{"type":"object","properties":{"next":{"$ref":"#/definitions/N"}}}}}`,
		new:      `{"$ref":"#/definitions/N","definitions":{"N":{"type":"object","properties":{"next":{"$ref":"#/definitions/N"}},"description":"d"}}}`,
		backward: true, forward: true},
}

func TestJSONSchemaCompatibility(t *testing.T) {
	testCompatPairs(t, JSON, jsonPairs)
}

func TestJSONSchemaInvalid(t *testing.T) {
	for name, s := range map[string]string{
		"not json":                  `{"type":`,
		"a number is not a schema":  `42`,
		"unknown type":              `{"type":"text"}`,
		"properties not an object":  `{"properties":[1]}`,
		"required not strings":      `{"required":[1]}`,
		"unresolvable local ref":    `{"$ref":"#/definitions/missing"}`,
		"empty oneOf":               `{"oneOf":[]}`,
		"maxLength not a number":    `{"maxLength":"5"}`,
		"nested schema not allowed": `{"properties":{"a":"string"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSchema(JSON, s, nil); err == nil {
				t.Fatalf("schema %s accepted", s)
			}
		})
	}
}
