package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Effect is how a change moves a field's protection.
type Effect int

const (
	// Tighter: the field is more protected than before.
	Tighter Effect = iota + 1
	// Looser: the field is less protected than before, or no longer protected.
	// Diff's callers flag these loudly.
	Looser
	// Different: the protection changed in a way that is neither clearly
	// stronger nor weaker (redact → replace).
	Different
)

func (e Effect) String() string {
	switch e {
	case Tighter:
		return "more protected"
	case Looser:
		return "LESS PROTECTED"
	case Different:
		return "changed"
	}
	return "unknown"
}

// Change is one field whose protection differs between two bundles, in one
// pipeline.
type Change struct {
	// Pipeline is the pipeline concerned; "*" means every pipeline (the change
	// comes from policies without applies_to.pipelines).
	Pipeline string
	// Topics is the policy's topic scope, the regexes joined by ", "; "" for all
	// topics.
	Topics string
	// Field is the rule's match: "customer.email", "tag PII", "ssn (tag PII)".
	Field string
	// Old and New are the rules' actions with parameters ("mask keep_last=4");
	// "" when no rule matched the field on that side.
	Old, New string
	// OldRule and NewRule name the rules, as in "payments-pii@7 rules[2]".
	OldRule, NewRule string
	Effect           Effect
	// Retired says that the old rule is gone on purpose: "policy" when the new
	// bundle lists its policy under retired:, "rule" when the new version of
	// the policy lists its match under retired_rules; "" otherwise (a removal
	// that is not retired is one Set.CheckAgainst refuses).
	Retired string
}

// Loosening reports whether the change leaves the field less protected.
func (c Change) Loosening() bool { return c.Effect == Looser }

// String prints the change on one line:
// "eu-payments: card.number: hash → mask keep_last=4 (LESS PROTECTED)", or for
// a deliberate removal "eu-payments: customer.email: redact → (rule retired)
// (LESS PROTECTED)".
func (c Change) String() string {
	old, nw := c.Old, c.New
	if old == "" {
		old = "(no rule)"
	}
	switch {
	case c.Retired != "":
		nw = "(" + c.Retired + " retired)"
	case nw == "":
		nw = "(no rule)"
	}
	scope := c.Pipeline
	if scope == "*" {
		scope = "all pipelines"
	}
	if c.Topics != "" {
		scope += " [topics " + c.Topics + "]"
	}
	return fmt.Sprintf("%s: %s: %s → %s (%s)", scope, c.Field, old, nw, c.Effect)
}

// Diff lists, per pipeline and field, how protection changes from old to new,
// as `tributary policy diff` shows. Fields are the rules' matches: Diff works
// on the policy files alone, without schemas. The changes are sorted by
// pipeline, then field.
func Diff(old, new *Set) []Change {
	pipelines := []string{"*"}
	for _, s := range []*Set{old, new} {
		if s == nil {
			continue
		}
		for _, p := range s.Policies {
			for _, name := range p.AppliesTo.Pipelines {
				if !slices.Contains(pipelines, name) {
					pipelines = append(pipelines, name)
				}
			}
		}
	}
	slices.Sort(pipelines[1:])
	var out []Change
	universal := map[string]bool{}
	for _, pl := range pipelines {
		before, after := effective(old, pl), effective(new, pl)
		var keys []string
		for k := range before {
			keys = append(keys, k)
		}
		for k := range after {
			if _, ok := before[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			b, a := before[k], after[k]
			var bs, as string
			if b.rule != nil {
				bs = b.rule.String()
			}
			if a.rule != nil {
				as = a.rule.String()
			}
			if bs == as {
				continue
			}
			ch := Change{Pipeline: pl, Old: bs, New: as, OldRule: b.ref, NewRule: a.ref, Effect: compare(b.rule, a.rule)}
			if a.rule == nil && new != nil {
				ch.Retired = retiredBy(new, b.p, b.rule)
			}
			e := a
			if a.rule == nil {
				e = b
			}
			ch.Field, ch.Topics = e.rule.Match.String(), strings.Join(e.topics, ", ")
			id := k + "\x00" + bs + "\x00" + as + "\x00" + ch.Retired
			if pl == "*" {
				universal[id] = true
			} else if universal[id] {
				continue // already reported for every pipeline
			}
			out = append(out, ch)
		}
	}
	return out
}

type effEntry struct {
	p      *Policy
	rule   *Rule
	ref    string
	topics []string
}

// retiredBy says how the new bundle retires rule r of policy p, if it does:
// "policy" or "rule" (see Change.Retired).
func retiredBy(new *Set, p *Policy, r *Rule) string {
	np := new.Policy(p.Name)
	switch {
	case np == nil && new.Retires(p.Name):
		return "policy"
	case np != nil && np.retiredKeys[ruleKey(r)]:
		return "rule"
	}
	return ""
}

// effective maps each (match, topic scope) to the rule that applies in
// pipeline pl ("*": only policies that apply to every pipeline).
func effective(s *Set, pl string) map[string]effEntry {
	m := map[string]effEntry{}
	if s == nil {
		return m
	}
	for _, p := range s.Policies {
		if len(p.AppliesTo.Pipelines) > 0 && (pl == "*" || !slices.Contains(p.AppliesTo.Pipelines, pl)) {
			continue
		}
		for i := range p.Rules {
			r := &p.Rules[i]
			k := ruleKey(r) + "\x00" + strings.Join(p.AppliesTo.Topics, "\x00")
			if _, ok := m[k]; !ok {
				m[k] = effEntry{p: p, rule: r, ref: p.ruleRef(i), topics: p.AppliesTo.Topics}
			}
		}
	}
	return m
}

// strength ranks actions by how much of a value they leave.
func strength(r *Rule) int {
	if r == nil {
		return 0
	}
	switch r.Action {
	case Generalize, Bucket:
		return 1
	case Mask:
		return 2
	case Hash:
		return 3
	case Redact, Replace:
		return 4
	case Drop:
		return 5
	case Block:
		return 6
	}
	return 0
}

// compare classifies a change from rule a to rule b.
func compare(a, b *Rule) Effect {
	sa, sb := strength(a), strength(b)
	switch {
	case sa < sb:
		return Tighter
	case sa > sb:
		return Looser
	case a.Action != b.Action:
		return Different
	}
	// Same action, different parameters: compare how much stays visible.
	var d int
	switch a.Action {
	case Mask:
		d = (a.KeepFirst + a.KeepLast) - (b.KeepFirst + b.KeepLast)
	case Generalize:
		d = cmpPrecision(a.Precision, b.Precision)
		if d == 0 {
			d = slices.Index(truncUnits, b.Truncate) - slices.Index(truncUnits, a.Truncate)
		}
	case Bucket:
		d = len(a.Buckets) - len(b.Buckets)
	}
	switch {
	case d > 0:
		return Tighter
	case d < 0:
		return Looser
	}
	return Different
}

// cmpPrecision is positive when b keeps fewer digits than a.
func cmpPrecision(a, b *int) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return *a - *b
}
