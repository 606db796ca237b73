package yamlerr

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"every part is printed when known", Error{File: "p.yaml", Line: 3, Col: 7, Path: "rules[0].action", Msg: "unknown action"},
			"p.yaml:3:7: rules[0].action: unknown action"},
		{"a syntax error has a line but no column", Error{File: "p.yaml", Line: 3, Msg: "syntax error: x"},
			"p.yaml:3: syntax error: x"},
		{"a problem with the file as a whole has no path", Error{File: "p.yaml", Line: 1, Col: 1, Msg: "empty file"},
			"p.yaml:1:1: empty file"},
		{"without a line there is no column either", Error{File: "p.yaml", Col: 4, Msg: "too complex"},
			"p.yaml: too complex"},
		{"a value built in code has only path and message", Error{Line: 2, Col: 2, Path: "node.id", Msg: "required"},
			"node.id: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	t.Run("no errors join to nil", func(t *testing.T) {
		if err := Join(); err != nil {
			t.Errorf("Join() = %v, want nil", err)
		}
	})
	t.Run("errors are sorted by file, line and column, ties in the order found", func(t *testing.T) {
		err := Join(
			&Error{File: "b.yaml", Line: 1, Col: 1, Msg: "b1"},
			&Error{File: "a.yaml", Line: 2, Col: 9, Msg: "a2 late"},
			&Error{File: "a.yaml", Line: 2, Col: 3, Msg: "a2 first"},
			&Error{File: "a.yaml", Line: 2, Col: 3, Msg: "a2 second"},
			&Error{File: "a.yaml", Line: 1, Col: 5, Msg: "a1"},
		)
		want := "a.yaml:1:5: a1\na.yaml:2:3: a2 first\na.yaml:2:3: a2 second\na.yaml:2:9: a2 late\nb.yaml:1:1: b1"
		if err == nil || err.Error() != want {
			t.Errorf("Join(...) =\n%v\nwant\n%s", err, want)
		}
	})
	t.Run("errors.As finds the list and each error in it, also when wrapped", func(t *testing.T) {
		err := fmt.Errorf("loading: %w", Join(&Error{File: "a.yaml", Line: 4, Msg: "x"}))
		var list *ErrorList
		if !errors.As(err, &list) || len(list.Errors) != 1 {
			t.Fatalf("errors.As(%v, *ErrorList) found %v", err, list)
		}
		var one *Error
		if !errors.As(err, &one) || one.Line != 4 {
			t.Errorf("errors.As(%v, *Error) found %+v", err, one)
		}
	})
}
