package policy

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// HeaderPlan is the compiled form of the header rules (match: {header: ...})
// of the policies that apply to one stream. Header values have no schema: each
// is read as a UTF-8 string (bytes when it is not valid UTF-8). A HeaderPlan is
// immutable and safe for concurrent use; get one per stream from Cache.Headers.
type HeaderPlan struct {
	// rules are grouped by policy (policies by name), in file order within one.
	rules []hrule
	// groups are the [start, end) ranges of rules of each policy.
	groups [][2]int
	keyID  string
	hmacs  *sync.Pool
}

// hrule is one header rule, compiled.
type hrule struct {
	cr   *crule
	name string // the header name or glob
	glob bool
	// touch is what the rule reports; its Path is "header." + name, so that a
	// glob's touches add up into one Touch whatever the header names are.
	touch Touch
}

type cachedHeaders struct {
	plan *HeaderPlan
	err  error
}

// CompileHeaders builds the header plan of pipeline's topic from the header
// rules of set's policies that apply to it. The only problem it reports (as a
// *ErrorList naming the rule) is a hash rule without a key (WithHashKey); the
// linter has already refused the rest (generalize or bucket on a header, a
// non-string replace value).
func CompileHeaders(set *Set, pipeline, topic string, opts ...Option) (*HeaderPlan, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	p := &HeaderPlan{}
	var hashRule *crule
	if set != nil {
		for _, pol := range set.Policies {
			if !pol.Applies(pipeline, topic) {
				continue
			}
			start := len(p.rules)
			for i := range pol.Rules {
				r := &pol.Rules[i]
				if r.Match.Header == "" {
					continue
				}
				cr := &crule{p: pol, i: i, r: r, spec: headerSpecificity(r.Match.Header), sig: r.String(), ref: pol.ruleRef(i)}
				p.rules = append(p.rules, hrule{
					cr: cr, name: r.Match.Header, glob: strings.Contains(r.Match.Header, "*"),
					touch: Touch{Path: "header." + r.Match.Header, Action: r.Action, Policy: pol.Name, Version: pol.Version, Rule: i},
				})
				if r.Action == Hash && hashRule == nil {
					hashRule = cr
				}
			}
			if len(p.rules) > start {
				p.groups = append(p.groups, [2]int{start, len(p.rules)})
			}
		}
	}
	if hashRule != nil && !o.check {
		if o.key == nil {
			return nil, yamlerr.Join(hashRule.p.errAt(rulePath(hashRule.i)+".action", "hash rules need a key: set %s or a key file", HashKeyEnv))
		}
		p.keyID, p.hmacs = KeyID(o.key), newHMACPool(o.key)
	}
	return p, nil
}

// Headers returns the header plan of set's stream, compiling it on first use
// (see CompileHeaders). Plans of a previous Set are dropped when set changes.
func (c *Cache) Headers(set *Set, pipeline, topic string) (*HeaderPlan, error) {
	k := [2]string{pipeline, topic}
	c.mu.Lock()
	c.reset(set)
	e, ok := c.headers[k]
	c.mu.Unlock()
	if ok {
		return e.plan, e.err
	}
	p, err := CompileHeaders(set, pipeline, topic, c.opts...)
	c.mu.Lock()
	if c.set == set {
		c.headers[k] = cachedHeaders{p, err}
	}
	c.mu.Unlock()
	return p, err
}

// Touches reports whether any header rule applies to the stream; when false,
// headers pass as they are and Apply need not be called.
func (p *HeaderPlan) Touches() bool { return len(p.rules) > 0 }

// Apply masks one header, given its name and value (nil is a null value). It
// returns the value to send and whether to keep the header at all (false: a
// drop rule removes it), and adds what it did to res (when res is not nil), so
// that a record's key, value and header touches make one Result and one
// tributary-policy header. The caller loops over a record's headers in order,
// writing kept ones back in place, which allocates nothing for headers no rule
// matches; out is value itself when nothing changed, else a new slice.
//
// The rule applied is the most specific of the policy's header rules matching
// name: a block rule first, then an exact name over a glob, then the rule
// written first. Names are case-sensitive. When two policies that apply to the
// stream give the header different actions (possible only through globs: the
// linter refuses equal matches with different actions), the record is refused.
// A null value stays null except under replace, and a block rule blocks only a
// non-null value. The error is nil or a *Violation: ReasonBlocked for a block
// rule, ReasonUnmaskable for mask on a value that is not UTF-8,
// ReasonPolicyConflict for conflicting policies. Its FieldPath is "header."
// followed by the name; it never holds the value.
func (p *HeaderPlan) Apply(name string, value []byte, res *Result) (out []byte, keep bool, err error) {
	h, v := p.rule(name)
	switch {
	case v != nil:
		return nil, false, v
	case h == nil:
		return value, true, nil
	}
	r := h.cr.r
	if r.Action == Drop {
		if value != nil {
			res.add(h.touch, 1, "")
		}
		return nil, false, nil
	}
	out, changed, reason := maskOpaque(r, p.hmacs, value)
	if reason != "" {
		return nil, false, &Violation{Reason: reason, FieldPath: "header." + name, Rule: h.cr.ref}
	}
	if !changed {
		return value, true, nil
	}
	keyID := ""
	if r.Action == Hash {
		keyID = p.keyID
	}
	res.add(h.touch, 1, keyID)
	return out, true, nil
}

// rule returns the header rule that applies to name, nil when none does, or
// the violation of policies that disagree on it.
func (p *HeaderPlan) rule(name string) (*hrule, *Violation) {
	var win *hrule
	for _, g := range p.groups {
		var best *hrule
		for i := g[0]; i < g[1]; i++ {
			h := &p.rules[i]
			if h.name != name && (!h.glob || !globMatch(h.name, name)) {
				continue
			}
			if best == nil || better(h.cr, best.cr) {
				best = h
			}
		}
		switch {
		case best == nil:
		case win == nil:
			win = best
		case best.cr.sig != win.cr.sig:
			return nil, &Violation{Reason: ReasonPolicyConflict, FieldPath: "header." + name, Rule: win.cr.ref,
				Detail: fmt.Sprintf("%s (%s) and %s (%s) give this header different actions", win.cr.ref, win.cr.sig, best.cr.ref, best.cr.sig)}
		}
	}
	return win, nil
}

// headerSpecificity ranks header matches as specificity ranks field paths: an
// exact name over a glob.
func headerSpecificity(name string) int {
	if strings.Contains(name, "*") {
		return 10
	}
	return 20
}

// globMatch reports whether name matches pattern, where "*" matches any run of
// bytes (none included) and every other byte itself.
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	star, resume := -1, 0 // the last "*" seen, and where its match would end next
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, resume = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			resume++
			p, n = star+1, resume
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// checkHeaderName checks a header rule's name or glob.
func checkHeaderName(name string) error {
	switch {
	case name == "":
		return errors.New("header must not be empty")
	case strings.Contains(name, "**"):
		return fmt.Errorf("%q has \"**\": one \"*\" already matches any run of characters", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Errorf("invalid control character in header name %q", name)
	}
	return nil
}
