// Package yamlerr is what config and policy share to report problems in a YAML
// file: the *Error that names file, line, column and key path, the ErrorList
// that gathers every problem of a file sorted by position, the line of a syntax
// error, the Walker that a strict decoder embeds, and the "did you mean"
// suggestion for an unknown key or value.
//
// Both packages decode by walking the yaml.Node tree rather than with yaml.v3's
// Decode, so that they keep going after a problem and know where every key path
// is. The walk itself (which keys exist, what type each value has, how merge
// keys behave) stays with each package; this package holds the parts whose
// copies had drifted apart.
//
// Syntax errors have a line but no column: yaml.v3 reports neither the column
// nor, for many errors, the line of the mistake (it gives the line where the
// enclosing construct starts, and 0-based for parser errors). Document finds the
// line by parsing ever longer prefixes of the file; see syntaxError.
//
// The package imports only the standard library and go.yaml.in/yaml/v3, so that
// config and policy, which must not import each other, can both import it. Its
// external test (agree_test.go) imports both, to show that they report the
// mistakes in testdata at the same line and column.
package yamlerr
