package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// Load reads, decodes, defaults and validates the config file at path. Problems in
// the file come back together as a *ErrorList whose entries name path as given,
// the line, the column and the key path; a file that cannot be read gives the *fs.PathError.
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
	root, next, yerr := yamlerr.Document(file, data)
	switch {
	case yerr != nil:
		return nil, yamlerr.Join(yerr)
	case next != nil:
		return nil, yamlerr.Join(&Error{File: file, Line: next.Line, Col: next.Column, Msg: "only one YAML document is allowed"})
	}
	c := Default()
	c.File = file
	d := newDecoder(file, lookup)
	if root != nil {
		d.Pos.Set("", root)
		d.decode(root, reflect.ValueOf(c).Elem(), "")
	}
	c.pos = d.Pos
	c.setDefaults()

	errs := d.Errors
	var verr *ErrorList
	if !d.TooComplex() && errors.As(c.Validate(), &verr) {
		for _, e := range verr.Errors {
			if !d.Covers(e.Path) {
				errs = append(errs, e)
			}
		}
	}
	if err := yamlerr.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
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
