package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes, defaults and validates the config file at path. Problems in
// the file come back together as a *ErrorList whose entries name path as given,
// the line and the key path; a file that cannot be read gives the *fs.PathError.
// ${VAR} in string values expands from the environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for data already read; file names it in errors.
func Parse(file string, data []byte) (*Config, error) {
	return parseWithEnv(file, data, os.LookupEnv)
}

// parseWithEnv is Parse with the environment lookup injected, for tests.
func parseWithEnv(file string, data []byte, lookup func(string) (string, bool)) (*Config, error) {
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, err
	}
	c := Default()
	c.File = file
	d := newDecoder(file, lookup)
	if root != nil {
		d.lines[""] = root.Line
		d.decode(root, reflect.ValueOf(c).Elem(), "")
	}
	c.lines = d.lines
	c.setDefaults()

	all := &ErrorList{Errors: d.errs}
	var verr *ErrorList
	if !d.tooComplex && errors.As(c.Validate(), &verr) {
		for _, e := range verr.Errors {
			if !d.covers(e.Path) {
				all.Errors = append(all.Errors, e)
			}
		}
	}
	if err := all.err(); err != nil {
		return nil, err
	}
	return c, nil
}

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parseYAML returns the top-level node of the only document in data, nil for an
// empty file, or a *ErrorList with the syntax error.
func parseYAML(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(file, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(file, err)
	default:
		return nil, &ErrorList{Errors: []*Error{{File: file, Line: next.Line, Msg: "only one YAML document is allowed"}}}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

func syntaxError(file string, err error) error {
	msg := err.Error()
	line := 0
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &ErrorList{Errors: []*Error{{File: file, Line: line, Msg: "syntax error: " + msg}}}
}

// expand replaces ${VAR} with the variable's value and $$ with $. A $ followed by
// anything else stays as it is, so regexes like "payments$" need no escaping.
func expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	var unset []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New(`unterminated "${" (write "$$" for a literal "$")`)
			}
			name := s[i+2 : i+2+end]
			if !envName.MatchString(name) {
				return "", fmt.Errorf(`invalid variable name %q in "${...}" (write "$$" for a literal "$")`, name)
			}
			v, ok := lookup(name)
			if !ok {
				unset = append(unset, strconv.Quote(name))
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	switch len(unset) {
	case 0:
		return b.String(), nil
	case 1:
		return "", fmt.Errorf("environment variable %s is not set", unset[0])
	default:
		return "", fmt.Errorf("environment variables %s are not set", strings.Join(unset, ", "))
	}
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
