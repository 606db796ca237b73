package policy

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tributary-dev/tributary/internal/protoschema"
)

// MaskProto masks one Protobuf record: payload is the message's encoding
// after Confluent's magic byte, schema id and message indexes (the caller
// strips them and puts them back; masking never changes the writer schema,
// so they stay valid).
//
// Like MaskAvro it rewrites the wire format in place of decoding it: it reads
// the message's fields in wire order, copies the ones no rule touches as
// they are, and re-encodes only the values it changes, fixing the length
// prefix of every enclosing message whose length changed. Repeated fields
// may come packed or not, fields in any order and more than once, as
// protobuf allows; each occurrence is masked. drop removes a field from the
// wire, so the reader sees its default (proto3: zero, empty or unset). Map
// keys are not masked: rules address map values.
//
// Every field of the record, at every depth (in messages no rule touches,
// repeated elements, map entries and values, and groups too), must be
// declared by the writer schema's message at its position, with the wire
// type the schema gives it: a field the schema does not declare (a newer
// writer's, a reserved number, an extension) could carry personal data no
// rule can reach. Such a field, a field whose wire type contradicts the
// schema, malformed framing, or an invalid UTF-8 string a rule reads make
// the record undecodable; the violation names the field number and where
// it is, never its value.
//
// When the plan touches nothing, payload is returned as it is without being
// decoded. The returned slice may be payload itself when no value changed.
// The error is nil or a *Violation.
func (p *Plan) MaskProto(payload []byte) ([]byte, Result, error) {
	if p.static != nil {
		return nil, Result{}, p.static
	}
	if p.root == nil {
		return payload, Result{}, nil
	}
	if p.format != Protobuf {
		return nil, Result{}, &Violation{Reason: ReasonUndecodable, Detail: "MaskProto called on a plan for " + string(p.format) + " records"}
	}
	var small [16]int32
	r := protoRun{p: p, in: payload, lim: len(payload)}
	if len(p.touches) <= len(small) {
		r.counts = small[:len(p.touches)]
	} else {
		r.counts = make([]int32, len(p.touches))
	}
	if !r.root(p.root) {
		r.settle(p.root.path)
		if r.viol == nil {
			r.fail("the record cannot be masked")
		}
		return nil, Result{}, r.viol
	}
	res := p.result(r.counts)
	if r.out == nil {
		return payload, res, nil
	}
	return append(r.out, payload[r.flushed:]...), res, nil
}

// protoRun is the state of masking one Protobuf record. lim is the end of
// the message being read; every read stays below it.
type protoRun struct {
	p       *Plan
	in      []byte
	pos     int
	lim     int
	out     []byte // nil until the first change
	flushed int    // in[:flushed] is accounted for in out
	counts  []int32
	depth   int
	viol    *Violation
	// fault is a field the plan does not touch that the writer schema does
	// not declare or whose wire type contradicts it; settle turns it into
	// viol once the walk has unwound to a plan node and knows the path.
	fault  *protoFault
	keyBuf [24]byte // an integer map key as text
}

// protoFault is an undeclared or ill-typed field found below the plan's
// nodes, where no path is at hand: the walk collects the path while it
// unwinds rather than building it for every field it descends into.
type protoFault struct {
	// what is "field 99 is not declared in leak.Payment" for an
	// undeclared field; for a declared one (named), what is wrong with it,
	// to follow its path.
	what  string
	named bool
	trail []string // path steps below the plan node, innermost first
}

// undeclared reports field num, which message t does not declare.
func (r *protoRun) undeclared(t *stype, num int32) bool {
	what := fmt.Sprintf("field %d is not declared in %s", num, t.name)
	for _, x := range t.pb.ext {
		if num >= x.Start && num <= x.End {
			what += " (an extension: extensions are not masked)"
			break
		}
	}
	r.fault = &protoFault{what: what}
	return false
}

// undeclaredInEntry reports field num in an entry of map type mt, which
// declares only its key (1) and value (2).
func (r *protoRun) undeclaredInEntry(mt *stype, num int32) bool {
	r.fault = &protoFault{what: fmt.Sprintf("field %d is not declared in %s", num, mt.pb.entry)}
	return false
}

// mismatch reports a declared field with another wire type than the
// schema's (what it says follows the field's path).
func (r *protoRun) mismatch(format string, args ...any) bool {
	r.fault = &protoFault{what: fmt.Sprintf(format, args...), named: true}
	return false
}

// step adds a path step to the pending fault, if any.
func (r *protoRun) step(s string) {
	if r.fault != nil {
		r.fault.trail = append(r.fault.trail, s)
	}
}

// settle makes the pending fault, found below the plan node at path base,
// the run's violation.
func (r *protoRun) settle(base string) {
	f := r.fault
	if f == nil {
		return
	}
	r.fault = nil
	if r.viol != nil {
		return
	}
	path := base
	for i := len(f.trail) - 1; i >= 0; i-- {
		path = join2(path, f.trail[i])
	}
	v := &Violation{Reason: ReasonUndecodable, Detail: f.what}
	switch {
	case f.named:
		v.FieldPath = path
		v.Detail = "field " + path + " " + f.what
	case path != "":
		v.Detail += " (at " + path + ")"
	}
	r.viol = v
}

func (r *protoRun) fail(format string, args ...any) bool {
	if r.viol == nil {
		r.viol = &Violation{Reason: ReasonUndecodable, Detail: fmt.Sprintf("at byte %d: ", r.pos) + fmt.Sprintf(format, args...)}
	}
	return false
}

// failAt is fail for a problem with the field n.
func (r *protoRun) failAt(n *pnode, format string, args ...any) bool {
	r.fail(format, args...)
	r.viol.FieldPath = n.path
	return false
}

func (r *protoRun) violate(n *pnode, reason string) bool {
	r.viol = &Violation{Reason: reason, FieldPath: n.path, Rule: n.act.ref}
	return false
}

func (r *protoRun) edit(start int) {
	if r.out == nil {
		// Room for a few hashes (64 characters each) before growing.
		r.out = make([]byte, 0, 2*len(r.in)+128)
	}
	r.out = append(r.out, r.in[r.flushed:start]...)
}

func (r *protoRun) done(end int) { r.flushed = end }

func (r *protoRun) count(n *pnode) { r.counts[n.touch]++ }

func (r *protoRun) enter() bool {
	r.depth++
	if r.depth > maxDepth {
		return r.fail("nested deeper than %d", maxDepth)
	}
	return true
}

func (r *protoRun) varint() (uint64, bool) {
	var v uint64
	for s := uint(0); s < 70; s += 7 {
		if r.pos >= r.lim {
			return 0, r.fail("%v", errShort)
		}
		b := r.in[r.pos]
		r.pos++
		v |= uint64(b&0x7f) << s
		if b < 0x80 {
			return v, true
		}
	}
	return 0, r.fail("varint longer than 10 bytes")
}

// tag reads a field key.
func (r *protoRun) tag() (int32, int, bool) {
	v, ok := r.varint()
	if !ok {
		return 0, 0, false
	}
	num, wt := v>>3, int(v&7)
	if num < 1 || num > 1<<29-1 {
		return 0, 0, r.fail("invalid field number %d", num)
	}
	if wt > 5 {
		return 0, 0, r.fail("invalid wire type %d", wt)
	}
	return int32(num), wt, true
}

func (r *protoRun) span(n int) ([]byte, bool) {
	if n < 0 || n > r.lim-r.pos {
		return nil, r.fail("%v", errShort)
	}
	b := r.in[r.pos : r.pos+n]
	r.pos += n
	return b, true
}

// bytes reads a length-delimited value.
func (r *protoRun) bytes() ([]byte, bool) {
	n, ok := r.varint()
	if !ok {
		return nil, false
	}
	if n > uint64(r.lim-r.pos) {
		return nil, r.fail("length %d exceeds the message", n)
	}
	return r.span(int(n))
}

// skip reads past a value of wire type wt of field num, checking its
// framing only.
func (r *protoRun) skip(num int32, wt int) bool {
	switch wt {
	case 0:
		_, ok := r.varint()
		return ok
	case 1:
		_, ok := r.span(8)
		return ok
	case 2:
		_, ok := r.bytes()
		return ok
	case 5:
		_, ok := r.span(4)
		return ok
	case 3:
		if !r.enter() {
			return false
		}
		for {
			n, w, ok := r.tag()
			if !ok {
				return false
			}
			if w == 4 {
				r.depth--
				if n != num {
					return r.fail("end of group %d inside group %d", n, num)
				}
				return true
			}
			if !r.skip(n, w) {
				return false
			}
		}
	}
	return r.fail("unexpected end of group %d", num)
}

// subMark is an open length-delimited value whose length prefix close
// rewrites when masking changed the length.
type subMark struct {
	outLen, outBody int // where the prefix and the body start in out
	start, end      int // the body in in
	lim             int // the enclosing limit, restored by close
}

// open reads a length prefix and starts a value that may change length:
// everything before its body is copied to out, so that close can fix the
// prefix in place.
func (r *protoRun) open() (subMark, bool) {
	lenStart := r.pos
	n, ok := r.varint()
	if !ok {
		return subMark{}, false
	}
	if n > uint64(r.lim-r.pos) {
		return subMark{}, r.fail("length %d exceeds the message", n)
	}
	r.edit(r.pos)
	r.done(r.pos)
	m := subMark{outLen: len(r.out) - (r.pos - lenStart), outBody: len(r.out), start: r.pos, end: r.pos + int(n), lim: r.lim}
	r.lim = m.end
	return m, true
}

// close ends the value open started, once its body is read.
func (r *protoRun) close(m subMark) bool {
	if r.pos != m.end {
		return r.fail("%d bytes left over in a length-delimited value", m.end-r.pos)
	}
	r.edit(m.end)
	r.done(m.end)
	r.lim = m.lim
	n := len(r.out) - m.outBody
	if n == m.end-m.start {
		return true
	}
	var buf [binary.MaxVarintLen64]byte
	prefix := binary.AppendUvarint(buf[:0], uint64(n))
	if diff := len(prefix) - (m.outBody - m.outLen); diff > 0 {
		r.out = append(r.out, make([]byte, diff)...)
		copy(r.out[m.outBody+diff:], r.out[m.outBody:len(r.out)-diff])
	} else if diff < 0 {
		copy(r.out[m.outBody+diff:], r.out[m.outBody:])
		r.out = r.out[:len(r.out)+diff]
	}
	copy(r.out[m.outLen:], prefix)
	return true
}

func (r *protoRun) root(n *pnode) bool {
	switch {
	case n.mode == modeBlock:
		return r.violate(n, ReasonBlocked)
	case n.mode == modeWalk && n.t.kind == kRecord:
		return r.message(n, 0)
	case n.mode == modeLeaf && n.t.pb.timestamp:
		return r.timestamp(n)
	}
	return r.fail("the plan cannot mask the record as a whole")
}

// message masks the fields of a message up to r.lim, or, for a group
// (group != 0), up to its end-group key.
func (r *protoRun) message(n *pnode, group int32) bool {
	if !r.enter() {
		return false
	}
	t := n.t
	for {
		if r.pos >= r.lim {
			if group != 0 {
				return r.fail("group %d is not closed", group)
			}
			break
		}
		start := r.pos
		num, wt, ok := r.tag()
		if !ok {
			return false
		}
		if wt == 4 {
			if num != group {
				return r.fail("unexpected end of group %d", num)
			}
			break
		}
		i := t.pb.lookup(num)
		if i < 0 {
			r.undeclared(t, num)
			r.settle(n.path)
			return false
		}
		var child *pnode
		if n.fields != nil {
			child = n.fields[i]
		}
		if child == nil {
			if !r.check(t, i, num, wt) {
				r.settle(n.path)
				return false
			}
			continue
		}
		if !r.field(child, t.fields[i].t, t.pb.fields[i], start, num, wt) {
			return false
		}
	}
	r.depth--
	return true
}

// The strict walk: every field of a record must be declared by the writer
// schema's message at its position, with the wire type the schema gives it,
// even where no rule reaches. A field the schema does not know (a newer
// writer's, an extension, a reserved number) could carry personal data that
// no tag and no path can name, and a declared field written with another
// wire type could hide data a reader never shows; either makes the record
// undecodable. The walk descends into messages, groups and map values, and
// skips scalars by their wire type.

// declared checks the fields of a message of type t no rule touches up to
// r.lim, or, for a group (group != 0), up to its end-group key.
func (r *protoRun) declared(t *stype, group int32) bool {
	if !r.enter() {
		return false
	}
	for {
		if r.pos >= r.lim {
			if group != 0 {
				return r.fail("group %d is not closed", group)
			}
			break
		}
		num, wt, ok := r.tag()
		if !ok {
			return false
		}
		if wt == 4 {
			if num != group {
				return r.fail("unexpected end of group %d", num)
			}
			break
		}
		i := t.pb.lookup(num)
		if i < 0 {
			return r.undeclared(t, num)
		}
		if !r.check(t, i, num, wt) {
			return false
		}
	}
	r.depth--
	return true
}

// check reads past one occurrence (field num, wire type wt) of the field
// with index i of message t, which no rule touches, checking its wire type
// and descending into its messages.
func (r *protoRun) check(t *stype, i int, num int32, wt int) bool {
	f := &t.pb.fields[i]
	var ok bool
	switch {
	case wt == int(f.wire) && f.walk == nil:
		return r.skip(num, wt)
	case wt == int(f.wire) && wt == 3:
		ok = r.declared(f.walk, num)
	case wt == int(f.wire):
		ok = r.sub(f.walk)
	case wt == 2 && f.packed:
		ok = r.packedRun(int(f.wire))
	default:
		ok = r.mismatch("has wire type %d where the schema says %d", wt, f.wire)
	}
	if !ok && r.fault != nil {
		if r.fault.named && len(r.fault.trail) == 0 {
			// The field itself, not one of its elements.
			r.step(t.fields[i].name)
		} else {
			r.step(f.seg)
		}
	}
	return ok
}

// sub checks a length-delimited message or map entry of type t.
func (r *protoRun) sub(t *stype) bool {
	n, ok := r.varint()
	if !ok {
		return false
	}
	if n > uint64(r.lim-r.pos) {
		return r.fail("length %d exceeds the message", n)
	}
	lim := r.lim
	r.lim = r.pos + int(n)
	if t.kind == kMap {
		ok = r.entryFields(t)
	} else {
		ok = r.declared(t, 0)
	}
	r.lim = lim
	return ok
}

// entryFields checks the fields of an entry of map type mt up to r.lim:
// its key (1) and value (2), descending into a message value.
func (r *protoRun) entryFields(mt *stype) bool {
	vt := mt.elem
	vw, kw := wireOf(vt, false), mt.pb.key.WireType()
	for r.pos < r.lim {
		num, wt, ok := r.tag()
		if !ok {
			return false
		}
		switch {
		case wt == 4:
			return r.fail("unexpected end of group %d", num)
		case num == 1 && wt == kw:
			ok = r.skip(num, wt)
		case num == 1:
			return r.mismatch("has a map key of wire type %d where the schema says %d", wt, kw)
		case num == 2 && wt == vw && vt.kind == kRecord:
			if ok = r.sub(vt); !ok {
				r.step("*")
			}
		case num == 2 && wt == vw:
			ok = r.skip(num, wt)
		case num == 2:
			r.mismatch("has wire type %d where the schema says %d", wt, vw)
			r.step("*")
			return false
		default:
			return r.undeclaredInEntry(mt, num)
		}
		if !ok {
			return false
		}
	}
	return true
}

// packedRun reads a packed run of values of wire type w (0, 1 or 5),
// checking that it holds whole values.
func (r *protoRun) packedRun(w int) bool {
	b, ok := r.bytes()
	if !ok {
		return false
	}
	switch w {
	case 1:
		ok = len(b)%8 == 0
	case 5:
		ok = len(b)%4 == 0
	default:
		run := 0 // continuation bytes in a row
		for _, c := range b {
			if c < 0x80 {
				run = 0
			} else if run++; run == 10 {
				break
			}
		}
		ok = run == 0
	}
	if !ok {
		return r.mismatch("holds a packed run that ends inside a value")
	}
	return true
}

// wireOf is the wire type of a single value of t outside packed runs.
func wireOf(t *stype, group bool) int {
	switch {
	case t.kind == kRecord && group:
		return 3
	case t.kind == kRecord || t.kind == kMap:
		return 2
	}
	return t.pb.kind.WireType()
}

// packable reports whether values of t may come in packed runs.
func packable(t *stype) bool {
	return t.kind != kRecord && t.kind != kMap && t.pb.kind.Packable()
}

// field masks one occurrence of a field the plan touches: child is its
// node, ft its type, and the key (field num, wire type wt) started at start.
func (r *protoRun) field(child *pnode, ft *stype, fi pbField, start int, num int32, wt int) bool {
	var want int
	if ft.kind == kArray {
		want = wireOf(ft.elem, fi.group)
		if wt == 2 && packable(ft.elem) {
			want = 2
		}
	} else {
		want = wireOf(ft, fi.group)
	}
	if wt != want {
		return r.failAt(child, "field %s has wire type %d where the schema says %d", child.path, wt, want)
	}
	switch child.mode {
	case modeBlock:
		return r.violate(child, ReasonBlocked)
	case modeConst:
		valStart := r.pos
		if !r.skip(num, wt) {
			return false
		}
		if child.del {
			r.edit(start)
		} else {
			r.edit(valStart)
			r.out = append(r.out, child.konst...)
		}
		r.done(r.pos)
		r.count(child)
		return true
	}
	switch ft.kind {
	case kArray:
		if wt == 2 && packable(ft.elem) {
			m, ok := r.open()
			if !ok {
				return false
			}
			w := wireOf(ft.elem, false)
			for r.pos < r.lim {
				if !r.value(child.elem, ft.elem, w, num) {
					return false
				}
			}
			return r.close(m)
		}
		return r.value(child.elem, ft.elem, wt, num)
	case kMap:
		m, ok := r.open()
		if !ok {
			return false
		}
		return r.entry(child, ft) && r.close(m)
	}
	return r.value(child, ft, wt, num)
}

// value masks one value of type t (a field's, an element's or a map
// value's) with node n; wt is its wire type, num its field number (for
// groups).
func (r *protoRun) value(n *pnode, t *stype, wt int, num int32) bool {
	switch n.mode {
	case modeBlock:
		return r.violate(n, ReasonBlocked)
	case modeConst:
		start := r.pos
		if !r.skip(num, wt) {
			return false
		}
		r.edit(start)
		r.out = append(r.out, n.konst...)
		r.done(r.pos)
		r.count(n)
		return true
	case modeLeaf:
		if t.kind == kRecord {
			m, ok := r.open()
			if !ok {
				return false
			}
			return r.timestamp(n) && r.close(m)
		}
		return r.leaf(n, t)
	}
	if t.kind != kRecord {
		return r.failAt(n, "field %s: the plan cannot walk a %s", n.path, t)
	}
	if wt == 3 {
		return r.message(n, num)
	}
	m, ok := r.open()
	if !ok {
		return false
	}
	return r.message(n, 0) && r.close(m)
}

// entry masks the value of one map entry (key = 1, value = 2) up to r.lim,
// with the node for its key. The key is found first: the fields of an entry
// may come in any order.
func (r *protoRun) entry(n *pnode, mt *stype) bool {
	key, ok := r.mapKey(mt)
	if !ok {
		r.settle(n.path)
		return false
	}
	child := n.other
	if n.names != nil {
		if c, ok := n.names[string(key)]; ok {
			child = c
		}
	}
	vt := mt.elem
	if child == nil {
		if vt.kind != kRecord {
			r.pos = r.lim // mapKey checked the entry's fields
			return true
		}
		if !r.entryFields(mt) {
			r.settle(n.path)
			return false
		}
		return true
	}
	for r.pos < r.lim {
		start := r.pos
		num, wt, ok := r.tag()
		if !ok {
			return false
		}
		if num != 2 {
			// The key: mapKey checked it.
			if !r.skip(num, wt) {
				return false
			}
			continue
		}
		if child.mode == modeConst && child.del {
			if !r.skip(num, wt) {
				return false
			}
			r.edit(start)
			r.done(r.pos)
			r.count(child)
			continue
		}
		if !r.value(child, vt, wt, num) {
			return false
		}
	}
	return true
}

// mapKey reads the key of the entry of map type mt at r.pos (the last key
// field, or the default key when there is none) as the text rules name keys
// by, leaving r.pos where it was, and checks that the entry holds only its
// key and value, with their wire types. The text is valid until the next
// call.
func (r *protoRun) mapKey(mt *stype) ([]byte, bool) {
	k := mt.pb.key
	vw := wireOf(mt.elem, false)
	start := r.pos
	key := r.keyBuf[:0]
	switch k {
	case protoschema.String:
	case protoschema.Bool:
		key = append(key, "false"...)
	default:
		key = append(key, '0')
	}
	for r.pos < r.lim {
		num, wt, ok := r.tag()
		if !ok {
			return nil, false
		}
		switch {
		case wt == 4:
			return nil, r.fail("unexpected end of group %d", num)
		case num == 2 && wt == vw:
			if !r.skip(num, wt) {
				return nil, false
			}
			continue
		case num == 2:
			r.mismatch("has wire type %d where the schema says %d", wt, vw)
			r.step("*")
			return nil, false
		case num != 1:
			return nil, r.undeclaredInEntry(mt, num)
		case wt != k.WireType():
			return nil, r.mismatch("has a map key of wire type %d where the schema says %d", wt, k.WireType())
		}
		var u uint64
		switch wt {
		case 2:
			b, ok := r.bytes()
			if !ok {
				return nil, false
			}
			key = b
			continue
		case 0:
			u, ok = r.varint()
		case 1:
			var b []byte
			if b, ok = r.span(8); ok {
				u = binary.LittleEndian.Uint64(b)
			}
		case 5:
			var b []byte
			if b, ok = r.span(4); ok {
				u = uint64(binary.LittleEndian.Uint32(b))
			}
		}
		if !ok {
			return nil, false
		}
		key = appendProtoIntText(r.keyBuf[:0], k, u)
	}
	r.pos = start
	return key, true
}

// appendProtoIntText appends an integer or bool map key as text.
func appendProtoIntText(dst []byte, k protoschema.Kind, u uint64) []byte {
	switch k {
	case protoschema.Bool:
		if u != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case protoschema.Uint32, protoschema.Fixed32:
		return strconv.AppendUint(dst, uint64(uint32(u)), 10)
	case protoschema.Uint64, protoschema.Fixed64:
		return strconv.AppendUint(dst, u, 10)
	}
	return strconv.AppendInt(dst, protoSigned(k, u), 10)
}

// protoSigned decodes the raw wire value of a signed integer kind.
func protoSigned(k protoschema.Kind, u uint64) int64 {
	switch k {
	case protoschema.Int32, protoschema.Sfixed32:
		return int64(int32(u))
	case protoschema.Sint32:
		return int64(int32(uint32(u)>>1) ^ -int32(u&1))
	case protoschema.Sint64:
		return int64(u>>1) ^ -int64(u&1)
	}
	return int64(u)
}

// leaf applies a leaf-wise action to one scalar or enum value.
func (r *protoRun) leaf(n *pnode, t *stype) bool {
	rule := n.act.r
	k := t.pb.kind
	start := r.pos
	switch k {
	case protoschema.String, protoschema.Bytes:
		s, ok := r.bytes()
		if !ok {
			return false
		}
		if t.pb.utf8 && !utf8.Valid(s) {
			return r.failAt(n, "field %s holds invalid UTF-8", n.path)
		}
		r.edit(start)
		switch {
		case rule.Action == Redact:
			r.out = append(r.out, 0)
		case rule.Action == Hash && k == protoschema.Bytes:
			sum := r.p.sum(s)
			r.out = append(r.out, 32)
			r.out = append(r.out, sum[:]...)
		case rule.Action == Hash:
			r.out = append(r.out, 64)
			r.out = r.p.appendHashHex(r.out, s)
		case rule.Action == Mask && k == protoschema.Bytes:
			r.out = binary.AppendUvarint(r.out, uint64(len(s)))
			r.out = appendMaskedBytes(r.out, s, rule)
		case rule.Action == Mask:
			r.out = binary.AppendUvarint(r.out, uint64(maskedLen(s, rule)))
			r.out = appendMasked(r.out, s, rule)
		case rule.Action == Generalize && k == protoschema.String && rule.Truncate != "":
			v, ok := truncString(string(s), rule.Truncate)
			if !ok {
				return r.violate(n, ReasonUnmaskable)
			}
			r.out = binary.AppendUvarint(r.out, uint64(len(v)))
			r.out = append(r.out, v...)
		default:
			return r.violate(n, ReasonUnmaskable)
		}
	case protoschema.Bool, protoschema.EnumK:
		if _, ok := r.varint(); !ok {
			return false
		}
		if rule.Action != Redact {
			return r.violate(n, ReasonUnmaskable)
		}
		r.edit(start)
		if k == protoschema.Bool {
			r.out = append(r.out, 0)
		} else {
			// The default of a Protobuf enum is its first value.
			r.out = binary.AppendUvarint(r.out, uint64(int64(t.pb.nums[0])))
		}
	case protoschema.Float, protoschema.Double:
		size := 8
		if k == protoschema.Float {
			size = 4
		}
		b, ok := r.span(size)
		if !ok {
			return false
		}
		var v float64
		if size == 4 {
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		} else {
			v = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		switch rule.Action {
		case Redact:
			v = 0
		case Generalize:
			v = roundTo(v, *rule.Precision)
		case Bucket:
			rep, ok := bucketOf(v, rule.Buckets)
			if !ok {
				return r.violate(n, ReasonUnmaskable)
			}
			v = toFloat(rep)
		default:
			return r.violate(n, ReasonUnmaskable)
		}
		r.edit(start)
		r.out = appendProtoFloat(r.out, k, v)
	default:
		u, ok := r.rawInt(k)
		if !ok {
			return false
		}
		if u, ok = protoMaskInt(k, u, rule); !ok {
			return r.violate(n, ReasonUnmaskable)
		}
		r.edit(start)
		r.out = appendProtoInt(r.out, k, u)
	}
	r.done(r.pos)
	r.count(n)
	return true
}

// rawInt reads an integer of kind k as its 64-bit wire value.
func (r *protoRun) rawInt(k protoschema.Kind) (uint64, bool) {
	switch k.WireType() {
	case 1:
		b, ok := r.span(8)
		if !ok {
			return 0, false
		}
		return binary.LittleEndian.Uint64(b), true
	case 5:
		b, ok := r.span(4)
		if !ok {
			return 0, false
		}
		if k == protoschema.Sfixed32 {
			return uint64(int64(int32(binary.LittleEndian.Uint32(b)))), true
		}
		return uint64(binary.LittleEndian.Uint32(b)), true
	}
	u, ok := r.varint()
	if !ok {
		return 0, false
	}
	if k == protoschema.Sint32 || k == protoschema.Sint64 {
		return uint64(protoSigned(k, u)), true
	}
	return u, true
}

// protoMaskInt applies redact, generalize or bucket to an integer of kind k
// given as rawInt reads it: signed kinds as their 64-bit two's complement
// value, unsigned ones as unsigned.
func protoMaskInt(k protoschema.Kind, u uint64, rule *Rule) (uint64, bool) {
	if rule.Action == Redact {
		return 0, true
	}
	switch k {
	case protoschema.Uint32, protoschema.Fixed32, protoschema.Uint64, protoschema.Fixed64:
		hi := uint64(math.MaxUint64)
		if k == protoschema.Uint32 || k == protoschema.Fixed32 {
			u, hi = uint64(uint32(u)), math.MaxUint32
		}
		switch rule.Action {
		case Generalize:
			return roundUint(u, *rule.Precision, hi), true
		case Bucket:
			rep, ok := bucketOf(float64(u), rule.Buckets)
			return uint64(toFloat(rep)), ok
		}
		return 0, false
	}
	v := int64(u)
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if k == protoschema.Int32 || k == protoschema.Sint32 || k == protoschema.Sfixed32 {
		v = int64(int32(v))
		lo, hi = math.MinInt32, math.MaxInt32
	}
	switch rule.Action {
	case Generalize:
		return uint64(roundInt(v, *rule.Precision, lo, hi)), true
	case Bucket:
		rep, ok := bucketOf(float64(v), rule.Buckets)
		return uint64(int64(toFloat(rep))), ok
	}
	return 0, false
}

// roundUint is roundInt for unsigned integers, saturating at hi.
func roundUint(x uint64, prec int, hi uint64) uint64 {
	if prec >= 0 {
		return x
	}
	m := uint64(1)
	for range -prec {
		if m > math.MaxUint64/10 {
			return 0
		}
		m *= 10
	}
	q, rem := x/m, x%m
	if rem >= (m+1)/2 {
		q++
	}
	if q > hi/m {
		return hi / m * m
	}
	return q * m
}

// timestamp truncates a google.protobuf.Timestamp (its body up to r.lim):
// seconds to the rule's unit in UTC, nanos to zero. Other fields pass.
func (r *protoRun) timestamp(n *pnode) bool {
	unit := n.act.r.Truncate
	for r.pos < r.lim {
		num, wt, ok := r.tag()
		if !ok {
			return false
		}
		switch {
		case wt == 4:
			return r.fail("unexpected end of group %d", num)
		case num != 1 && num != 2:
			r.undeclared(n.t, num)
			r.settle(n.path)
			return false
		case wt != 0:
			r.mismatch("has wire type %d where the schema says 0", wt)
			r.step(n.t.fields[n.t.pb.lookup(num)].name)
			r.settle(n.path)
			return false
		}
		start := r.pos
		u, ok := r.varint()
		if !ok {
			return false
		}
		r.edit(start)
		if num == 1 {
			sec := truncTime(time.Unix(int64(u), 0).UTC(), unit).Unix()
			r.out = binary.AppendUvarint(r.out, uint64(sec))
		} else {
			r.out = append(r.out, 0)
		}
		r.done(r.pos)
	}
	r.count(n)
	return true
}
