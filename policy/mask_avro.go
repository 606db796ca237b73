package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// MaskAvro masks one Avro record: payload is the record's binary encoding
// without the 5-byte Confluent prefix (the caller strips it and puts it back;
// masking never changes the writer schema, so the schema id stays valid).
//
// The plan rewrites the binary encoding in place of decoding it into Go values
// and encoding it again: it reads the record front to back with the writer
// schema, skips the fields no rule touches (checking that they decode) and
// re-encodes only the values it changes, copying every other byte as it is.
// The output is deterministic (no map reordering) and untouched fields are
// byte-for-byte what the producer wrote. hamba/avro parses the schema; the
// tests check every output with hamba/avro's decoder.
//
// When the plan touches nothing, payload is returned as it is without being
// decoded. The returned slice may be payload itself when no value changed. The
// error is nil or a *Violation.
func (p *Plan) MaskAvro(payload []byte) ([]byte, Result, error) {
	if p.static != nil {
		return nil, Result{}, p.static
	}
	if p.root == nil && p.raw == nil {
		return payload, Result{}, nil
	}
	if p.format != Avro {
		return nil, Result{}, &Violation{Reason: ReasonUndecodable, Detail: "MaskAvro called on a plan for " + string(p.format) + " records"}
	}
	var small [16]int32
	r := avroRun{p: p, in: payload, budget: len(payload) + maxItems}
	if len(p.touches) <= len(small) {
		r.counts = small[:len(p.touches)]
	} else {
		r.counts = make([]int32, len(p.touches))
	}
	if !r.walk(p.root) {
		return nil, Result{}, r.viol
	}
	if r.pos != len(payload) {
		return nil, Result{}, &Violation{Reason: ReasonUndecodable, Detail: fmt.Sprintf("%d bytes left over after the record", len(payload)-r.pos)}
	}
	res := p.result(r.counts)
	if r.out == nil {
		return payload, res, nil
	}
	return append(r.out, payload[r.flushed:]...), res, nil
}

// result turns per-touch counts into a Result.
func (p *Plan) result(counts []int32) Result {
	var res Result
	n := 0
	for _, c := range counts {
		if c != 0 {
			n++
		}
	}
	if n == 0 {
		return res
	}
	res.Touches = make([]Touch, 0, n)
	for i, c := range counts {
		if c == 0 {
			continue
		}
		t := p.touches[i]
		t.Count = int(c)
		res.Touches = append(res.Touches, t)
		if t.Action == Hash {
			res.KeyID = p.keyID
		}
	}
	return res
}

// maxItems bounds the array and map entries one record may have beyond one per
// byte: elements of zero-size types (null, empty records) cost no bytes, so a
// few bytes could otherwise claim billions of them.
const maxItems = 1 << 20

// maxDepth bounds nesting (recursive schemas), so deep records cannot exhaust
// the stack.
const maxDepth = 500

// avroRun is the state of masking one Avro record.
type avroRun struct {
	p       *Plan
	in      []byte
	pos     int
	out     []byte // nil until the first change
	flushed int    // in[:flushed] is accounted for in out
	counts  []int32
	budget  int
	depth   int
	viol    *Violation
}

var errShort = errors.New("unexpected end of data")

func (r *avroRun) fail(format string, args ...any) bool {
	if r.viol == nil {
		r.viol = &Violation{Reason: ReasonUndecodable, Detail: fmt.Sprintf("at byte %d: ", r.pos) + fmt.Sprintf(format, args...)}
	}
	return false
}

func (r *avroRun) violate(n *pnode, reason string) bool {
	r.viol = &Violation{Reason: reason, FieldPath: n.path, Rule: n.act.ref}
	return false
}

// edit starts replacing in[start:...] : it copies what comes before start.
func (r *avroRun) edit(start int) {
	if r.out == nil {
		r.out = make([]byte, 0, len(r.in)+64)
	}
	r.out = append(r.out, r.in[r.flushed:start]...)
}

// done ends an edit that replaced the input up to end.
func (r *avroRun) done(end int) { r.flushed = end }

func (r *avroRun) long() (int64, bool) {
	var v uint64
	for s := uint(0); s < 70; s += 7 {
		if r.pos >= len(r.in) {
			return 0, r.fail("%v", errShort)
		}
		b := r.in[r.pos]
		r.pos++
		v |= uint64(b&0x7f) << s
		if b < 0x80 {
			return int64(v>>1) ^ -int64(v&1), true
		}
	}
	return 0, r.fail("varint longer than 10 bytes")
}

func (r *avroRun) int() (int32, bool) {
	v, ok := r.long()
	if ok && (v > math.MaxInt32 || v < math.MinInt32) {
		return 0, r.fail("int out of range")
	}
	return int32(v), ok
}

// span reads n raw bytes.
func (r *avroRun) span(n int) ([]byte, bool) {
	if n < 0 || n > len(r.in)-r.pos {
		return nil, r.fail("%v", errShort)
	}
	b := r.in[r.pos : r.pos+n]
	r.pos += n
	return b, true
}

// bytes reads a length-prefixed bytes or string value.
func (r *avroRun) bytes() ([]byte, bool) {
	n, ok := r.long()
	if !ok {
		return nil, false
	}
	if n < 0 || n > int64(len(r.in)-r.pos) {
		return nil, r.fail("length %d exceeds the record", n)
	}
	return r.span(int(n))
}

func (r *avroRun) enter() bool {
	r.depth++
	if r.depth > maxDepth {
		return r.fail("nested deeper than %d", maxDepth)
	}
	return true
}

// blockCount reads an array or map block header. Negative counts carry the
// block's byte size, which masking may change: rewrite says to replace the
// header by the plain count.
func (r *avroRun) blockCount(rewrite bool) (int64, bool) {
	start := r.pos
	n, ok := r.long()
	if !ok {
		return 0, false
	}
	if n < 0 {
		if n == math.MinInt64 {
			return 0, r.fail("invalid block count")
		}
		n = -n
		size, ok := r.long()
		if !ok {
			return 0, false
		}
		if size < 0 {
			return 0, r.fail("invalid block size")
		}
		if rewrite {
			r.edit(start)
			r.out = appendLong(r.out, n)
			r.done(r.pos)
		}
	}
	if n > int64(r.budget) {
		return 0, r.fail("block of %d items exceeds the record", n)
	}
	r.budget -= int(n)
	return n, true
}

// skip reads past a value of type t, checking that it decodes.
func (r *avroRun) skip(t *stype) bool {
	switch t.kind {
	case kNull:
		return true
	case kBool:
		b, ok := r.span(1)
		if ok && b[0] > 1 {
			return r.fail("invalid boolean")
		}
		return ok
	case kInt:
		_, ok := r.int()
		return ok
	case kLong:
		_, ok := r.long()
		return ok
	case kFloat:
		_, ok := r.span(4)
		return ok
	case kDouble:
		_, ok := r.span(8)
		return ok
	case kBytes, kString:
		_, ok := r.bytes()
		return ok
	case kEnum:
		i, ok := r.int()
		if ok && (i < 0 || int(i) >= len(t.symbols)) {
			return r.fail("enum index %d out of range", i)
		}
		return ok
	case kFixed:
		_, ok := r.span(t.size)
		return ok
	}
	if !r.enter() {
		return false
	}
	ok := r.skipComplex(t)
	r.depth--
	return ok
}

// skipComplex is skip for records, arrays, maps and unions.
func (r *avroRun) skipComplex(t *stype) bool {
	switch t.kind {
	case kRecord:
		for _, f := range t.fields {
			if !r.skip(f.t) {
				return false
			}
		}
		return true
	case kArray, kMap:
		for {
			n, ok := r.blockCount(false)
			if !ok {
				return false
			}
			if n == 0 {
				return true
			}
			for range n {
				if t.kind == kMap {
					if _, ok := r.bytes(); !ok {
						return false
					}
				}
				if !r.skip(t.elem) {
					return false
				}
			}
		}
	case kUnion:
		i, ok := r.long()
		if !ok {
			return false
		}
		if i < 0 || i >= int64(len(t.branches)) {
			return r.fail("union index %d out of range", i)
		}
		return r.skip(t.branches[i])
	}
	return r.fail("unsupported type %s", t)
}

// walk masks a value the plan node n touches.
func (r *avroRun) walk(n *pnode) bool {
	t := n.t
	switch n.mode {
	case modeBlock:
		if t.kind == kNull {
			return true
		}
		if t.kind == kUnion {
			i, ok := r.long()
			if !ok {
				return false
			}
			if i < 0 || i >= int64(len(t.branches)) {
				return r.fail("union index %d out of range", i)
			}
			if int(i) == t.nullIdx {
				return true
			}
		}
		return r.violate(n, ReasonBlocked)
	case modeConst, modeNull:
		start := r.pos
		if t.kind == kUnion {
			i, ok := r.long()
			if !ok {
				return false
			}
			if i < 0 || i >= int64(len(t.branches)) {
				return r.fail("union index %d out of range", i)
			}
			if int(i) == t.nullIdx && (n.mode == modeNull || n.act.r.Action == Drop) {
				return true // already null
			}
			if !r.skip(t.branches[i]) {
				return false
			}
		} else if !r.skip(t) {
			return false
		}
		r.edit(start)
		if n.mode == modeNull {
			r.out = appendLong(r.out, int64(t.nullIdx))
		} else {
			r.out = append(r.out, n.konst...)
		}
		r.done(r.pos)
		r.counts[n.touch]++
		return true
	case modeLeaf:
		return r.leaf(n)
	}
	if !r.enter() {
		return false
	}
	ok := r.walkComplex(n)
	r.depth--
	return ok
}

// walkComplex is walk for the records, arrays, maps and unions a plan descends into.
func (r *avroRun) walkComplex(n *pnode) bool {
	t := n.t
	switch t.kind {
	case kRecord:
		for i, f := range t.fields {
			var ok bool
			if n.fields != nil && n.fields[i] != nil {
				ok = r.walk(n.fields[i])
			} else {
				ok = r.skip(f.t)
			}
			if !ok {
				return false
			}
		}
		return true
	case kArray, kMap:
		for {
			cnt, ok := r.blockCount(true)
			if !ok {
				return false
			}
			if cnt == 0 {
				return true
			}
			for range cnt {
				child := n.elem
				if t.kind == kMap {
					key, ok := r.bytes()
					if !ok {
						return false
					}
					child = n.other
					if c, ok := n.names[string(key)]; ok {
						child = c
					}
				}
				if child == nil {
					ok = r.skip(t.elem)
				} else {
					ok = r.walk(child)
				}
				if !ok {
					return false
				}
			}
		}
	case kUnion:
		i, ok := r.long()
		if !ok {
			return false
		}
		if i < 0 || i >= int64(len(t.branches)) {
			return r.fail("union index %d out of range", i)
		}
		if b := n.branches[i]; b != nil {
			return r.walk(b)
		}
		return r.skip(t.branches[i])
	}
	return r.skip(t)
}

// leaf applies a leaf-wise action to a scalar value.
func (r *avroRun) leaf(n *pnode) bool {
	t, rule := n.t, n.act.r
	start := r.pos
	switch t.kind {
	case kString, kBytes:
		s, ok := r.bytes()
		if !ok {
			return false
		}
		r.edit(start)
		switch {
		case rule.Action == Redact && t.logical == "uuid":
			r.out = appendString(r.out, zeroUUID)
		case rule.Action == Redact:
			r.out = appendLong(r.out, 0)
		case rule.Action == Hash && t.kind == kBytes:
			sum := r.p.sum(s)
			r.out = appendLong(r.out, 32)
			r.out = append(r.out, sum[:]...)
		case rule.Action == Hash && t.logical == "uuid":
			r.out = appendLong(r.out, 36)
			r.out = r.p.appendHashUUID(r.out, s)
		case rule.Action == Hash:
			r.out = appendLong(r.out, 64)
			r.out = r.p.appendHashHex(r.out, s)
		case rule.Action == Mask && t.kind == kBytes:
			r.out = appendLong(r.out, int64(len(s)))
			r.out = appendMaskedBytes(r.out, s, rule)
		case rule.Action == Mask:
			r.out = appendLong(r.out, int64(maskedLen(s, rule)))
			r.out = appendMasked(r.out, s, rule)
		case rule.Action == Generalize && t.kind == kString && rule.Truncate != "":
			v, ok := truncString(string(s), rule.Truncate)
			if !ok {
				return r.violate(n, ReasonUnmaskable)
			}
			r.out = appendString(r.out, v)
		default:
			return r.violate(n, ReasonUnmaskable)
		}
	case kFixed:
		s, ok := r.span(t.size)
		if !ok {
			return false
		}
		r.edit(start)
		switch rule.Action {
		case Redact:
			r.out = append(r.out, make([]byte, t.size)...)
		case Hash:
			r.out = append(r.out, r.p.hashN(s, t.size)...)
		case Mask:
			r.out = appendMaskedBytes(r.out, s, rule)
		default:
			return r.violate(n, ReasonUnmaskable)
		}
	case kInt, kLong:
		v, ok := r.long()
		if !ok {
			return false
		}
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if t.kind == kInt {
			if v > math.MaxInt32 || v < math.MinInt32 {
				return r.fail("int out of range")
			}
			lo, hi = math.MinInt32, math.MaxInt32
		}
		switch rule.Action {
		case Redact:
			v = 0
		case Generalize:
			if t.isTimestamp() {
				v = truncLogical(v, t.logical, rule.Truncate)
			} else {
				v = roundInt(v, *rule.Precision, lo, hi)
			}
		case Bucket:
			rep, ok := bucketOf(float64(v), rule.Buckets)
			if !ok {
				return r.violate(n, ReasonUnmaskable)
			}
			v = int64(toFloat(rep))
		default:
			return r.violate(n, ReasonUnmaskable)
		}
		r.edit(start)
		r.out = appendLong(r.out, v)
	case kFloat, kDouble:
		var v float64
		size := 8
		if t.kind == kFloat {
			size = 4
		}
		b, ok := r.span(size)
		if !ok {
			return false
		}
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
		if size == 4 {
			r.out = binary.LittleEndian.AppendUint32(r.out, math.Float32bits(float32(v)))
		} else {
			r.out = binary.LittleEndian.AppendUint64(r.out, math.Float64bits(v))
		}
	case kBool:
		b, ok := r.span(1)
		if !ok {
			return false
		}
		if b[0] > 1 {
			return r.fail("invalid boolean")
		}
		if rule.Action != Redact {
			return r.violate(n, ReasonUnmaskable)
		}
		r.edit(start)
		r.out = append(r.out, 0)
	case kEnum:
		i, ok := r.int()
		if !ok {
			return false
		}
		if i < 0 || int(i) >= len(t.symbols) {
			return r.fail("enum index %d out of range", i)
		}
		if rule.Action != Redact {
			return r.violate(n, ReasonUnmaskable)
		}
		r.edit(start)
		r.out = appendLong(r.out, int64(t.enumDefault))
	default:
		return r.violate(n, ReasonUnmaskable)
	}
	r.done(r.pos)
	r.counts[n.touch]++
	return true
}
