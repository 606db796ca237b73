package policy

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// namePattern is what policy and pipeline names may contain: they appear in
// headers ("<policy>@<version>"), metric labels and file names.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// params lists the keys each action takes besides match, action and description.
var params = map[Action][]string{
	Redact:     nil,
	Hash:       nil,
	Mask:       {"keep_first", "keep_last", "mask_char"},
	Generalize: {"precision", "truncate"},
	Drop:       nil,
	Replace:    {"value"},
	Bucket:     {"buckets"},
	Block:      nil,
}

var paramKeys = []string{"keep_first", "keep_last", "mask_char", "precision", "truncate", "buckets", "value"}

// check validates one policy on its own and compiles its patterns and topic
// regexes. Errors name the key paths of the policy's file.
func (p *Policy) check() []*Error {
	var errs []*Error
	add := func(e *Error) { errs = append(errs, e) }
	_, hasName := p.pos["policy"]
	switch {
	case !hasName:
		add(p.errAt("policy", "missing: every policy file starts with `policy: <name>`"))
	case !namePattern.MatchString(p.Name) || len(p.Name) > 128:
		add(p.errAt("policy", "invalid name %q (want letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128)", p.Name))
	}
	if _, ok := p.pos["version"]; !ok {
		add(p.errAt("version", "missing: every policy has a version, an integer that increases on every change"))
	} else if p.Version < 1 {
		add(p.errAt("version", "must be at least 1, got %d", p.Version))
	}
	switch p.OnUnmatchedPII {
	case "":
		p.OnUnmatchedPII = "quarantine"
	case "quarantine":
	default:
		add(p.errAt("on_unmatched_pii", "unknown value %q: the only value is \"quarantine\" (records with PII no rule covers are always quarantined)", p.OnUnmatchedPII))
	}
	seen := map[string]int{}
	for i, name := range p.AppliesTo.Pipelines {
		k := "applies_to.pipelines[" + strconv.Itoa(i) + "]"
		if !namePattern.MatchString(name) {
			add(p.errAt(k, "invalid pipeline name %q", name))
		} else if j, dup := seen[name]; dup {
			add(p.errAt(k, "pipeline %q is listed twice (also applies_to.pipelines[%d])", name, j))
		}
		seen[name] = i
	}
	p.topics = nil
	for i, re := range p.AppliesTo.Topics {
		k := "applies_to.topics[" + strconv.Itoa(i) + "]"
		c, err := compileTopic(re)
		if err != nil {
			add(p.errAt(k, "%v", err))
			continue
		}
		p.topics = append(p.topics, c)
	}
	if len(p.Rules) == 0 {
		if _, ok := p.pos["rules"]; ok {
			add(p.errAt("rules", "at least one rule is required"))
		} else {
			add(p.errAt("rules", "missing: a policy needs at least one rule"))
		}
	}
	firstMatch := map[string]int{}
	for i := range p.Rules {
		r := &p.Rules[i]
		errs = append(errs, p.checkRule(i, r)...)
		if r.Match.Field == "" && r.Match.Tag == "" || r.Match.Field != "" && r.pattern == nil {
			continue
		}
		k := matchKey(r)
		if j, dup := firstMatch[k]; dup {
			add(p.errAt(rulePath(i)+".match", "same match as rules[%d] (%s), which always wins; merge the two rules", j, p.where(rulePath(j))))
			continue
		}
		firstMatch[k] = i
	}
	return errs
}

func rulePath(i int) string { return "rules[" + strconv.Itoa(i) + "]" }

// matchKey is a rule's match in normal form, for comparing rules.
func matchKey(r *Rule) string { return patternString(r.pattern) + "\x00" + r.Match.Tag }

// compileTopic compiles "^(?:re)$", describing errors in terms of re.
func compileTopic(re string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(re); err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, fmt.Errorf("invalid regex %q: %s: `%s`", re, se.Code, se.Expr)
		}
		return nil, fmt.Errorf("invalid regex %q: %w", re, err)
	}
	return regexp.Compile("^(?:" + re + ")$")
}

// checkRule validates one rule and parses its field pattern.
func (p *Policy) checkRule(i int, r *Rule) []*Error {
	var errs []*Error
	rp := rulePath(i)
	add := func(k, format string, args ...any) { errs = append(errs, p.errAt(rp+k, format, args...)) }
	has := func(k string) bool { _, ok := p.pos[rp+"."+k]; return ok }

	r.pattern = nil
	switch {
	case r.Match.Field == "" && r.Match.Tag == "":
		if has("match") {
			add(".match", "needs field (a path such as customer.email) or tag (such as PII)")
		} else {
			add(".match", "missing: each rule needs `match: {field: <path>}` or `match: {tag: <tag>}`")
		}
	default:
		if r.Match.Field != "" || has("match.field") {
			segs, err := parsePattern(r.Match.Field)
			if err != nil {
				add(".match.field", "%v", err)
			} else {
				r.pattern = segs
			}
		}
		if has("match.tag") && strings.TrimSpace(r.Match.Tag) == "" || strings.ContainsFunc(r.Match.Tag, unicode.IsSpace) {
			add(".match.tag", "invalid tag %q", r.Match.Tag)
		}
	}

	known := true
	switch {
	case r.Action == "" && !has("action"):
		add(".action", "missing: each rule needs an action (one of %s)", strings.Join(actions, ", "))
		known = false
	case !slices.Contains(actions, string(r.Action)):
		add(".action", "unknown action %q%s", r.Action, yamlerr.DidYouMean(string(r.Action), actions))
		known = false
	}
	if !known {
		return errs
	}
	allowed := params[r.Action]
	for _, k := range paramKeys {
		if has(k) && !slices.Contains(allowed, k) {
			add("."+k, "%s is not a parameter of action %s%s", k, r.Action, paramOwner(k))
		}
	}
	switch r.Action {
	case Mask:
		if r.KeepFirst < 0 {
			add(".keep_first", "must be 0 or more, got %d", r.KeepFirst)
		}
		if r.KeepLast < 0 {
			add(".keep_last", "must be 0 or more, got %d", r.KeepLast)
		}
		if has("mask_char") {
			c, size := utf8.DecodeRuneInString(r.MaskChar)
			if r.MaskChar == "" || size != len(r.MaskChar) || c == utf8.RuneError || !unicode.IsGraphic(c) || unicode.IsSpace(c) {
				add(".mask_char", "want one visible character, got %q", r.MaskChar)
			}
		}
	case Generalize:
		if r.Precision == nil && r.Truncate == "" {
			add("", "generalize needs precision (numbers) or truncate (timestamps), or both")
		}
		if r.Precision != nil && (*r.Precision < -18 || *r.Precision > 15) {
			add(".precision", "must be between -18 and 15, got %d", *r.Precision)
		}
		if has("truncate") && !slices.Contains(truncUnits, r.Truncate) {
			add(".truncate", "unknown unit %q (want one of %s)%s", r.Truncate, strings.Join(truncUnits, ", "), yamlerr.DidYouMean(r.Truncate, truncUnits))
		}
	case Replace:
		if r.Value == nil && !has("value") {
			add("", "replace needs value: the fixed value that replaces the field")
		}
	case Bucket:
		errs = append(errs, p.checkBuckets(rp, r)...)
	}
	return errs
}

// paramOwner says which action a parameter belongs to.
func paramOwner(k string) string {
	for _, a := range actions {
		if slices.Contains(params[Action(a)], k) {
			return " (it belongs to action " + a + ")"
		}
	}
	return ""
}

// checkBuckets checks that bucket ranges are well formed, sorted and do not overlap.
func (p *Policy) checkBuckets(rp string, r *Rule) []*Error {
	var errs []*Error
	if len(r.Buckets) == 0 {
		if _, ok := p.pos[rp+".buckets"]; ok {
			return []*Error{p.errAt(rp+".buckets", "at least one bucket is required")}
		}
		return []*Error{p.errAt(rp, "bucket needs buckets: a list of {min, max, replacement}")}
	}
	for j, b := range r.Buckets {
		bp := rp + ".buckets[" + strconv.Itoa(j) + "]"
		if b.Replacement == nil {
			if _, ok := p.pos[bp+".replacement"]; !ok {
				errs = append(errs, p.errAt(bp, "missing replacement"))
			}
		} else if k := scalarKind(b.Replacement); k != "number" {
			errs = append(errs, p.errAt(bp+".replacement", "want a number, got a %s: a bucketed field keeps its numeric type (label ranges with numbers such as their lower bound)", k))
		}
		if b.Min == nil && j > 0 {
			errs = append(errs, p.errAt(bp, "only the first bucket may leave out min"))
		}
		if b.Max == nil && j < len(r.Buckets)-1 {
			errs = append(errs, p.errAt(bp, "only the last bucket may leave out max"))
		}
		if b.Min != nil && b.Max != nil && !(*b.Min < *b.Max) {
			errs = append(errs, p.errAt(bp+".max", "max %g must be greater than min %g", *b.Max, *b.Min))
		}
		if j > 0 && b.Min != nil {
			prev := r.Buckets[j-1]
			if prev.Max != nil && *b.Min < *prev.Max {
				errs = append(errs, p.errAt(bp+".min", "bucket [%g, %s) overlaps or is before the previous bucket, which ends at %g (buckets must be sorted and not overlap)", *b.Min, maxString(b.Max), *prev.Max))
			}
		}
	}
	return errs
}

func maxString(m *float64) string {
	if m == nil {
		return "∞"
	}
	return strconv.FormatFloat(*m, 'g', -1, 64)
}

// scalarKind names the type of a replace value or bucket replacement.
func scalarKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64, float64:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

// validate checks the policies against each other: unique names, and no two
// policies with a common scope giving one field different actions. It sorts the
// policies by name.
func (s *Set) validate() []*Error {
	var errs []*Error
	sort.SliceStable(s.Policies, func(i, j int) bool { return s.Policies[i].Name < s.Policies[j].Name })
	for i := 1; i < len(s.Policies); i++ {
		a, b := s.Policies[i-1], s.Policies[i]
		if a.Name == b.Name && a.Name != "" {
			errs = append(errs, b.errAt("policy", "duplicate policy name %q (also in %s)", b.Name, a.where("policy")))
		}
	}
	for i, p := range s.Policies {
		for _, q := range s.Policies[i+1:] {
			if p.Name == q.Name {
				continue // a duplicate name is the problem to report
			}
			scope := overlap(p, q)
			if scope == "" {
				continue
			}
			for qi := range q.Rules {
				qr := &q.Rules[qi]
				if qr.Match.Field != "" && qr.pattern == nil {
					continue
				}
				for pi := range p.Rules {
					pr := &p.Rules[pi]
					if pr.Match.Field != "" && pr.pattern == nil || matchKey(pr) != matchKey(qr) {
						continue
					}
					if pr.String() != qr.String() {
						errs = append(errs, q.errAt(rulePath(qi)+".action",
							"conflicts with policy %q rules[%d] (%s) on %s for %s: %s here, %s there",
							p.Name, pi, p.where(rulePath(pi)), qr.Match, scope, qr, pr))
					}
				}
			}
		}
	}
	return errs
}

// overlap describes a scope both policies cover ("pipeline eu-payments", "all
// pipelines"), or returns "" when they share none. Topic regexes overlap only
// when both lists are empty or share a regex: whether two regexes can match one
// topic is not decided here; Compile catches the conflict for real topics.
func overlap(p, q *Policy) string {
	var scope string
	switch pp, qp := p.AppliesTo.Pipelines, q.AppliesTo.Pipelines; {
	case len(pp) == 0 && len(qp) == 0:
		scope = "all pipelines"
	case len(pp) == 0:
		scope = "pipeline " + qp[0]
	case len(qp) == 0:
		scope = "pipeline " + pp[0]
	default:
		for _, x := range pp {
			if slices.Contains(qp, x) {
				scope = "pipeline " + x
				break
			}
		}
		if scope == "" {
			return ""
		}
	}
	pt, qt := p.AppliesTo.Topics, q.AppliesTo.Topics
	if len(pt) > 0 && len(qt) > 0 {
		for _, x := range pt {
			if slices.Contains(qt, x) {
				return scope + ", topics " + strconv.Quote(x)
			}
		}
		return ""
	}
	return scope
}

// CheckAgainst checks a new bundle against the active one: a policy whose
// content changed must have a higher version, and no version may go down.
// Problems come back as a *ErrorList pointing at the new files' version keys.
// Policies only in one of the two bundles are fine (Diff reports them).
func (s *Set) CheckAgainst(active *Set) error {
	if active == nil {
		return nil
	}
	var errs []*Error
	for _, p := range s.Policies {
		old := active.Policy(p.Name)
		if old == nil {
			continue
		}
		switch {
		case p.Version < old.Version:
			errs = append(errs, p.errAt("version", "version %d is lower than the active version %d of policy %q", p.Version, old.Version, p.Name))
		case p.Version == old.Version && p.digest() != old.digest():
			errs = append(errs, p.errAt("version", "policy %q changed but its version is still %d; raise it to %d or more", p.Name, p.Version, old.Version+1))
		}
	}
	return yamlerr.Join(errs...)
}
