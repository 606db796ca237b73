package yamlerr

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestPaths(t *testing.T) {
	tests := []struct {
		name, path, parent string
	}{
		{"a key's parent is its mapping", "rules[2].action", "rules[2]"},
		{"a list item's parent is its list", "rules[2]", "rules"},
		{"a top-level key's parent is the file", "rules", ""},
		{"the file has no parent", "", ""},
		{"a list inside a list", "a[1][2]", "a[1]"},
		{"a dotted map key is split like a path", "kafka.properties.sasl.password", "kafka.properties.sasl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Parent(tt.path); got != tt.parent {
				t.Errorf("Parent(%q) = %q, want %q", tt.path, got, tt.parent)
			}
		})
	}
	t.Run("Key and Index build the paths Parent takes apart", func(t *testing.T) {
		if got := Key(Index(Key("", "rules"), 2), "action"); got != "rules[2].action" {
			t.Errorf("got %q", got)
		}
	})
}

func TestPositionsNearest(t *testing.T) {
	p := Positions{"": {1, 1}, "rules": {3, 1}, "rules[0]": {4, 5}, "rules[0].action": {5, 13}}
	tests := []struct {
		name string
		path string
		want Pos
	}{
		{"a written path has its own position", "rules[0].action", Pos{5, 13}},
		{"an unwritten key falls back to its mapping", "rules[0].keep_last", Pos{4, 5}},
		{"an unwritten list item falls back to its list", "rules[7].action", Pos{3, 1}},
		{"an unknown top-level key falls back to the file", "owner", Pos{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Nearest(tt.path); got != tt.want {
				t.Errorf("Nearest(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
	t.Run("nothing recorded gives the zero position", func(t *testing.T) {
		if got := (Positions{}).Nearest("a.b"); got != (Pos{}) {
			t.Errorf("Nearest = %v", got)
		}
	})
}

func TestWalker(t *testing.T) {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: "x", Line: 4, Column: 9}
	t.Run("an error takes the node's line and column", func(t *testing.T) {
		w := NewWalker("f.yaml")
		w.Errorf(n, "a.b", "bad %s", "thing")
		if len(w.Errors) != 1 || w.Errors[0].Error() != "f.yaml:4:9: a.b: bad thing" {
			t.Errorf("Errors = %v", w.Errors)
		}
		if w.Covers("a.b") {
			t.Error("Errorf marked the path bad; only Fail does")
		}
	})
	t.Run("a failed path covers itself, what is above it and what is below it", func(t *testing.T) {
		w := NewWalker("f.yaml")
		w.Fail(n, "rules[1].match", "want a mapping")
		for path, want := range map[string]bool{
			"rules[1].match": true, "rules[1].match.field": true, "rules[1]": true, "rules": true, "": true,
			"rules[1].action": false, "rules[0]": false, "rules[10].match": false,
		} {
			if got := w.Covers(path); got != want {
				t.Errorf("Covers(%q) = %v, want %v", path, got, want)
			}
		}
	})
	t.Run("the walk stops once past MaxSteps, with one error", func(t *testing.T) {
		w := NewWalker("f.yaml")
		for range MaxSteps {
			if !w.Step(n, "a") {
				t.Fatal("Step refused a value within MaxSteps")
			}
		}
		if w.TooComplex() {
			t.Fatal("TooComplex before the limit")
		}
		if w.Step(n, "a") || w.Step(n, "b") || !w.TooComplex() {
			t.Error("Step allowed a value past MaxSteps")
		}
		if len(w.Errors) != 1 || !strings.Contains(w.Errors[0].Msg, "document too complex") {
			t.Errorf("Errors = %v", w.Errors)
		}
	})
}
