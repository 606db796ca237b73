package policy

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

// header is one header of a record, as a caller holds it.
type header struct {
	name  string
	value []byte
}

// applyHeaders runs a header plan over a record's headers the way the daemon
// does: kept headers are written back in place, in order.
func applyHeaders(t testing.TB, p *HeaderPlan, hs []header, res *Result) ([]header, error) {
	t.Helper()
	out := hs[:0:0]
	for _, h := range hs {
		v, keep, err := p.Apply(h.name, h.value, res)
		if err != nil {
			return nil, err
		}
		if keep {
			out = append(out, header{h.name, v})
		}
	}
	return out, nil
}

func compileHeaders(t testing.TB, set *Set) *HeaderPlan {
	t.Helper()
	p, err := CompileHeaders(set, "eu-payments", "payments.card", WithHashKey(hashKey))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHeaderActions(t *testing.T) {
	cases := []struct {
		name  string
		rules []string
		in    []header
		want  []header
		// touches are "path action count" of the Result.
		touches []Touch
		// viol is the violation's reason and field path.
		viol [2]string
	}{
		{name: "hash makes a header value its hex HMAC",
			rules:   []string{"{match: {header: x-customer-id}, action: hash}"},
			in:      []header{{"traceparent", []byte("00-abc-01")}, {"x-customer-id", []byte("c-1001")}},
			want:    []header{{"traceparent", []byte("00-abc-01")}, {"x-customer-id", []byte(hexHMAC("c-1001"))}},
			touches: []Touch{{Path: "header.x-customer-id", Action: Hash, Count: 1}}},
		{name: "redact empties a header value and keeps the header",
			rules:   []string{"{match: {header: x-email}, action: redact}"},
			in:      []header{{"x-email", []byte("a@b.c")}},
			want:    []header{{"x-email", []byte{}}},
			touches: []Touch{{Path: "header.x-email", Action: Redact, Count: 1}}},
		{name: "mask keeps the first characters",
			rules:   []string{"{match: {header: x-forwarded-for}, action: mask, keep_first: 3}"},
			in:      []header{{"x-forwarded-for", []byte("203.0.113.7")}},
			want:    []header{{"x-forwarded-for", []byte("203********")}},
			touches: []Touch{{Path: "header.x-forwarded-for", Action: Mask, Count: 1}}},
		{name: "replace writes a fixed string",
			rules:   []string{"{match: {header: x-user-agent}, action: replace, value: redacted}"},
			in:      []header{{"x-user-agent", []byte("Mozilla/5.0")}},
			want:    []header{{"x-user-agent", []byte("redacted")}},
			touches: []Touch{{Path: "header.x-user-agent", Action: Replace, Count: 1}}},
		{name: "drop removes the header and keeps the others in order",
			rules:   []string{"{match: {header: x-session}, action: drop}"},
			in:      []header{{"a", []byte("1")}, {"x-session", []byte("s")}, {"b", []byte("2")}},
			want:    []header{{"a", []byte("1")}, {"b", []byte("2")}},
			touches: []Touch{{Path: "header.x-session", Action: Drop, Count: 1}}},
		{name: "block quarantines a record with the header",
			rules: []string{"{match: {header: x-ssn}, action: block}"},
			in:    []header{{"x-ssn", []byte("078-05-1120")}},
			viol:  [2]string{ReasonBlocked, "header.x-ssn"}},
		{name: "block lets a null header value pass",
			rules: []string{"{match: {header: x-ssn}, action: block}"},
			in:    []header{{"x-ssn", nil}},
			want:  []header{{"x-ssn", nil}}},
		{name: "a glob matches every header it covers and counts them in one touch",
			rules:   []string{`{match: {header: "x-user-*"}, action: hash}`},
			in:      []header{{"x-user-id", []byte("u1")}, {"x-user-email", []byte("a@b.c")}, {"x-username-hint", []byte("n")}, {"x-use", []byte("no")}},
			want:    []header{{"x-user-id", []byte(hexHMAC("u1"))}, {"x-user-email", []byte(hexHMAC("a@b.c"))}, {"x-username-hint", []byte("n")}, {"x-use", []byte("no")}},
			touches: []Touch{{Path: "header.x-user-*", Action: Hash, Count: 2}}},
		{name: "header names are case-sensitive",
			rules: []string{"{match: {header: X-Customer-Id}, action: drop}"},
			in:    []header{{"x-customer-id", []byte("c-1")}},
			want:  []header{{"x-customer-id", []byte("c-1")}}},
		{name: "an exact name wins over a glob of the same policy",
			rules:   []string{`{match: {header: "x-user-*"}, action: hash}`, "{match: {header: x-user-id}, action: redact}"},
			in:      []header{{"x-user-id", []byte("u1")}, {"x-user-email", []byte("e")}},
			want:    []header{{"x-user-id", []byte{}}, {"x-user-email", []byte(hexHMAC("e"))}},
			touches: []Touch{{Path: "header.x-user-id", Action: Redact, Count: 1}, {Path: "header.x-user-*", Action: Hash, Count: 1}}},
		{name: "among globs the rule written first wins",
			rules:   []string{`{match: {header: "x-*-id"}, action: redact}`, `{match: {header: "x-user-*"}, action: hash}`},
			in:      []header{{"x-user-id", []byte("u1")}},
			want:    []header{{"x-user-id", []byte{}}},
			touches: []Touch{{Path: "header.x-*-id", Action: Redact, Count: 1}}},
		{name: "a block rule wins over a more specific one, as for fields",
			rules: []string{"{match: {header: x-user-id}, action: redact}", `{match: {header: "x-*"}, action: block}`},
			in:    []header{{"x-user-id", []byte("u1")}},
			viol:  [2]string{ReasonBlocked, "header.x-user-id"}},
		{name: "a null value stays null under hash and is not counted",
			rules: []string{"{match: {header: x-customer-id}, action: hash}"},
			in:    []header{{"x-customer-id", nil}},
			want:  []header{{"x-customer-id", nil}}},
		{name: "replace writes over a null value",
			rules:   []string{"{match: {header: x-customer-id}, action: replace, value: none}"},
			in:      []header{{"x-customer-id", nil}},
			want:    []header{{"x-customer-id", []byte("none")}},
			touches: []Touch{{Path: "header.x-customer-id", Action: Replace, Count: 1}}},
		{name: "drop removes a header with a null value without counting it",
			rules: []string{"{match: {header: x-customer-id}, action: drop}"},
			in:    []header{{"x-customer-id", nil}},
			want:  []header{}},
		{name: "mask of a value that is not UTF-8 is unmaskable",
			rules: []string{"{match: {header: x-blob}, action: mask, keep_last: 2}"},
			in:    []header{{"x-blob", []byte{0xff, 0x00, 0xfe}}},
			viol:  [2]string{ReasonUnmaskable, "header.x-blob"}},
		{name: "hash takes a value that is not UTF-8",
			rules:   []string{"{match: {header: x-blob}, action: hash}"},
			in:      []header{{"x-blob", []byte{0xff, 0xfe}}},
			want:    []header{{"x-blob", []byte(hexHMAC("\xff\xfe"))}},
			touches: []Touch{{Path: "header.x-blob", Action: Hash, Count: 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set := keyPolicy(t, c.rules...)
			plan := compileHeaders(t, set)
			if !plan.Touches() {
				t.Fatal("the plan touches no header")
			}
			var res Result
			got, err := applyHeaders(t, plan, c.in, &res)
			if c.viol[0] != "" {
				var v *Violation
				if !errors.As(err, &v) || v.Reason != c.viol[0] || v.FieldPath != c.viol[1] || v.Rule == "" {
					t.Fatalf("got %v, want %s at %s", err, c.viol[0], c.viol[1])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("headers %q, want %q", got, c.want)
			}
			for i := range got {
				if got[i].name != c.want[i].name || string(got[i].value) != string(c.want[i].value) || (got[i].value == nil) != (c.want[i].value == nil) {
					t.Fatalf("headers %q, want %q", got, c.want)
				}
			}
			var touches []Touch
			for _, tc := range res.Touches {
				if tc.Policy != "keys" || tc.Version != 2 {
					t.Errorf("touch %+v names the wrong policy", tc)
				}
				touches = append(touches, Touch{Path: tc.Path, Action: tc.Action, Count: tc.Count})
			}
			if !reflect.DeepEqual(touches, c.touches) {
				t.Fatalf("touches %+v, want %+v", touches, c.touches)
			}
			hashed := slices.ContainsFunc(c.touches, func(t Touch) bool { return t.Action == Hash })
			if (res.KeyID != "") != hashed {
				t.Fatalf("key id %q", res.KeyID)
			}
		})
	}
}

func TestHeaderValuesNoRuleMatchesAreNotCopied(t *testing.T) {
	plan := compileHeaders(t, keyPolicy(t, "{match: {header: x-a}, action: hash}"))
	in := []byte("00-abc-01")
	out, keep, err := plan.Apply("traceparent", in, nil)
	if err != nil || !keep || &out[0] != &in[0] {
		t.Fatalf("an untouched header was copied or changed: %q %t %v", out, keep, err)
	}
}

func TestPoliciesThatDisagreeOnAHeaderRefuseTheRecord(t *testing.T) {
	a := "policy: a\nversion: 1\nrules:\n  - {match: {header: \"x-user-*\"}, action: hash}\n"
	b := "policy: b\nversion: 4\nrules:\n  - {match: {header: \"*-id\"}, action: redact}\n  - {match: {header: \"x-user-email\"}, action: hash}\n"
	set, err := ParseFiles(Source{Name: "a.yaml", Data: []byte(a)}, Source{Name: "b.yaml", Data: []byte(b)})
	if err != nil {
		t.Fatal(err)
	}
	plan := compileHeaders(t, set)
	var res Result
	if _, _, err := plan.Apply("x-user-email", []byte("e"), &res); err != nil {
		t.Fatalf("both policies hash x-user-email, got %v", err)
	}
	// As for a field, the touch names the policy first by name.
	if got := res.Header(); got != "a@1" {
		t.Fatalf("tributary-policy %q", got)
	}
	_, _, err = plan.Apply("x-user-id", []byte("u1"), &res)
	var v *Violation
	if !errors.As(err, &v) || v.Reason != ReasonPolicyConflict || v.FieldPath != "header.x-user-id" ||
		v.Detail != "a@1 rules[0] (hash) and b@4 rules[0] (redact) give this header different actions" {
		t.Fatalf("got %v", err)
	}
	if _, _, err := plan.Apply("device-id", []byte("d"), &res); err != nil {
		t.Fatalf("only b matches device-id, got %v", err)
	}
	// Equal matches with different actions are caught when the files are read.
	c := "policy: c\nversion: 1\nrules:\n  - {match: {header: \"x-user-*\"}, action: drop}\n"
	_, err = ParseFiles(Source{Name: "a.yaml", Data: []byte(a)}, Source{Name: "c.yaml", Data: []byte(c)})
	if err == nil || err.Error() != `c.yaml:4:43: rules[0].action: conflicts with policy "a" rules[0] (a.yaml:4:5) on header x-user-* for all pipelines: drop here, hash there` {
		t.Fatalf("got %v", err)
	}
}

func TestHeaderPlansFollowScopeAndKeys(t *testing.T) {
	set := mustParse(t, "h.yaml", "policy: h\nversion: 1\napplies_to: {pipelines: [fleet]}\nrules:\n  - {match: {header: x-vin}, action: hash}\n  - {match: {field: vin}, action: hash}\n")
	if p := compileHeaders(t, set); p.Touches() {
		t.Fatal("a policy of another pipeline touches headers")
	}
	_, err := CompileHeaders(set, "fleet", "t")
	var list *ErrorList
	if !errors.As(err, &list) || list.Errors[0].Error() != "h.yaml:5:38: rules[0].action: hash rules need a key: set TRIBUTARY_HASH_KEY or a key file" {
		t.Fatalf("got %v", err)
	}
	c := NewCache(WithHashKey(hashKey))
	p1, err := c.Headers(set, "fleet", "t")
	if err != nil || !p1.Touches() {
		t.Fatalf("got %v", err)
	}
	if p2, _ := c.Headers(set, "fleet", "t"); p2 != p1 {
		t.Fatal("the header plan was compiled twice")
	}
	other := mustParse(t, "h.yaml", "policy: h\nversion: 2\nrules:\n  - {match: {header: x-other}, action: drop}\n")
	if p3, _ := c.Headers(other, "fleet", "t"); p3 == p1 {
		t.Fatal("a new set kept the old header plan")
	}
}

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"x-user-*", "x-user-id", true},
		{"x-user-*", "x-user-", true},
		{"x-user-*", "x-use", false},
		{"*-id", "x-user-id", true},
		{"*-id", "x-user-ids", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"a*b", "ab", true},
		{"*", "", true},
		{"*", "anything", true},
		{"x", "X", false},
		{"**x", "yx", true},
	}
	for _, c := range cases {
		if got := globMatch(c.pattern, c.name); got != c.want {
			t.Errorf("globMatch(%q, %q) = %t, want %t", c.pattern, c.name, got, c.want)
		}
	}
}

func TestResultsMergeIntoOneHeader(t *testing.T) {
	key := Result{Touches: []Touch{{Path: "key", Action: Hash, Policy: "fleet", Version: 3, Rule: 0, Count: 1}}, KeyID: "abcd1234"}
	value := Result{Touches: []Touch{
		{Path: "driver.name", Action: Redact, Policy: "fleet", Version: 3, Rule: 1, Count: 1},
		{Path: "vin", Action: Hash, Policy: "payments", Version: 7, Rule: 0, Count: 1},
	}}
	headers := Result{Touches: []Touch{{Path: "header.x-user-*", Action: Hash, Policy: "audit", Version: 1, Rule: 2, Count: 2}}, KeyID: "abcd1234"}
	var all Result
	all.Merge(key)
	all.Merge(value)
	all.Merge(headers)
	all.Merge(headers)
	if got := all.Header(); got != "audit@1,fleet@3,payments@7" {
		t.Fatalf("tributary-policy %q", got)
	}
	if all.KeyID != "abcd1234" || len(all.Touches) != 4 || all.Touches[3].Count != 4 || all.Touches[0].Count != 1 {
		t.Fatalf("merged %+v", all)
	}
	var empty Result
	empty.Merge(Result{})
	if empty.Header() != "" || empty.KeyID != "" {
		t.Fatalf("merging nothing gave %+v", empty)
	}
}
