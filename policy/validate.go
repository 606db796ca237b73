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
		if !r.valid {
			continue
		}
		k := matchKey(r.Match, r.pattern)
		if j, dup := firstMatch[k]; dup {
			add(p.errAt(rulePath(i)+".match", "same match as rules[%d] (%s), which always wins; merge the two rules", j, p.where(rulePath(j))))
			continue
		}
		firstMatch[k] = i
	}
	errs = append(errs, p.checkRetiredRules(firstMatch)...)
	return errs
}

func rulePath(i int) string { return "rules[" + strconv.Itoa(i) + "]" }

// matchKey is a match in normal form, for comparing rules: what it addresses
// (tag alone, value field, key field or header, in the order Diff lists them),
// its pattern and its tag. pattern is the parsed field or key pattern.
func matchKey(m Match, pattern []segment) string {
	switch {
	case m.Key != "":
		return "\x03" + patternString(pattern) + "\x00" + m.Tag
	case m.Header != "":
		return "\x04" + m.Header + "\x00" + m.Tag
	case m.Field != "":
		return "\x02" + patternString(pattern) + "\x00" + m.Tag
	}
	return "\x01\x00" + m.Tag
}

// ruleKey is matchKey of a rule.
func ruleKey(r *Rule) string { return matchKey(r.Match, r.pattern) }

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

	r.pattern, r.valid = nil, false
	if !has("match") && r.Match == (Match{}) {
		add(".match", "missing: each rule needs `match: {field: <path>}` or `match: {tag: <tag>}`")
	} else {
		pattern, merrs := p.checkMatch(rp+".match", r.Match)
		errs = append(errs, merrs...)
		r.pattern, r.valid = pattern, len(merrs) == 0
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
		if _, isString := r.Value.(string); r.Match.Header != "" && r.Value != nil && !isString {
			add(".value", "a header value is a string: replace needs a string value, got a %s", scalarKind(r.Value))
		}
	case Bucket:
		errs = append(errs, p.checkBuckets(rp, r)...)
	}
	if r.Match.Header != "" {
		switch r.Action {
		case Generalize:
			add(".action", "generalize cannot apply to a header: a header value is an untyped string, with no number to round or timestamp to truncate; use hash, redact, mask, replace, drop or block")
		case Bucket:
			add(".action", "bucket cannot apply to a header: a header value is an untyped string, with no number to put in a bucket; use hash, redact, mask, replace, drop or block")
		}
	}
	return errs
}

// checkMatch checks a match mapping at key path mp ("rules[2].match",
// "retired_rules[0]") and parses its field or key pattern.
func (p *Policy) checkMatch(mp string, m Match) ([]segment, []*Error) {
	var errs []*Error
	add := func(k, format string, args ...any) { errs = append(errs, p.errAt(mp+k, format, args...)) }
	has := func(k string) bool { _, ok := p.pos[mp+"."+k]; return ok }

	var targets []string
	for _, kv := range [][2]string{{"field", m.Field}, {"key", m.Key}, {"header", m.Header}} {
		if kv[1] != "" || has(kv[0]) {
			targets = append(targets, kv[0])
		}
	}
	var pattern []segment
	switch {
	case len(targets) == 0 && m.Tag == "":
		add("", "needs field (a path such as customer.email) or tag (such as PII)")
		return nil, errs
	case len(targets) > 1:
		add("", "%s and %s cannot be combined: a rule matches a field of the value (field), a field of the key (key) or a header (header); write one rule for each", targets[0], targets[1])
		return nil, errs
	case m.Field != "" || has("field"):
		segs, err := parsePattern(m.Field)
		if err != nil {
			if m.Field == "." {
				err = fmt.Errorf("%w (\".\" names the whole key, and only in match.key)", err)
			}
			add(".field", "%v", err)
		}
		pattern = segs
	case m.Key == ".":
		pattern = []segment{}
	case m.Key != "" || has("key"):
		if m.Key == "" {
			add(".key", "key must not be empty (write \".\" for the whole key)")
			break
		}
		segs, err := parsePattern(m.Key)
		if err != nil {
			add(".key", "%v", err)
		}
		pattern = segs
	case m.Header != "" || has("header"):
		if err := checkHeaderName(m.Header); err != nil {
			add(".header", "%v", err)
		}
		if m.Tag != "" || has("tag") {
			add(".tag", "tag cannot be combined with header: headers have no schema, so they carry no tags")
		}
	}
	if has("tag") && strings.TrimSpace(m.Tag) == "" || strings.ContainsFunc(m.Tag, unicode.IsSpace) {
		add(".tag", "invalid tag %q", m.Tag)
	}
	return pattern, errs
}

// checkRetiredRules checks retired_rules: each entry a well-formed match, once,
// and not the match of a rule the policy still has. rules maps the match keys
// of the policy's rules to their index.
func (p *Policy) checkRetiredRules(rules map[string]int) []*Error {
	var errs []*Error
	seen := map[string]int{}
	p.retiredKeys = map[string]bool{}
	for i, m := range p.RetiredRules {
		k := "retired_rules[" + strconv.Itoa(i) + "]"
		pattern, merrs := p.checkMatch(k, m)
		errs = append(errs, merrs...)
		if len(merrs) > 0 {
			continue
		}
		mk := matchKey(m, pattern)
		if j, ok := rules[mk]; ok {
			errs = append(errs, p.errAt(k, "%s is retired here but rules[%d] (%s) still has it; remove one of the two", m.YAML(), j, p.where(rulePath(j))))
		} else if j, dup := seen[mk]; dup {
			errs = append(errs, p.errAt(k, "%s is listed twice (also retired_rules[%d])", m.YAML(), j))
		}
		seen[mk] = i
		p.retiredKeys[mk] = true
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
	errs = append(errs, s.checkRetired()...)
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
				if !qr.valid {
					continue
				}
				for pi := range p.Rules {
					pr := &p.Rules[pi]
					if !pr.valid || ruleKey(pr) != ruleKey(qr) {
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

// checkRetired checks the bundle's retired: lists: valid policy names, each
// once per file, none of them a policy the bundle still defines. It sorts
// Retired by name.
func (s *Set) checkRetired() []*Error {
	var errs []*Error
	at := func(r Retired, format string, args ...any) {
		errs = append(errs, &Error{File: r.File, Line: r.Line, Col: r.Col, Path: r.path, Msg: fmt.Sprintf(format, args...)})
	}
	type fileName struct{ file, name string }
	seen := map[fileName]Retired{}
	for _, r := range s.Retired {
		switch {
		case !namePattern.MatchString(r.Name) || len(r.Name) > 128:
			at(r, "invalid policy name %q", r.Name)
		case s.Policy(r.Name) != nil:
			p := s.Policy(r.Name)
			at(r, "policy %q is retired here but %s still defines it; remove one of the two", r.Name, p.where("policy"))
		default:
			if first, dup := seen[fileName{r.File, r.Name}]; dup {
				at(r, "policy %q is listed twice (also %s)", r.Name, first.path)
				continue
			}
			seen[fileName{r.File, r.Name}] = r
		}
	}
	sort.SliceStable(s.Retired, func(i, j int) bool {
		a, b := s.Retired[i], s.Retired[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
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

// CheckAgainst checks a new bundle against the active one before it is
// proposed. Protection is removed only on purpose, and versions only grow:
//
//   - a policy of the active bundle must be in the new one, unless a file of
//     the new bundle lists its name under retired:;
//   - a policy's version must not go down, and a policy whose content changed
//     must have a higher version;
//   - a rule of the active version (identified by its match: field, key,
//     header and tag) must still be there, whatever the version, unless the
//     new version lists its match under retired_rules: changing a rule's match
//     (customer.email to "**.email") removes the old match.
//
// A policy absent from the active bundle is new, whatever its version: one
// that was retired earlier and comes back is not compared with its last
// version, which the active bundle no longer holds (give it a higher one, so
// that <name>@<version> in the audit trail stays unambiguous). Problems come
// back as a *ErrorList pointing at the new files (the version key, the rules
// key), or for a missing policy at the active file that defined it.
func (s *Set) CheckAgainst(active *Set) error {
	if active == nil {
		return nil
	}
	var errs []*Error
	for _, old := range active.Policies {
		p := s.Policy(old.Name)
		if p == nil {
			if !s.Retires(old.Name) {
				errs = append(errs, old.errAt("policy", "active policy %q (version %d) is missing from the new bundle; if its file was deleted or the policy renamed on purpose, list %q under retired: in a policy file", old.Name, old.Version, old.Name))
			}
			continue
		}
		switch {
		case p.Version < old.Version:
			errs = append(errs, p.errAt("version", "version %d is lower than the active version %d of policy %q", p.Version, old.Version, p.Name))
		case p.Version == old.Version && p.digest() != old.digest():
			errs = append(errs, p.errAt("version", "policy %q changed but its version is still %d; raise it to %d or more", p.Name, p.Version, old.Version+1))
		}
		have := map[string]bool{}
		for i := range p.Rules {
			have[ruleKey(&p.Rules[i])] = true
		}
		for i := range old.Rules {
			r := &old.Rules[i]
			if k := ruleKey(r); !have[k] && !p.retiredKeys[k] {
				errs = append(errs, p.errAt("rules", "rule %s of the active version %d (rules[%d]) is gone; to remove it on purpose, list that match under retired_rules", r.Match.YAML(), old.Version, i))
			}
		}
	}
	return yamlerr.Join(errs...)
}

// OlderThan reports whether s looks like an older copy of the policy folder
// than the one active was made from, and why. It is true when
//
//   - s lacks a policy of active and does not retire it, or
//   - no policy of s has a higher version than in active and at least one has
//     a lower one (policies of s that active lacks are not compared).
//
// The daemon uses it so that the cluster's bundle version only grows: a node
// whose folder is older than the cluster's bundle (it lagged, or its copy of
// the folder is stale) does not propose it, and reports "policy folder is
// older than the cluster's bundle: <why>" instead. why names the first such
// policy by name, as in `policy "payments-pii" is at version 6, the cluster's
// bundle has 7`. A nil active is never newer.
func (s *Set) OlderThan(active *Set) (older bool, why string) {
	if active == nil {
		return false, ""
	}
	for _, a := range active.Policies {
		if s.Policy(a.Name) == nil && !s.Retires(a.Name) {
			return true, fmt.Sprintf("policy %q (version %d in the cluster's bundle) is missing and not retired", a.Name, a.Version)
		}
	}
	for _, p := range s.Policies {
		a := active.Policy(p.Name)
		switch {
		case a == nil:
		case p.Version > a.Version:
			return false, ""
		case p.Version < a.Version && why == "":
			why = fmt.Sprintf("policy %q is at version %d, the cluster's bundle has %d", p.Name, p.Version, a.Version)
		}
	}
	return why != "", why
}
