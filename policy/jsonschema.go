package policy

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// This file reads JSON Schema (drafts 4 to 2020-12) into the compiler's
// stypes. What masking needs from a schema is, for every place a value can sit
// in a document, which tags it carries, which kinds of values the schema
// allows there (to write a valid replacement) and what can sit below it.
//
// A place is described by the set of subschemas that apply to the value there
// (a "position"). The set is closed under the in-place applicators: $ref,
// $dynamicRef, $recursiveRef, allOf, anyOf, oneOf, if, then, else,
// dependentSchemas (and draft 4-7 dependencies, draft 3 extends). Each member
// is definite (it applies to every valid value: reached through $ref and allOf
// only) or conditional (it applies to some: a branch of anyOf, oneOf, if/then/
// else, dependentSchemas, contains, unevaluated*). The members below a
// position come from properties, patternProperties, additionalProperties,
// unevaluatedProperties, prefixItems, items, additionalItems, contains and
// unevaluatedItems of every member, so a path that exists in any branch exists
// here, with the tags of every branch (union semantics: a field tagged PII in
// any branch is PII). The kinds of value allowed are the intersection over
// the definite members (each itself the union over its anyOf/oneOf branches):
// where branches disagree the position is left untyped and the value's runtime
// type decides. not is never followed: it says what must not be there.
//
// Positions are memoised by their member set, so a recursive schema (a node
// type whose children are nodes) becomes a cyclic stype graph that the plan
// compiler turns into a cyclic plan; masking follows it as deep as the data
// goes (bounded by maxDepth, like any document).
//
// Anything the reader cannot follow soundly makes the whole schema unreadable
// (an *unreadableError), and the compiler turns that into a plan that rejects
// every record with ReasonSchemaUnreadable: a $ref it cannot resolve (nothing
// is ever fetched: only the schema's own resources and Schema.References
// count), a $ref cycle that never descends into a value, a keyword holding
// something other than a schema where a schema is due, nesting deeper than
// maxSchemaDepth, more than maxSchemaNodes subschemas or maxPositions places,
// PII tags on propertyNames (member names cannot be masked) and draft 3 type
// unions of schemas. Annotation keywords (title, description, examples,
// format, x-...) and unknown keywords are ignored.
//
// patternProperties are matched with Go's regexp (RE2). JSON Schema patterns
// are ECMA 262, which agrees with RE2 on printable ASCII for the syntax RE2
// accepts, except for the escapes listed in ecmaOnlyEscape. A pattern RE2
// rejects, or one using such an escape, may match any member: every member it
// could apply to then gets the union of all the object's member schemas.
// Likewise member names with bytes outside printable ASCII get that union.

// Limits of the reader. Each keeps compiling bounded for any input (see
// FuzzCompileJSONSchema); a schema past one is unreadable.
const (
	// maxSchemaDepth bounds the nesting of one schema document.
	maxSchemaDepth = 200
	// maxSchemaNodes bounds the subschemas of a schema and its references.
	maxSchemaNodes = 50_000
	// maxPositions bounds the distinct places a value can sit in.
	maxPositions = 20_000
	// maxSchemaWork bounds the steps spent closing positions.
	maxSchemaWork = 2_000_000
)

// unreadableError is a JSON Schema the reader cannot read soundly.
type unreadableError struct {
	doc     string // "" for the schema itself, else `reference "name"`
	ptr     string // JSON pointer of the subschema in doc
	keyword string // "" when the document as a whole is concerned
	msg     string
}

func (e *unreadableError) Error() string {
	var b strings.Builder
	b.WriteString("unreadable json schema: ")
	if e.keyword != "" {
		b.WriteString(e.keyword)
		b.WriteString(" at ")
	}
	switch {
	case e.doc != "" && e.ptr != "":
		b.WriteString(e.doc + " #" + e.ptr)
	case e.doc != "":
		b.WriteString(e.doc)
	case e.ptr != "" || e.keyword != "":
		b.WriteString("#" + e.ptr)
	}
	if b.Len() > len("unreadable json schema: ") {
		b.WriteString(": ")
	}
	b.WriteString(e.msg)
	return b.String()
}

// Value kinds of JSON, as bits.
const (
	jNull uint8 = 1 << iota
	jBool
	jInt  // numbers with an integral value
	jFrac // other numbers
	jString
	jObject
	jArray
	jAll = jNull | jBool | jInt | jFrac | jString | jObject | jArray
)

// vtype is what a schema allows a value to be: kinds (when typed), a list of
// values (when hasEnum, as JSON text) and a string format.
type vtype struct {
	typed   bool
	kinds   uint8
	hasEnum bool
	enum    []string
	format  string
}

// and is what both a and b allow.
func (a vtype) and(b vtype) vtype {
	out := vtype{typed: a.typed || b.typed, kinds: jAll, format: a.format}
	if a.typed {
		out.kinds &= a.kinds
	}
	if b.typed {
		out.kinds &= b.kinds
	}
	switch {
	case a.hasEnum && b.hasEnum:
		out.hasEnum = true
		for _, v := range a.enum {
			if slices.Contains(b.enum, v) {
				out.enum = append(out.enum, v)
			}
		}
	case a.hasEnum:
		out.hasEnum, out.enum = true, a.enum
	case b.hasEnum:
		out.hasEnum, out.enum = true, b.enum
	}
	if out.format == "" {
		out.format = b.format
	}
	return out
}

// or is what a or b allows.
func (a vtype) or(b vtype) vtype {
	var out vtype
	if a.typed && b.typed {
		out.typed, out.kinds = true, a.kinds|b.kinds
	}
	if a.hasEnum && b.hasEnum {
		out.hasEnum = true
		out.enum = slices.Clone(a.enum)
		for _, v := range b.enum {
			if !slices.Contains(out.enum, v) {
				out.enum = append(out.enum, v)
			}
		}
	}
	if a.format == b.format {
		out.format = a.format
	}
	return out
}

// snode is one subschema, read once.
type snode struct {
	id   int
	doc  *jsDoc
	ptr  string // JSON pointer in doc
	base string // absolute base URI in force, without fragment
	res  *snode // the schema resource: the nearest node with an $id, or the document's root
	// isBool is a boolean schema (true: anything; false: nothing).
	isBool, boolVal bool
	m               map[string]any

	tags []string
	own  vtype // type, enum, const, format of this node alone

	props            map[string]*snode
	required         []string
	patterns         []*spat
	additional       *snode
	unevaluated      *snode
	propertyNames    *snode
	items            *snode   // items, schema form
	itemsArr         []*snode // items, array form (drafts before 2020-12)
	prefix           []*snode // prefixItems
	additionalItems  *snode
	unevaluatedItems *snode
	contains         *snode
	content          *snode
	allOf            []*snode // allOf, and draft 3 extends
	anyOf, oneOf     []*snode
	ifS, thenS       *snode
	elseS            *snode
	dependent        []*snode
	// children are the subschemas below this one in any keyword, not, $defs
	// and definitions included (reachableTags follows them).
	children []*snode

	ref, dynRef, recRef string
	hasRef, hasDyn      bool
	hasRec              bool
	dynAnchor           string
	recAnchor           bool

	linked     bool
	refT, dynT []*snode // resolved targets of $ref, and of $dynamicRef or $recursiveRef

	kstate  uint8 // kindsOf: 0 not yet, 1 in progress, 2 done
	kinds   vtype
	uncondL []*snode // uncond's memo
	tagsL   []string // reachableTags' memo
	tagsOK  bool
}

// spat is one patternProperties entry; re is nil when the pattern may match
// members RE2 would not (see the file comment).
type spat struct {
	src string
	re  *regexp.Regexp
	n   *snode
}

// jsDoc is one schema document: the schema itself or one of its references.
type jsDoc struct {
	label  string
	raw    any
	byPtr  map[string]*snode
	draft4 bool // "id" instead of "$id"
}

// jsEntry is a member of a position.
type jsEntry struct {
	n   *snode
	def bool
}

type jsJob struct {
	t  *stype
	es []jsEntry
}

type jsReader struct {
	nodes      []*snode
	byURI      map[string][]*snode
	names      map[string][]*snode // registry reference names
	anchors    map[string][]*snode // "<base>#<name>"
	dynAnchors map[string][]*snode
	recRoots   []*snode
	pos        map[string]*stype
	jobs       []jsJob
	types      []*stype
	work       int
	err        *unreadableError
}

// rootBase is where the schema itself lives for resolving relative
// references: a name that can never be fetched.
const rootBase = "https://schema-registry.invalid/schemas/schema.json"

// parseJSONSchema reads a JSON Schema and the schemas it references.
func parseJSONSchema(s Schema) (*stype, error) {
	r := &jsReader{byURI: map[string][]*snode{}, names: map[string][]*snode{}, anchors: map[string][]*snode{},
		dynAnchors: map[string][]*snode{}, pos: map[string]*stype{}}
	root := r.document("", s.Text, rootBase, "")
	texts := map[string]*snode{}
	for i, text := range s.References {
		if r.err != nil {
			break
		}
		name := ""
		if i < len(s.ReferenceNames) {
			name = s.ReferenceNames[i]
		}
		label := "reference " + strconv.Itoa(i)
		base := rootBase[:strings.LastIndexByte(rootBase, '/')+1] + "reference-" + strconv.Itoa(i) + ".json"
		if name != "" {
			label = "reference " + strconv.Quote(name)
			if u, err := resolveURI(rootBase, name); err == nil {
				base = u
			}
		}
		n, ok := texts[text]
		if !ok {
			// The daemon lists a schema that several others refer to once per
			// referrer: the same text is one document.
			n = r.document(label, text, base, name)
			texts[text] = n
		} else if n != nil {
			r.addTo(r.byURI, base, n)
		}
		if n != nil && name != "" {
			r.addTo(r.names, name, n)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	t := r.position([]jsEntry{{root, true}})
	for len(r.jobs) > 0 && r.err == nil {
		j := r.jobs[len(r.jobs)-1]
		r.jobs = r.jobs[:len(r.jobs)-1]
		r.fill(j.t, j.es)
	}
	if r.err != nil {
		return nil, r.err
	}
	r.markTags()
	return t, nil
}

// document parses one schema document and reads it.
func (r *jsReader) document(label, text, base, name string) *snode {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		r.err = &unreadableError{doc: label, msg: "not JSON: " + err.Error()}
		return nil
	}
	if dec.More() {
		r.err = &unreadableError{doc: label, msg: "not JSON: data after the schema"}
		return nil
	}
	doc := &jsDoc{label: label, raw: raw, byPtr: map[string]*snode{}}
	if m, ok := raw.(map[string]any); ok {
		if ms, ok := m["$schema"].(string); ok && (strings.Contains(ms, "draft-04") || strings.Contains(ms, "draft-03")) {
			doc.draft4 = true
		}
	}
	n := r.load(doc, raw, "", base, nil, 0)
	if n != nil {
		r.addTo(r.byURI, base, n)
	}
	return n
}

func (r *jsReader) addTo(m map[string][]*snode, k string, n *snode) {
	if !slices.Contains(m[k], n) {
		m[k] = append(m[k], n)
	}
}

func (r *jsReader) fail(doc *jsDoc, ptr, keyword, format string, args ...any) {
	if r.err == nil {
		r.err = &unreadableError{doc: doc.label, ptr: ptr, keyword: keyword, msg: fmt.Sprintf(format, args...)}
	}
}

var ptrEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func ptrJoin(ptr, tok string) string { return ptr + "/" + ptrEscaper.Replace(tok) }

// jsonKind names a decoded JSON value's kind for messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}

// The keywords whose value is one schema, an array of schemas or an object of
// schemas, in the order they are read.
var (
	oneSchemaKeys = []string{"additionalProperties", "unevaluatedProperties", "propertyNames", "additionalItems",
		"unevaluatedItems", "contains", "contentSchema", "not", "if", "then", "else"}
	schemaListKeys = []string{"allOf", "anyOf", "oneOf", "prefixItems"}
	schemaMapKeys  = []string{"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)

// load reads the subschema v at ptr of doc.
func (r *jsReader) load(doc *jsDoc, v any, ptr, base string, res *snode, depth int) *snode {
	if n := doc.byPtr[ptr]; n != nil {
		return n
	}
	if r.err != nil {
		return nil
	}
	if depth > maxSchemaDepth {
		r.fail(doc, ptr, "", "nested more than %d levels deep", maxSchemaDepth)
		return nil
	}
	if len(r.nodes) >= maxSchemaNodes {
		r.fail(doc, ptr, "", "more than %d subschemas", maxSchemaNodes)
		return nil
	}
	n := &snode{id: len(r.nodes), doc: doc, ptr: ptr, base: base, res: res}
	if res == nil {
		n.res = n
	}
	r.nodes = append(r.nodes, n)
	doc.byPtr[ptr] = n
	m, ok := v.(map[string]any)
	if !ok {
		if b, ok := v.(bool); ok {
			n.isBool, n.boolVal = true, b
			if !b {
				n.own = vtype{typed: true}
			}
			return n
		}
		r.fail(doc, ptr, "", "want a schema (an object or a boolean), not %s", jsonKind(v))
		return nil
	}
	n.m = m
	r.identify(n)
	n.tags = stringList(m[tagsProp])
	n.own = ownType(m)
	if ty, ok := m["type"].([]any); ok {
		for _, x := range ty {
			if _, ok := x.(map[string]any); ok {
				r.fail(doc, ptr, "type", "schemas as types (draft 3) are not supported")
				return nil
			}
		}
	}
	child := func(key string, v any, p string) *snode {
		c := r.load(doc, v, p, n.base, n.res, depth+1)
		if c != nil {
			n.children = append(n.children, c)
		}
		return c
	}
	for _, k := range oneSchemaKeys {
		v, ok := m[k]
		if !ok {
			continue
		}
		c := child(k, v, ptrJoin(ptr, k))
		switch k {
		case "additionalProperties":
			n.additional = c
		case "unevaluatedProperties":
			n.unevaluated = c
		case "propertyNames":
			n.propertyNames = c
		case "additionalItems":
			n.additionalItems = c
		case "unevaluatedItems":
			n.unevaluatedItems = c
		case "contains":
			n.contains = c
		case "contentSchema":
			n.content = c
		case "if":
			n.ifS = c
		case "then":
			n.thenS = c
		case "else":
			n.elseS = c
		}
	}
	for _, k := range schemaListKeys {
		v, ok := m[k]
		if !ok {
			continue
		}
		list, ok := v.([]any)
		if !ok {
			r.fail(doc, ptr, k, "want an array of schemas, not %s", jsonKind(v))
			return nil
		}
		for i, x := range list {
			c := child(k, x, ptrJoin(ptr, k)+"/"+strconv.Itoa(i))
			switch k {
			case "allOf":
				n.allOf = append(n.allOf, c)
			case "anyOf":
				n.anyOf = append(n.anyOf, c)
			case "oneOf":
				n.oneOf = append(n.oneOf, c)
			case "prefixItems":
				n.prefix = append(n.prefix, c)
			}
		}
	}
	switch v := m["items"].(type) {
	case nil:
		if _, ok := m["items"]; ok {
			r.fail(doc, ptr, "items", "want a schema or an array of schemas, not null")
		}
	case []any:
		n.itemsArr = []*snode{}
		for i, x := range v {
			n.itemsArr = append(n.itemsArr, child("items", x, ptrJoin(ptr, "items")+"/"+strconv.Itoa(i)))
		}
	default:
		n.items = child("items", v, ptrJoin(ptr, "items"))
	}
	switch v := m["extends"].(type) { // draft 3: allOf by another name
	case nil:
	case []any:
		for i, x := range v {
			n.allOf = append(n.allOf, child("extends", x, ptrJoin(ptr, "extends")+"/"+strconv.Itoa(i)))
		}
	default:
		n.allOf = append(n.allOf, child("extends", v, ptrJoin(ptr, "extends")))
	}
	for _, k := range schemaMapKeys {
		v, ok := m[k]
		if !ok {
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			r.fail(doc, ptr, k, "want an object of schemas, not %s", jsonKind(v))
			return nil
		}
		for _, name := range sortedKeys(obj) {
			c := child(k, obj[name], ptrJoin(ptrJoin(ptr, k), name))
			switch k {
			case "properties":
				if n.props == nil {
					n.props = map[string]*snode{}
				}
				n.props[name] = c
			case "patternProperties":
				n.patterns = append(n.patterns, &spat{src: name, re: ecmaPattern(name), n: c})
			case "dependentSchemas":
				n.dependent = append(n.dependent, c)
			}
		}
	}
	if deps, ok := m["dependencies"].(map[string]any); ok { // drafts 4-7
		for _, name := range sortedKeys(deps) {
			switch deps[name].(type) {
			case map[string]any, bool:
				n.dependent = append(n.dependent, child("dependencies", deps[name], ptrJoin(ptrJoin(ptr, "dependencies"), name)))
			default: // names of required members (a string in draft 3), no schema
			}
		}
	}
	if req, ok := m["required"].([]any); ok {
		for _, x := range req {
			if s, ok := x.(string); ok {
				n.required = append(n.required, s)
			}
		}
	}
	for _, k := range []string{"$ref", "$dynamicRef", "$recursiveRef"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			r.fail(doc, ptr, k, "want a URI reference, not %s", jsonKind(v))
			return nil
		}
		switch k {
		case "$ref":
			n.ref, n.hasRef = s, true
		case "$dynamicRef":
			n.dynRef, n.hasDyn = s, true
		case "$recursiveRef":
			n.recRef, n.hasRec = s, true
		}
	}
	if r.err != nil {
		return nil
	}
	return n
}

// identify reads $id (id in draft 4), $anchor, $dynamicAnchor and
// $recursiveAnchor, and indexes the node under them.
func (r *jsReader) identify(n *snode) {
	idKey := "$id"
	if n.doc.draft4 {
		idKey = "id"
	}
	if id, ok := n.m[idKey].(string); ok && id != "" {
		u, err := resolveURI(n.base, id)
		if err != nil {
			r.fail(n.doc, n.ptr, idKey, "not a URI reference: %v", err)
			return
		}
		abs, frag, _ := strings.Cut(u, "#")
		if frag != "" && !strings.HasPrefix(frag, "/") { // draft 6/7 "$id": "#name"
			r.addTo(r.anchors, abs+"#"+frag, n)
		}
		if !strings.HasPrefix(id, "#") {
			n.base, n.res = abs, n
			r.addTo(r.byURI, abs, n)
		}
	}
	if a, ok := n.m["$anchor"].(string); ok {
		r.addTo(r.anchors, n.base+"#"+a, n)
	}
	if a, ok := n.m["$dynamicAnchor"].(string); ok {
		r.addTo(r.anchors, n.base+"#"+a, n)
		r.addTo(r.dynAnchors, a, n)
		n.dynAnchor = a
	}
	if b, _ := n.m["$recursiveAnchor"].(bool); b && n.res == n {
		n.recAnchor = true
		r.recRoots = append(r.recRoots, n)
	}
}

// ownType reads type, enum, const and format.
func ownType(m map[string]any) vtype {
	var v vtype
	add := func(name string) bool {
		switch name {
		case "null":
			v.kinds |= jNull
		case "boolean":
			v.kinds |= jBool
		case "integer":
			v.kinds |= jInt
		case "number":
			v.kinds |= jInt | jFrac
		case "string":
			v.kinds |= jString
		case "object":
			v.kinds |= jObject
		case "array":
			v.kinds |= jArray
		default: // "any" (draft 3) or a mistake: no constraint
			return false
		}
		return true
	}
	switch ty := m["type"].(type) {
	case string:
		v.typed = add(ty)
	case []any:
		v.typed = true
		for _, x := range ty {
			if s, ok := x.(string); !ok || !add(s) {
				v.typed = false
			}
		}
	}
	if !v.typed {
		v.kinds = 0
	}
	if f, ok := m["format"].(string); ok {
		v.format = f
	}
	var vals []any
	if e, ok := m["enum"].([]any); ok {
		vals = e
	} else if c, ok := m["const"]; ok {
		vals = []any{c}
	} else {
		return v
	}
	e := vtype{typed: true, hasEnum: true, enum: []string{}}
	for _, x := range vals {
		b, _ := json.Marshal(x)
		if !slices.Contains(e.enum, string(b)) {
			e.enum = append(e.enum, string(b))
		}
		e.kinds |= kindOf(x)
	}
	return v.and(e)
}

func kindOf(v any) uint8 {
	switch x := v.(type) {
	case nil:
		return jNull
	case bool:
		return jBool
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return jInt
		}
		if f, err := x.Float64(); err == nil && f == float64(int64(f)) {
			return jInt
		}
		return jFrac
	case string:
		return jString
	case []any:
		return jArray
	}
	return jObject
}

// enumKind is kindOf for an enum value's JSON text.
func enumKind(text string) uint8 {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return 0
	}
	return kindOf(v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func resolveURI(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", err
	}
	s := b.ResolveReference(u).String()
	return strings.TrimSuffix(s, "#"), nil
}

// link resolves n's $ref, $dynamicRef and $recursiveRef, once.
func (r *jsReader) link(n *snode) {
	if n.linked || n.m == nil || r.err != nil {
		return
	}
	n.linked = true
	if n.hasRef {
		n.refT = r.resolve(n, "$ref", n.ref)
	}
	if n.hasDyn {
		// A $dynamicRef to an anchor that is a $dynamicAnchor may land on any
		// $dynamicAnchor of that name in the dynamic scope: take them all.
		static := r.resolve(n, "$dynamicRef", n.dynRef)
		n.dynT = static
		_, frag, _ := strings.Cut(n.dynRef, "#")
		if frag != "" && !strings.HasPrefix(frag, "/") && slices.ContainsFunc(static, func(t *snode) bool { return t.dynAnchor == frag }) {
			for _, t := range r.dynAnchors[frag] {
				if !slices.Contains(n.dynT, t) {
					n.dynT = append(n.dynT, t)
				}
			}
		}
	}
	if n.hasRec {
		if n.recRef != "#" {
			r.fail(n.doc, n.ptr, "$recursiveRef", "only \"#\" is allowed, not %q", n.recRef)
			return
		}
		n.dynT = []*snode{n.res}
		if n.res.recAnchor {
			for _, t := range r.recRoots {
				if !slices.Contains(n.dynT, t) {
					n.dynT = append(n.dynT, t)
				}
			}
		}
	}
}

// resolve finds the subschemas ref names: in the resource it is in, another
// resource of the schema or its references (by $id), or a reference (by its
// registry name). Several candidates are all taken (conditionally).
func (r *jsReader) resolve(n *snode, keyword, ref string) []*snode {
	uriPart, rawFrag, _ := strings.Cut(ref, "#")
	frag, err := url.PathUnescape(rawFrag)
	if err != nil {
		r.fail(n.doc, n.ptr, keyword, "%q has a malformed fragment", ref)
		return nil
	}
	var resources []*snode
	if uriPart == "" {
		resources = []*snode{n.res}
	} else {
		abs, err := resolveURI(n.base, uriPart)
		if err != nil {
			r.fail(n.doc, n.ptr, keyword, "%q is not a URI reference", ref)
			return nil
		}
		resources = append(resources, r.byURI[abs]...)
		for _, c := range r.names[uriPart] {
			if !slices.Contains(resources, c) {
				resources = append(resources, c)
			}
		}
		if len(resources) == 0 {
			r.fail(n.doc, n.ptr, keyword, "%q is neither the name of a schema reference nor the $id of a known schema (nothing is fetched)", ref)
			return nil
		}
	}
	var out []*snode
	for _, res := range resources {
		var targets []*snode
		switch {
		case frag == "":
			targets = []*snode{res}
		case strings.HasPrefix(frag, "/"):
			if t := r.pointer(res, frag); t != nil {
				targets = []*snode{t}
			}
		default:
			targets = r.anchors[res.base+"#"+frag]
		}
		if r.err != nil {
			return nil
		}
		if len(targets) == 0 {
			r.fail(n.doc, n.ptr, keyword, "%q: the schema has no such location", ref)
			return nil
		}
		for _, t := range targets {
			if !slices.Contains(out, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// pointer finds the subschema at JSON pointer p of resource res, reading it
// when it is somewhere the reader did not look (as in "#/components/x").
func (r *jsReader) pointer(res *snode, p string) *snode {
	full := res.ptr + p
	if t := res.doc.byPtr[full]; t != nil {
		return t
	}
	cur := res.doc.raw
	depth := 0
	for _, tok := range strings.Split(full[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		depth++
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[tok]
			if !ok {
				return nil
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return r.load(res.doc, cur, full, res.base, res, depth)
}

// closure adds the in-place applicators' subschemas to seed and sorts it.
func (r *jsReader) closure(seed []jsEntry) []jsEntry {
	out := make([]jsEntry, 0, len(seed)+4)
	idx := make(map[int]int, len(seed)+4)
	var queue []int
	add := func(n *snode, def bool) {
		if n == nil {
			return
		}
		r.work++
		if i, ok := idx[n.id]; ok {
			if def && !out[i].def {
				out[i].def = true
				queue = append(queue, i)
			}
			return
		}
		idx[n.id] = len(out)
		out = append(out, jsEntry{n, def})
		queue = append(queue, len(out)-1)
	}
	for _, e := range seed {
		add(e.n, e.def)
	}
	for q := 0; q < len(queue) && r.err == nil; q++ {
		if r.work > maxSchemaWork {
			r.err = &unreadableError{msg: "too complex to read (more than " + strconv.Itoa(maxSchemaWork) + " steps)"}
			break
		}
		e := out[queue[q]]
		n := e.n
		if n.m == nil {
			continue
		}
		r.link(n)
		for _, t := range n.refT {
			add(t, e.def && len(n.refT) == 1)
		}
		for _, t := range n.dynT {
			add(t, e.def && len(n.dynT) == 1)
		}
		for _, c := range n.allOf {
			add(c, e.def)
		}
		for _, list := range [][]*snode{n.anyOf, n.oneOf, n.dependent, {n.ifS, n.thenS, n.elseS}} {
			for _, c := range list {
				add(c, false)
			}
		}
	}
	slices.SortFunc(out, func(a, b jsEntry) int { return a.n.id - b.n.id })
	return out
}

// uncond is n with the subschemas that always apply with it ($ref, allOf):
// what unevaluatedProperties and unevaluatedItems of n see as evaluated.
func (r *jsReader) uncond(n *snode) []*snode {
	if n.uncondL != nil {
		return n.uncondL
	}
	for _, e := range r.closure([]jsEntry{{n, true}}) {
		if e.def {
			n.uncondL = append(n.uncondL, e.n)
		}
	}
	return n.uncondL
}

// kindsOf is what n allows a value to be, its in-place applicators included.
func (r *jsReader) kindsOf(n *snode) vtype {
	switch n.kstate {
	case 2:
		return n.kinds
	case 1:
		r.fail(n.doc, n.ptr, "", "the schema applies itself to the same value again (a $ref cycle that never descends into a value)")
		return vtype{}
	}
	n.kstate = 1
	v := n.own
	if n.m != nil {
		r.link(n)
		alt := func(list []*snode) vtype {
			if len(list) == 0 {
				return vtype{}
			}
			a := r.kindsOf(list[0])
			for _, c := range list[1:] {
				a = a.or(r.kindsOf(c))
			}
			return a
		}
		v = v.and(alt(n.refT)).and(alt(n.dynT)).and(alt(n.anyOf)).and(alt(n.oneOf))
		for _, c := range n.allOf {
			v = v.and(r.kindsOf(c))
		}
		if n.ifS != nil && (n.thenS != nil || n.elseS != nil) {
			then, els := r.kindsOf(n.ifS), vtype{}
			if n.thenS != nil {
				then = then.and(r.kindsOf(n.thenS))
			}
			if n.elseS != nil {
				els = r.kindsOf(n.elseS)
			}
			v = v.and(then.or(els))
		}
	}
	n.kinds, n.kstate = v, 2
	return v
}

// reachableTags are the tags of every subschema below n, for contentSchema
// (the string holds a document: any PII in it makes the string PII) and
// propertyNames.
func (r *jsReader) reachableTags(n *snode) []string {
	if n.tagsOK {
		return n.tagsL
	}
	seen := map[*snode]bool{n: true}
	queue := []*snode{n}
	var tags []string
	for q := 0; q < len(queue) && r.err == nil; q++ {
		c := queue[q]
		r.work++
		for _, tag := range c.tags {
			if !slices.Contains(tags, tag) {
				tags = append(tags, tag)
			}
		}
		r.link(c)
		for _, list := range [][]*snode{c.children, c.refT, c.dynT} {
			for _, x := range list {
				if x != nil && !seen[x] {
					seen[x] = true
					queue = append(queue, x)
				}
			}
		}
	}
	n.tagsL, n.tagsOK = tags, true
	return tags
}

// position returns the stype of the place seed's subschemas apply to, filled
// later by fill (so that recursive schemas meet their own position).
func (r *jsReader) position(seed []jsEntry) *stype {
	// A true schema allows anything and says nothing; a false one allows
	// nothing, so a valid document has no value here and the runtime type of
	// an invalid one decides, as without a schema.
	useful := make([]jsEntry, 0, len(seed))
	for _, e := range seed {
		if e.n != nil && !e.n.isBool {
			useful = append(useful, e)
		}
	}
	seed = useful
	if len(seed) == 0 || r.err != nil {
		return nil
	}
	es := r.closure(seed)
	key := make([]byte, 0, len(es)*5)
	for _, e := range es {
		key = strconv.AppendInt(key, int64(e.n.id), 36)
		if e.def {
			key = append(key, '!')
		}
		key = append(key, ',')
	}
	if t, ok := r.pos[string(key)]; ok {
		return t
	}
	if len(r.pos) >= maxPositions {
		r.err = &unreadableError{msg: "too complex to read (more than " + strconv.Itoa(maxPositions) + " places for values)"}
		return nil
	}
	t := &stype{kind: kAny, json: true}
	r.pos[string(key)] = t
	r.types = append(r.types, t)
	r.jobs = append(r.jobs, jsJob{t, es})
	return t
}

// fill computes the stype of a position.
func (r *jsReader) fill(t *stype, es []jsEntry) {
	vt := vtype{}
	var tags []string
	addTags := func(list []string) {
		for _, tag := range list {
			if !slices.Contains(tags, tag) {
				tags = append(tags, tag)
			}
		}
	}
	hasObj, hasArr := false, false
	for _, e := range es {
		n := e.n
		if e.def {
			vt = vt.and(r.kindsOf(n))
		}
		addTags(n.tags)
		if n.content != nil {
			addTags(r.reachableTags(n.content))
		}
		if n.propertyNames != nil && len(r.reachableTags(n.propertyNames)) > 0 {
			r.fail(n.doc, n.ptr, "propertyNames", "tags on member names: names cannot be masked")
		}
		hasObj = hasObj || n.props != nil || n.patterns != nil || n.additional != nil || n.unevaluated != nil || n.required != nil
		hasArr = hasArr || n.items != nil || n.itemsArr != nil || n.prefix != nil || n.contains != nil || n.unevaluatedItems != nil
	}
	if r.err != nil {
		return
	}
	if vt.typed && vt.hasEnum {
		var syms []string
		for _, s := range vt.enum {
			if enumKind(s)&vt.kinds != 0 {
				syms = append(syms, s)
			}
		}
		vt.enum = syms
		if len(syms) == 0 {
			vt.kinds = 0
		}
	}
	if vt.typed && vt.kinds == 0 {
		// Nothing can satisfy the definite subschemas together (or an
		// inferred kind clashes): the value's runtime type decides.
		vt = vtype{format: vt.format}
	}
	var parts []*stype
	part := func(k kind) *stype { return &stype{kind: k, json: true} }
	objOK, arrOK := hasObj, hasArr
	switch {
	case vt.hasEnum:
		parts = append(parts, &stype{kind: kEnum, json: true, symbols: vt.enum})
		objOK = hasObj && vt.kinds&jObject != 0
		arrOK = hasArr && vt.kinds&jArray != 0
	case vt.typed:
		objOK, arrOK = vt.kinds&jObject != 0, vt.kinds&jArray != 0
		if vt.kinds&jNull != 0 {
			parts = append(parts, part(kNull))
		}
		if vt.kinds&jBool != 0 {
			parts = append(parts, part(kBool))
		}
		switch vt.kinds & (jInt | jFrac) {
		case jInt:
			parts = append(parts, part(kLong))
		case jFrac, jInt | jFrac:
			parts = append(parts, part(kDouble))
		}
		if vt.kinds&jString != 0 {
			s := part(kString)
			s.logical = vt.format
			parts = append(parts, s)
		}
	}
	if objOK {
		parts = append(parts, r.object(es))
	}
	if arrOK {
		parts = append(parts, r.array(es))
	}
	switch len(parts) {
	case 0:
		*t = stype{kind: kAny, json: true}
	case 1:
		*t = *parts[0]
	default:
		*t = stype{kind: kUnion, json: true, nullIdx: -1, branches: parts}
		for i, b := range parts {
			if b.kind == kNull {
				t.nullIdx = i
			}
		}
		r.types = append(r.types, parts...)
	}
	t.tags = tags
}

// object builds the object form of a position: its members.
func (r *jsReader) object(es []jsEntry) *stype {
	t := &stype{kind: kRecord, json: true, byName: map[string]int{}}
	var names []string
	required := map[string]bool{}
	var pats []*spat // one per distinct source
	maybe := false
	for _, e := range es {
		n := e.n
		for name := range n.props {
			names = append(names, name)
		}
		for _, name := range n.required {
			names = append(names, name)
			required[name] = true
		}
		for _, p := range n.patterns {
			if !slices.ContainsFunc(pats, func(q *spat) bool { return q.src == p.src }) {
				pats = append(pats, p)
			}
			maybe = maybe || p.re == nil
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	for _, name := range names {
		seed := r.memberSeed(es, name, true, func(p *spat) match { return nameMatch(p, name) })
		f := &sfield{name: name, t: r.position(seed), required: required[name]}
		var defs []string
		for _, e := range seed {
			if d, ok := e.n.m["default"]; ok {
				b, _ := json.Marshal(d)
				if !slices.Contains(defs, string(b)) {
					defs = append(defs, string(b))
				}
			}
		}
		if len(defs) == 1 {
			f.hasDefault, f.def = true, []byte(defs[0])
		}
		t.byName[name] = len(t.fields)
		t.fields = append(t.fields, f)
	}
	switch {
	case maybe:
		t.extra = r.position(r.anyMemberSeed(es))
	case len(pats) > 0:
		for _, p := range pats {
			src := p.src
			t.patterns = append(t.patterns, &spattern{src: src, re: p.re,
				t: r.position(r.memberSeed(es, "", false, func(q *spat) match { return boolMatch(q.src == src) }))})
		}
		t.patAll = r.position(r.anyMemberSeed(es))
		fallthrough
	default:
		t.extra = r.position(r.memberSeed(es, "", false, func(*spat) match { return noMatch }))
	}
	if len(names) == 0 && len(pats) == 0 && t.extra != nil {
		return &stype{kind: kMap, json: true, elem: t.extra}
	}
	return t
}

type match uint8

const (
	noMatch match = iota
	yesMatch
	maybeMatch
)

func boolMatch(b bool) match {
	if b {
		return yesMatch
	}
	return noMatch
}

func nameMatch(p *spat, name string) match {
	if p.re == nil || !plainKey(name) {
		return maybeMatch
	}
	return boolMatch(p.re.MatchString(name))
}

// memberSeed lists the subschemas of the value of a member: the member name
// (named), or an undeclared member whose name the patterns answer hit for.
func (r *jsReader) memberSeed(es []jsEntry, name string, named bool, hit func(*spat) match) []jsEntry {
	var seed []jsEntry
	for _, e := range es {
		n := e.n
		if n.m == nil {
			continue
		}
		r.work++
		declared := false
		if named {
			if c, ok := n.props[name]; ok {
				seed = append(seed, jsEntry{c, e.def})
				declared = true
			}
		}
		matched, unsure := false, false
		for _, p := range n.patterns {
			switch hit(p) {
			case yesMatch:
				seed = append(seed, jsEntry{p.n, e.def})
				matched = true
			case maybeMatch:
				seed = append(seed, jsEntry{p.n, false})
				unsure = true
			}
		}
		if !declared && !matched && n.additional != nil {
			seed = append(seed, jsEntry{n.additional, e.def && !unsure})
		}
		if n.unevaluated != nil && !r.evaluates(n, name, named, hit) {
			seed = append(seed, jsEntry{n.unevaluated, false})
		}
	}
	return seed
}

// anyMemberSeed is every subschema any undeclared member may get.
func (r *jsReader) anyMemberSeed(es []jsEntry) []jsEntry {
	var seed []jsEntry
	for _, e := range es {
		n := e.n
		for _, p := range n.patterns {
			seed = append(seed, jsEntry{p.n, false})
		}
		for _, c := range []*snode{n.additional, n.unevaluated} {
			if c != nil {
				seed = append(seed, jsEntry{c, false})
			}
		}
	}
	return seed
}

// evaluates reports whether n's unevaluatedProperties surely does not apply to
// the member: something that always applies with n evaluates it.
func (r *jsReader) evaluates(n *snode, name string, named bool, hit func(*spat) match) bool {
	for _, u := range r.uncond(n) {
		if u.additional != nil {
			return true
		}
		if _, ok := u.props[name]; named && ok {
			return true
		}
		for _, p := range u.patterns {
			if hit(p) == yesMatch {
				return true
			}
		}
	}
	return false
}

// array builds the array form of a position: a type per tuple index, then
// the type of the other elements.
func (r *jsReader) array(es []jsEntry) *stype {
	t := &stype{kind: kArray, json: true}
	tuple := 0
	for _, e := range es {
		tuple = max(tuple, len(e.n.prefix), len(e.n.itemsArr))
	}
	for i := 0; i < tuple && r.err == nil; i++ {
		t.prefix = append(t.prefix, r.position(r.elemSeed(es, i)))
	}
	t.elem = r.position(r.elemSeed(es, tuple))
	return t
}

// elemSeed lists the subschemas of element i of an array.
func (r *jsReader) elemSeed(es []jsEntry, i int) []jsEntry {
	var seed []jsEntry
	for _, e := range es {
		n := e.n
		r.work++
		var c *snode
		switch {
		case n.prefix != nil:
			if i < len(n.prefix) {
				c = n.prefix[i]
			} else {
				c = n.items
			}
		case n.itemsArr != nil:
			if i < len(n.itemsArr) {
				c = n.itemsArr[i]
			} else {
				c = n.additionalItems
			}
		default:
			c = n.items
		}
		if c != nil {
			seed = append(seed, jsEntry{c, e.def})
		}
		if n.contains != nil {
			seed = append(seed, jsEntry{n.contains, false})
		}
		if n.unevaluatedItems != nil && !r.evaluatesItem(n, i) {
			seed = append(seed, jsEntry{n.unevaluatedItems, false})
		}
	}
	return seed
}

func (r *jsReader) evaluatesItem(n *snode, i int) bool {
	for _, u := range r.uncond(n) {
		if u.items != nil || i < len(u.prefix) || i < len(u.itemsArr) || u.itemsArr != nil && u.additionalItems != nil {
			return true
		}
	}
	return false
}

// markTags records, on every stype built, whether tags sit at or below it, so
// that the compiler never walks the graph to find out.
func (r *jsReader) markTags() {
	parents := map[*stype][]*stype{}
	var queue []*stype
	for _, t := range r.types {
		t.tagsBelow = -1
		t.eachChild(func(c *stype) {
			if c != nil {
				parents[c] = append(parents[c], t)
			}
		})
	}
	for _, t := range r.types {
		if len(t.tags) > 0 {
			t.tagsBelow = 1
			queue = append(queue, t)
		}
	}
	for q := 0; q < len(queue); q++ {
		for _, p := range parents[queue[q]] {
			if p.tagsBelow != 1 {
				p.tagsBelow = 1
				queue = append(queue, p)
			}
		}
	}
}

// eachChild calls fn with every stype directly below t.
func (t *stype) eachChild(fn func(*stype)) {
	for _, f := range t.fields {
		fn(f.t)
	}
	for _, b := range t.branches {
		fn(b)
	}
	for _, p := range t.prefix {
		fn(p)
	}
	for _, p := range t.patterns {
		fn(p.t)
	}
	fn(t.elem)
	fn(t.extra)
	fn(t.patAll)
}

// spattern is a JSON object's patternProperties entry as the compiler sees it:
// t is the type of a member whose name no declared property has and only this
// pattern matches.
type spattern struct {
	src string
	re  *regexp.Regexp
	t   *stype
}

// memberType is the type of an undeclared member of a JSON object, by name:
// the pattern's when exactly one matches, the union of every member schema
// when several may, else additionalProperties'. nil when no schema describes
// the member.
func (t *stype) memberType(name string) *stype {
	if len(t.patterns) == 0 {
		return t.extra
	}
	if !plainKey(name) {
		return t.patAll
	}
	var hit *stype
	n := 0
	for _, p := range t.patterns {
		if p.re.MatchString(name) {
			hit = p.t
			n++
		}
	}
	switch n {
	case 0:
		return t.extra
	case 1:
		return hit
	}
	return t.patAll
}

// plainKey reports whether a member name is printable ASCII, where RE2 and
// ECMA 262 patterns agree.
func plainKey[S ~string | ~[]byte](name S) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// ecmaPattern compiles an ECMA 262 pattern with RE2, or returns nil when RE2
// rejects it or might read it differently: escapes that mean something else
// in ECMA 262 (\A \z \Q \E \C \p \P and the like, which are literal letters
// there), and group syntax such as (?i) or (?P<n>), which ECMA 262 lacks or
// reads otherwise.
func ecmaPattern(src string) *regexp.Regexp {
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '\\':
			if i+1 < len(src) && !strings.ContainsRune(ecmaSameEscapes, rune(src[i+1])) {
				return nil
			}
			i++
		case '(':
			if i+1 < len(src) && src[i+1] == '?' {
				return nil
			}
		}
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil
	}
	return re
}

// ecmaSameEscapes are the characters after a backslash that RE2 and ECMA 262
// read alike on printable ASCII names.
const ecmaSameEscapes = `dDwWsSbBnrtfv.^$*+?()[]{}|/\-`

// patChild is a plan's child for the members a patternProperties pattern
// matches.
type patChild struct {
	re *regexp.Regexp
	n  *pnode
}

// jsonPatterns compiles the children of an object's patternProperties.
func (c *compiler) jsonPatterns(n *pnode, objT *stype, l loc, act *crule) {
	S := c.step(l.S, stepField, noName)
	at := func(t *stype) loc {
		return loc{t: t, S: S, inh: act, role: roleField, path: join2(l.path, "*"), undeclared: l.undeclared}
	}
	n.patterns = make([]patChild, len(objT.patterns))
	for i, p := range objT.patterns {
		n.patterns[i] = patChild{re: p.re, n: c.buildJSON(at(p.t))}
	}
	n.patAll = c.buildJSON(at(objT.patAll))
}

// patternChild is the plan's child for a member no name in n.names matches:
// memberType at run time.
func (n *pnode) patternChild(key []byte) *pnode {
	if !plainKey(key) {
		return n.patAll
	}
	var hit *pnode
	found := false
	for i := range n.patterns {
		if n.patterns[i].re.Match(key) {
			if found {
				return n.patAll
			}
			hit, found = n.patterns[i].n, true
		}
	}
	if !found {
		return n.other
	}
	return hit
}

// unreadablePlan is the plan for a schema the reader cannot read: it rejects
// every record, whatever the policies.
func unreadablePlan(pols []*Policy, schema Schema, err *unreadableError) *Plan {
	p := &Plan{format: JSON, schemaID: schema.ID, touching: true,
		static: &Violation{Reason: ReasonSchemaUnreadable, Detail: err.Error()}}
	for _, pol := range pols {
		p.policies = append(p.policies, pol.Ref())
	}
	slices.Sort(p.policies)
	return p
}
