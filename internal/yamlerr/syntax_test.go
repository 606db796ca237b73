package yamlerr

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestDocumentSyntaxErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		msg  string
	}{
		{"a flow list closed with } is reported on its line, not the line before",
			"node:\n  id: x\nkafka:\n  central:\n    bootstrap: [a, b}\n", 5,
			"did not find expected ',' or ']'"},
		{"a flow list closed with } on the first line is on line 1",
			"a: [a, b}\n", 1, "did not find expected ',' or ']'"},
		{"a flow list closed with } on the second line is on line 2, where yaml.v3 says 1",
			"a: 1\nb: [a, b}\n", 2, "did not find expected ',' or ']'"},
		{"a tab in the indentation is reported on the tab's line, not the value's before it",
			"node:\n  id: x\n\tregion: eu\n", 3, "found a tab character that violates indentation"},
		{"an unclosed { is reported where it should have been closed, not where yaml.v3 noticed",
			"rules:\n  - match: {field: customer.email\n    action: redact\n", 2,
			"did not find expected ',' or '}'"},
		{"an unclosed [ at the end of the file is on the last line",
			"a:\n  b: [1,\n     2,\n     3\n", 4, "did not find expected ',' or ']'"},
		{"a list item indented too little is on its line",
			"rules:\n  - a: 1\n    b: 2\n  - a: 3\n    b: 4\n   c: 5\n", 6, "did not find expected '-' indicator"},
		{"a scanner error keeps the line yaml.v3 gives it",
			"node:\n  id: eu-1\nkafka:\n  central:\n    bootstrap: localhost: 9092\n", 5,
			"mapping values are not allowed in this context"},
		{"an unquoted * starts an alias",
			"a:\n  field: **.ssn\n", 2, "did not find expected alphabetic or numeric character"},
		{"a syntax error in the second document is on its line",
			"a: 1\n---\nb: 2\nc: [1}\n", 4, "did not find expected ',' or ']'"},
		{"a file without a final newline is read to its end",
			"a: 1\nb: [1}", 2, "did not find expected ',' or ']'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, next, err := Document("f.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error; root %v, next %v", root, next)
			}
			want := &Error{File: "f.yaml", Line: tt.line, Msg: "syntax error: " + tt.msg}
			if *err != *want {
				t.Errorf("error\n got: %s\nwant: %s", err, want)
			}
		})
	}
}

func TestDocument(t *testing.T) {
	t.Run("an empty file has no document", func(t *testing.T) {
		root, next, err := Document("f.yaml", nil)
		if root != nil || next != nil || err != nil {
			t.Errorf("Document = %v, %v, %v", root, next, err)
		}
	})
	t.Run("the top-level node of the document is returned", func(t *testing.T) {
		root, next, err := Document("f.yaml", []byte("# hi\n\nnode: {id: a}\n"))
		if err != nil || next != nil || root == nil || root.Kind != yaml.MappingNode || root.Line != 3 {
			t.Errorf("Document = %+v, %v, %v", root, next, err)
		}
	})
	t.Run("a second document is returned for the caller to reject", func(t *testing.T) {
		root, next, err := Document("f.yaml", []byte("a: 1\n---\nb: 2\n"))
		if err != nil || root != nil || next == nil || At(next) != (Pos{2, 1}) {
			t.Errorf("Document = %v, %+v, %v", root, next, err)
		}
	})
	t.Run("a syntax error far into a large file falls back to yaml.v3's line", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("x: 1\na: [\n")
		for b.Len() < 64<<10 {
			b.WriteString("  1,\n")
		}
		b.WriteString("  2}\n")
		_, _, err := Document("f.yaml", []byte(b.String()))
		if err == nil {
			t.Fatal("no error")
		}
		if err.Line != 1 {
			t.Errorf("line %d, want yaml.v3's 1", err.Line)
		}
	})
}
