package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// jsonSchemaFile reads a schema of testdata/jsonschema.
func jsonSchemaFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/jsonschema", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// schemaRef is a schema reference: a file of testdata/jsonschema/reach and
// the registry name the referring schema uses for it ("" for none).
type schemaRef struct{ file, name string }

func reachSchema(t testing.TB, file string, refs ...schemaRef) Schema {
	s := Schema{Type: JSON, ID: 21, Name: file, Text: jsonSchemaFile(t, "reach/"+file)}
	for _, r := range refs {
		s.References = append(s.References, jsonSchemaFile(t, "reach/"+r.file))
		s.ReferenceNames = append(s.ReferenceNames, r.name)
	}
	return s
}

const (
	tagRedact = "policy: tags\nversion: 1\nrules:\n  - {match: {tag: PII}, action: redact}\n"
	noPIIRule = "policy: other\nversion: 1\nrules:\n  - {match: {field: nothing_here}, action: redact}\n"
)

// TestJSONSchemaKeywordsReachTaggedFields masks a record whose PII values
// (the SECRET-n strings) sit under one JSON Schema keyword each: a rule for
// the tag masks every one of them, and without such a rule every record is
// rejected.
func TestJSONSchemaKeywordsReachTaggedFields(t *testing.T) {
	cases := []struct {
		name   string
		schema string
		refs   []schemaRef
		record string
		want   string // the masked record, when it matters exactly
	}{
		{"a $ref to $defs carries the tags of its target and its own", "ref-defs.json", nil,
			`{"email":"SECRET-1","backup":"SECRET-2"}`, `{"email":"","backup":""}`},
		{"a draft-07 $ref to definitions reaches a tagged field", "ref-definitions.json", nil,
			`{"name":"SECRET-1"}`, ""},
		{"a $ref to an $anchor or a draft-07 plain-name $id reaches a tagged field", "ref-anchor.json", nil,
			`{"phone":"SECRET-1","fax":"SECRET-2"}`, ""},
		{"a recursive $ref to the root masks every level of the data", "ref-recursive.json", nil,
			`{"name":"SECRET-1","children":[{"name":"SECRET-2","children":[{"name":"SECRET-3","children":[]}]}]}`, ""},
		{"a $ref to another subject by its reference name reaches its tagged fields", "ref-subject.json", []schemaRef{{"customer.json", "customer.json"}},
			`{"order_id":"o-1","customer":{"email":"SECRET-1","address":{"street":"SECRET-2"}},"billing":{"street":"SECRET-3"}}`,
			`{"order_id":"o-1","customer":{"email":"","address":{"street":""}},"billing":{"street":""}}`},
		{"a $ref to another subject by its $id reaches its tagged fields", "ref-id.json", []schemaRef{{"address.json", ""}},
			`{"to":{"street":"SECRET-1"}}`, `{"to":{"street":null}}`},
		{"patternProperties tag the members whose names match", "pattern-properties.json", nil,
			`{"id":"x","email_home":"SECRET-1","email_work":"SECRET-2","n_1":5}`, `{"id":"x","email_home":"","email_work":"","n_1":5}`},
		{"additionalProperties schemas tag map values and undeclared members", "additional-properties.json", nil,
			`{"contacts":{"home":"SECRET-1"},"profile":{"id":"p","nick":"SECRET-2"}}`, `{"contacts":{"home":""},"profile":{"id":"p","nick":""}}`},
		{"then and else both count, whichever applies", "if-then-else.json", nil,
			`{"country":"DE","steuer_id":"SECRET-1","ssn":"SECRET-2"}`, `{"country":"DE","steuer_id":"","ssn":""}`},
		{"a field tagged in any allOf, anyOf or oneOf branch is tagged", "combinators.json", nil,
			`{"a":"SECRET-1","b":"SECRET-2","d":"SECRET-3"}`, ""},
		{"prefixItems tag their own positions and items the rest", "prefix-items.json", nil,
			`{"row":["SECRET-1",42,"SECRET-2","SECRET-3"]}`, `{"row":["",42,"",""]}`},
		{"draft-07 items arrays and additionalItems tag their positions", "items-array.json", nil,
			`{"row":[7,"SECRET-1","SECRET-2"]}`, `{"row":[7,"",""]}`},
		{"tags on items tag every element", "items-tagged.json", nil,
			`{"phones":["SECRET-1","SECRET-2"]}`, `{"phones":["",""]}`},
		{"dependentSchemas tag the members they add", "dependent-schemas.json", nil,
			`{"card":true,"holder":"SECRET-1"}`, `{"card":true,"holder":""}`},
		{"draft-07 schema dependencies tag the members they add", "dependencies-draft7.json", nil,
			`{"card":true,"holder":"SECRET-1","loyalty":1}`, `{"card":true,"holder":"","loyalty":1}`},
		{"unevaluatedProperties tag the members nothing else declares", "unevaluated-properties.json", nil,
			`{"id":"x","nickname":"SECRET-1"}`, `{"id":"x","nickname":""}`},
		{"unevaluatedItems tag the elements after the tuple", "unevaluated-items.json", nil,
			`{"row":[1,"SECRET-1"]}`, `{"row":[1,""]}`},
		{"a tagged contains schema tags every element", "contains.json", nil,
			`{"aliases":["SECRET-1","SECRET-2"]}`, `{"aliases":["",""]}`},
		{"a $dynamicRef follows its dynamic anchor through recursion", "dynamic-ref.json", nil,
			`{"name":"SECRET-1","children":[{"name":"SECRET-2","children":[]}]}`, ""},
		{"a $recursiveRef follows its recursive anchor through recursion", "recursive-ref.json", nil,
			`{"name":"SECRET-1","children":[{"name":"SECRET-2","children":[]}]}`, ""},
		{"a string whose contentSchema has PII is PII as a whole", "content-schema.json", nil,
			`{"payload":"{\"email\":\"SECRET-1\"}"}`, `{"payload":""}`},
		{"deep nesting through arrays and anyOf keeps the tag", "nested-deep.json", nil,
			`{"a":{"b":{"c":[{"d":{"secret":"SECRET-1"}},{"d":null}]}}}`, `{"a":{"b":{"c":[{"d":{"secret":""}},{"d":null}]}}}`},
	}
	tags := mustParse(t, "tags.yaml", tagRedact)
	none := mustParse(t, "other.yaml", noPIIRule)
	for _, c := range cases {
		schema := reachSchema(t, c.schema, c.refs...)
		t.Run(c.name+", masked by a tag rule", func(t *testing.T) {
			plan := compile(t, tags, schema)
			out, res, err := plan.MaskJSON([]byte(c.record))
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(out) {
				t.Fatalf("output %s is not JSON", out)
			}
			if strings.Contains(string(out), "SECRET") {
				t.Fatalf("PII left in %s", out)
			}
			if c.want != "" && string(out) != c.want {
				t.Fatalf("got  %s\nwant %s", out, c.want)
			}
			if res.Header() != "tags@1" {
				t.Fatalf("result %+v", res)
			}
		})
		t.Run(c.name+", rejected without a rule for the tag", func(t *testing.T) {
			plan := compile(t, none, schema)
			out, _, err := plan.MaskJSON([]byte(c.record))
			var v *Violation
			if !errors.As(err, &v) || v.Reason != ReasonUnmatchedPII || out != nil {
				t.Fatalf("got %s, %v; want %s", out, err, ReasonUnmatchedPII)
			}
		})
	}
}

func TestJSONSchemaNotIsIgnored(t *testing.T) {
	schema := reachSchema(t, "not.json")
	for _, src := range []string{tagRedact, noPIIRule} {
		plan := compile(t, mustParse(t, "p.yaml", src), schema)
		in := `{"id":"x","ssn":"kept"}`
		out, _, err := plan.MaskJSON([]byte(in))
		if err != nil || string(out) != in {
			t.Fatalf("policy %q: got %s, %v; want the record as it is", src, out, err)
		}
	}
}

// TestJSONSchemaPathRulesReachPatternMembers checks that field paths reach
// members that only patternProperties describe.
func TestJSONSchemaPathRulesReachPatternMembers(t *testing.T) {
	schema := Schema{Type: JSON, ID: 22, Text: `{"type":"object","properties":{"contact":{"type":"object",
		"patternProperties":{"^email_":{"type":"string","confluent:tags":["PII"]},"^tel_":{"type":"string"}},
		"additionalProperties":{"type":"integer"}}}}`}
	in := `{"contact":{"email_home":"SECRET-1","email_work":"SECRET-2","tel_1":"555","n":7}}`
	cases := []struct {
		name   string
		rules  string
		want   string
		reason string
	}{
		{"a wildcard path masks every member", `  - {match: {field: "contact.*"}, action: redact}`,
			`{"contact":{"email_home":"","email_work":"","tel_1":"","n":0}}`, ""},
		{"a tag rule masks only the members of the tagged pattern", `  - {match: {tag: PII}, action: hash}`,
			`{"contact":{"email_home":"` + hexHMAC("SECRET-1") + `","email_work":"` + hexHMAC("SECRET-2") + `","tel_1":"555","n":7}}`, ""},
		{"a literal path matching the pattern takes the pattern's type", `  - {match: {field: contact.tel_1}, action: mask, keep_last: 1}
  - {match: {tag: PII}, action: redact}`,
			`{"contact":{"email_home":"","email_work":"","tel_1":"**5","n":7}}`, ""},
		{"a literal path covers only its own member", `  - {match: {field: contact.email_home}, action: redact}`, "", ReasonUnmatchedPII},
		{"a path rule on the additional members leaves the tagged pattern uncovered", `  - {match: {field: contact.n}, action: redact}`, "", ReasonUnmatchedPII},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan := compile(t, mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules:\n"+c.rules+"\n"), schema)
			out, _, err := plan.MaskJSON([]byte(in))
			if c.reason != "" {
				var v *Violation
				if !errors.As(err, &v) || v.Reason != c.reason {
					t.Fatalf("got %s, %v; want %s", out, err, c.reason)
				}
				return
			}
			if err != nil || string(out) != c.want {
				t.Fatalf("got  %s, %v\nwant %s", out, err, c.want)
			}
		})
	}
}

// TestJSONSchemaBranchTypes checks what masking writes where branches give a
// value different types.
func TestJSONSchemaBranchTypes(t *testing.T) {
	cases := []struct {
		name   string
		v      string // the schema of member v
		rule   string
		in     string
		want   string
		reason string
	}{
		{"a string of a string-or-integer field is hashed", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, "action: hash", `"SECRET"`, `"` + hexHMAC("SECRET") + `"`, ""},
		{"an integer of a string-or-integer field cannot be hashed", `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, "action: hash", `5`, "", ReasonUnmaskable},
		{"redact writes null where any branch allows null", `{"anyOf":[{"type":"string"},{"type":"null"}]}`, "action: redact", `"SECRET"`, `null`, ""},
		{"redact writes no null that allOf forbids", `{"allOf":[{"type":["string","null"]},{"type":"string"}]}`, "action: redact", `"SECRET"`, `""`, ""},
		{"redact writes an enum value both allOf branches allow", `{"allOf":[{"enum":["a","b","c"]},{"enum":["c","b"]}]}`, "action: redact", `"c"`, `"b"`, ""},
		{"redact writes null for a nullable $ref target", `{"$ref":"#/$defs/n"}`, "action: redact", `"SECRET"`, `null`, ""},
		{"hash of a uuid through $ref stays a uuid", `{"$ref":"#/$defs/id"}`, "action: hash", `"0b3c5f9e-2f57-4d0e-9c39-1f2a3b4c5d6e"`, "uuid", ""},
		{"a value of a kind no branch allows cannot be masked inside", `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, "action: redact", `{"x":"SECRET"}`, "", ReasonUnmaskable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			schema := Schema{Type: JSON, ID: 23, Text: `{"type":"object","properties":{"v":` + c.v + `},
				"$defs":{"n":{"type":["string","null"]},"id":{"type":"string","format":"uuid"}}}`}
			plan := compile(t, oneRule(t, "v", c.rule), schema)
			out, _, err := plan.MaskJSON([]byte(`{"v":` + c.in + `}`))
			if c.reason != "" {
				var v *Violation
				if !errors.As(err, &v) || v.Reason != c.reason {
					t.Fatalf("got %s, %v; want %s", out, err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.want == "uuid" {
				var doc struct{ V string }
				if json.Unmarshal(out, &doc) != nil || len(doc.V) != 36 || doc.V[14] != '8' {
					t.Fatalf("got %s, want a version-8 UUID", out)
				}
				return
			}
			if string(out) != `{"v":`+c.want+`}` {
				t.Fatalf("got %s, want v %s", out, c.want)
			}
		})
	}
}

// TestJSONSchemaUnreadable checks that a schema the masker cannot read rejects
// every record, with no policy at all too, naming the keyword and where it is.
func TestJSONSchemaUnreadable(t *testing.T) {
	deep := strings.Repeat(`{"type":"object","properties":{"a":`, 250) + `{"type":"string"}` + strings.Repeat("}}", 250)
	cases := []struct {
		name   string
		file   string // in testdata/jsonschema/unreadable, or "" for text
		text   string
		detail string
	}{
		{"a $ref to a subject that is not among the references", "ref-unknown-subject.json", "", `$ref at #/properties/customer: "customer.json" is neither the name of a schema reference nor the $id of a known schema`},
		{"a $ref to a URL (nothing is fetched)", "ref-network.json", "", "$ref at #/properties/customer: \"https://schemas.example.com/customer.json\" is neither"},
		{"a $ref to a missing pointer", "ref-missing-pointer.json", "", `$ref at #/properties/customer: "#/$defs/nope": the schema has no such location`},
		{"a $ref to a missing anchor", "ref-missing-anchor.json", "", `"#customer": the schema has no such location`},
		{"a $ref cycle that never reaches a value", "ref-cycle.json", "", "a $ref cycle that never descends into a value"},
		{"tags on propertyNames", "property-names-tagged.json", "", "propertyNames at #: tags on member names"},
		{"properties that are not an object of schemas", "properties-not-object.json", "", "properties at #: want an object of schemas, not an array"},
		{"items that are not a schema", "items-not-schema.json", "", "#/properties/phones/items: want a schema (an object or a boolean), not a string"},
		{"draft 3 schemas in type", "draft3-type-schemas.json", "", "type at #: schemas as types (draft 3) are not supported"},
		{"a $recursiveRef other than #", "recursive-ref-not-root.json", "", `$recursiveRef at #/properties/next: only "#" is allowed`},
		{"a $ref that is not a string", "ref-not-string.json", "", "$ref at #/properties/customer: want a URI reference, not an object"},
		{"a schema that is not JSON", "not-json.json", "", "not JSON: invalid character '}'"},
		{"nesting past the limit", "", deep, "nested more than 200 levels deep"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := c.text
			if c.file != "" {
				text = jsonSchemaFile(t, "unreadable/"+c.file)
			}
			schema := Schema{Type: JSON, ID: 24, Text: text}
			for _, set := range []*Set{mustParse(t, "p.yaml", tagRedact), {}} {
				plan, err := Compile(set, "p", "t", schema)
				if err != nil {
					t.Fatalf("compile error %v; want a plan that rejects every record", err)
				}
				if !plan.Touches() {
					t.Fatal("the plan lets records pass without looking")
				}
				out, _, err := plan.Apply([]byte(`{"customer":{"email":"SECRET"}}`))
				var v *Violation
				if !errors.As(err, &v) || v.Reason != ReasonSchemaUnreadable || out != nil {
					t.Fatalf("got %s, %v; want %s", out, err, ReasonSchemaUnreadable)
				}
				if !strings.Contains(v.Detail, c.detail) {
					t.Fatalf("detail %q does not say %q", v.Detail, c.detail)
				}
				if strings.Contains(v.Error(), "SECRET") {
					t.Fatalf("the violation %q quotes the record", v)
				}
			}
			set := mustParse(t, "p.yaml", tagRedact)
			if _, err := set.CheckSchemas([]Schema{schema}); err == nil || !strings.Contains(err.Error(), "unreadable json schema") {
				t.Fatalf("lint: %v; want the schema reported unreadable", err)
			}
		})
	}
}

func TestJSONSchemaReferences(t *testing.T) {
	customer := jsonSchemaFile(t, "reach/customer.json")
	tags := mustParse(t, "tags.yaml", tagRedact)
	mask := func(t *testing.T, s Schema, in string) (string, error) {
		t.Helper()
		out, _, err := compile(t, tags, s).MaskJSON([]byte(in))
		return string(out), err
	}
	t.Run("a reference listed twice (a shared dependency) is one schema", func(t *testing.T) {
		s := reachSchema(t, "ref-subject.json", schemaRef{"customer.json", "customer.json"}, schemaRef{"customer.json", "customer.json"})
		out, err := mask(t, s, `{"customer":{"email":"SECRET-1"}}`)
		if err != nil || out != `{"customer":{"email":""}}` {
			t.Fatalf("got %s, %v", out, err)
		}
	})
	t.Run("a name given to two different schemas takes the tags of both", func(t *testing.T) {
		s := Schema{Type: JSON, ID: 25, Text: `{"type":"object","properties":{"customer":{"$ref":"customer.json"}}}`,
			References:     []string{`{"type":"object","properties":{"email":{"type":"string"}}}`, customer},
			ReferenceNames: []string{"customer.json", "customer.json"}}
		out, err := mask(t, s, `{"customer":{"email":"SECRET-1"}}`)
		if err != nil || out != `{"customer":{"email":""}}` {
			t.Fatalf("got %s, %v", out, err)
		}
	})
	t.Run("a reference name resolves against the referring schema's $id", func(t *testing.T) {
		s := Schema{Type: JSON, ID: 26, Text: `{"$id":"https://acme.example/order.json","type":"object","properties":{"customer":{"$ref":"customer.json"}}}`,
			References: []string{customer}, ReferenceNames: []string{"customer.json"}}
		out, err := mask(t, s, `{"customer":{"email":"SECRET-1"}}`)
		if err != nil || out != `{"customer":{"email":""}}` {
			t.Fatalf("got %s, %v", out, err)
		}
	})
	t.Run("references without names are found by $id only", func(t *testing.T) {
		s := reachSchema(t, "ref-subject.json", schemaRef{"customer.json", ""})
		_, err := mask(t, s, `{"customer":{"email":"SECRET-1"}}`)
		var v *Violation
		if !errors.As(err, &v) || v.Reason != ReasonSchemaUnreadable {
			t.Fatalf("got %v; want %s", err, ReasonSchemaUnreadable)
		}
	})
	t.Run("a reference's own references resolve by name too", func(t *testing.T) {
		s := Schema{Type: JSON, ID: 27, Text: `{"type":"object","properties":{"order":{"$ref":"order.json"}}}`,
			References:     []string{customer, `{"type":"object","properties":{"buyer":{"$ref":"customer.json"}}}`},
			ReferenceNames: []string{"customer.json", "order.json"}}
		out, err := mask(t, s, `{"order":{"buyer":{"email":"SECRET-1"}}}`)
		if err != nil || out != `{"order":{"buyer":{"email":""}}}` {
			t.Fatalf("got %s, %v", out, err)
		}
	})
}

// TestJSONSchemaRecursionTerminates compiles recursive schemas and masks data
// as deep as maxDepth allows.
func TestJSONSchemaRecursionTerminates(t *testing.T) {
	schemas := map[string]string{
		"a type that contains itself": `{"$defs":{"n":{"type":"object","properties":{"name":{"type":"string","confluent:tags":["PII"]},"next":{"$ref":"#/$defs/n"}}}},"$ref":"#/$defs/n"}`,
		"two types that contain each other": `{"$defs":{"a":{"type":"object","properties":{"name":{"type":"string","confluent:tags":["PII"]},"next":{"$ref":"#/$defs/b"}}},
			"b":{"type":"object","properties":{"name":{"type":["string","null"],"confluent:tags":["PII"]},"next":{"$ref":"#/$defs/a"}}}},"$ref":"#/$defs/a"}`,
		"a recursive type inside anyOf and allOf": `{"$defs":{"n":{"anyOf":[{"type":"null"},{"allOf":[{"$ref":"#/$defs/leaf"}],"type":"object","properties":{"next":{"$ref":"#/$defs/n"}}}]},
			"leaf":{"properties":{"name":{"type":"string","confluent:tags":["PII"]}}}},"$ref":"#/$defs/n"}`,
	}
	depth := maxDepth - 1
	var b strings.Builder
	for i := range depth {
		b.WriteString(`{"name":"SECRET-` + strconv.Itoa(i) + `","next":`)
	}
	b.WriteString("null")
	b.WriteString(strings.Repeat("}", depth))
	doc := b.String()
	for name, text := range schemas {
		t.Run(name, func(t *testing.T) {
			for _, rule := range []string{"action: redact", "action: hash"} {
				set := mustParse(t, "p.yaml", "policy: p\nversion: 1\nrules:\n  - {match: {tag: PII}, "+rule+"}\n")
				plan := compile(t, set, Schema{Type: JSON, ID: 28, Text: text})
				out, _, err := plan.MaskJSON([]byte(doc))
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(out), "SECRET") || !json.Valid(out) {
					t.Fatalf("%s left PII or broke the JSON", rule)
				}
			}
		})
	}
}

// TestJSONSchemaLongRefChains reads chains of $refs far longer than any
// document can be deep: the plan stops at maxDepth levels, where MaskJSON
// rejects documents anyway.
func TestJSONSchemaLongRefChains(t *testing.T) {
	const n = 5000
	var b strings.Builder
	b.WriteString(`{"$ref":"#/$defs/d0","$defs":{`)
	for i := range n {
		b.WriteString(`"d` + strconv.Itoa(i) + `":{"type":"object","properties":{"name":{"type":"string","confluent:tags":["PII"]},"x":{"$ref":"#/$defs/d` + strconv.Itoa(i+1) + `"}}},`)
	}
	b.WriteString(`"d` + strconv.Itoa(n) + `":{"type":"string"}}}`)
	plan := compile(t, mustParse(t, "p.yaml", tagRedact), Schema{Type: JSON, ID: 29, Text: b.String()})
	doc := strings.Repeat(`{"name":"SECRET","x":`, maxDepth-1) + "null" + strings.Repeat("}", maxDepth-1)
	out, _, err := plan.MaskJSON([]byte(doc))
	if err != nil || strings.Contains(string(out), "SECRET") {
		t.Fatalf("got %.100s..., %v", out, err)
	}
	deeper := strings.Repeat(`{"name":"SECRET","x":`, maxDepth+1) + "null" + strings.Repeat("}", maxDepth+1)
	var v *Violation
	if _, _, err := plan.MaskJSON([]byte(deeper)); !errors.As(err, &v) || v.Reason != ReasonUndecodable {
		t.Fatalf("a document deeper than the limit: %v", err)
	}
}
