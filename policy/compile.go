package policy

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// Compile builds the plan for records of pipeline's topic written with schema:
// the rules of the set's policies that apply to the stream, resolved against
// the schema's fields once, so that masking a record walks only what a rule
// touches. Problems that make the plan unsafe to run — a rule whose action
// cannot apply to a field's type, two policies giving one field different
// actions, a hash rule without a key — come back as a *ErrorList naming the
// rule's file and line; the caller must then quarantine the stream's records.
// A PII-tagged field that no rule covers is not a compile error: the plan
// rejects every record with ReasonUnmatchedPII (fail closed). Nor is a JSON
// Schema that cannot be read in full (see jsonschema.go): the plan rejects
// every record with ReasonSchemaUnreadable, whatever the policies. Compile
// compiles for record values; CompilePart also for keys.
func Compile(set *Set, pipeline, topic string, schema Schema, opts ...Option) (*Plan, error) {
	return CompilePart(set, pipeline, topic, Value, schema, opts...)
}

// CompilePart is Compile for one part of the record: Compile(...) is
// CompilePart(..., Value, ...). For the key, pass the key's writer schema, or
// Schema{Type: Raw} for a key that has none (a plain string or bytes key, such
// as a VIN), or Schema{Type: JSON} for a JSON key without a registry schema.
func CompilePart(set *Set, pipeline, topic string, part Part, schema Schema, opts ...Option) (*Plan, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var st *stype
	var unreadable *unreadableError
	if schema.Type != Raw {
		var err error
		if st, err = parseSchema(schema); err != nil && !errors.As(err, &unreadable) {
			return nil, fmt.Errorf("compiling policies for %s schema %s: %w", part, schemaLabel(schema), err)
		}
	}
	var pols []*Policy
	if set != nil {
		for _, p := range set.Policies {
			if o.all || p.Applies(pipeline, topic) {
				pols = append(pols, p)
			}
		}
	}
	if unreadable != nil {
		return unreadablePlan(pols, schema, unreadable), nil
	}
	c, plan := compilePolicies(pols, part, st, schema, &o)
	if len(c.errs) > 0 {
		return nil, yamlerr.Join(c.errs...)
	}
	return plan, nil
}

func schemaLabel(s Schema) string {
	switch {
	case s.Name != "":
		return strconv.Quote(s.Name)
	case s.ID != 0:
		return "id " + strconv.Itoa(s.ID)
	}
	return "(inline)"
}

// compilePolicies compiles the rules of pols that apply to part against st
// (nil for Raw schemas). It returns the compiler, for its errors and per-rule
// findings (Lint uses them), and the plan, which is only usable when there are
// no errors.
func compilePolicies(pols []*Policy, part Part, st *stype, schema Schema, o *options) (*compiler, *Plan) {
	format := schema.Type
	if format == "" {
		format = JSON
	}
	c := &compiler{
		json: format == JSON, raw: format == Raw, proto: format == Protobuf, stack: map[string]*pnode{}, touchIdx: map[string]int{},
		errSeen: map[string]bool{}, schema: schemaLabel(schema),
	}
	if part == Key {
		c.root = "key"
	}
	for _, p := range pols {
		for i := range p.Rules {
			r := &p.Rules[i]
			if !r.appliesTo(part) {
				continue
			}
			cr := &crule{p: p, i: i, r: r, spec: specificity(r), sig: r.String(), ref: p.ruleRef(i)}
			if r.tagOnly() {
				c.tagOnly = append(c.tagOnly, len(c.rules))
			}
			c.rules = append(c.rules, cr)
		}
	}
	c.matched = make([]bool, len(c.rules))
	var s0 []uint32
	for ri, cr := range c.rules {
		if cr.r.pattern != nil {
			s0 = append(s0, uint32(ri)<<8)
		}
	}
	s0 = c.closure(s0)

	var root *pnode
	var raw *crule
	switch {
	case c.raw:
		raw = c.buildRaw(loc{S: s0, role: roleRoot, path: c.root})
	case c.json:
		root = c.buildJSON(loc{t: st, S: s0, role: roleRoot, path: c.root})
	case c.proto:
		root = c.buildProto(loc{t: st, S: s0, role: roleRoot, path: c.root})
	default:
		root = c.buildAvro(loc{t: st, S: s0, role: roleRoot, path: c.root})
	}
	root = c.prune(root)

	plan := &Plan{format: format, part: part, schemaID: schema.ID, root: root, raw: raw, touches: c.touches}
	for _, p := range pols {
		plan.policies = append(plan.policies, p.Ref())
	}
	slices.Sort(plan.policies)
	if len(c.unmatched) > 0 {
		plan.static = &Violation{Reason: ReasonUnmatchedPII, FieldPath: c.unmatched[0]}
		if n := len(c.unmatched); n > 1 {
			plan.static.Detail = fmt.Sprintf("%d PII-tagged fields have no rule: %s", n, strings.Join(c.unmatched, ", "))
		}
	}
	plan.touching = root != nil || raw != nil || plan.static != nil
	if c.hashRule != nil && !o.check {
		if o.key == nil {
			c.errorf(c.hashRule, ".action", "hash rules need a key: set %s or a key file", HashKeyEnv)
		} else {
			plan.keyID = KeyID(o.key)
			plan.hmacs = newHMACPool(o.key)
		}
	}
	return c, plan
}

// crule is a rule in compilation.
type crule struct {
	p    *Policy
	i    int // index in p.Rules
	r    *Rule
	spec int
	sig  string
	ref  string
}

// mode is what a plan node does with its value.
type mode uint8

const (
	modeWalk  mode = iota // descend into the children
	modeLeaf              // apply act to scalar values; descend into objects and arrays (JSON)
	modeConst             // replace the value by konst, or delete the JSON member (del)
	modeBlock             // reject the record when the value is present
	modeNull              // Avro: replace the union's value by null
)

// pnode is one node of a compiled plan. Children that touch nothing are nil and
// are skipped without decoding.
type pnode struct {
	t     *stype
	mode  mode
	act   *crule
	path  string
	touch int // Avro: index into Plan.touches
	konst []byte
	del   bool
	// fields are an Avro record's fields, by position.
	fields []*pnode
	// names are JSON members and map entries whose key a rule names; other is
	// every other member or map value.
	names    map[string]*pnode
	other    *pnode
	elem     *pnode
	branches []*pnode // Avro union branches, by index
	// prefix are a JSON array's first elements, by index (prefixItems); elem
	// serves the elements after them.
	prefix []*pnode
	// patterns serve JSON members no name in names matches, by the
	// patternProperties their name matches (see patternChild).
	patterns []patChild
	patAll   *pnode
	// objOK and arrOK say whether a JSON leaf node can walk into an object or
	// an array; a value of another kind than the schema's cannot be masked.
	objOK, arrOK bool
	touches      bool
}

func (n *pnode) children(fn func(*pnode)) {
	for _, c := range n.fields {
		fn(c)
	}
	for _, c := range n.names {
		fn(c)
	}
	for _, c := range n.branches {
		fn(c)
	}
	for _, c := range n.prefix {
		fn(c)
	}
	for _, p := range n.patterns {
		fn(p.n)
	}
	fn(n.patAll)
	fn(n.other)
	fn(n.elem)
}

// role is how a value sits in its parent, which decides what drop can do.
type role uint8

const (
	roleRoot role = iota
	roleField
	roleElem
	roleMapVal
	roleBranch
)

// loc is a place in the schema being compiled: a type, the matcher's state
// there, and the leaf-wise action inherited from an enclosing value.
type loc struct {
	t    *stype
	S    []uint32 // matcher states: rule index << 8 | pattern position, sorted
	inh  *crule
	f    *sfield // the field, for roleField
	role role
	path string
	// undeclared is set below JSON members the schema does not declare: rules
	// matching only there do not count as matching the schema (Lint).
	undeclared bool
	// tags are a JSON value's tags (from its schema position); Avro's are the
	// field's.
	tags []string
}

// tagList is the tags of the value at l.
func (l loc) tagList() []string {
	if l.tags == nil && l.role == roleField && l.f != nil {
		return l.f.tags
	}
	return l.tags
}

// maxNodes bounds a plan's size; schemas that expand past it are refused.
const maxNodes = 100_000

type compiler struct {
	json     bool
	raw      bool // a key (or value) without a schema
	proto    bool // Protobuf: buildProto, protoDrop, protoReplace (proto_plan.go)
	schema   string
	root     string // the path of the whole value: "", or "key"
	rules    []*crule
	tagOnly  []int // rules with a tag and no field pattern
	matched  []bool
	stack    map[string]*pnode
	nodes    []*pnode
	touches  []Touch
	touchIdx map[string]int
	errs     []*Error
	errSeen  map[string]bool
	// unmatched are PII-tagged fields no rule covers.
	unmatched []string
	// hashRule is a hash rule the plan applies, for the missing-key error.
	hashRule *crule
	tooBig   bool
	depth    int // buildJSON's
}

func (c *compiler) errorf(cr *crule, key, format string, args ...any) {
	e := cr.p.errAt(rulePath(cr.i)+key, format, args...)
	if s := e.Error(); !c.errSeen[s] {
		c.errSeen[s] = true
		c.errs = append(c.errs, e)
	}
}

// field describes a path for messages.
func (c *compiler) field(path string) string {
	switch {
	case c.raw:
		return "the whole " + cmp.Or(c.root, "record") + " (no schema: raw bytes)"
	case path == c.root:
		return "the whole " + cmp.Or(c.root, "record") + " of schema " + c.schema
	}
	return "field " + path + " of schema " + c.schema
}

// closure adds, for every state before a "**", the state after it ("**" may
// match no level at all), and sorts and deduplicates.
func (c *compiler) closure(S []uint32) []uint32 {
	for i := 0; i < len(S); i++ {
		st := S[i]
		pat := c.rules[st>>8].r.pattern
		if k := int(st & 0xff); k < len(pat) && pat[k].kind == segDStar {
			S = append(S, st+1)
		}
	}
	slices.Sort(S)
	return slices.Compact(S)
}

type stepKind uint8

const (
	stepField  stepKind = iota // into a record field or JSON member
	stepElem                   // into an array element
	stepMapVal                 // into a map value
)

// noName is a member or map key no pattern names.
const noName = "\x00"

// step moves the matcher states one level down. Array levels are transparent
// to names ("items.card" matches items[].card); "[]" consumes an array or map
// level; "*" a field or map key; "**" any levels. A state that completed its
// pattern matched the level above and does not carry on.
func (c *compiler) step(S []uint32, k stepKind, name string) []uint32 {
	var out []uint32
	for _, st := range S {
		pat := c.rules[st>>8].r.pattern
		i := int(st & 0xff)
		if i >= len(pat) {
			continue
		}
		switch sg := pat[i]; sg.kind {
		case segDStar:
			out = append(out, st)
		case segName:
			if k == stepElem {
				out = append(out, st)
			} else if sg.name == name {
				out = append(out, st+1)
			}
		case segStar:
			if k == stepElem {
				out = append(out, st)
			} else {
				out = append(out, st+1)
			}
		case segElem:
			if k != stepField {
				out = append(out, st+1)
			}
		}
	}
	return c.closure(out)
}

// branchStep enters an Avro union branch: the same level, so only completed
// states drop out.
func (c *compiler) branchStep(S []uint32) []uint32 {
	var out []uint32
	for _, st := range S {
		if int(st&0xff) < len(c.rules[st>>8].r.pattern) {
			out = append(out, st)
		}
	}
	return out
}

// literals are the names the states could consume next, sorted.
func (c *compiler) literals(S []uint32) []string {
	var out []string
	for _, st := range S {
		pat := c.rules[st>>8].r.pattern
		if i := int(st & 0xff); i < len(pat) && pat[i].kind == segName {
			out = append(out, pat[i].name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// own picks the rule that applies at l itself, if any. Within a policy a block
// rule wins, then the most specific, then the first. Policies must agree: two
// policies giving one field different actions is an error.
func (c *compiler) own(l loc) *crule {
	tags := l.tagList()
	var winners []*crule
	consider := func(ri int) {
		cr := c.rules[ri]
		if !l.undeclared {
			c.matched[ri] = true
		}
		for j, w := range winners {
			if w.p == cr.p {
				if better(cr, w) {
					winners[j] = cr
				}
				return
			}
		}
		winners = append(winners, cr)
	}
	for _, st := range l.S {
		ri := int(st >> 8)
		cr := c.rules[ri]
		if int(st&0xff) == len(cr.r.pattern) && (cr.r.Match.Tag == "" || slices.Contains(tags, cr.r.Match.Tag)) {
			consider(ri)
		}
	}
	for _, ri := range c.tagOnly {
		if slices.Contains(tags, c.rules[ri].r.Match.Tag) {
			consider(ri)
		}
	}
	if len(winners) == 0 {
		return nil
	}
	slices.SortStableFunc(winners, func(a, b *crule) int { return strings.Compare(a.p.Name, b.p.Name) })
	for _, w := range winners[1:] {
		if w.sig != winners[0].sig {
			c.errorf(w, ".action", "conflicts with policy %q rules[%d] (%s) on %s: %s here, %s there",
				winners[0].p.Name, winners[0].i, winners[0].p.where(rulePath(winners[0].i)), c.field(l.path), w.sig, winners[0].sig)
		}
	}
	return winners[0]
}

func better(a, b *crule) bool {
	if (a.r.Action == Block) != (b.r.Action == Block) {
		return a.r.Action == Block
	}
	if a.spec != b.spec {
		return a.spec > b.spec
	}
	return a.i < b.i
}

// cover handles what every node does first: find the rule applying here,
// note a PII-tagged field no rule covers, and build the node of a whole-value
// action (block, drop, replace). It returns the action in force and, for a
// whole-value action, the finished node.
func (c *compiler) cover(l loc) (*crule, *pnode, bool) {
	own := c.own(l)
	act := l.inh
	if own != nil {
		act = own
	}
	if act == nil && slices.Contains(l.tagList(), PIITag) {
		c.unmatched = append(c.unmatched, l.path)
	}
	if act != nil && act.r.Action == Hash && c.hashRule == nil {
		c.hashRule = act
	}
	if own == nil {
		return act, nil, false
	}
	switch own.r.Action {
	case Block:
		return own, c.node(l, modeBlock, own), true
	case Drop:
		n := c.node(l, modeConst, own)
		if c.json {
			c.jsonDrop(n, l, own)
		} else {
			c.avroDrop(n, l, own)
		}
		return own, n, true
	case Replace:
		n := c.node(l, modeConst, own)
		if c.json {
			c.jsonReplace(n, l, own)
		} else {
			c.avroReplace(n, l, own)
		}
		return own, n, true
	}
	return act, nil, false
}

func (c *compiler) node(l loc, m mode, act *crule) *pnode {
	n := &pnode{t: l.t, mode: m, act: act, path: l.path, touch: -1}
	if m != modeWalk && !c.json && act != nil {
		k := l.path + "\x00" + act.ref
		i, ok := c.touchIdx[k]
		if !ok {
			i = len(c.touches)
			c.touchIdx[k] = i
			c.touches = append(c.touches, Touch{Path: l.path, Action: act.r.Action, Policy: act.p.Name, Version: act.p.Version, Rule: act.i})
		}
		n.touch = i
	}
	c.nodes = append(c.nodes, n)
	if len(c.nodes) > maxNodes && !c.tooBig {
		c.tooBig = true
		c.errs = append(c.errs, &Error{File: c.schema, Msg: fmt.Sprintf("schema too complex: the plan would have more than %d nodes", maxNodes)})
	}
	return n
}

func stackKey(l loc, act *crule) string {
	return fmt.Sprintf("%p|%p|%p|%d|%t|%v", l.t, act, l.f, l.role, l.undeclared, l.S)
}

func join2(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// walk compiles the node of a record, array or map at l, registered under key
// (recursive types reuse it), with build compiling its fields, elements or
// values: the container walk the Avro and Protobuf plans share (JSON's differs:
// pattern and additional members).
func (c *compiler) walk(l loc, act *crule, key string, build func(loc) *pnode) *pnode {
	t := l.t
	var n *pnode
	switch t.kind {
	case kRecord:
		n = c.node(l, modeWalk, act)
		c.stack[key] = n
		n.fields = make([]*pnode, len(t.fields))
		for i, f := range t.fields {
			n.fields[i] = build(loc{t: f.t, S: c.step(l.S, stepField, f.name), inh: act, f: f, role: roleField, path: join2(l.path, f.name)})
		}
	case kArray:
		n = c.node(l, modeWalk, act)
		c.stack[key] = n
		n.elem = build(loc{t: t.elem, S: c.step(l.S, stepElem, ""), inh: act, role: roleElem, path: l.path + "[]"})
	case kMap:
		n = c.node(l, modeWalk, act)
		c.stack[key] = n
		for _, name := range c.literals(l.S) {
			if n.names == nil {
				n.names = map[string]*pnode{}
			}
			n.names[name] = build(loc{t: t.elem, S: c.step(l.S, stepMapVal, name), inh: act, role: roleMapVal, path: join2(l.path, name)})
		}
		n.other = build(loc{t: t.elem, S: c.step(l.S, stepMapVal, noName), inh: act, role: roleMapVal, path: join2(l.path, "*")})
	}
	return n
}

// buildAvro compiles the plan node for an Avro value at l.
func (c *compiler) buildAvro(l loc) *pnode {
	if c.tooBig || l.t == nil {
		return nil
	}
	act, n, done := c.cover(l)
	if done {
		return n
	}
	t := l.t
	if act == nil && len(l.S) == 0 && !t.hasTags() {
		return nil
	}
	key := stackKey(l, act)
	if n, ok := c.stack[key]; ok {
		return n // a recursive type: reuse the node being built
	}
	switch t.kind {
	case kNull, kAny:
		return nil
	case kRecord, kArray, kMap:
		n = c.walk(l, act, key, c.buildAvro)
	case kUnion:
		if act != nil && act.r.Action == Redact && t.nullIdx >= 0 {
			return c.node(l, modeNull, act)
		}
		n = c.node(l, modeWalk, act)
		c.stack[key] = n
		S := c.branchStep(l.S)
		n.branches = make([]*pnode, len(t.branches))
		for i, b := range t.branches {
			n.branches[i] = c.buildAvro(loc{t: b, S: S, inh: act, f: l.f, role: roleBranch, path: l.path})
		}
	default: // scalars
		if act == nil {
			return nil
		}
		if msg := leafProblem(act.r, t); msg != "" {
			c.errorf(act, ".action", "%s cannot apply to %s (%s): %s", act.r.Action, c.field(l.path), t, msg)
		}
		return c.node(l, modeLeaf, act)
	}
	delete(c.stack, key)
	return n
}

// buildJSON compiles the plan node for a JSON value at l. t may be nil (no
// schema, or a member the schema does not describe); the node then serves
// whatever value the document has.
func (c *compiler) buildJSON(l loc) *pnode {
	// Each call is one level of the document down. Past maxDepth levels no
	// document can reach (MaskJSON rejects it first), so a long chain of
	// $refs costs no more than that.
	c.depth++
	defer func() { c.depth-- }()
	if c.tooBig || c.depth > maxDepth+1 {
		return nil
	}
	if l.t != nil {
		l.tags = l.t.tags
	}
	act, n, done := c.cover(l)
	if done {
		return n
	}
	t := l.t
	if t != nil && t.kind == kAny {
		t, l.t = nil, nil
	}
	if act == nil && len(l.S) == 0 && (t == nil || !t.hasTags()) {
		return nil
	}
	key := stackKey(l, act)
	if n, ok := c.stack[key]; ok {
		return n
	}
	m := modeWalk
	if act != nil {
		m = modeLeaf
		if msg := jsonLeafProblem(act.r, t); msg != "" {
			c.errorf(act, ".action", "%s cannot apply to %s (%s): %s", act.r.Action, c.field(l.path), t, msg)
		}
	}
	n = c.node(l, m, act)
	c.stack[key] = n
	defer delete(c.stack, key)

	objT, arrT := jsonBranch(t, kRecord), jsonBranch(t, kArray)
	n.objOK, n.arrOK = t == nil || objT != nil, t == nil || arrT != nil
	if t == nil || objT != nil {
		switch {
		case objT != nil && objT.kind == kMap:
			for _, name := range c.literals(l.S) {
				if n.names == nil {
					n.names = map[string]*pnode{}
				}
				n.names[name] = c.buildJSON(loc{t: objT.elem, S: c.step(l.S, stepMapVal, name), inh: act, role: roleMapVal, path: join2(l.path, name), undeclared: l.undeclared})
			}
			n.other = c.buildJSON(loc{t: objT.elem, S: c.step(l.S, stepMapVal, noName), inh: act, role: roleMapVal, path: join2(l.path, "*"), undeclared: l.undeclared})
		default:
			var extra *stype
			if objT != nil {
				extra = objT.extra
				for _, f := range objT.fields {
					child := c.buildJSON(loc{t: f.t, S: c.step(l.S, stepField, f.name), inh: act, f: f, role: roleField, path: join2(l.path, f.name), undeclared: l.undeclared})
					if n.names == nil {
						n.names = map[string]*pnode{}
					}
					// Kept when nil too: a declared member must not fall
					// to the node of undeclared ones (prune drops it
					// when there is none).
					n.names[f.name] = child
				}
			}
			for _, name := range c.literals(l.S) {
				if _, ok := n.names[name]; ok || objT != nil && objT.jsonField(name) != nil {
					continue
				}
				mt := extra
				if objT != nil {
					mt = objT.memberType(name)
				}
				child := c.buildJSON(loc{t: mt, S: c.step(l.S, stepField, name), inh: act, role: roleField, path: join2(l.path, name), undeclared: l.undeclared || mt == nil})
				if child != nil {
					if n.names == nil {
						n.names = map[string]*pnode{}
					}
					n.names[name] = child
				}
			}
			n.other = c.buildJSON(loc{t: extra, S: c.step(l.S, stepField, noName), inh: act, role: roleField, path: join2(l.path, "*"), undeclared: l.undeclared || extra == nil})
			if objT != nil && len(objT.patterns) > 0 {
				c.jsonPatterns(n, objT, l, act)
			}
		}
	}
	if t == nil || arrT != nil {
		var et *stype
		if arrT != nil {
			et = arrT.elem
			for _, pt := range arrT.prefix {
				n.prefix = append(n.prefix, c.buildJSON(loc{t: pt, S: c.step(l.S, stepElem, ""), inh: act, role: roleElem, path: l.path + "[]", undeclared: l.undeclared}))
			}
		}
		n.elem = c.buildJSON(loc{t: et, S: c.step(l.S, stepElem, ""), inh: act, role: roleElem, path: l.path + "[]", undeclared: l.undeclared || arrT == nil})
	}
	return n
}

// jsonBranch returns t's object (k == kRecord, also matching kMap) or array
// type: t itself or one of its union branches; nil when t has none.
func jsonBranch(t *stype, k kind) *stype {
	if t == nil {
		return nil
	}
	match := func(x *stype) bool { return x.kind == k || k == kRecord && x.kind == kMap }
	if match(t) {
		return t
	}
	if t.kind == kUnion {
		for _, b := range t.branches {
			if match(b) {
				return b
			}
		}
	}
	return nil
}

// prune marks the nodes that touch something and cuts the others off, so that
// masking skips them without decoding. Recursive schemas make the plan a
// graph: touching spreads from the acting nodes to their parents along
// reversed edges, in time linear in the plan's size (a fixed point over all
// nodes took quadratic time on long chains of $refs).
func (c *compiler) prune(root *pnode) *pnode {
	parents := make(map[*pnode][]*pnode, len(c.nodes))
	var queue []*pnode
	for _, n := range c.nodes {
		n.children(func(ch *pnode) {
			if ch != nil {
				parents[ch] = append(parents[ch], n)
			}
		})
		if n.mode != modeWalk {
			n.touches = true
			queue = append(queue, n)
		}
	}
	for q := 0; q < len(queue); q++ {
		for _, p := range parents[queue[q]] {
			if !p.touches {
				p.touches = true
				queue = append(queue, p)
			}
		}
	}
	keep := func(p **pnode) {
		if *p != nil && !(*p).touches {
			*p = nil
		}
	}
	for _, n := range c.nodes {
		for i := range n.fields {
			keep(&n.fields[i])
		}
		for i := range n.branches {
			keep(&n.branches[i])
		}
		for k, ch := range n.names {
			if ch != nil && !ch.touches {
				n.names[k] = nil
			}
		}
		for i := range n.prefix {
			keep(&n.prefix[i])
		}
		for i := range n.patterns {
			keep(&n.patterns[i].n)
		}
		keep(&n.patAll)
		keep(&n.other)
		keep(&n.elem)
		if n.patAll == nil && n.other == nil && !slices.ContainsFunc(n.patterns, func(p patChild) bool { return p.n != nil }) {
			n.patterns = nil // every member they would choose between is skipped
		}
		// A nil name makes a JSON member that a schema declares skip rather
		// than take the node of undeclared members. Without such a node, and
		// for Avro maps, skipping is what happens anyway.
		if !c.json || n.other == nil && n.patterns == nil {
			for k, ch := range n.names {
				if ch == nil {
					delete(n.names, k)
				}
			}
		}
		if len(n.names) == 0 {
			n.names = nil
		}
		if n.fields != nil && !slices.ContainsFunc(n.fields, func(p *pnode) bool { return p != nil }) {
			n.fields = nil
		}
	}
	keep(&root)
	return root
}

// leafProblem says why a leaf-wise action cannot apply to a scalar type, or "".
func leafProblem(r *Rule, t *stype) string {
	switch r.Action {
	case Redact:
		return ""
	case Hash:
		switch t.kind {
		case kString, kBytes, kFixed:
			return ""
		}
		return "hash needs a string, bytes or fixed field (a pseudonym is not a valid " + kindNames[t.kind] + "); use redact, generalize or bucket, or a more specific rule for this field"
	case Mask:
		switch t.kind {
		case kString:
			if t.logical == "uuid" {
				return "masking would make the uuid invalid; use hash or redact"
			}
			return ""
		case kBytes, kFixed:
			if c := r.maskChar(); len(c) != 1 {
				return "mask_char must be an ASCII character for bytes fields"
			}
			return ""
		}
		return "mask needs a string or bytes field; use redact, generalize or bucket"
	case Generalize:
		switch {
		case t.isTimestamp():
			if r.Truncate == "" {
				return "a timestamp needs truncate (hour, day, month or year)"
			}
			if t.logical == "date" && r.Truncate == "hour" {
				return "a date has no hours; truncate to day, month or year"
			}
		case t.isNumber():
			if r.Precision == nil {
				return "a number needs precision"
			}
		case t.kind == kString:
			if r.Truncate == "" {
				return "a string needs truncate (the string must hold an RFC 3339 timestamp)"
			}
		default:
			return "generalize needs a number or a timestamp"
		}
		return ""
	case Bucket:
		if !t.isNumber() || t.isTimestamp() {
			return "bucket needs a numeric field"
		}
		for _, b := range r.Buckets {
			if msg := numberFits(b.Replacement, t); msg != "" {
				return "replacement " + literal(b.Replacement) + ": " + msg
			}
		}
		return ""
	}
	return ""
}

// jsonLeafProblem is leafProblem for JSON Schema types, which may be unions of
// kinds; a rule must suit at least one non-null kind. nil types are checked per
// value when masking.
func jsonLeafProblem(r *Rule, t *stype) string {
	if t == nil || r.Action == Redact {
		return ""
	}
	switch t.kind {
	case kRecord, kMap, kArray, kAny:
		return ""
	case kEnum:
		return r.Action.String() + " cannot produce a value of the enum; use redact or replace"
	case kUnion:
		first := ""
		for _, b := range t.branches {
			if b.kind == kNull {
				continue
			}
			msg := jsonLeafProblem(r, b)
			if msg == "" {
				return ""
			}
			if first == "" {
				first = msg
			}
		}
		return first
	}
	return leafProblem(r, t)
}

// String returns the action's name.
func (a Action) String() string { return string(a) }

// numberFits says why v cannot be a value of numeric type t, or "".
func numberFits(v any, t *stype) string {
	var f float64
	switch x := v.(type) {
	case int64:
		f = float64(x)
	case float64:
		f = x
	default:
		return "a " + scalarKind(v) + " cannot replace a number"
	}
	switch t.kind {
	case kInt:
		if f != math.Trunc(f) || f < math.MinInt32 || f > math.MaxInt32 {
			return "not a 32-bit integer"
		}
	case kLong:
		if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return "not a 64-bit integer"
		}
	}
	return ""
}

// avroDrop sets n to write null or the field's default.
func (c *compiler) avroDrop(n *pnode, l loc, cr *crule) {
	if c.proto {
		c.protoDrop(n, l, cr)
		return
	}
	t := l.t
	switch {
	case t.kind == kNull:
		n.konst = []byte{}
	case t.kind == kUnion && t.nullIdx >= 0:
		n.konst = appendLong(nil, int64(t.nullIdx))
	case l.role == roleField && l.f != nil && l.f.hasDefault:
		b, err := encodeAvro(nil, t, l.f.def)
		if err != nil {
			c.errorf(cr, ".action", "drop cannot write the default of %s: %v", c.field(l.path), err)
		}
		n.konst = b
	default:
		c.errorf(cr, ".action", "drop cannot apply to %s (%s): the type does not allow null and the field has no default; use redact, or add null or a default to the schema", c.field(l.path), t)
	}
}

// avroReplace sets n to write the rule's value.
func (c *compiler) avroReplace(n *pnode, l loc, cr *crule) {
	if c.proto {
		c.protoReplace(n, l, cr)
		return
	}
	v := cr.r.Value
	b, err := encodeAvro(nil, l.t, replaceValue(l.t, v))
	if err != nil {
		c.errorf(cr, ".value", "%s cannot replace %s (%s): %v", literal(v), c.field(l.path), l.t, err)
	}
	n.konst = b
}

// replaceValue adapts a policy value to an Avro type: strings become bytes for
// bytes and fixed types.
func replaceValue(t *stype, v any) any {
	s, ok := v.(string)
	if !ok {
		return v
	}
	k := t.kind
	if k == kUnion {
		for _, b := range t.branches {
			if b.kind == kString || b.kind == kEnum {
				return v
			}
		}
		for _, b := range t.branches {
			if b.kind == kBytes || b.kind == kFixed && b.size == len(s) {
				k = b.kind
				break
			}
		}
	}
	if k == kBytes || k == kFixed {
		return []byte(s)
	}
	return v
}

// jsonDrop sets n to write null or the default, or to delete the member.
func (c *compiler) jsonDrop(n *pnode, l loc, cr *crule) {
	t := l.t
	switch {
	case t != nil && t.kind != kAny && t.nullable():
		n.konst = []byte("null")
	case l.role == roleField && l.f != nil && l.f.hasDefault:
		n.konst = l.f.def.([]byte)
	case l.role == roleField && (l.f == nil || !l.f.required):
		n.del = true
	case t == nil || t.kind == kAny:
		n.konst = []byte("null")
	default:
		c.errorf(cr, ".action", "drop cannot apply to %s (%s): it is required, does not allow null and has no default; use redact, or change the schema", c.field(l.path), t)
	}
}

// jsonReplace sets n to write the rule's value, checking it against the
// schema's type when there is one.
func (c *compiler) jsonReplace(n *pnode, l loc, cr *crule) {
	v := cr.r.Value
	text, _ := json.Marshal(v)
	n.konst = text
	if l.t == nil || l.t.kind == kAny {
		return
	}
	if msg := jsonFits(v, string(text), l.t); msg != "" {
		c.errorf(cr, ".value", "%s cannot replace %s (%s): %s", literal(v), c.field(l.path), l.t, msg)
	}
}

// jsonFits says why v (whose JSON text is text) is not a value of t, or "".
func jsonFits(v any, text string, t *stype) string {
	switch t.kind {
	case kAny:
		return ""
	case kUnion:
		first := ""
		for _, b := range t.branches {
			msg := jsonFits(v, text, b)
			if msg == "" {
				return ""
			}
			if first == "" {
				first = msg
			}
		}
		return first
	case kEnum:
		if slices.Contains(t.symbols, text) {
			return ""
		}
		return "not one of the enum's values " + strings.Join(t.symbols, ", ")
	case kString:
		if _, ok := v.(string); ok {
			return ""
		}
	case kBool:
		if _, ok := v.(bool); ok {
			return ""
		}
	case kLong, kDouble:
		return numberFits(v, t)
	}
	return "want " + article(t.String())
}

// article prefixes a noun with "a" or "an".
func article(s string) string {
	if s != "" && strings.ContainsRune("aeiou", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}
