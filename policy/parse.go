package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Source is one policy file's name and bytes, for ParseFiles.
type Source struct {
	Name string
	Data []byte
}

// LoadDir parses every *.yaml and *.yml file directly in dir (not in
// subfolders; names starting with "." are skipped) into one Set. See ParseFiles.
func LoadDir(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading policy folder: %w", err)
	}
	var paths []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !isPolicyFile(n) {
			continue
		}
		paths = append(paths, filepath.Join(dir, n))
	}
	return LoadFiles(paths...)
}

func isPolicyFile(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// LoadFiles parses the policy files at paths into one Set. See ParseFiles. A file
// that cannot be read gives its *fs.PathError.
func LoadFiles(paths ...string) (*Set, error) {
	srcs := make([]Source, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading policy file: %w", err)
		}
		srcs = append(srcs, Source{Name: p, Data: data})
	}
	return ParseFiles(srcs...)
}

// Parse parses one policy file; file names it in errors. See ParseFiles.
func Parse(file string, data []byte) (*Set, error) {
	return ParseFiles(Source{Name: file, Data: data})
}

// ParseFiles parses and validates policy files, one policy per file, into a Set.
// Decoding is strict: unknown keys, duplicate keys and values of the wrong type
// are errors. Every problem of every file comes back at once as a *ErrorList,
// each entry naming the file, line, column and key path. Checks that need the
// previously active bundle (Set.CheckAgainst) or schemas (Set.CheckSchemas, Lint)
// are separate.
func ParseFiles(srcs ...Source) (*Set, error) {
	s := &Set{}
	var errs []*Error
	for _, src := range srcs {
		sum := sha256.Sum256(src.Data)
		s.Files = append(s.Files, File{Name: src.Name, SHA256: hex.EncodeToString(sum[:])})
		p, perrs := parseFile(src.Name, src.Data)
		errs = append(errs, perrs...)
		if p != nil {
			p.SHA256 = s.Files[len(s.Files)-1].SHA256
			s.Policies = append(s.Policies, p)
		}
	}
	sort.SliceStable(s.Files, func(i, j int) bool { return s.Files[i].Name < s.Files[j].Name })
	errs = append(errs, s.validate()...)
	if err := listErr(errs); err != nil {
		return nil, err
	}
	return s, nil
}

// parseFile decodes and validates one file. It returns the policy (nil when the
// file is too broken to have one) and the problems found.
func parseFile(file string, data []byte) (*Policy, []*Error) {
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, []*Error{err}
	}
	d := &decoder{file: file, bad: map[string]bool{}, above: map[string]bool{}}
	p := &Policy{File: file, pos: map[string]position{"": {1, 1}}}
	if root == nil {
		return nil, []*Error{{File: file, Line: 1, Col: 1, Msg: "empty policy file (want keys policy, version and rules)"}}
	}
	d.policy(root, p)
	errs := d.errs
	for _, e := range p.check() {
		if !d.covers(e.Path) {
			errs = append(errs, e)
		}
	}
	return p, errs
}

// parseYAML returns the top-level node of the only document in data, nil for an
// empty file, or the syntax error.
func parseYAML(file string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(file, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(file, data, err)
	default:
		return nil, &Error{File: file, Line: next.Line, Col: next.Column, Msg: "only one YAML document (one policy) per file is allowed"}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError turns a yaml.v3 error into an *Error. yaml.v3 reports no column.
func syntaxError(file string, data []byte, err error) *Error {
	msg := err.Error()
	line := 0
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	// yaml.v3 reports parser (not scanner) errors at the 0-based line where
	// the enclosing construct starts, which for a top-level mapping is the top
	// of the file; and no line at all for line 1.
	for _, p := range parserProblems {
		if strings.HasPrefix(msg, p) {
			line = max(line+1, problemLine(data, msg))
			break
		}
	}
	line = max(line, 1)
	msg = "syntax error: " + msg
	// A pattern like **.ssn must be quoted: an unquoted * starts a YAML alias.
	if line > 0 {
		lines := strings.Split(string(data), "\n")
		for _, l := range lines[max(0, line-2):min(len(lines), line)] {
			if strings.Contains(l, ": *") || strings.Contains(l, "- *") {
				msg += ` (a value starting with "*" must be quoted, as in field: "**.ssn")`
				break
			}
		}
	}
	return &Error{File: file, Line: line, Msg: msg}
}

// problemLine finds the line of a parser error that yaml.v3 reports at the
// start of the enclosing block: the first line whose prefix of the file fails
// with the same message. It gives up (0) on long files.
func problemLine(data []byte, msg string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 2000 {
		return 0
	}
	end := 0
	for k, l := range lines {
		end += len(l)
		var n yaml.Node
		err := yaml.Unmarshal(data[:end], &n)
		if err == nil {
			continue
		}
		m := err.Error()
		if sub := syntaxLine.FindStringSubmatch(m); sub != nil {
			m = m[len(sub[0]):]
		}
		if m == msg {
			return k + 1
		}
	}
	return 0
}

// parserProblems are yaml.v3's parser error messages, whose lines are off by one.
var parserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"did not find expected '-' indicator", "did not find expected <document start>",
	"did not find expected key", "did not find expected node content",
	"found duplicate %TAG directive", "found duplicate %YAML directive",
	"found incompatible YAML document", "found undefined tag handle",
}

// maxSteps bounds the YAML values decoded from one file, so that aliases cannot
// make a small file expensive ("billion laughs"). Real policies have hundreds.
const maxSteps = 100_000

// decoder walks a yaml.Node tree onto a Policy. Unlike yaml.v3's KnownFields
// decoding it keeps going after a problem, so that a file's problems are all
// reported at once, and it records where every key path is.
type decoder struct {
	file string
	errs []*Error
	// bad holds the key paths whose value could not be decoded (or that a
	// misspelt key was probably meant to be), and above the paths containing
	// them: validation's complaints about them would only repeat the problem.
	bad, above map[string]bool
	steps      int
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// fail is errorf for a value that could not be decoded.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errorf(n, path, format, args...)
	d.markBad(path)
}

func (d *decoder) markBad(path string) {
	d.bad[path] = true
	for p := path; p != ""; {
		p = parentPath(p)
		d.above[p] = true
	}
}

// covers reports whether a decoding error already explains a problem at path:
// one at path, above it or below it.
func (d *decoder) covers(path string) bool {
	if d.above[path] {
		return true
	}
	for p := path; ; p = parentPath(p) {
		if d.bad[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// resolve follows aliases, counting steps.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for depth := 0; n.Kind == yaml.AliasNode && n.Alias != nil; depth++ {
		if depth > 100 {
			d.fail(n, path, "alias chain too long")
			return nil
		}
		n = n.Alias
	}
	d.steps++
	if d.steps > maxSteps {
		if d.steps == maxSteps+1 {
			d.fail(n, path, "document too complex: aliases expand to more than %d values", maxSteps)
		}
		return nil
	}
	return n
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe names the kind of a node for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "an alias"
}

// fields walks a mapping whose keys must be among known, calling fn for each
// key/value pair in file order. Unknown and duplicate keys are errors.
func (d *decoder) fields(n *yaml.Node, path string, known []string, fn func(key string, k, v *yaml.Node, path string)) bool {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping with keys %s, got %s", strings.Join(known, ", "), describe(n))
		return false
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be plain words, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.errorf(k, path, "merge keys (<<) are not supported in policy files")
			continue
		}
		kp := join(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.fail(k, kp, "duplicate key (first at line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		if !slices.Contains(known, k.Value) {
			hint := suggest(k.Value, known)
			d.errorf(k, kp, "unknown key%s", hint)
			if hint != "" {
				// Do not also complain that the key meant is missing.
				d.markBad(join(path, closest(k.Value, known)))
			}
			continue
		}
		v = d.resolve(v, kp)
		if v == nil {
			continue
		}
		fn(k.Value, k, v, kp)
	}
	return true
}

// list walks a sequence, calling fn for each item with its path "path[i]".
func (d *decoder) list(n *yaml.Node, path, want string, pos map[string]position, fn func(i int, item *yaml.Node, path string)) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "want a list of %s, got %s", want, describe(n))
		return
	}
	for i, item := range n.Content {
		ip := path + "[" + strconv.Itoa(i) + "]"
		item = d.resolve(item, ip)
		if item == nil {
			continue
		}
		pos[ip] = position{item.Line, item.Column}
		fn(i, item, ip)
	}
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.fail(n, path, "want a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.fail(n, path, "want an integer, got %s", describe(n))
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		d.fail(n, path, "integer %s out of range", n.Value)
		return 0, false
	}
	return v, true
}

func (d *decoder) smallInt(n *yaml.Node, path string) (int, bool) {
	v, ok := d.integer(n, path)
	if ok && (v > math.MaxInt32 || v < math.MinInt32) {
		d.fail(n, path, "integer %s out of range", n.Value)
		return 0, false
	}
	return int(v), ok
}

func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		d.fail(n, path, "want a number, got %s", describe(n))
		return 0, false
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.fail(n, path, "want a finite number, got %s", n.Value)
		return 0, false
	}
	return v, true
}

// scalar decodes a replace value or bucket replacement: a string, an integer,
// a number or a boolean.
func (d *decoder) scalar(n *yaml.Node, path string) (any, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!str":
			return n.Value, true
		case "!!int":
			return d.integer(n, path)
		case "!!float":
			return d.number(n, path)
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err == nil {
				return b, true
			}
		case "!!null":
			d.fail(n, path, "want a string, number or boolean, got null (use action drop for null)")
			return nil, false
		}
	}
	d.fail(n, path, "want a string, number or boolean, got %s", describe(n))
	return nil, false
}

func (d *decoder) strs(n *yaml.Node, path, want string, pos map[string]position) []string {
	out := []string{}
	d.list(n, path, want, pos, func(_ int, item *yaml.Node, ip string) {
		if s, ok := d.str(item, ip); ok {
			out = append(out, s)
		}
	})
	return out
}

var topKeys = []string{"policy", "version", "owner", "description", "applies_to", "rules", "on_unmatched_pii"}

// policy decodes the top-level mapping.
func (d *decoder) policy(n *yaml.Node, p *Policy) {
	n = d.resolve(n, "")
	if n == nil {
		return
	}
	p.pos[""] = position{n.Line, n.Column}
	d.fields(n, "", topKeys, func(key string, k, v *yaml.Node, path string) {
		p.pos[path] = position{v.Line, v.Column}
		switch key {
		case "policy":
			p.Name, _ = d.str(v, path)
		case "version":
			p.Version, _ = d.integer(v, path)
		case "owner":
			p.Owner, _ = d.str(v, path)
		case "description":
			p.Description, _ = d.str(v, path)
		case "on_unmatched_pii":
			p.OnUnmatchedPII, _ = d.str(v, path)
		case "applies_to":
			d.fields(v, path, []string{"pipelines", "topics"}, func(key string, _, v *yaml.Node, path string) {
				p.pos[path] = position{v.Line, v.Column}
				if key == "pipelines" {
					p.AppliesTo.Pipelines = d.strs(v, path, "pipeline names", p.pos)
				} else {
					p.AppliesTo.Topics = d.strs(v, path, "topic regexes", p.pos)
				}
			})
		case "rules":
			p.Rules = []Rule{}
			d.list(v, path, "rules", p.pos, func(i int, item *yaml.Node, ip string) {
				p.Rules = append(p.Rules, d.rule(item, ip, p))
			})
		}
	})
}

var ruleKeys = []string{"match", "action", "description", "keep_first", "keep_last", "mask_char", "precision", "truncate", "buckets", "value"}

// rule decodes one entry of rules. Which keys go with which action is checked
// later, in check.
func (d *decoder) rule(n *yaml.Node, path string, p *Policy) Rule {
	var r Rule
	d.fields(n, path, ruleKeys, func(key string, k, v *yaml.Node, path string) {
		p.pos[path] = position{v.Line, v.Column}
		switch key {
		case "match":
			d.fields(v, path, []string{"field", "tag"}, func(key string, _, v *yaml.Node, path string) {
				p.pos[path] = position{v.Line, v.Column}
				if key == "field" {
					r.Match.Field, _ = d.str(v, path)
				} else {
					r.Match.Tag, _ = d.str(v, path)
				}
			})
		case "action":
			if s, ok := d.str(v, path); ok {
				r.Action = Action(s)
			}
		case "description":
			r.Description, _ = d.str(v, path)
		case "keep_first":
			r.KeepFirst, _ = d.smallInt(v, path)
		case "keep_last":
			r.KeepLast, _ = d.smallInt(v, path)
		case "mask_char":
			r.MaskChar, _ = d.str(v, path)
		case "precision":
			if x, ok := d.smallInt(v, path); ok {
				r.Precision = &x
			}
		case "truncate":
			r.Truncate, _ = d.str(v, path)
		case "value":
			r.Value, _ = d.scalar(v, path)
		case "buckets":
			r.Buckets = []Range{}
			d.list(v, path, "buckets", p.pos, func(_ int, item *yaml.Node, ip string) {
				var b Range
				d.fields(item, ip, []string{"min", "max", "replacement"}, func(key string, _, v *yaml.Node, path string) {
					p.pos[path] = position{v.Line, v.Column}
					switch key {
					case "min", "max":
						if isNull(v) {
							return
						}
						if x, ok := d.number(v, path); ok {
							if key == "min" {
								b.Min = &x
							} else {
								b.Max = &x
							}
						}
					case "replacement":
						b.Replacement, _ = d.scalar(v, path)
					}
				})
				r.Buckets = append(r.Buckets, b)
			})
		}
	})
	return r
}
