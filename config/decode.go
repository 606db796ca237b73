package config

import (
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// decoder walks a yaml.Node tree onto a Go value by the yaml struct tags. Unlike
// yaml.v3's KnownFields decoding it keeps going after a problem, so a file's
// problems are all reported at once, and it records where every key path is:
// the position of its key (or list item), which is what Validate points at.
type decoder struct {
	*yamlerr.Walker
	lookup func(string) (string, bool)
	// active holds the anchored nodes being expanded, to stop alias cycles.
	active map[*yaml.Node]bool
	// merged caches the key/value pairs of each mapping, merge keys applied.
	merged map[*yaml.Node][]pair
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	d := &decoder{
		Walker: yamlerr.NewWalker(file), lookup: lookup,
		active: map[*yaml.Node]bool{}, merged: map[*yaml.Node][]pair{},
	}
	d.Pos[""] = yamlerr.Pos{Line: 1, Col: 1}
	return d
}

// pair is one entry of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

var durationType = reflect.TypeFor[Duration]()

// decode sets v from n.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.Step(n, path) {
		return
	}
	switch n.Kind {
	case yaml.AliasNode:
		t := n.Alias
		if t == nil {
			return
		}
		if d.active[t] {
			d.Fail(n, path, "alias *%s refers to a value that contains it", n.Value)
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
		d.Fail(n, path, "expected a mapping, got %s", describe(n))
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
		kp := yamlerr.Key(path, p.key)
		i, ok := index[p.key]
		if !ok {
			d.Errorf(p.k, kp, "unknown key%s", yamlerr.DidYouMean(p.key, names))
			continue
		}
		d.Pos.Set(kp, p.k)
		d.decode(p.v, v.Field(i), kp)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.Fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	kt, et := v.Type().Key(), v.Type().Elem()
	for _, p := range d.pairs(n, path) {
		kp := yamlerr.Key(path, p.key)
		d.Pos.Set(kp, p.k)
		v.SetMapIndex(reflect.ValueOf(p.key).Convert(kt), d.element(p.v, et, kp))
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.Fail(n, path, "expected a list, got %s", describe(n))
		return
	}
	et := v.Type().Elem()
	s := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		ip := yamlerr.Index(path, i)
		d.Pos.Set(ip, item)
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
			d.Errorf(k, path, "keys must be strings, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.Errorf(k, yamlerr.Key(path, k.Value), "duplicate key (first at line %d)", first)
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
		d.Errorf(m, path, "<< must merge a mapping or a list of mappings, got %s", describe(m))
		return ps
	}
	if d.active[src] {
		d.Errorf(m, path, "<< merges a mapping into itself")
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
		d.Fail(n, path, "expected %s, got %s", want, describe(n))
		return "", "", false
	}
	text, tag = n.Value, n.ShortTag()
	if tag == "!!str" {
		exp, err := expand(text, d.lookup)
		if err != nil {
			d.Fail(n, path, "%v", err)
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
			d.Fail(n, path, "expected true or false, got %q", text)
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
			d.Fail(n, path, "expected an integer, got %q", text)
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
			d.Fail(n, path, "expected a number, got %q", text)
			return
		}
		v.SetFloat(f)
	default:
		// Only reachable if a field of an unsupported type is added to Config.
		d.Fail(n, path, "cannot decode into %s", v.Type())
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
		d.Fail(n, path, `invalid duration %q (want a number and a unit, e.g. "500ms", "30s", "1m")`, text)
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
