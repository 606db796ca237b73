package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxSteps bounds the values decoded from one file, so that aliases cannot make a
// small file expensive (the "billion laughs" attack). Real configs have a few
// thousand values.
const maxSteps = 100_000

// decoder walks a yaml.Node tree onto a Go value by the yaml struct tags. Unlike
// yaml.v3's KnownFields decoding it keeps going after a problem, so a file's
// problems are all reported at once, and it records the line of every key path.
type decoder struct {
	file   string
	lookup func(string) (string, bool)
	// lines maps each key path seen to the line of its key (or list item).
	lines map[string]int
	errs  []*Error
	// bad holds the paths whose value could not be set, and above the paths
	// that contain them: Validate's complaints about either would only repeat
	// the problem.
	bad, above map[string]bool
	// active holds the anchored nodes being expanded, to stop alias cycles.
	active map[*yaml.Node]bool
	// merged caches the key/value pairs of each mapping, merge keys applied.
	merged map[*yaml.Node][]pair
	steps  int
	// tooComplex is set when steps exceeded maxSteps; decoding stopped.
	tooComplex bool
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	return &decoder{
		file: file, lookup: lookup,
		lines: map[string]int{"": 1},
		bad:   map[string]bool{}, above: map[string]bool{},
		active: map[*yaml.Node]bool{}, merged: map[*yaml.Node][]pair{},
	}
}

// pair is one entry of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

var durationType = reflect.TypeFor[Duration]()

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// fail is errorf for a value that could not be set.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errorf(n, path, format, args...)
	d.bad[path] = true
	for p := path; p != ""; {
		p = parent(p)
		d.above[p] = true
	}
}

// covers reports whether a decoding error already explains a problem at path:
// one at path, above it or below it.
func (d *decoder) covers(path string) bool {
	if d.above[path] {
		return true
	}
	for p := path; ; p = parent(p) {
		if d.bad[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode sets v from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.steps++
	if d.steps > maxSteps {
		if !d.tooComplex {
			d.tooComplex = true
			d.fail(n, path, "document too complex: aliases expand to more than %d values", maxSteps)
		}
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		t := n.Alias
		if t == nil {
			return
		}
		if d.active[t] {
			d.fail(n, path, "alias *%s refers to a value that contains it", n.Value)
			return
		}
		d.active[t] = true
		d.decode(t, v, path)
		delete(d.active, t)
		return
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			d.decode(n.Content[0], v, path)
		}
		return
	}

	null := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	if v.Type() == durationType {
		if !null {
			d.duration(n, v, path)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if null {
			v.SetZero() // e.g. exactly_once: ~ is the default again
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if !null {
			d.decodeStruct(n, v, path)
		}
	case reflect.Map:
		if null {
			v.SetZero()
			return
		}
		d.decodeMap(n, v, path)
	case reflect.Slice:
		if null {
			v.SetZero()
			return
		}
		d.decodeSlice(n, v, path)
	default:
		if !null { // a null scalar keeps the default
			d.decodeScalar(n, v, path)
		}
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	var names []string
	index := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	for _, p := range d.pairs(n, path) {
		kp := join(path, p.key)
		i, ok := index[p.key]
		if !ok {
			d.errorf(p.k, kp, "unknown key%s", suggest(p.key, names))
			continue
		}
		d.lines[kp] = p.k.Line
		d.decode(p.v, v.Field(i), kp)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	kt, et := v.Type().Key(), v.Type().Elem()
	for _, p := range d.pairs(n, path) {
		kp := join(path, p.key)
		d.lines[kp] = p.k.Line
		v.SetMapIndex(reflect.ValueOf(p.key).Convert(kt), d.element(p.v, et, kp))
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, got %s", describe(n))
		return
	}
	et := v.Type().Elem()
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		ip := path + "[" + strconv.Itoa(i) + "]"
		d.lines[ip] = item.Line
		// Failed items stay, so that indexes keep matching the file.
		s = reflect.Append(s, d.element(item, et, ip))
	}
	v.Set(s)
}

// element decodes a map value or list item of type t. A pointer element is never
// nil: "pipelines: [~]" gives an empty pipeline, which Validate then explains.
func (d *decoder) element(n *yaml.Node, t reflect.Type, path string) reflect.Value {
	if t.Kind() == reflect.Pointer {
		e := reflect.New(t.Elem())
		d.decode(n, e.Elem(), path)
		return e
	}
	e := reflect.New(t).Elem()
	d.decode(n, e, path)
	return e
}

// pairs returns the entries of mapping n with merge keys ("<<: *base") applied:
// keys written in n win over merged ones, and earlier merged mappings over later
// ones. Duplicate keys are errors.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	if ps, ok := d.merged[n]; ok {
		return ps
	}
	var ps []pair
	var merges []*yaml.Node
	seen := map[string]int{} // key → line
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "keys must be strings, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, join(path, k.Value), "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		ps = append(ps, pair{key: k.Value, k: k, v: v})
	}
	for _, m := range merges {
		if m.Kind == yaml.SequenceNode {
			for _, item := range m.Content {
				ps = d.merge(ps, seen, item, path)
			}
			continue
		}
		ps = d.merge(ps, seen, m, path)
	}
	d.merged[n] = ps
	return ps
}

func (d *decoder) merge(ps []pair, seen map[string]int, m *yaml.Node, path string) []pair {
	src := m
	if m.Kind == yaml.AliasNode && m.Alias != nil {
		src = m.Alias
	}
	if src.Kind != yaml.MappingNode {
		d.errorf(m, path, "<< must merge a mapping or a list of mappings, got %s", describe(m))
		return ps
	}
	if d.active[src] {
		d.errorf(m, path, "<< merges a mapping into itself")
		return ps
	}
	d.active[src] = true
	defer delete(d.active, src)
	for _, p := range d.pairs(src, path) {
		if _, ok := seen[p.key]; !ok {
			seen[p.key] = p.k.Line
			ps = append(ps, p)
		}
	}
	return ps
}

// scalar returns the text of a scalar with ${VAR} expanded in strings, and its
// resolved tag ("!!int" for "4", and for "${TASKS}" when TASKS is 4).
func (d *decoder) scalar(n *yaml.Node, path, want string) (text, tag string, ok bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected %s, got %s", want, describe(n))
		return "", "", false
	}
	text, tag = n.Value, n.ShortTag()
	if tag == "!!str" {
		exp, err := expand(text, d.lookup)
		if err != nil {
			d.fail(n, path, "%v", err)
			return "", "", false
		}
		if exp != text {
			text = exp
			tag = (&yaml.Node{Kind: yaml.ScalarNode, Value: exp}).ShortTag()
		}
	}
	return text, tag, true
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		// Any scalar is a string: "id: 7" is "7", and properties keep "1000" or "true".
		if text, _, ok := d.scalar(n, path, "a string"); ok {
			v.SetString(text)
		}
	case reflect.Bool:
		text, tag, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		var b bool
		if tag != "!!bool" || resolve(tag, text, &b) != nil {
			d.fail(n, path, "expected true or false, got %q", text)
			return
		}
		v.SetBool(b)
	case reflect.Int:
		text, tag, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		var i int
		if tag != "!!int" || resolve(tag, text, &i) != nil {
			d.fail(n, path, "expected an integer, got %q", text)
			return
		}
		v.SetInt(int64(i))
	case reflect.Float64:
		text, tag, ok := d.scalar(n, path, "a number")
		if !ok {
			return
		}
		var f float64
		if (tag != "!!float" && tag != "!!int") || resolve(tag, text, &f) != nil {
			d.fail(n, path, "expected a number, got %q", text)
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if a field of an unsupported type is added to Config.
		d.fail(n, path, "cannot decode into %s", v.Type())
	}
}

// resolve decodes a plain scalar of a known tag with yaml's own rules (0x1F,
// 1_000, .inf, ...).
func resolve(tag, text string, out any) error {
	return (&yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: text}).Decode(out)
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	text, _, ok := d.scalar(n, path, `a duration such as "30s"`)
	if !ok {
		return
	}
	dur, err := time.ParseDuration(text)
	if err != nil {
		d.fail(n, path, `invalid duration %q (want a number and a unit, e.g. "500ms", "30s", "1m")`, text)
		return
	}
	v.SetInt(int64(dur))
}

// describe names what a node is, for "expected X, got Y".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		if n.Alias != nil && n.Alias.Kind != yaml.AliasNode {
			return describe(n.Alias)
		}
		return "an alias"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "a document"
}

// suggest returns ` (did you mean "x"?)` for the known key closest to key, if it
// is within two edits, else "".
func suggest(key string, known []string) string {
	if len(key) > 64 {
		return ""
	}
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
