package config

import "github.com/tributary-dev/tributary/internal/yamlerr"

// Error is one problem in a config file: where it is (file, line, column, key
// path) and what is wrong. Messages may quote the offending value, except for
// secrets, which they never quote. It is the same type as policy.Error, so
// that both files report problems alike. A config built in code gives errors
// with a key path but no file or position.
type Error = yamlerr.Error

// ErrorList is every problem found in one config, sorted by line and column.
// Load, Parse and Validate return it as a *ErrorList; errors.As also finds
// each *Error in it.
type ErrorList = yamlerr.ErrorList
