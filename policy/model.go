package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// Set is a bundle of policies: every policy file of a folder, parsed and
// validated together. The daemon applies one Set at a time, cluster-wide. A Set
// is immutable once built and safe for concurrent use.
type Set struct {
	// Policies are sorted by name; names are unique.
	Policies []*Policy
	// Files are the files the policies came from, sorted by name, with the
	// sha256 of their bytes, for the audit trail.
	Files []File
	// Retired are the policy names the bundle's files list under retired: (a
	// policy file's top-level key, or a file holding only that key), sorted by
	// name: policies this bundle removes on purpose (see CheckAgainst).
	Retired []Retired
}

// Retired is one entry of a retired: list: a policy name and where it is listed.
type Retired struct {
	// Name is the retired policy's name.
	Name string
	// File, Line and Col are where the name is written.
	File      string
	Line, Col int
	// path is its key path, as in "retired[1]".
	path string
}

// Retires reports whether the bundle lists name under retired:.
func (s *Set) Retires(name string) bool {
	return slices.ContainsFunc(s.Retired, func(r Retired) bool { return r.Name == name })
}

// File is one policy file of a Set.
type File struct {
	// Name is the path as given to LoadFiles or LoadDir, or the name given to Parse.
	Name string
	// SHA256 is the lower-case hex sha256 of the file's bytes, as sha256sum prints it.
	SHA256 string
}

// Policy is one policy file's content.
type Policy struct {
	// Name identifies the policy in headers (tributary-policy: <name>@<version>),
	// metrics and the audit trail.
	Name string
	// Version must increase whenever the policy changes (see Set.CheckAgainst).
	Version int64
	// Owner is who to ask about the policy, usually a mail address.
	Owner string
	// Description is free text.
	Description string
	// AppliesTo scopes the policy to pipelines and topics; empty means everywhere.
	AppliesTo AppliesTo
	// Rules are in file order. For one field, the most specific rule wins (see doc.go).
	Rules []Rule
	// OnUnmatchedPII is what happens to a record with a PII-tagged field no rule
	// covers: always "quarantine" (fail closed).
	OnUnmatchedPII string
	// RetiredRules are the matches of rules this version removes on purpose
	// (retired_rules: in the file). Set.CheckAgainst rejects a new version that
	// lacks a rule of the active version unless its match is listed here.
	RetiredRules []Match
	// File is the file the policy came from, and SHA256 that file's hash.
	File, SHA256 string

	// pos maps key paths ("version", "rules[2].action") to where they are in File.
	pos yamlerr.Positions
	// topics are AppliesTo.Topics compiled, anchored at both ends.
	topics []*regexp.Regexp
	// retiredKeys are the match keys (matchKey) of RetiredRules.
	retiredKeys map[string]bool
}

// AppliesTo is a policy's scope.
type AppliesTo struct {
	// Pipelines are pipeline names from the node config; empty means all pipelines.
	Pipelines []string
	// Topics are regular expressions a source topic's whole name must match (one of
	// them); empty means all topics.
	Topics []string
}

// Rule is one entry of a policy's rules: what it matches and what it does.
type Rule struct {
	Match  Match
	Action Action
	// KeepFirst and KeepLast are the characters (bytes for bytes fields) that
	// action mask leaves visible.
	KeepFirst, KeepLast int
	// MaskChar is the character action mask writes; "" means "*".
	MaskChar string
	// Precision is action generalize's number of decimal places; negative values
	// round integers to tens (-1), hundreds (-2)...; nil when not given.
	Precision *int
	// Truncate is action generalize's unit for timestamps: hour, day, month or year.
	Truncate string
	// Buckets are action bucket's ranges, sorted and non-overlapping.
	Buckets []Range
	// Value is action replace's value: a string, int64, float64 or bool.
	Value any
	// Description is free text.
	Description string

	// pattern is Match.Field or Match.Key parsed; empty (not nil) for the whole key.
	pattern []segment
	// valid says the match is well formed (set by checkRule): rules with a
	// broken match are left out of cross-rule checks, which would only repeat
	// the problem.
	valid bool
}

// Match selects what a rule applies to: a field of the record's value
// (Field), a field of its key (Key), a header (Header), or the fields of the
// key's or the value's schema that carry Tag. At most one of Field, Key and
// Header is set. Tag alone applies to keys and values alike; with Field or Key
// a field must match both; it cannot go with Header (headers have no schema).
type Match struct {
	// Field is a field path pattern in the value's schema: "customer.email",
	// "*.email", "**.ssn", "items[].card".
	Field string
	// Key is a field path pattern in the key's schema, with Field's syntax, or
	// "." for the whole key (the only thing a key without a schema has).
	Key string
	// Header is a header name (Kafka header, or Pub/Sub attribute), exact and
	// case-sensitive, or a glob where "*" matches any run of characters, as in
	// "x-user-*".
	Header string
	// Tag selects fields whose schema tags (Avro and JSON Schema "confluent:tags")
	// contain it, as in "PII".
	Tag string
}

// Range is one bucket of action bucket: values in [Min, Max) become Replacement.
type Range struct {
	// Min is inclusive and Max exclusive; nil means unbounded (first and last bucket only).
	Min, Max *float64
	// Replacement is what a value in the range becomes: a number for numeric fields.
	Replacement any
}

// Action is what a rule does to the fields it matches.
type Action string

// The actions. doc.go describes what each does to each type.
const (
	Redact     Action = "redact"
	Hash       Action = "hash"
	Mask       Action = "mask"
	Generalize Action = "generalize"
	Drop       Action = "drop"
	Replace    Action = "replace"
	Bucket     Action = "bucket"
	Block      Action = "block"
)

var actions = []string{"redact", "hash", "mask", "generalize", "drop", "replace", "bucket", "block"}

// truncUnits are generalize's timestamp units, finest first.
var truncUnits = []string{"hour", "day", "month", "year"}

// Ref is the policy's "<name>@<version>", as in the tributary-policy header.
func (p *Policy) Ref() string { return p.Name + "@" + strconv.FormatInt(p.Version, 10) }

// Applies reports whether the policy covers records of pipeline's source topic.
// An empty pipeline or topic matches any scope on that axis, for tools that check
// policies without a stream in mind.
func (p *Policy) Applies(pipeline, topic string) bool {
	if pipeline != "" && len(p.AppliesTo.Pipelines) > 0 && !slices.Contains(p.AppliesTo.Pipelines, pipeline) {
		return false
	}
	if topic == "" || len(p.topics) == 0 {
		return true
	}
	for _, re := range p.topics {
		if re.MatchString(topic) {
			return true
		}
	}
	return false
}

// Policy returns the policy named name, or nil.
func (s *Set) Policy(name string) *Policy {
	i, ok := slices.BinarySearchFunc(s.Policies, name, func(p *Policy, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return nil
	}
	return s.Policies[i]
}

// Versions returns "<name>@<version>" for every policy, sorted by name.
func (s *Set) Versions() []string {
	out := make([]string, len(s.Policies))
	for i, p := range s.Policies {
		out[i] = p.Ref()
	}
	return out
}

// String describes the rule's action with its parameters, as in
// `mask keep_last=4` or `generalize precision=2`; Diff and TestRecord print it.
func (r *Rule) String() string {
	var b strings.Builder
	b.WriteString(string(r.Action))
	switch r.Action {
	case Mask:
		if r.KeepFirst > 0 {
			fmt.Fprintf(&b, " keep_first=%d", r.KeepFirst)
		}
		if r.KeepLast > 0 {
			fmt.Fprintf(&b, " keep_last=%d", r.KeepLast)
		}
		if r.MaskChar != "" && r.MaskChar != "*" {
			fmt.Fprintf(&b, " mask_char=%q", r.MaskChar)
		}
	case Generalize:
		if r.Precision != nil {
			fmt.Fprintf(&b, " precision=%d", *r.Precision)
		}
		if r.Truncate != "" {
			fmt.Fprintf(&b, " truncate=%s", r.Truncate)
		}
	case Replace:
		fmt.Fprintf(&b, " value=%s", literal(r.Value))
	case Bucket:
		b.WriteString(" buckets=[")
		for i, bk := range r.Buckets {
			if i > 0 {
				b.WriteString(", ")
			}
			if bk.Min != nil {
				b.WriteString(strconv.FormatFloat(*bk.Min, 'g', -1, 64))
			}
			b.WriteString("..")
			if bk.Max != nil {
				b.WriteString(strconv.FormatFloat(*bk.Max, 'g', -1, 64))
			}
			b.WriteString("→")
			b.WriteString(literal(bk.Replacement))
		}
		b.WriteString("]")
	}
	return b.String()
}

// literal prints a YAML scalar value for messages.
func literal(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	default:
		return fmt.Sprint(v)
	}
}

// maskChar returns the rule's mask character.
func (r *Rule) maskChar() string {
	if r.MaskChar == "" {
		return "*"
	}
	return r.MaskChar
}

// String prints the match for messages and diffs: the field pattern
// ("customer.email"), "key customer_id", "key" (the whole key), "header
// x-user-*", "tag PII", or a pattern with its tag ("ssn (tag PII)").
func (m Match) String() string {
	var s string
	switch {
	case m.Key == ".":
		s = "key"
	case m.Key != "":
		s = "key " + m.Key
	case m.Header != "":
		s = "header " + m.Header
	default:
		s = m.Field
	}
	switch {
	case m.Tag != "" && s != "":
		return s + " (tag " + m.Tag + ")"
	case m.Tag != "":
		return "tag " + m.Tag
	}
	return s
}

// YAML prints the match as a policy file writes it, as in
// `{field: customer.email}` or `{key: ".", tag: PII}`: what retired_rules
// lists.
func (m Match) YAML() string {
	var parts []string
	for _, kv := range [][2]string{{"field", m.Field}, {"key", m.Key}, {"header", m.Header}, {"tag", m.Tag}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+": "+yamlScalar(kv[1]))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// yamlScalar quotes s when a YAML flow mapping would not read it back as the
// same plain string.
func yamlScalar(s string) string {
	if _, err := strconv.ParseFloat(s, 64); err == nil || s == "" || s == "." ||
		strings.ContainsAny(s, "*&!|>'\"%@`#,[]{}:") || strings.ContainsAny(s[:1], "-? ") ||
		slices.Contains([]string{"true", "false", "null", "yes", "no", "on", "off", "~"}, strings.ToLower(s)) ||
		strings.TrimSpace(s) != s || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return strconv.Quote(s)
	}
	return s
}

// at returns the position recorded for key path k, falling back to its parents
// and finally to the top of the file.
func (p *Policy) at(k string) yamlerr.Pos {
	if pos := p.pos.Nearest(k); pos.Line > 0 {
		return pos
	}
	return yamlerr.Pos{Line: 1, Col: 1}
}

// errAt builds an error at key path k of the policy's file.
func (p *Policy) errAt(k, format string, args ...any) *Error {
	pos := p.at(k)
	return &Error{File: p.File, Line: pos.Line, Col: pos.Col, Path: k, Msg: fmt.Sprintf(format, args...)}
}

// ruleRef names rule i of the policy for messages and Touch: "payments-pii@7 rules[2]".
func (p *Policy) ruleRef(i int) string { return p.Ref() + " rules[" + strconv.Itoa(i) + "]" }

// where prints "file:line:col" of key path k.
func (p *Policy) where(k string) string {
	pos := p.at(k)
	return p.File + ":" + strconv.Itoa(pos.Line) + ":" + strconv.Itoa(pos.Col)
}
