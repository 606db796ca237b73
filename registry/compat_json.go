package registry

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// jsonDoc is a parsed JSON Schema document with the documents its references
// name.
type jsonDoc struct {
	root any
	refs map[string]*jsonDoc // by Reference name
}

// jsonNode is a schema inside a document, with its location.
type jsonNode struct {
	v   any
	doc *jsonDoc
	ptr string // "#/properties/a"
}

var jsonTypes = []string{"null", "boolean", "object", "array", "number", "string", "integer"}

func newJSONDoc(text string, deps []dep) (*jsonDoc, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: json schema is not valid JSON: %v", ErrInvalidSchema, err)
	}
	doc := &jsonDoc{root: v, refs: map[string]*jsonDoc{}}
	for _, d := range deps {
		if d.typ != JSON {
			return nil, fmt.Errorf("%w: reference %q is a %s schema, not JSON", ErrInvalidSchema, d.name, d.typ)
		}
		rd, err := newJSONDoc(d.text, d.deps)
		if err != nil {
			return nil, fmt.Errorf("reference %q: %w", d.name, err)
		}
		doc.refs[d.name] = rd
	}
	if err := doc.validate(v, "#"); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	return doc, nil
}

// validate checks the structure of the keywords that hold schemas or that the
// compatibility check reads, and that local $refs resolve.
func (d *jsonDoc) validate(v any, ptr string) error {
	switch s := v.(type) {
	case bool:
		return nil
	case map[string]any:
		for k, kv := range s {
			p := ptr + "/" + escapePointer(k)
			switch k {
			case "type":
				if err := validateType(kv); err != nil {
					return fmt.Errorf("%s: %v", p, err)
				}
			case "properties", "patternProperties", "definitions", "$defs", "dependentSchemas":
				m, ok := kv.(map[string]any)
				if !ok {
					return fmt.Errorf("%s: must be an object of schemas", p)
				}
				for name, sub := range m {
					if err := d.validate(sub, p+"/"+escapePointer(name)); err != nil {
						return err
					}
				}
			case "items":
				if arr, ok := kv.([]any); ok {
					for i, sub := range arr {
						if err := d.validate(sub, fmt.Sprintf("%s/%d", p, i)); err != nil {
							return err
						}
					}
				} else if err := d.validate(kv, p); err != nil {
					return err
				}
			case "allOf", "anyOf", "oneOf", "prefixItems":
				arr, ok := kv.([]any)
				if !ok || len(arr) == 0 {
					return fmt.Errorf("%s: must be a non-empty array of schemas", p)
				}
				for i, sub := range arr {
					if err := d.validate(sub, fmt.Sprintf("%s/%d", p, i)); err != nil {
						return err
					}
				}
			case "additionalProperties", "additionalItems", "not", "contains", "propertyNames",
				"if", "then", "else", "unevaluatedProperties", "unevaluatedItems":
				if err := d.validate(kv, p); err != nil {
					return err
				}
			case "required":
				arr, ok := kv.([]any)
				if !ok {
					return fmt.Errorf("%s: must be an array of strings", p)
				}
				for _, e := range arr {
					if _, ok := e.(string); !ok {
						return fmt.Errorf("%s: must be an array of strings", p)
					}
				}
			case "enum":
				if _, ok := kv.([]any); !ok {
					return fmt.Errorf("%s: must be an array", p)
				}
			case "maximum", "minimum", "multipleOf", "maxLength", "minLength", "maxItems", "minItems",
				"maxProperties", "minProperties":
				if _, ok := kv.(json.Number); !ok {
					return fmt.Errorf("%s: must be a number", p)
				}
			case "exclusiveMaximum", "exclusiveMinimum":
				switch kv.(type) {
				case json.Number, bool: // bool in draft 4
				default:
					return fmt.Errorf("%s: must be a number", p)
				}
			case "pattern":
				if _, ok := kv.(string); !ok {
					return fmt.Errorf("%s: must be a string", p)
				}
			case "$ref":
				ref, ok := kv.(string)
				if !ok {
					return fmt.Errorf("%s: must be a string", p)
				}
				if strings.HasPrefix(ref, "#") {
					if _, err := pointer(d.root, ref); err != nil {
						return fmt.Errorf("%s: unresolvable reference %q: %v", p, ref, err)
					}
				}
			}
		}
		return nil
	}
	return fmt.Errorf("%s: a schema must be an object or a boolean", ptr)
}

func validateType(v any) error {
	switch t := v.(type) {
	case string:
		if !slices.Contains(jsonTypes, t) {
			return fmt.Errorf("unknown type %q", t)
		}
		return nil
	case []any:
		if len(t) == 0 {
			return fmt.Errorf("type list is empty")
		}
		for _, e := range t {
			if err := validateType(e); err != nil {
				return err
			}
			if _, ok := e.(string); !ok {
				return fmt.Errorf("type list must hold strings")
			}
		}
		return nil
	}
	return fmt.Errorf("type must be a string or an array of strings")
}

// pointer resolves a "#/a/b" fragment in root.
func pointer(root any, frag string) (any, error) {
	frag = strings.TrimPrefix(frag, "#")
	if frag == "" {
		return root, nil
	}
	if !strings.HasPrefix(frag, "/") {
		return nil, fmt.Errorf("only JSON-pointer fragments are supported")
	}
	cur := root
	for _, tok := range strings.Split(frag[1:], "/") {
		if u, err := url.PathUnescape(tok); err == nil {
			tok = u
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			next, ok := c[tok]
			if !ok {
				return nil, fmt.Errorf("no member %q", tok)
			}
			cur = next
		case []any:
			var i int
			if _, err := fmt.Sscanf(tok, "%d", &i); err != nil || i < 0 || i >= len(c) {
				return nil, fmt.Errorf("no element %q", tok)
			}
			cur = c[i]
		default:
			return nil, fmt.Errorf("cannot descend into %q", tok)
		}
	}
	return cur, nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// jsonChecker reports why data valid under the writer schema may be invalid
// under the reader schema, following the rules of Confluent's JSON Schema
// compatibility checker for the keywords listed in doc.go.
type jsonChecker struct {
	rl, wl     string
	r, w       *jsonDoc
	inProgress map[[2]string]bool
}

// deref follows $ref chains. An external reference that is not among the
// schema's references stays unresolved (ok false).
func (n jsonNode) deref() (jsonNode, bool) {
	for range 32 {
		m, isMap := n.v.(map[string]any)
		if !isMap {
			return n, true
		}
		ref, has := m["$ref"].(string)
		if !has {
			return n, true
		}
		if strings.HasPrefix(ref, "#") {
			v, err := pointer(n.doc.root, ref)
			if err != nil {
				return n, false
			}
			n = jsonNode{v: v, doc: n.doc, ptr: ref}
			continue
		}
		base, frag, _ := strings.Cut(ref, "#")
		d := n.doc.refs[ref]
		if d == nil {
			d = n.doc.refs[base]
		} else {
			frag = ""
		}
		if d == nil {
			return n, false
		}
		v, err := pointer(d.root, "#"+frag)
		if err != nil {
			return n, false
		}
		n = jsonNode{v: v, doc: d, ptr: "#" + frag}
	}
	return n, false
}

func (c *jsonChecker) check(rv, wv any, rptr, wptr, path string) []incompat {
	return c.checkNodes(jsonNode{rv, c.r, rptr}, jsonNode{wv, c.w, wptr}, path)
}

func (c *jsonChecker) checkNodes(r, w jsonNode, path string) []incompat {
	rd, rok := r.deref()
	wd, wok := w.deref()
	if !rok || !wok {
		// Unresolvable (external) references compare by their text.
		if canonical(r.v) == canonical(w.v) {
			return nil
		}
		return []incompat{c.diff("TYPE_CHANGED", path, "The schema at path '%s' refers to a definition tributary cannot resolve and it differs between the %s and %s schema", path, c.rl, c.wl)}
	}
	key := [2]string{fmt.Sprintf("%p%s", rd.doc, rd.ptr), fmt.Sprintf("%p%s", wd.doc, wd.ptr)}
	if _, isMap := rd.v.(map[string]any); isMap && (rd.ptr != r.ptr || wd.ptr != w.ptr) {
		if c.inProgress[key] {
			return nil
		}
		c.inProgress[key] = true
		defer delete(c.inProgress, key)
	}
	rs, ws := asSchemaMap(rd.v), asSchemaMap(wd.v)
	if rd.v == false {
		if wd.v == false {
			return nil
		}
		return []incompat{c.diff("TYPE_NARROWED", path, "The %s schema accepts nothing at path '%s' but the %s schema accepts values there", c.rl, path, c.wl)}
	}
	if wd.v == false || len(rs) == 0 {
		return nil // the writer writes nothing here, or the reader accepts anything
	}
	var out []incompat

	// type
	rt, wt := typeSet(rs), typeSet(ws)
	if rt != nil {
		if wt == nil {
			out = append(out, c.diff("TYPE_NARROWED", path, "The %s schema restricts the type at path '%s' to %v; the %s schema allows any type", c.rl, path, keys(rt), c.wl))
		} else {
			var lost []string
			for t := range wt {
				if !rt[t] && !(t == "integer" && rt["number"]) {
					lost = append(lost, t)
				}
			}
			if len(lost) > 0 {
				sort.Strings(lost)
				kind := "TYPE_CHANGED"
				if len(lost) < len(wt) {
					kind = "TYPE_NARROWED"
				}
				out = append(out, c.diff(kind, path, "The %s schema does not accept type %v at path '%s' which the %s schema allows", c.rl, lost, path, c.wl))
			}
		}
	}

	// enum and const
	if re, ok := rs["enum"].([]any); ok {
		we, wok := ws["enum"].([]any)
		if !wok {
			out = append(out, c.diff("ENUM_ARRAY_CHANGED", path, "The %s schema adds an enum at path '%s'", c.rl, path))
		} else {
			var missing []string
			for _, v := range we {
				if !slices.ContainsFunc(re, func(x any) bool { return canonical(x) == canonical(v) }) {
					missing = append(missing, canonical(v))
				}
			}
			if len(missing) > 0 {
				out = append(out, c.diff("ENUM_ARRAY_NARROWED", path, "The %s schema's enum at path '%s' lacks %v which the %s schema allows", c.rl, path, missing, c.wl))
			}
		}
	}
	if rc, ok := rs["const"]; ok {
		if wc, wok := ws["const"]; !wok || canonical(rc) != canonical(wc) {
			out = append(out, c.diff("CONST_CHANGED", path, "The %s schema's const at path '%s' differs from the %s schema", c.rl, path, c.wl))
		}
	}

	// bounds: an upper bound may only grow, a lower bound only shrink.
	for _, b := range []struct {
		kw    string
		upper bool
	}{
		{"maximum", true}, {"exclusiveMaximum", true}, {"maxLength", true}, {"maxItems", true}, {"maxProperties", true},
		{"minimum", false}, {"exclusiveMinimum", false}, {"minLength", false}, {"minItems", false}, {"minProperties", false},
	} {
		rn, rok := number(rs[b.kw])
		if !rok {
			continue
		}
		name := strings.ToUpper(camelToSnake(b.kw))
		wn, wok := number(ws[b.kw])
		if !wok {
			out = append(out, c.diff(name+"_ADDED", path, "The %s schema adds %s %s at path '%s'", c.rl, b.kw, rn.RatString(), path))
			continue
		}
		if (b.upper && rn.Cmp(wn) < 0) || (!b.upper && rn.Cmp(wn) > 0) {
			verb := "DECREASED"
			if !b.upper {
				verb = "INCREASED"
			}
			out = append(out, c.diff(name+"_"+verb, path, "The %s schema changes %s at path '%s' from %s to %s", c.rl, b.kw, path, wn.RatString(), rn.RatString()))
		}
	}
	if rp, ok := rs["pattern"].(string); ok {
		if wp, wok := ws["pattern"].(string); !wok {
			out = append(out, c.diff("PATTERN_ADDED", path, "The %s schema adds a pattern at path '%s'", c.rl, path))
		} else if wp != rp {
			out = append(out, c.diff("PATTERN_CHANGED", path, "The %s schema changes the pattern at path '%s'", c.rl, path))
		}
	}
	if rm, ok := number(rs["multipleOf"]); ok {
		wm, wok := number(ws["multipleOf"])
		if !wok {
			out = append(out, c.diff("MULTIPLE_OF_ADDED", path, "The %s schema adds multipleOf at path '%s'", c.rl, path))
		} else if q := new(big.Rat).Quo(wm, rm); !q.IsInt() {
			out = append(out, c.diff("MULTIPLE_OF_CHANGED", path, "The %s schema changes multipleOf at path '%s' from %s to %s", c.rl, path, wm.RatString(), rm.RatString()))
		}
	}
	if rs["uniqueItems"] == true && ws["uniqueItems"] != true {
		out = append(out, c.diff("UNIQUE_ITEMS_ADDED", path, "The %s schema adds uniqueItems at path '%s'", c.rl, path))
	}

	out = append(out, c.object(rd, wd, rs, ws, path)...)
	out = append(out, c.array(rd, wd, rs, ws, path)...)
	out = append(out, c.combined(rd, wd, rs, ws, path)...)
	return out
}

// object applies the content-model rules to properties, required and
// additionalProperties.
func (c *jsonChecker) object(r, w jsonNode, rs, ws map[string]any, path string) []incompat {
	rp, _ := rs["properties"].(map[string]any)
	wp, _ := ws["properties"].(map[string]any)
	_, rHasAdd := rs["additionalProperties"]
	_, wHasAdd := ws["additionalProperties"]
	rReq, _ := rs["required"].([]any)
	if rp == nil && wp == nil && !rHasAdd && !wHasAdd && len(rReq) == 0 {
		return nil
	}
	var out []incompat
	rAdd, wAdd := rs["additionalProperties"], ws["additionalProperties"]
	wClosed := wAdd == false
	rClosed := rAdd == false
	_, wAddSchema := wAdd.(map[string]any)
	_, rAddSchema := rAdd.(map[string]any)

	for _, name := range sortedKeys(rp) {
		p := path + "/properties/" + escapePointer(name)
		rsub := jsonNode{rp[name], r.doc, r.ptr + "/properties/" + escapePointer(name)}
		if wsub, ok := wp[name]; ok {
			out = append(out, c.checkNodes(rsub, jsonNode{wsub, w.doc, w.ptr + "/properties/" + escapePointer(name)}, p)...)
			continue
		}
		switch {
		case wClosed:
			// The writer never writes this property.
		case wAddSchema:
			out = append(out, c.checkNodes(rsub, jsonNode{wAdd, w.doc, w.ptr + "/additionalProperties"}, p)...)
		default:
			if len(asSchemaMap(rsub.v)) > 0 {
				out = append(out, c.diff("PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", p,
					"The %s schema has property '%s' at path '%s' which is missing in the %s schema, whose open content model allows any value there",
					c.rl, name, p, c.wl))
			}
		}
	}
	for _, name := range sortedKeys(wp) {
		if _, ok := rp[name]; ok {
			continue
		}
		p := path + "/properties/" + escapePointer(name)
		switch {
		case rClosed:
			out = append(out, c.diff("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", p,
				"The %s schema has a closed content model and lacks property '%s' at path '%s' which the %s schema has",
				c.rl, name, p, c.wl))
		case rAddSchema:
			out = append(out, c.checkNodes(jsonNode{rAdd, r.doc, r.ptr + "/additionalProperties"},
				jsonNode{wp[name], w.doc, w.ptr + "/properties/" + escapePointer(name)}, p)...)
		}
	}
	wReq, _ := ws["required"].([]any)
	for _, rq := range rReq {
		name, _ := rq.(string)
		if slices.Contains(wReq, any(name)) {
			continue
		}
		if sub, ok := rp[name].(map[string]any); ok {
			if _, hasDefault := sub["default"]; hasDefault {
				continue
			}
		}
		p := path + "/required/" + escapePointer(name)
		out = append(out, c.diff("REQUIRED_ATTRIBUTE_ADDED", p,
			"The %s schema requires property '%s' at path '%s' which the %s schema does not require", c.rl, name, path, c.wl))
	}
	switch {
	case rClosed && !wClosed:
		out = append(out, c.diff("ADDITIONAL_PROPERTIES_REMOVED", path+"/additionalProperties",
			"The %s schema forbids additional properties at path '%s' which the %s schema allows", c.rl, path, c.wl))
	case rAddSchema && wAddSchema:
		out = append(out, c.checkNodes(jsonNode{rAdd, r.doc, r.ptr + "/additionalProperties"},
			jsonNode{wAdd, w.doc, w.ptr + "/additionalProperties"}, path+"/additionalProperties")...)
	case rAddSchema && !wClosed:
		out = append(out, c.diff("ADDITIONAL_PROPERTIES_NARROWED", path+"/additionalProperties",
			"The %s schema restricts additional properties at path '%s' which the %s schema allows freely", c.rl, path, c.wl))
	}
	return out
}

func (c *jsonChecker) array(r, w jsonNode, rs, ws map[string]any, path string) []incompat {
	ri, rok := rs["items"]
	wi, wok := ws["items"]
	if !rok {
		return nil
	}
	if !wok {
		if len(asSchemaMap(ri)) > 0 {
			return []incompat{c.diff("ITEMS_NARROWED", path+"/items", "The %s schema constrains array items at path '%s' which the %s schema leaves open", c.rl, path, c.wl)}
		}
		return nil
	}
	ra, rTuple := ri.([]any)
	wa, wTuple := wi.([]any)
	switch {
	case !rTuple && !wTuple:
		return c.checkNodes(jsonNode{ri, r.doc, r.ptr + "/items"}, jsonNode{wi, w.doc, w.ptr + "/items"}, path+"/items")
	case rTuple && wTuple:
		var out []incompat
		for i := range ra {
			p := fmt.Sprintf("/items/%d", i)
			if i >= len(wa) {
				out = append(out, c.diff("ITEM_ADDED", path+p, "The %s schema adds tuple item %d at path '%s'", c.rl, i, path))
				continue
			}
			out = append(out, c.checkNodes(jsonNode{ra[i], r.doc, r.ptr + p}, jsonNode{wa[i], w.doc, w.ptr + p}, path+p)...)
		}
		return out
	}
	return []incompat{c.diff("TYPE_CHANGED", path+"/items", "The %s and %s schema use different array item forms (list vs tuple) at path '%s'", c.rl, c.wl, path)}
}

// combined handles oneOf, anyOf, allOf and not. Same combinator with the same
// number of branches: branch by branch. A reader union: the writer must fit
// one branch. A writer union: every branch must fit the reader. Anything else
// must be unchanged.
func (c *jsonChecker) combined(r, w jsonNode, rs, ws map[string]any, path string) []incompat {
	var out []incompat
	for _, kw := range []string{"oneOf", "anyOf", "allOf", "not"} {
		rv, rok := rs[kw]
		wv, wok := ws[kw]
		if !rok && !wok {
			continue
		}
		ra, _ := rv.([]any)
		wa, _ := wv.([]any)
		switch {
		case rok && wok && kw != "not" && len(ra) == len(wa):
			for i := range ra {
				p := fmt.Sprintf("/%s/%d", kw, i)
				out = append(out, c.checkNodes(jsonNode{ra[i], r.doc, r.ptr + p}, jsonNode{wa[i], w.doc, w.ptr + p}, path+p)...)
			}
		case rok && !wok && (kw == "oneOf" || kw == "anyOf"):
			rest := without(ws, kw)
			fits := slices.ContainsFunc(ra, func(b any) bool {
				return len(c.checkNodes(jsonNode{b, r.doc, r.ptr}, jsonNode{rest, w.doc, w.ptr}, path)) == 0
			})
			if !fits {
				out = append(out, c.diff("COMBINED_TYPE_SUBSCHEMAS_CHANGED", path+"/"+kw, "No branch of the %s schema's %s at path '%s' accepts the %s schema", c.rl, kw, path, c.wl))
			}
		case !rok && wok && (kw == "oneOf" || kw == "anyOf"):
			rest := without(rs, kw)
			for i, b := range wa {
				p := fmt.Sprintf("/%s/%d", kw, i)
				out = append(out, c.checkNodes(jsonNode{rest, r.doc, r.ptr}, jsonNode{b, w.doc, w.ptr + p}, path+p)...)
			}
		default:
			if canonical(rv) != canonical(wv) {
				out = append(out, c.diff("COMBINED_TYPE_CHANGED", path+"/"+kw, "The %s schema changes %s at path '%s'", c.rl, kw, path))
			}
		}
	}
	return out
}

func (c *jsonChecker) diff(kind, path, format string, args ...any) incompat {
	return incompat{kind: kind, path: path, desc: fmt.Sprintf(format, args...), info: path}
}

func asSchemaMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return map[string]any{} // true, or a non-schema
	}
	// Annotations do not constrain values.
	n := 0
	for k := range m {
		switch k {
		case "$schema", "$id", "id", "title", "description", "default", "examples", "$comment",
			"definitions", "$defs", "readOnly", "writeOnly", "deprecated", "format":
		default:
			n++
		}
	}
	if n == 0 {
		return map[string]any{}
	}
	return m
}

func typeSet(s map[string]any) map[string]bool {
	switch t := s["type"].(type) {
	case string:
		return map[string]bool{t: true}
	case []any:
		m := map[string]bool{}
		for _, e := range t {
			if str, ok := e.(string); ok {
				m[str] = true
			}
		}
		return m
	}
	return nil
}

func number(v any) (*big.Rat, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(n.String())
	return r, ok
}

func canonical(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func without(m map[string]any, kw string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if k != kw {
			out[k] = v
		}
	}
	return out
}

func camelToSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
