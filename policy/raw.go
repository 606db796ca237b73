package policy

import (
	"encoding/hex"
	"slices"
	"sync"
	"unicode/utf8"
)

// This file compiles and applies rules to values without a schema: a key of
// plain bytes (SchemaType Raw) and header values. Both are read as one UTF-8
// string; the only rule that can match is one for the whole value.

// buildRaw picks the rule for the whole of a Raw value at l and checks that its
// action suits raw bytes.
func (c *compiler) buildRaw(l loc) *crule {
	own := c.own(l)
	if own == nil {
		return nil
	}
	switch r := own.r; r.Action {
	case Generalize, Bucket:
		c.errorf(own, ".action", "%s cannot apply to %s: raw bytes read as a string have no number to round or bucket and no timestamp to truncate; use hash, redact, mask, replace, drop or block", r.Action, c.field(l.path))
	case Replace:
		if _, ok := r.Value.(string); !ok {
			c.errorf(own, ".value", "%s cannot replace %s: raw bytes take a string value", literal(r.Value), c.field(l.path))
		}
	case Hash:
		if c.hashRule == nil {
			c.hashRule = own
		}
	}
	c.touches = append(c.touches, Touch{Path: l.path, Action: own.r.Action, Policy: own.p.Name, Version: own.p.Version, Rule: own.i})
	return own
}

// maskRaw applies a Raw plan to a key (or value); nil is null.
func (p *Plan) maskRaw(v []byte) ([]byte, Result, error) {
	if p.raw == nil {
		return v, Result{}, nil
	}
	out, changed, reason := maskOpaque(p.raw.r, p.hmacs, v)
	switch {
	case reason != "":
		return nil, Result{}, &Violation{Reason: reason, FieldPath: p.touches[0].Path, Rule: p.raw.ref}
	case !changed:
		return v, Result{}, nil
	}
	return out, p.result([]int32{1}), nil
}

// maskOpaque applies rule r's action to v, a value without a schema read as a
// string; nil is null. It returns the new value (nil for null) and whether it
// changed, or the Reason the record must be rejected for. Null stays null
// except under replace. Actions that need characters (mask) reject bytes that
// are not UTF-8 ("unmaskable"); generalize and bucket never get here (the
// compiler and the linter refuse them). pool holds HMACs of the hash key.
func maskOpaque(r *Rule, pool *sync.Pool, v []byte) (out []byte, changed bool, reason string) {
	if v == nil {
		if s, ok := r.Value.(string); ok && r.Action == Replace {
			return []byte(s), true, ""
		}
		return nil, false, ""
	}
	switch r.Action {
	case Block:
		return nil, false, ReasonBlocked
	case Drop:
		return nil, true, ""
	case Redact:
		return []byte{}, true, ""
	case Hash:
		// The same pseudonym as a string field's (appendHMACHex), in one
		// allocation: the raw HMAC lands after the room for its hex.
		buf := appendHMAC(pool, make([]byte, 64, 96), v)
		hex.Encode(buf[:64], buf[64:])
		return buf[:64:64], true, ""
	case Mask:
		if !utf8.Valid(v) {
			return nil, false, ReasonUnmaskable
		}
		return appendMasked(make([]byte, 0, maskedLen(v, r)), v, r), true, ""
	case Replace:
		if s, ok := r.Value.(string); ok {
			return slices.Clip([]byte(s)), true, ""
		}
	}
	return nil, false, ReasonUnmaskable
}
