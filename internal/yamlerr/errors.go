package yamlerr

import (
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a YAML file: where it is and what is wrong.
type Error struct {
	// File names the file as the caller gave it; "" for a value built in code.
	File string
	// Line and Col are 1-based; 0 when unknown. Syntax errors have no column.
	Line, Col int
	// Path is the key path, as in "rules[2].action"; "" for the file as a whole.
	Path string
	// Msg says what is wrong, lower-case, without a final period.
	Msg string
}

// Error formats the problem as "<file>:<line>:<col>: <path>: <message>",
// leaving out the parts that are unknown. Without a file there is no position.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
			if e.Col > 0 {
				b.WriteString(":")
				b.WriteString(strconv.Itoa(e.Col))
			}
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found, one *Error each. Join returns it sorted by
// position; errors.As finds the list and each *Error in it.
type ErrorList struct {
	Errors []*Error
}

// Error prints one problem per line.
func (l *ErrorList) Error() string {
	msgs := make([]string, len(l.Errors))
	for i, e := range l.Errors {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the individual errors, for errors.As and errors.Is.
func (l *ErrorList) Unwrap() []error {
	errs := make([]error, len(l.Errors))
	for i, e := range l.Errors {
		errs[i] = e
	}
	return errs
}

// Join returns errs sorted by position as an *ErrorList, or nil when there are
// none, as errors.Join does. It sorts errs in place.
func Join(errs ...*Error) error {
	if len(errs) == 0 {
		return nil
	}
	Sort(errs)
	return &ErrorList{Errors: errs}
}

// Sort orders errors by file, line and column, keeping the order in which they
// were found for errors at the same place (or at no place).
func Sort(errs []*Error) {
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
}
