package policy

import (
	"fmt"
	"strings"
)

// segment is one step of a field path pattern.
type segment struct {
	kind segKind
	name string // for segName
}

type segKind uint8

const (
	segName  segKind = iota // a field or map key, by name
	segStar                 // "*": any one field or map key
	segDStar                // "**": any number of levels, including none
	segElem                 // "[]": the elements of an array, or the values of a map
)

// maxSegments bounds a pattern's length; the matcher packs the position in a byte.
const maxSegments = 64

// parsePattern parses a field path pattern such as "customer.email",
// "items[].card", "*.email" or "**.ssn".
func parsePattern(s string) ([]segment, error) {
	if s == "" {
		return nil, fmt.Errorf("field must not be empty")
	}
	var segs []segment
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return nil, fmt.Errorf("empty path segment in %q (leading, trailing or doubled dot)", s)
		}
		name, elems := part, 0
		if i := strings.IndexByte(part, '['); i >= 0 {
			name = part[:i]
			rest := part[i:]
			for strings.HasPrefix(rest, "[]") {
				elems++
				rest = rest[2:]
			}
			if rest != "" {
				if strings.HasPrefix(rest, "[") && strings.Contains(rest, "]") {
					return nil, fmt.Errorf("array indexes are not supported in %q; write %s[] to match every element", s, name)
				}
				return nil, fmt.Errorf("unbalanced brackets in %q; write %s[] to match every element", s, name)
			}
			if name == "" {
				return nil, fmt.Errorf("%q has \"[]\" without a field name before it", s)
			}
		}
		if strings.ContainsRune(name, ']') {
			return nil, fmt.Errorf("unbalanced brackets in %q", s)
		}
		switch {
		case name == "*":
			segs = append(segs, segment{kind: segStar})
		case name == "**":
			if elems > 0 {
				return nil, fmt.Errorf("%q: \"**\" already matches array elements; drop the \"[]\"", s)
			}
			if n := len(segs); n > 0 && segs[n-1].kind == segDStar {
				return nil, fmt.Errorf("%q has \"**\" twice in a row", s)
			}
			segs = append(segs, segment{kind: segDStar})
		case strings.ContainsRune(name, '*'):
			return nil, fmt.Errorf("wildcards must be a whole segment (\"*\" or \"**\"), not %q in %q", name, s)
		default:
			for _, r := range name {
				if r <= ' ' || r == '"' || r == '\'' || r == '\\' || r == 0x7f {
					return nil, fmt.Errorf("invalid character %q in field name %q", r, name)
				}
			}
			segs = append(segs, segment{kind: segName, name: name})
		}
		for range elems {
			segs = append(segs, segment{kind: segElem})
		}
	}
	if len(segs) > maxSegments {
		return nil, fmt.Errorf("%q has more than %d segments", s, maxSegments)
	}
	return segs, nil
}

// patternString prints a parsed pattern in its normal form.
func patternString(segs []segment) string {
	var b strings.Builder
	for i, sg := range segs {
		if i > 0 && sg.kind != segElem {
			b.WriteByte('.')
		}
		switch sg.kind {
		case segName:
			b.WriteString(sg.name)
		case segStar:
			b.WriteByte('*')
		case segDStar:
			b.WriteString("**")
		case segElem:
			b.WriteString("[]")
		}
	}
	return b.String()
}

// specificity ranks how precisely a rule names a field: a path without
// wildcards beats one with wildcards, which beats a tag alone. A tag narrows a
// path a little. Among rules of one policy matching one field, the most
// specific wins; ties go to the earlier rule.
func specificity(r *Rule) int {
	s := 0
	if r.pattern != nil {
		s = 20
		for _, sg := range r.pattern {
			if sg.kind == segStar || sg.kind == segDStar {
				s = 10
				break
			}
		}
	}
	if r.Match.Tag != "" {
		s += 5
	}
	return s
}
