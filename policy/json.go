package policy

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// MaskJSON masks one JSON record.
//
// It is a targeted rewrite, not a decode and re-marshal: one validating pass
// over the document follows the compiled plan, skips members no rule touches
// (checking their syntax), and replaces only the byte spans of values it
// changes, copying everything else — key order, whitespace, number spelling,
// escapes — as it is. A dropped member that the schema does not require (or
// any member, without a schema) is deleted together with its comma.
//
// When the plan touches nothing the document is returned as it is, without
// being parsed. The returned slice may be doc itself when no value changed.
// The error is nil or a *Violation.
func (p *Plan) MaskJSON(doc []byte) ([]byte, Result, error) {
	if p.static != nil {
		return nil, Result{}, p.static
	}
	if p.root == nil && p.raw == nil {
		return doc, Result{}, nil
	}
	if p.format != JSON {
		return nil, Result{}, &Violation{Reason: ReasonUndecodable, Detail: "MaskJSON called on a plan for " + string(p.format) + " records"}
	}
	var stack [16][]byte
	r := jsonRun{p: p, in: doc, path: stack[:0]}
	if p.part == Key {
		r.path = append(r.path, keySeg) // paths read "key.customer_id"
	}
	r.ws()
	if !r.value(p.root) {
		return nil, Result{}, r.viol
	}
	r.ws()
	if r.pos != len(doc) {
		r.fail("data after the JSON value")
		return nil, Result{}, r.viol
	}
	res := Result{Touches: r.touches}
	if r.hashed {
		res.KeyID = p.keyID
	}
	if r.out == nil {
		return doc, res, nil
	}
	return append(r.out, doc[r.flushed:]...), res, nil
}

// jsonRun is the state of masking one JSON document.
type jsonRun struct {
	p       *Plan
	in      []byte
	pos     int
	out     []byte
	flushed int
	path    [][]byte
	pbuf    []byte // scratch for paths
	touches []Touch
	hashed  bool
	depth   int
	viol    *Violation
}

func (r *jsonRun) fail(msg string) bool {
	if r.viol == nil {
		r.viol = &Violation{Reason: ReasonUndecodable, Detail: "at byte " + strconv.Itoa(r.pos) + ": " + msg}
	}
	return false
}

func (r *jsonRun) pathString() string { return string(r.appendPath(nil)) }

// appendPath appends the current path, as in "items[].card".
func (r *jsonRun) appendPath(b []byte) []byte {
	for i, s := range r.path {
		if i > 0 && string(s) != "[]" {
			b = append(b, '.')
		}
		b = append(b, s...)
	}
	return b
}

func (r *jsonRun) violate(n *pnode, reason string) bool {
	r.viol = &Violation{Reason: reason, FieldPath: r.pathString(), Rule: n.act.ref}
	return false
}

// touched counts one changed value.
func (r *jsonRun) touched(n *pnode) {
	r.pbuf = r.appendPath(r.pbuf[:0])
	a := n.act
	if a.r.Action == Hash {
		r.hashed = true
	}
	for i := range r.touches {
		t := &r.touches[i]
		if t.Path == string(r.pbuf) && t.Rule == a.i && t.Policy == a.p.Name {
			t.Count++
			return
		}
	}
	if r.touches == nil {
		r.touches = make([]Touch, 0, 4)
	}
	r.touches = append(r.touches, Touch{Path: string(r.pbuf), Action: a.r.Action, Policy: a.p.Name, Version: a.p.Version, Rule: a.i, Count: 1})
}

func (r *jsonRun) edit(start int) {
	if r.out == nil {
		r.out = make([]byte, 0, len(r.in)+64)
	}
	r.out = append(r.out, r.in[r.flushed:start]...)
}

func (r *jsonRun) done(end int) { r.flushed = end }

func (r *jsonRun) ws() {
	for r.pos < len(r.in) {
		switch r.in[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

func (r *jsonRun) peek() byte {
	if r.pos < len(r.in) {
		return r.in[r.pos]
	}
	return 0
}

// value processes the value at pos with plan node n (nil: skip it).
func (r *jsonRun) value(n *pnode) bool {
	if r.pos >= len(r.in) {
		return r.fail("unexpected end of data")
	}
	c := r.in[r.pos]
	if n == nil {
		return r.skip()
	}
	switch n.mode {
	case modeBlock:
		if c == 'n' {
			return r.literal("null")
		}
		if !r.skip() {
			return false
		}
		return r.violate(n, ReasonBlocked)
	case modeConst:
		start := r.pos
		if !r.skip() {
			return false
		}
		if c == 'n' && n.act.r.Action == Drop {
			return true
		}
		r.edit(start)
		r.out = append(r.out, n.konst...)
		r.done(r.pos)
		r.touched(n)
		return true
	}
	if c != '{' && c != '[' {
		if n.mode == modeLeaf {
			return r.leaf(n)
		}
		return r.skip()
	}
	if n.mode == modeLeaf {
		if n.act.r.Action == Redact && n.t != nil && n.t.nullable() {
			// As in Avro: redact writes null where the type allows it.
			start := r.pos
			if !r.skip() {
				return false
			}
			r.edit(start)
			r.out = append(r.out, "null"...)
			r.done(r.pos)
			r.touched(n)
			return true
		}
		if c == '{' && !n.objOK || c == '[' && !n.arrOK {
			// The document does not match its schema here: the rule
			// cannot be applied safely.
			return r.violate(n, ReasonUnmaskable)
		}
	}
	if c == '{' {
		return r.object(n)
	}
	return r.array(n)
}

func (r *jsonRun) enter() bool {
	r.depth++
	if r.depth > maxDepth {
		return r.fail("nested too deeply")
	}
	return true
}

func (r *jsonRun) object(n *pnode) bool {
	if !r.enter() {
		return false
	}
	ok := r.objectBody(n)
	r.depth--
	return ok
}

func (r *jsonRun) objectBody(n *pnode) bool {
	r.pos++ // {
	r.ws()
	if r.peek() == '}' {
		r.pos++
		return true
	}
	kept := false // a member before this one is still in the output
	comma := -1   // position of the comma before this member
	for {
		r.ws()
		keyStart := r.pos
		key, ok := r.keyBytes()
		if !ok {
			return false
		}
		r.ws()
		if r.peek() != ':' {
			return r.fail("want ':' after an object key")
		}
		r.pos++
		r.ws()
		child := n.other
		if c, ok := n.names[string(key)]; ok {
			child = c
		} else if n.patterns != nil {
			child = n.patternChild(key)
		}
		if child != nil {
			r.path = append(r.path, key)
		}
		if child != nil && child.del {
			isNull := r.peek() == 'n'
			if !r.skip() {
				return false
			}
			end := r.pos
			r.ws()
			if !isNull {
				r.touched(child)
			}
			r.path = r.path[:len(r.path)-1]
			switch {
			case kept: // remove from the comma before the member
				r.edit(comma)
				r.done(end)
			case r.peek() == ',': // a leading member: remove it with the comma after it
				r.edit(keyStart)
				r.pos++
				r.done(r.pos)
				continue
			default: // the only member left
				r.edit(keyStart)
				r.done(end)
			}
		} else {
			if !r.value(child) {
				return false
			}
			if child != nil {
				r.path = r.path[:len(r.path)-1]
			}
			kept = true
		}
		r.ws()
		switch r.peek() {
		case ',':
			comma = r.pos
			r.pos++
		case '}':
			r.pos++
			return true
		default:
			return r.fail("want ',' or '}' in an object")
		}
	}
}

func (r *jsonRun) array(n *pnode) bool {
	if !r.enter() {
		return false
	}
	ok := r.arrayBody(n)
	r.depth--
	return ok
}

func (r *jsonRun) arrayBody(n *pnode) bool {
	r.pos++ // [
	r.ws()
	if r.peek() == ']' {
		r.pos++
		return true
	}
	for i := 0; ; i++ {
		r.ws()
		child := n.elem
		if i < len(n.prefix) {
			child = n.prefix[i]
		}
		if child != nil {
			r.path = append(r.path, elemSeg)
		}
		if !r.value(child) {
			return false
		}
		if child != nil {
			r.path = r.path[:len(r.path)-1]
		}
		r.ws()
		switch r.peek() {
		case ',':
			r.pos++
		case ']':
			r.pos++
			return true
		default:
			return r.fail("want ',' or ']' in an array")
		}
	}
}

// skip reads past one value, checking its syntax.
func (r *jsonRun) skip() bool {
	switch r.peek() {
	case '{':
		if !r.enter() {
			return false
		}
		r.pos++
		r.ws()
		if r.peek() == '}' {
			r.pos++
			r.depth--
			return true
		}
		for {
			r.ws()
			if !r.skipString() {
				return false
			}
			r.ws()
			if r.peek() != ':' {
				return r.fail("want ':' after an object key")
			}
			r.pos++
			r.ws()
			if !r.skip() {
				return false
			}
			r.ws()
			switch r.peek() {
			case ',':
				r.pos++
			case '}':
				r.pos++
				r.depth--
				return true
			default:
				return r.fail("want ',' or '}' in an object")
			}
		}
	case '[':
		if !r.enter() {
			return false
		}
		r.pos++
		r.ws()
		if r.peek() == ']' {
			r.pos++
			r.depth--
			return true
		}
		for {
			r.ws()
			if !r.skip() {
				return false
			}
			r.ws()
			switch r.peek() {
			case ',':
				r.pos++
			case ']':
				r.pos++
				r.depth--
				return true
			default:
				return r.fail("want ',' or ']' in an array")
			}
		}
	case '"':
		return r.skipString()
	case 't':
		return r.literal("true")
	case 'f':
		return r.literal("false")
	case 'n':
		return r.literal("null")
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		_, ok := r.number()
		return ok
	}
	if r.pos >= len(r.in) {
		return r.fail("unexpected end of data")
	}
	return r.fail("invalid character at the start of a value")
}

func (r *jsonRun) literal(lit string) bool {
	if !strings.HasPrefix(string(r.in[r.pos:min(len(r.in), r.pos+len(lit))]), lit) {
		return r.fail("invalid literal")
	}
	r.pos += len(lit)
	return true
}

// skipString reads past a string, checking escapes and control characters. It
// returns whether the string has escapes through r.esc.
func (r *jsonRun) skipString() bool {
	_, _, ok := r.rawString()
	return ok
}

// rawString reads a string and returns its contents between the quotes and
// whether they contain escapes.
func (r *jsonRun) rawString() ([]byte, bool, bool) {
	if r.peek() != '"' {
		return nil, false, r.fail("want a string")
	}
	r.pos++
	start := r.pos
	esc := false
	for r.pos < len(r.in) {
		c := r.in[r.pos]
		switch {
		case c == '"':
			s := r.in[start:r.pos]
			r.pos++
			return s, esc, true
		case c == '\\':
			esc = true
			if r.pos+1 >= len(r.in) {
				return nil, false, r.fail("unexpected end of data in a string")
			}
			switch r.in[r.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				r.pos += 2
			case 'u':
				if r.pos+6 > len(r.in) {
					return nil, false, r.fail("unexpected end of data in a string")
				}
				for _, h := range r.in[r.pos+2 : r.pos+6] {
					if !isHex(h) {
						return nil, false, r.fail("invalid \\u escape")
					}
				}
				r.pos += 6
			default:
				return nil, false, r.fail("invalid escape in a string")
			}
		case c < 0x20:
			return nil, false, r.fail("control character in a string")
		default:
			r.pos++
		}
	}
	return nil, false, r.fail("unexpected end of data in a string")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

var elemSeg, keySeg = []byte("[]"), []byte("key")

// keyBytes reads a string (an object key or a value) and returns it
// unescaped, without copying when it has no escapes.
func (r *jsonRun) keyBytes() ([]byte, bool) {
	start := r.pos
	raw, esc, ok := r.rawString()
	if !ok || !esc {
		return raw, ok
	}
	var s string
	if err := json.Unmarshal(r.in[start:r.pos], &s); err != nil {
		return nil, r.fail("invalid string")
	}
	return []byte(s), true
}

// number reads a number and returns its text.
func (r *jsonRun) number() ([]byte, bool) {
	start := r.pos
	if r.peek() == '-' {
		r.pos++
	}
	digits := func() int {
		n := 0
		for r.pos < len(r.in) && r.in[r.pos] >= '0' && r.in[r.pos] <= '9' {
			r.pos++
			n++
		}
		return n
	}
	switch c := r.peek(); {
	case c == '0':
		r.pos++
	case c >= '1' && c <= '9':
		digits()
	default:
		return nil, r.fail("invalid number")
	}
	if r.peek() == '.' {
		r.pos++
		if digits() == 0 {
			return nil, r.fail("invalid number")
		}
	}
	if c := r.peek(); c == 'e' || c == 'E' {
		r.pos++
		if c := r.peek(); c == '+' || c == '-' {
			r.pos++
		}
		if digits() == 0 {
			return nil, r.fail("invalid number")
		}
	}
	return r.in[start:r.pos], true
}

// leaf applies a leaf-wise action to a scalar.
func (r *jsonRun) leaf(n *pnode) bool {
	start := r.pos
	rule, t := n.act.r, n.t
	c := r.peek()
	if c == 'n' {
		return r.literal("null")
	}
	nullable := t != nil && t.nullable()
	switch c {
	case '"':
		s, ok := r.keyBytes()
		if !ok {
			return false
		}
		uuid := t != nil && stringFormat(t) == "uuid"
		r.edit(start)
		switch rule.Action {
		case Redact:
			switch {
			case nullable:
				r.out = append(r.out, "null"...)
			case t != nil && t.kind == kEnum:
				r.out = append(r.out, t.symbols[0]...)
			case uuid:
				r.out = append(r.out, `"`+zeroUUID+`"`...)
			default:
				r.out = append(r.out, `""`...)
			}
		case Hash:
			r.out = append(r.out, '"')
			if uuid {
				r.out = r.p.appendHashUUID(r.out, s)
			} else {
				r.out = r.p.appendHashHex(r.out, s)
			}
			r.out = append(r.out, '"')
		case Mask:
			r.out = appendJSONString(r.out, appendMasked(r.pbuf[:0], s, rule))
		case Generalize:
			v, ok := truncString(string(s), rule.Truncate)
			if rule.Truncate == "" || !ok {
				return r.violate(n, ReasonUnmaskable)
			}
			r.out = appendJSONString(r.out, []byte(v))
		default:
			return r.violate(n, ReasonUnmaskable)
		}
	case 't', 'f':
		if !r.skip() {
			return false
		}
		if rule.Action != Redact {
			return r.violate(n, ReasonUnmaskable)
		}
		r.edit(start)
		if nullable {
			r.out = append(r.out, "null"...)
		} else {
			r.out = append(r.out, "false"...)
		}
	default:
		num, ok := r.number()
		if !ok {
			return false
		}
		var rep []byte
		switch rule.Action {
		case Redact:
			rep = []byte("0")
			if nullable {
				rep = []byte("null")
			}
		case Generalize:
			if rule.Precision == nil {
				return r.violate(n, ReasonUnmaskable)
			}
			rep = generalizeNumber(num, *rule.Precision)
		case Bucket:
			f, err := strconv.ParseFloat(string(num), 64)
			if err != nil {
				return r.violate(n, ReasonUnmaskable)
			}
			v, ok := bucketOf(f, rule.Buckets)
			if !ok {
				return r.violate(n, ReasonUnmaskable)
			}
			rep, _ = json.Marshal(v)
		default:
			return r.violate(n, ReasonUnmaskable)
		}
		r.edit(start)
		r.out = append(r.out, rep...)
	}
	r.done(r.pos)
	r.touched(n)
	return true
}

// stringFormat returns the format of t's string kind ("uuid", "date-time").
func stringFormat(t *stype) string {
	if t.kind == kUnion {
		for _, b := range t.branches {
			if b.kind == kString {
				return b.logical
			}
		}
	}
	return t.logical
}

// generalizeNumber rounds a JSON number, keeping integers integers.
func generalizeNumber(num []byte, prec int) []byte {
	s := string(num)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.AppendInt(nil, roundInt(i, prec, math.MinInt64, math.MaxInt64), 10)
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return []byte("0")
	}
	f = roundTo(f, prec)
	if math.Abs(f) < 1e21 {
		return strconv.AppendFloat(nil, f, 'f', -1, 64)
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64)
}
