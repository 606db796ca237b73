package registry

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/tributary-dev/tributary/config"
)

// logBuffer collects a server's log lines; handlers write from request
// goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// lenientSchemas are schemas Confluent Schema Registry (Avro Java, defaults
// not validated) registers and hamba/avro refuses. secret is a piece of each
// schema (a name, a default) that must not appear in the log; reason is what
// the warning must say.
var lenientSchemas = []struct {
	name, schema, secret, reason string
}{
	{"a string \"null\" default on a null-first union",
		rec("Car", field("vin", `"string"`), field("plate", `["null","string"]`, `"default":"null"`)), `plate`, "invalid default at /fields/1/default"},
	{"a null default on a string-first union",
		rec("Car", field("color", `["string","null"]`, `"default":null`)), `color`, "invalid default at /fields/0/default"},
	{"a string default on an int field",
		rec("Car", field("doors", `"int"`, `"default":"four"`)), `four`, "invalid default at /fields/0/default"},
	{"a record default that lacks a field without default",
		rec("Car", field("engine", rec("Engine", field("kw", `"int"`)), `"default":{}`)), `Engine`, "invalid default at /fields/0/default"},
	{"an invalid default inside a nested record",
		rec("Car", field("owner", rec("Owner", field("since", `"long"`, `"default":"never"`)))), `never`, "invalid default at /fields/0/type/fields/0/default"},
	{"a namespace with a hyphen",
		`{"type":"record","name":"Car","namespace":"com.acme-fleet.cars","fields":[{"name":"vin","type":"string"}]}`, `acme-fleet`, "namespace part"},
	{"a full name with a hyphen in its namespace",
		`{"type":"record","name":"com.acme-fleet.Car","fields":[{"name":"vin","type":"string"}]}`, `acme-fleet`, "namespace part"},
	{"Unicode letters in record and field names",
		`{"type":"record","name":"Größe","fields":[{"name":"länge","type":"int"}]}`, `länge`, "non-ASCII name at /fields/0/name"},
	{"Unicode enum symbols and default",
		`{"type":"enum","name":"Farbe","symbols":["rot","grün"],"default":"grün"}`, `grün`, "non-ASCII name at /symbols/1"},
	{"a field default naming a Unicode enum symbol",
		rec("Car", field("colour", `{"type":"enum","name":"Farbe","symbols":["rot","grün"]}`, `"default":"grün"`)), `grün`, "non-ASCII name at /fields/0/type/symbols/1"},
	{"a field alias with a hyphen",
		rec("Car", field("vin", `"string"`, `"aliases":["vehicle-id"]`)), `vehicle-id`, "field alias"},
	{"a non-string doc",
		rec("Car", field("vin", `"string"`, `"doc":{"text":"fleet car"}`)), `fleet car`, "non-string doc at /fields/0/doc"},
	{"an upper-case field order",
		rec("Car", field("vin", `"string"`, `"order":"DESCENDING"`)), `DESCENDING`, "upper-case order at /fields/0/order"},
	{"a non-string enum default",
		`{"type":"enum","name":"Colour","symbols":["RED"],"default":1}`, `RED`, "non-string enum default at /default"},
	{"a reference to a type in a hyphenated namespace",
		rec("Fleet", field("first", `{"type":"record","name":"Car","namespace":"acme-fleet","fields":[{"name":"vin","type":"string"}]}`),
			field("second", `"acme-fleet.Car"`)), `acme-fleet`, "namespace part at /fields/1/type accepted"},
}

func TestLenientSchemasRegisterOverHTTP(t *testing.T) {
	for i, tt := range lenientSchemas {
		t.Run(tt.name+" registers with a warning", func(t *testing.T) {
			if _, err := avro.Parse(tt.schema); err == nil {
				t.Fatalf("hamba accepts %s: the case tests nothing", tt.schema)
			}
			var logs logBuffer
			_, url := startServer(t, ServerOptions{Logger: logs.logger()})
			subject := fmt.Sprintf("cars-%d-value", i)

			var got struct{ ID, Version int }
			if st, code := call(t, "POST", url+"/subjects/"+subject+"/versions", body(tt.schema), &got); st != 200 {
				t.Fatalf("register: status %d code %d", st, code)
			}
			if got.ID < 1 || got.Version != 1 {
				t.Fatalf("register returned %+v", got)
			}
			line := logs.String()
			for _, want := range []string{"level=WARN", "subject=" + subject, fmt.Sprintf("id=%d", got.ID), tt.reason} {
				if !strings.Contains(line, want) {
					t.Errorf("log lacks %q:\n%s", want, line)
				}
			}
			if !strings.Contains(tt.reason, "invalid default") && strings.Contains(line, "invalid default") {
				t.Errorf("log reports a valid default as invalid:\n%s", line)
			}
			if strings.Contains(line, tt.secret) {
				t.Errorf("log shows schema contents %q:\n%s", tt.secret, line)
			}

			var again, other struct{ ID, Version int }
			call(t, "POST", url+"/subjects/"+subject+"/versions", body(tt.schema), &again)
			call(t, "POST", url+"/subjects/elsewhere-value/versions", body(tt.schema), &other)
			if again != got || other.ID != got.ID {
				t.Errorf("same schema: %+v, then %+v, under another subject %+v; want the same id", got, again, other)
			}
			var stored struct{ Schema string }
			call(t, "GET", fmt.Sprintf("%s/schemas/ids/%d", url, got.ID), "", &stored)
			canon, compact, err := canonicalJSON(tt.schema)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Schema != compact {
				t.Errorf("stored schema %s, want the original %s", stored.Schema, compact)
			}
			var found struct{ ID int }
			if st, _ := call(t, "POST", url+"/subjects/"+subject, body(tt.schema), &found); st != 200 || found.ID != got.ID {
				t.Errorf("lookup: status %d id %d, want %d", st, found.ID, got.ID)
			}
			if p, err := parseSchema(Avro, tt.schema, nil); err != nil || p.canonical != canon {
				t.Errorf("parse: %v, canonical form differs from the original's", err)
			}
		})
	}
}

func TestSchemasAvroJavaRefusesStayRefused(t *testing.T) {
	for name, s := range map[string]string{
		"a hyphen in a record name":                 `{"type":"record","name":"my-car","fields":[]}`,
		"a hyphen in a field name":                  rec("Car", field("licence-plate", `"string"`)),
		"a digit first in an enum symbol":           `{"type":"enum","name":"E","symbols":["1st"]}`,
		"an enum default that is no symbol":         `{"type":"enum","name":"E","symbols":["A"],"default":"B"}`,
		"a field without a type":                    `{"type":"record","name":"R","fields":[{"name":"a","default":1}]}`,
		"an unknown named type":                     rec("R", field("a", `"Missing"`)),
		"an unknown type in a hyphenated namespace": rec("R", field("a", `"my-ns.Missing"`)),
	} {
		t.Run(name+" is refused", func(t *testing.T) {
			_, url := startServer(t, ServerOptions{})
			st, code := call(t, "POST", url+"/subjects/s-value/versions", body(s), nil)
			if st != 422 || code != CodeInvalidSchema {
				t.Errorf("status %d code %d, want 422 %d", st, code, CodeInvalidSchema)
			}
		})
	}
}

func TestLenientSchemasKeepCompatibilityRules(t *testing.T) {
	const ns = `"namespace":"com.acme-fleet"`
	car := func(fields ...string) string {
		return `{"type":"record","name":"Car",` + ns + `,"fields":[` + strings.Join(fields, ",") + `]}`
	}
	tests := []struct {
		name       string
		old, new   string
		compatible bool
		message    string // part of the message when incompatible
	}{
		{"a field added with an invalid default still has a default", rec("Car", field("vin", `"string"`)),
			rec("Car", field("vin", `"string"`), field("plate", `["null","string"]`, `"default":"null"`)), true, ""},
		{"a field added without a default is incompatible as before", rec("Car", field("vin", `"string"`), field("plate", `["null","string"]`, `"default":"null"`)),
			rec("Car", field("vin", `"string"`), field("plate", `["null","string"]`, `"default":"null"`), field("doors", `"int"`)), false, "READER_FIELD_MISSING_DEFAULT_VALUE"},
		{"a Unicode field promoted from int to long is compatible", `{"type":"record","name":"Maß","fields":[{"name":"länge","type":"int"}]}`,
			`{"type":"record","name":"Maß","fields":[{"name":"länge","type":"long"}]}`, true, ""},
		{"a Unicode field changed to string is named as written", `{"type":"record","name":"Maß","fields":[{"name":"länge","type":"int"}]}`,
			`{"type":"record","name":"Maß","fields":[{"name":"länge","type":"string"}]}`, false, "'länge'"},
		{"a renamed record in a hyphenated namespace is named as written", car(field("vin", `"string"`)),
			strings.Replace(car(field("vin", `"string"`)), `"Car"`, `"Truck"`, 1), false, "new schema com.acme-fleet.Truck, old schema com.acme-fleet.Car"},
		{"a field found through a hyphenated alias is compatible", car(field("vin", `"string"`)),
			car(field("id", `"string"`, `"aliases":["vin","vehicle-id"]`)), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, url := startServer(t, ServerOptions{})
			if st, code := call(t, "POST", url+"/subjects/cars-value/versions", body(tt.old), nil); st != 200 {
				t.Fatalf("old schema: status %d code %d", st, code)
			}
			var res struct {
				IsCompatible bool     `json:"is_compatible"`
				Messages     []string `json:"messages"`
			}
			if st, code := call(t, "POST", url+"/compatibility/subjects/cars-value/versions/latest?verbose=true", body(tt.new), &res); st != 200 {
				t.Fatalf("compatibility: status %d code %d", st, code)
			}
			if res.IsCompatible != tt.compatible {
				t.Fatalf("is_compatible = %v, want %v: %q", res.IsCompatible, tt.compatible, res.Messages)
			}
			all := strings.Join(res.Messages, "\n")
			if !tt.compatible && !strings.Contains(all, tt.message) {
				t.Errorf("messages lack %q:\n%s", tt.message, all)
			}
			if strings.Contains(all, mangledPrefix) {
				t.Errorf("messages show a rewritten name:\n%s", all)
			}
			st, _ := call(t, "POST", url+"/subjects/cars-value/versions", body(tt.new), nil)
			if (st == 200) != tt.compatible {
				t.Errorf("register: status %d, compatible %v", st, tt.compatible)
			}
		})
	}
}

// TestTranslatorCarriesLenientSchemas: a source registry full of schemas
// Confluent accepts must not make the target registry refuse them.
func TestTranslatorCarriesLenientSchemas(t *testing.T) {
	_, srcURL := startServer(t, ServerOptions{})
	var logs logBuffer
	_, dstURL := startServer(t, ServerOptions{Logger: logs.logger()})
	client := func(url string) *Client {
		c, err := NewClient(&config.SchemaRegistry{URL: url}, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	src, dst := client(srcURL), client(dstURL)
	ctx := context.Background()
	// Ids in the target start elsewhere than in the source.
	if _, err := dst.Register(ctx, "unrelated-value", &Schema{Type: Avro, Text: rec("U", field("a", `"int"`))}); err != nil {
		t.Fatal(err)
	}
	tr := NewTranslator(src, dst, TranslatorOptions{})

	for i, tt := range lenientSchemas {
		if !strings.HasPrefix(tt.schema, `{"type":"record"`) {
			continue // the translator test needs a record to frame
		}
		t.Run(tt.name+" is registered in the target", func(t *testing.T) {
			srcID, err := src.Register(ctx, fmt.Sprintf("t%d-value", i), &Schema{Type: Avro, Text: tt.schema})
			if err != nil {
				t.Fatal(err)
			}
			value := AppendFrame(nil, SchemaRef{ID: int32(srcID)}, Avro, []byte{0})
			topic := fmt.Sprintf("mirror.t%d", i)
			res, err := tr.Translate(ctx, topic, nil, value, nil)
			if err != nil {
				t.Fatalf("translate: %v", err)
			}
			if res.ValueSchema.TargetID == int32(srcID) || res.ValueSchema.TargetID < 1 {
				t.Fatalf("target id %d (source %d)", res.ValueSchema.TargetID, srcID)
			}
			got, err := dst.SchemaByID(ctx, int(res.ValueSchema.TargetID))
			if err != nil {
				t.Fatal(err)
			}
			_, compact, _ := canonicalJSON(tt.schema)
			if got.Text != compact {
				t.Errorf("target holds %s, want %s", got.Text, compact)
			}
			if !strings.Contains(logs.String(), "subject="+topic+"-value") {
				t.Errorf("no warning for %s-value in the target's log:\n%s", topic, logs.String())
			}
		})
	}
}

func TestNameRules(t *testing.T) {
	tests := []struct {
		name        string
		hamba, java bool
	}{
		{"Order", true, true},
		{"_private9", true, true},
		{"Größe", false, true},
		{"名前", false, true},
		{"x٣", false, true}, // an Arabic-Indic digit
		{"٣x", false, false},
		{"my-car", false, false},
		{"9lives", false, false},
		{"", false, false},
		{"a\U0001D4B6", false, false}, // a letter outside the BMP is a surrogate pair in Java
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q is a hamba name: %v, an Avro Java name: %v", tt.name, tt.hamba, tt.java), func(t *testing.T) {
			if got := hambaName(tt.name); got != tt.hamba {
				t.Errorf("hambaName = %v", got)
			}
			if got := javaName(tt.name); got != tt.java {
				t.Errorf("javaName = %v", got)
			}
		})
	}
	t.Run("a rewritten name is a hamba name and reads back as written", func(t *testing.T) {
		for _, s := range []string{"Größe", "acme-fleet", "名前", ""} {
			m := mangle(s)
			if !hambaName(m) {
				t.Errorf("mangle(%q) = %q is not a hamba name", s, m)
			}
			if got := demangle("at " + m + "." + mangle("x-y") + " end"); got != "at "+s+".x-y end" {
				t.Errorf("demangle = %q", got)
			}
		}
	})
}
