// Package config defines tributary's node config file and loads it.
//
// Load reads the file into a yaml.Node tree and decodes it onto Default() with
// its own walker over the yaml struct tags (decode.go) rather than yaml.v3's
// Decode: the walker is strict (unknown keys, duplicate keys and wrong types are
// errors), keeps going after a problem so that every problem in a file is reported
// at once, and records the position of every key path
// ("pipelines[1].topics.include[0]") so that Validate can point at the line and
// column of what it rejects. ${VAR} expands from the environment during the
// walk, after YAML parsing, so positions stay right and a value with YAML
// syntax in it stays one string; $$ is a literal $.
//
// After decoding, setDefaults fills in the per-pipeline defaults (which can only
// exist once the pipelines do) and Validate checks the whole config, compiling the
// topic regexes that Pipeline.Selects uses. Every problem is an *Error printed as
// "<file>:<line>:<col>: <key path>: <message>" (syntax errors have no column);
// Load, Parse and Validate return them together as a *ErrorList sorted by line
// and column. Messages never quote secrets.
//
// Error, ErrorList, the syntax-error line, the walker's bookkeeping and the
// "did you mean" hint come from internal/yamlerr, shared with package policy so
// that both report the same mistake at the same place.
//
// The package imports only the standard library, go.yaml.in/yaml/v3 and
// internal/yamlerr; it parses no policy files (policies only names their
// folder) and dials nothing.
package config
