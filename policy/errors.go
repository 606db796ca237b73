package policy

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a policy file, or a warning about one: where it is and
// what is wrong. Messages never quote record values; they may quote policy text.
type Error struct {
	// File is the policy file's name as given to LoadFiles, LoadDir or Parse.
	File string
	// Line and Col are 1-based; 0 when unknown (YAML syntax errors have no column).
	Line, Col int
	// Path is the key path inside the file, as in "rules[2].action"; "" for the
	// file as a whole.
	Path string
	// Msg says what is wrong, lower-case, without a final period.
	Msg string
}

// Error formats the problem as "<file>:<line>:<col>: <path>: <message>", leaving
// out the parts that are unknown.
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

// ErrorList is every problem found in a set of policy files, sorted by file,
// line and column. Parsing, validation and compilation return it as a
// *ErrorList; errors.As also finds each *Error in it.
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

// listErr sorts errs and returns them as a *ErrorList, or nil when there are none.
func listErr(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	sortErrors(errs)
	return &ErrorList{Errors: errs}
}

// sortErrors orders errors by file, line and column, keeping the order of
// errors at the same place, and drops exact duplicates.
func sortErrors(errs []*Error) []*Error {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return errs
}

// suggest returns ` (did you mean "x"?)` for the known word closest to word, or
// "" when none is close.
func suggest(word string, known []string) string {
	if c := closest(word, known); c != "" {
		return " (did you mean " + strconv.Quote(c) + "?)"
	}
	return ""
}

// closest returns the known word closest to word, or "" when none is close:
// within a third of its length in edits, or starting with it.
func closest(word string, known []string) string {
	w := strings.ToLower(word)
	best, bestD := "", 0
	for _, k := range known {
		d := editDistance(w, k)
		if best == "" || d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" || bestD > max(1, len(word)/3) && !strings.HasPrefix(best, w) {
		return ""
	}
	return best
}

// editDistance is the Damerau–Levenshtein distance (with adjacent transpositions)
// between a and b, so that "hsah" is one step from "hash".
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
