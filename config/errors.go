package config

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a config file: where it is and what is wrong.
// Messages may quote the offending value, except for secrets, which they never quote.
type Error struct {
	// File is the path given to Load or Parse, "" for a config built in code.
	File string
	// Line is the 1-based line of Path in File, 0 when unknown.
	Line int
	// Path is the key path, as in "pipelines[1].topics.include[0]"; "" for the file as a whole.
	Path string
	// Msg says what is wrong, lower-case, without a final period.
	Msg string
}

// Error formats the problem as "<file>:<line>: <path>: <message>", leaving out the
// parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
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

// ErrorList is every problem found in one config, sorted by line. Load, Parse and
// Validate return it as a *ErrorList; errors.As also finds each *Error in it.
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

// err returns the list sorted by line (keeping the order of errors on the same
// line), or nil when it is empty.
func (l *ErrorList) err() error {
	if len(l.Errors) == 0 {
		return nil
	}
	sort.SliceStable(l.Errors, func(i, j int) bool { return l.Errors[i].Line < l.Errors[j].Line })
	return l
}
