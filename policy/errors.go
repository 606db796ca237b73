package policy

import "github.com/tributary-dev/tributary/internal/yamlerr"

// Error is one problem in a policy file, or a warning about one: where it is
// (file, line, column, key path) and what is wrong. Messages never quote
// record values; they may quote policy text. It is the same type as
// config.Error, so that both files report problems alike.
type Error = yamlerr.Error

// ErrorList is every problem found in a set of policy files, sorted by file,
// line and column. Parsing, validation and compilation return it as a
// *ErrorList; errors.As also finds each *Error in it.
type ErrorList = yamlerr.ErrorList
