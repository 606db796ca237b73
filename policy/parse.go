package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-dev/tributary/internal/yamlerr"
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
		p, retired, perrs := parseFile(src.Name, src.Data)
		errs = append(errs, perrs...)
		if p != nil {
			p.SHA256 = s.Files[len(s.Files)-1].SHA256
			s.Policies = append(s.Policies, p)
		}
		s.Retired = append(s.Retired, retired...)
	}
	sort.SliceStable(s.Files, func(i, j int) bool { return s.Files[i].Name < s.Files[j].Name })
	errs = append(errs, s.validate()...)
	if err := yamlerr.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// parseFile decodes and validates one file. It returns the policy (nil when the
// file is too broken to have one, or holds only a retired: list), the names
// its retired: list retires, and the problems found.
func parseFile(file string, data []byte) (*Policy, []Retired, []*Error) {
	root, next, err := yamlerr.Document(file, data)
	switch {
	case err != nil:
		return nil, nil, []*Error{quoteHint(err, data)}
	case next != nil:
		return nil, nil, []*Error{{File: file, Line: next.Line, Col: next.Column, Msg: "only one YAML document (one policy) per file is allowed"}}
	case root == nil:
		return nil, nil, []*Error{{File: file, Line: 1, Col: 1, Msg: "empty policy file (want keys policy, version and rules)"}}
	}
	d := &decoder{Walker: yamlerr.NewWalker(file)}
	d.Pos[""] = yamlerr.Pos{Line: 1, Col: 1}
	p := &Policy{File: file, pos: d.Pos}
	d.policy(root, p)
	errs := d.Errors
	if retireOnly(d.Pos) {
		// A file that only retires policies: there is no policy to check.
		return nil, d.retired, errs
	}
	for _, e := range p.check() {
		if !d.Covers(e.Path) {
			errs = append(errs, e)
		}
	}
	return p, d.retired, errs
}

// retireOnly reports whether a file's only top-level key is retired: such a
// file retires policies without defining one, so that a bundle can retire its
// last policy.
func retireOnly(pos yamlerr.Positions) bool {
	if _, ok := pos["retired"]; !ok {
		return false
	}
	for _, k := range topKeys {
		if _, ok := pos[k]; ok && k != "retired" {
			return false
		}
	}
	return true
}

// quoteHint adds to a syntax error near an unquoted "*" that a pattern like
// **.ssn must be quoted: an unquoted * starts a YAML alias.
func quoteHint(err *Error, data []byte) *Error {
	// Lines as YAML counts them: a lone "\r" ends one too, so splitting at
	// "\n" only gave fewer lines than err.Line (and a slice out of range).
	text := strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(text, "\n")
	hi := min(len(lines), max(0, err.Line))
	for _, l := range lines[max(0, min(hi, err.Line-2)):hi] {
		if strings.Contains(l, ": *") || strings.Contains(l, "- *") {
			err.Msg += ` (a value starting with "*" must be quoted, as in field: "**.ssn")`
			break
		}
	}
	return err
}

// decoder walks a yaml.Node tree onto a Policy. Unlike yaml.v3's KnownFields
// decoding it keeps going after a problem, so that a file's problems are all
// reported at once, and it records where every key path is: the position of
// its value, which is what validation points at.
type decoder struct {
	*yamlerr.Walker
	// retired are the names of the file's retired: list.
	retired []Retired
}

// resolve follows aliases, counting steps.
func (d *decoder) resolve(n *yaml.Node, path string) *yaml.Node {
	for depth := 0; n.Kind == yaml.AliasNode && n.Alias != nil; depth++ {
		if depth > 100 {
			d.Fail(n, path, "alias chain too long")
			return nil
		}
		n = n.Alias
	}
	if !d.Step(n, path) {
		return nil
	}
	return n
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
		d.Fail(n, path, "want a mapping with keys %s, got %s", strings.Join(known, ", "), describe(n))
		return false
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.Errorf(k, path, "keys must be plain words, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.Errorf(k, path, "merge keys (<<) are not supported in policy files")
			continue
		}
		kp := yamlerr.Key(path, k.Value)
		if prev, dup := seen[k.Value]; dup {
			d.Fail(k, kp, "duplicate key (first at line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		if !slices.Contains(known, k.Value) {
			meant := yamlerr.Closest(k.Value, known)
			d.Errorf(k, kp, "unknown key%s", yamlerr.DidYouMean(k.Value, known))
			if meant != "" {
				// Do not also complain that the key meant is missing.
				d.MarkBad(yamlerr.Key(path, meant))
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
func (d *decoder) list(n *yaml.Node, path, want string, fn func(i int, item *yaml.Node, path string)) {
	if n.Kind != yaml.SequenceNode {
		d.Fail(n, path, "want a list of %s, got %s", want, describe(n))
		return
	}
	for i, item := range n.Content {
		ip := yamlerr.Index(path, i)
		item = d.resolve(item, ip)
		if item == nil {
			continue
		}
		d.Pos.Set(ip, item)
		fn(i, item, ip)
	}
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.Fail(n, path, "want a string, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) integer(n *yaml.Node, path string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.Fail(n, path, "want an integer, got %s", describe(n))
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		d.Fail(n, path, "integer %s out of range", n.Value)
		return 0, false
	}
	return v, true
}

func (d *decoder) smallInt(n *yaml.Node, path string) (int, bool) {
	v, ok := d.integer(n, path)
	if ok && (v > math.MaxInt32 || v < math.MinInt32) {
		d.Fail(n, path, "integer %s out of range", n.Value)
		return 0, false
	}
	return int(v), ok
}

func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		d.Fail(n, path, "want a number, got %s", describe(n))
		return 0, false
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		d.Fail(n, path, "want a finite number, got %s", n.Value)
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
			d.Fail(n, path, "want a string, number or boolean, got null (use action drop for null)")
			return nil, false
		}
	}
	d.Fail(n, path, "want a string, number or boolean, got %s", describe(n))
	return nil, false
}

func (d *decoder) strs(n *yaml.Node, path, want string) []string {
	out := []string{}
	d.list(n, path, want, func(_ int, item *yaml.Node, ip string) {
		if s, ok := d.str(item, ip); ok {
			out = append(out, s)
		}
	})
	return out
}

var topKeys = []string{"policy", "version", "owner", "description", "applies_to", "rules", "on_unmatched_pii", "retired", "retired_rules"}

var matchKeys = []string{"field", "key", "header", "tag"}

// policy decodes the top-level mapping.
func (d *decoder) policy(n *yaml.Node, p *Policy) {
	n = d.resolve(n, "")
	if n == nil {
		return
	}
	d.Pos.Set("", n)
	d.fields(n, "", topKeys, func(key string, k, v *yaml.Node, path string) {
		d.Pos.Set(path, v)
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
				d.Pos.Set(path, v)
				if key == "pipelines" {
					p.AppliesTo.Pipelines = d.strs(v, path, "pipeline names")
				} else {
					p.AppliesTo.Topics = d.strs(v, path, "topic regexes")
				}
			})
		case "rules":
			p.Rules = []Rule{}
			d.list(v, path, "rules", func(i int, item *yaml.Node, ip string) {
				p.Rules = append(p.Rules, d.rule(item, ip, p))
			})
		case "retired":
			d.list(v, path, "policy names", func(_ int, item *yaml.Node, ip string) {
				if name, ok := d.str(item, ip); ok {
					d.retired = append(d.retired, Retired{Name: name, File: d.File, Line: item.Line, Col: item.Column, path: ip})
				}
			})
		case "retired_rules":
			p.RetiredRules = []Match{}
			d.list(v, path, "matches such as {field: customer.email}", func(_ int, item *yaml.Node, ip string) {
				var m Match
				d.match(item, ip, &m)
				p.RetiredRules = append(p.RetiredRules, m)
			})
		}
	})
}

// match decodes a match mapping: a rule's match, or an entry of retired_rules.
func (d *decoder) match(n *yaml.Node, path string, m *Match) {
	d.fields(n, path, matchKeys, func(key string, _, v *yaml.Node, path string) {
		d.Pos.Set(path, v)
		s, _ := d.str(v, path)
		switch key {
		case "field":
			m.Field = s
		case "key":
			m.Key = s
		case "header":
			m.Header = s
		case "tag":
			m.Tag = s
		}
	})
}

var ruleKeys = []string{"match", "action", "description", "keep_first", "keep_last", "mask_char", "precision", "truncate", "buckets", "value"}

// rule decodes one entry of rules. Which keys go with which action is checked
// later, in check.
func (d *decoder) rule(n *yaml.Node, path string, p *Policy) Rule {
	var r Rule
	d.fields(n, path, ruleKeys, func(key string, k, v *yaml.Node, path string) {
		d.Pos.Set(path, v)
		switch key {
		case "match":
			d.match(v, path, &r.Match)
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
			d.list(v, path, "buckets", func(_ int, item *yaml.Node, ip string) {
				var b Range
				d.fields(item, ip, []string{"min", "max", "replacement"}, func(key string, _, v *yaml.Node, path string) {
					d.Pos.Set(path, v)
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
