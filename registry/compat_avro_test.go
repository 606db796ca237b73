package registry

import (
	"strings"
	"testing"
)

// rec builds a record schema named name in namespace ns with the given field
// JSON objects.
func rec(name string, fields ...string) string {
	return `{"type":"record","name":"` + name + `","namespace":"com.acme","fields":[` + strings.Join(fields, ",") + `]}`
}

func field(name, typ string, extra ...string) string {
	s := `{"name":"` + name + `","type":` + typ
	for _, e := range extra {
		s += "," + e
	}
	return s + "}"
}

// avroPairs are single-step evolutions drawn from the Avro specification's
// schema resolution rules. backward: the new schema reads data written with
// the old one; forward: the old schema reads data written with the new one.
var avroPairs = []compatPair{
	{name: "int promotes to long", old: rec("R", field("a", `"int"`)), new: rec("R", field("a", `"long"`)),
		backward: true, forward: false, wantInMessage: "TYPE_MISMATCH"},
	{name: "int promotes to float", old: rec("R", field("a", `"int"`)), new: rec("R", field("a", `"float"`)), backward: true},
	{name: "int promotes to double", old: rec("R", field("a", `"int"`)), new: rec("R", field("a", `"double"`)), backward: true},
	{name: "long promotes to float", old: rec("R", field("a", `"long"`)), new: rec("R", field("a", `"float"`)), backward: true},
	{name: "long promotes to double", old: rec("R", field("a", `"long"`)), new: rec("R", field("a", `"double"`)), backward: true},
	{name: "float promotes to double", old: rec("R", field("a", `"float"`)), new: rec("R", field("a", `"double"`)), backward: true},
	{name: "long does not narrow to int", old: rec("R", field("a", `"long"`)), new: rec("R", field("a", `"int"`)),
		backward: false, forward: true, wantInMessage: "at path 'a'"},
	{name: "double does not narrow to float", old: rec("R", field("a", `"double"`)), new: rec("R", field("a", `"float"`)), forward: true},
	{name: "string and bytes read each other", old: rec("R", field("a", `"string"`)), new: rec("R", field("a", `"bytes"`)),
		backward: true, forward: true},
	{name: "string does not become int", old: rec("R", field("a", `"string"`)), new: rec("R", field("a", `"int"`)),
		wantInMessage: "TYPE_MISMATCH"},
	{name: "boolean does not become string", old: rec("R", field("a", `"boolean"`)), new: rec("R", field("a", `"string"`))},
	{name: "a field added with a default is fully compatible", old: rec("R", field("a", `"int"`)),
		new: rec("R", field("a", `"int"`), field("b", `"string"`, `"default":"x"`)), backward: true, forward: true},
	{name: "a field added without a default breaks backward", old: rec("R", field("a", `"int"`)),
		new: rec("R", field("a", `"int"`), field("b", `"string"`)), backward: false, forward: true,
		wantInMessage: "READER_FIELD_MISSING_DEFAULT_VALUE"},
	{name: "a field with a default may be removed", old: rec("R", field("a", `"int"`), field("b", `"string"`, `"default":""`)),
		new: rec("R", field("a", `"int"`)), backward: true, forward: true},
	{name: "a field without a default breaks forward when removed", old: rec("R", field("a", `"int"`), field("b", `"string"`)),
		new: rec("R", field("a", `"int"`)), backward: true, forward: false, wantInMessage: "'b'"},
	{name: "a null default in a union counts as a default", old: rec("R", field("a", `"int"`)),
		new: rec("R", field("a", `"int"`), field("b", `["null","string"]`, `"default":null`)), backward: true, forward: true},
	{name: "changing only a default is compatible", old: rec("R", field("a", `"int"`, `"default":1`)),
		new: rec("R", field("a", `"int"`, `"default":2`)), backward: true, forward: true},
	{name: "an enum symbol added breaks forward",
		old:      rec("R", field("e", `{"type":"enum","name":"E","symbols":["A","B"]}`)),
		new:      rec("R", field("e", `{"type":"enum","name":"E","symbols":["A","B","C"]}`)),
		backward: true, forward: false, wantInMessage: "MISSING_ENUM_SYMBOLS"},
	{name: "an old enum with a default reads new symbols",
		old:      rec("R", field("e", `{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}`)),
		new:      rec("R", field("e", `{"type":"enum","name":"E","symbols":["A","B","C"],"default":"A"}`)),
		backward: true, forward: true},
	{name: "an enum symbol removed breaks backward",
		old:      rec("R", field("e", `{"type":"enum","name":"E","symbols":["A","B","C"]}`)),
		new:      rec("R", field("e", `{"type":"enum","name":"E","symbols":["A","B"]}`)),
		backward: false, forward: true, wantInMessage: "'C'"},
	{name: "a field made nullable breaks forward", old: rec("R", field("a", `"int"`)),
		new: rec("R", field("a", `["null","int"]`, `"default":null`)), backward: true, forward: false,
		wantInMessage: "(int) does not match the new schema (null)"},
	{name: "a reader union lacking a writer branch names it", old: rec("R", field("a", `["null","int"]`)),
		new: rec("R", field("a", `["null","string"]`)), wantInMessage: "MISSING_UNION_BRANCH"},
	{name: "a union branch added breaks forward", old: rec("R", field("a", `["null","int"]`)),
		new: rec("R", field("a", `["null","int","string"]`)), backward: true, forward: false},
	{name: "a union branch removed breaks backward", old: rec("R", field("a", `["null","int","string"]`)),
		new: rec("R", field("a", `["null","int"]`)), backward: false, forward: true},
	{name: "a union branch promotes", old: rec("R", field("a", `["null","int"]`)),
		new: rec("R", field("a", `["null","long"]`)), backward: true, forward: false},
	{name: "a reader union picks the branch that reads the writer", old: rec("R", field("a", `"int"`)),
		new: rec("R", field("a", `["string","long"]`)), backward: true, forward: false},
	{name: "a record renamed with an alias is backward compatible",
		old:      `{"type":"record","name":"Old","namespace":"com.acme","fields":[{"name":"a","type":"int"}]}`,
		new:      `{"type":"record","name":"New","namespace":"com.acme","aliases":["Old"],"fields":[{"name":"a","type":"int"}]}`,
		backward: true, forward: false, wantInMessage: "NAME_MISMATCH"},
	{name: "a record renamed without an alias is incompatible",
		old: `{"type":"record","name":"Old","fields":[{"name":"a","type":"int"}]}`,
		new: `{"type":"record","name":"New","fields":[{"name":"a","type":"int"}]}`},
	{name: "a namespace change keeps the unqualified name",
		old: `{"type":"record","name":"R","namespace":"a","fields":[{"name":"a","type":"int"}]}`,
		new: `{"type":"record","name":"R","namespace":"b","fields":[{"name":"a","type":"int"}]}`, backward: true, forward: true},
	{name: "a field renamed with an alias is backward compatible", old: rec("R", field("a", `"int"`)),
		new: rec("R", field("b", `"int"`, `"aliases":["a"]`)), backward: true, forward: false},
	{name: "a field added to a nested record without a default names its path",
		old:      rec("R", field("customer", rec("Customer", field("id", `"long"`)))),
		new:      rec("R", field("customer", rec("Customer", field("id", `"long"`), field("email", `"string"`)))),
		backward: false, forward: true, wantInMessage: "customer.email"},
	{name: "a nested record gains a defaulted field",
		old:      rec("R", field("customer", rec("Customer", field("id", `"long"`)))),
		new:      rec("R", field("customer", rec("Customer", field("id", `"long"`), field("email", `"string"`, `"default":""`)))),
		backward: true, forward: true},
	{name: "array items promote", old: rec("R", field("xs", `{"type":"array","items":"int"}`)),
		new: rec("R", field("xs", `{"type":"array","items":"long"}`)), backward: true, forward: false},
	{name: "records inside arrays are resolved",
		old:      rec("R", field("xs", `{"type":"array","items":`+rec("I", field("a", `"int"`))+`}`)),
		new:      rec("R", field("xs", `{"type":"array","items":`+rec("I", field("a", `"int"`), field("b", `"int"`))+`}`)),
		backward: false, forward: true, wantInMessage: "xs[].b"},
	{name: "map values promote both ways for string and bytes", old: rec("R", field("m", `{"type":"map","values":"string"}`)),
		new: rec("R", field("m", `{"type":"map","values":"bytes"}`)), backward: true, forward: true},
	{name: "an array does not become a map", old: rec("R", field("m", `{"type":"array","items":"string"}`)),
		new: rec("R", field("m", `{"type":"map","values":"string"}`))},
	{name: "a fixed size change is incompatible", old: rec("R", field("f", `{"type":"fixed","name":"F","size":16}`)),
		new: rec("R", field("f", `{"type":"fixed","name":"F","size":8}`)), wantInMessage: "FIXED_SIZE_MISMATCH"},
	{name: "a fixed renamed is incompatible", old: rec("R", field("f", `{"type":"fixed","name":"F","size":16}`)),
		new: rec("R", field("f", `{"type":"fixed","name":"G","size":16}`)), wantInMessage: "NAME_MISMATCH"},
	{name: "logical types are annotations", old: rec("R", field("t", `{"type":"long","logicalType":"timestamp-millis"}`)),
		new: rec("R", field("t", `"long"`)), backward: true, forward: true},
	{name: "a recursive type evolves and the check terminates",
		old:      rec("Node", field("v", `"int"`), field("next", `["null","Node"]`, `"default":null`)),
		new:      rec("Node", field("v", `"int"`), field("next", `["null","Node"]`, `"default":null`), field("w", `"int"`, `"default":0`)),
		backward: true, forward: true},
	{name: "a primitive schema promotes", old: `"int"`, new: `"long"`, backward: true, forward: false},
	{name: "identical schemas are compatible", old: rec("R", field("a", `"int"`)), new: rec("R", field("a", `"int"`)),
		backward: true, forward: true},
}

func TestAvroCompatibilityEveryLevel(t *testing.T) {
	testCompatPairs(t, Avro, avroPairs)
}

// TestAvroTransitive covers histories where the candidate is compatible with
// the latest version but not with an earlier one.
func TestAvroTransitive(t *testing.T) {
	tests := []struct {
		name    string
		history []string
		cand    string
		ok      map[Level]bool
	}{
		{
			name: "a field whose default was dropped is only backward compatible with the latest",
			history: []string{
				rec("R", field("a", `"int"`)),
				rec("R", field("a", `"int"`), field("b", `"string"`, `"default":"x"`)),
			},
			cand: rec("R", field("a", `"int"`), field("b", `"string"`)),
			ok: map[Level]bool{None: true, Backward: true, BackwardTransitive: false, Forward: true,
				ForwardTransitive: true, Full: true, FullTransitive: false},
		},
		{
			name: "a field removed after gaining a default is only forward compatible with the latest",
			history: []string{
				rec("R", field("a", `"int"`), field("b", `"string"`)),
				rec("R", field("a", `"int"`), field("b", `"string"`, `"default":"x"`)),
			},
			cand: rec("R", field("a", `"int"`)),
			ok: map[Level]bool{None: true, Backward: true, BackwardTransitive: true, Forward: true,
				ForwardTransitive: false, Full: true, FullTransitive: false},
		},
		{
			name: "stepwise int to long to double is backward transitive",
			history: []string{
				rec("R", field("a", `"int"`)),
				rec("R", field("a", `"long"`)),
			},
			cand: rec("R", field("a", `"double"`)),
			ok: map[Level]bool{None: true, Backward: true, BackwardTransitive: true, Forward: false,
				ForwardTransitive: false, Full: false, FullTransitive: false},
		},
	}
	for _, tt := range tests {
		for _, level := range Levels {
			t.Run(tt.name+"/"+string(level), func(t *testing.T) {
				msgs := checkCompat(t, level, Avro, tt.cand, tt.history...)
				if got := len(msgs) == 0; got != tt.ok[level] {
					t.Fatalf("compatible = %v, want %v; messages: %v", got, tt.ok[level], msgs)
				}
				if !tt.ok[level] && level.Transitive() && tt.ok[Level(strings.TrimSuffix(string(level), "_TRANSITIVE"))] &&
					!strings.Contains(strings.Join(msgs, " "), "{oldSchemaVersion: 1}") {
					t.Fatalf("transitive failure should name version 1: %v", msgs)
				}
			})
		}
	}
}

func TestAvroMessageNamesFieldPath(t *testing.T) {
	old := rec("R", field("customer", rec("Customer", field("address", rec("Address", field("zip", `"string"`))))))
	cand := rec("R", field("customer", rec("Customer", field("address", rec("Address", field("zip", `"int"`))))))
	msgs := checkCompat(t, Backward, Avro, cand, old)
	want := "{errorType:'TYPE_MISMATCH', description:'The type of the field at path 'customer.address.zip' (/fields/0/type/fields/0/type/fields/0/type) in the new schema (string) does not match the old schema (int)'"
	if len(msgs) != 4 || !strings.HasPrefix(msgs[0], want[:60]) || !strings.Contains(msgs[0], "customer.address.zip") {
		t.Fatalf("messages = %q", msgs)
	}
	if msgs[1] != "{oldSchemaVersion: 1}" || !strings.HasPrefix(msgs[2], "{oldSchema: '") || msgs[3] != "{compatibility: 'BACKWARD'}" {
		t.Fatalf("trailer = %q", msgs[1:])
	}
}

// TestAvroInvalidSchemas lists schemas refused at parse. A default of the
// wrong type is not among them: Confluent accepts it (lenient_test.go).
func TestAvroInvalidSchemas(t *testing.T) {
	for name, s := range map[string]string{
		"not json":                          `{"type":`,
		"unknown named type":                rec("R", field("a", `"Missing"`)),
		"duplicate field":                   rec("R", field("a", `"int"`), field("a", `"int"`)),
		"enum default not a symbol":         `{"type":"enum","name":"E","symbols":["A"],"default":"B"}`,
		"bare word that is not json":        `string`,
		"trailing data after the top value": `"int" "long"`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseSchema(Avro, s, nil); err == nil {
				t.Fatalf("schema %s accepted", s)
			}
		})
	}
}

func TestAvroNamesDoNotLeakBetweenSchemas(t *testing.T) {
	// hamba's package-level cache would let a later schema use a type only an
	// earlier schema defined; each parse must stand alone.
	if _, err := parseSchema(Avro, rec("Holder", field("a", rec("Leaked", field("x", `"int"`)))), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := parseSchema(Avro, rec("Other", field("a", `"com.acme.Leaked"`)), nil); err == nil {
		t.Fatal("a type defined by another schema resolved")
	}
}

func TestParseLevel(t *testing.T) {
	for _, s := range []string{"backward", "FULL_TRANSITIVE", " none "} {
		if _, err := ParseLevel(s); err != nil {
			t.Errorf("ParseLevel(%q): %v", s, err)
		}
	}
	if _, err := ParseLevel("SIDEWAYS"); err == nil {
		t.Error("ParseLevel accepted SIDEWAYS")
	}
}
