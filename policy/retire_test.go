package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const (
	activePayments = `policy: payments-pii
version: 7
rules:
  - match: {tag: PII}
    action: hash
  - match: {field: customer.email}
    action: redact
  - match: {key: "."}
    action: hash
  - match: {header: "x-user-*"}
    action: drop
`
	activeMarketing = `policy: marketing-pii
version: 3
rules:
  - match: {field: contact.email}
    action: hash
`
)

// bundle parses files given as name, content, name, content...
func bundle(t *testing.T, nameAndData ...string) *Set {
	t.Helper()
	var srcs []Source
	for i := 0; i+1 < len(nameAndData); i += 2 {
		srcs = append(srcs, Source{Name: nameAndData[i], Data: []byte(nameAndData[i+1])})
	}
	set, err := ParseFiles(srcs...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestCheckAgainstKeepsRemovalsDeliberate(t *testing.T) {
	active := bundle(t, "payments.yaml", activePayments, "marketing.yaml", activeMarketing)
	// edit changes the payments policy: old is replaced by new.
	edit := func(old, new string) string {
		if !strings.Contains(activePayments, old) {
			t.Fatalf("%q is not in the payments policy", old)
		}
		return strings.Replace(activePayments, old, new, 1)
	}
	cases := []struct {
		name  string
		files []string
		// want is the whole error; "" when the new bundle passes.
		want string
	}{
		{"the same bundle passes",
			[]string{"payments.yaml", activePayments, "marketing.yaml", activeMarketing}, ""},
		{"a missing policy is rejected at the active file that defined it",
			[]string{"payments.yaml", activePayments},
			`marketing.yaml:1:9: policy: active policy "marketing-pii" (version 3) is missing from the new bundle; if its file was deleted or the policy renamed on purpose, list "marketing-pii" under retired: in a policy file`},
		{"a missing policy listed under retired in a policy file passes",
			[]string{"payments.yaml", edit("version: 7", "version: 7\nretired: [marketing-pii]")}, ""},
		{"a file holding only retired retires a policy",
			[]string{"payments.yaml", activePayments, "retired.yaml", "retired: [marketing-pii]\n"}, ""},
		{"a file holding only retired can retire every policy",
			[]string{"retired.yaml", "retired:\n  - marketing-pii\n  - payments-pii\n"}, ""},
		{"an empty folder is rejected, naming each policy it would remove",
			nil,
			`marketing.yaml:1:9: policy: active policy "marketing-pii" (version 3) is missing from the new bundle; if its file was deleted or the policy renamed on purpose, list "marketing-pii" under retired: in a policy file` + "\n" +
				`payments.yaml:1:9: policy: active policy "payments-pii" (version 7) is missing from the new bundle; if its file was deleted or the policy renamed on purpose, list "payments-pii" under retired: in a policy file`},
		{"a renamed policy is a removal",
			[]string{"payments.yaml", strings.Replace(activePayments, "payments-pii", "payments-v2", 1), "marketing.yaml", activeMarketing},
			`payments.yaml:1:9: policy: active policy "payments-pii" (version 7) is missing from the new bundle; if its file was deleted or the policy renamed on purpose, list "payments-pii" under retired: in a policy file`},
		{"a removed rule is rejected even with a higher version",
			[]string{"payments.yaml", edit("version: 7", "version: 8")[:strings.Index(activePayments, "  - match: {field: customer.email}")] + "  - match: {key: \".\"}\n    action: hash\n  - match: {header: \"x-user-*\"}\n    action: drop\n", "marketing.yaml", activeMarketing},
			`payments.yaml:4:3: rules: rule {field: customer.email} of the active version 7 (rules[1]) is gone; to remove it on purpose, list that match under retired_rules`},
		{"a removed rule listed under retired_rules passes with a higher version",
			[]string{"payments.yaml", edit("version: 7", "version: 8")[:strings.Index(activePayments, "  - match: {field: customer.email}")] + "  - match: {key: \".\"}\n    action: hash\n  - match: {header: \"x-user-*\"}\n    action: drop\nretired_rules:\n  - {field: customer.email}\n", "marketing.yaml", activeMarketing}, ""},
		{"a removed rule listed under retired_rules still needs a higher version",
			[]string{"payments.yaml", activePayments[:strings.Index(activePayments, "  - match: {field: customer.email}")] + "  - match: {key: \".\"}\n    action: hash\n  - match: {header: \"x-user-*\"}\n    action: drop\nretired_rules: [{field: customer.email}]\n", "marketing.yaml", activeMarketing},
			`payments.yaml:2:10: version: policy "payments-pii" changed but its version is still 7; raise it to 8 or more`},
		{"changing a rule's match removes the old match",
			[]string{"payments.yaml", strings.Replace(edit("version: 7", "version: 8"), "field: customer.email", `field: "**.email"`, 1), "marketing.yaml", activeMarketing},
			`payments.yaml:4:3: rules: rule {field: customer.email} of the active version 7 (rules[1]) is gone; to remove it on purpose, list that match under retired_rules`},
		{"changing a rule's action needs only a higher version",
			[]string{"payments.yaml", strings.Replace(edit("version: 7", "version: 8"), "action: redact", "action: hash", 1), "marketing.yaml", activeMarketing}, ""},
		{"a removed key rule is rejected",
			[]string{"payments.yaml", strings.Replace(edit("version: 7", "version: 8"), "  - match: {key: \".\"}\n    action: hash\n", "", 1), "marketing.yaml", activeMarketing},
			`payments.yaml:4:3: rules: rule {key: "."} of the active version 7 (rules[2]) is gone; to remove it on purpose, list that match under retired_rules`},
		{"a removed header rule listed under retired_rules passes",
			[]string{"payments.yaml", strings.Replace(edit("version: 7", "version: 8"), "  - match: {header: \"x-user-*\"}\n    action: drop\n", "retired_rules: [{header: \"x-user-*\"}]\n", 1), "marketing.yaml", activeMarketing}, ""},
		{"a lower version is rejected",
			[]string{"payments.yaml", edit("version: 7", "version: 6"), "marketing.yaml", activeMarketing},
			`payments.yaml:2:10: version: version 6 is lower than the active version 7 of policy "payments-pii"`},
		{"a policy the active bundle lacks is new, whatever its version",
			[]string{"payments.yaml", activePayments, "marketing.yaml", activeMarketing, "old.yaml", "policy: old-pii\nversion: 1\nrules:\n  - {match: {field: a}, action: drop}\n"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := bundle(t, c.files...).CheckAgainst(active)
			got := ""
			if err != nil {
				got = err.Error()
				var list *ErrorList
				if !errors.As(err, &list) {
					t.Fatalf("error %T is not an *ErrorList", err)
				}
			}
			if got != c.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
	if err := active.CheckAgainst(nil); err != nil {
		t.Fatalf("the first bundle: %v", err)
	}
}

func TestOlderThan(t *testing.T) {
	active := bundle(t, "payments.yaml", activePayments, "marketing.yaml", activeMarketing)
	marketing2 := strings.Replace(activeMarketing, "version: 3", "version: 2", 1)
	payments8 := strings.Replace(activePayments, "version: 7", "version: 8", 1)
	cases := []struct {
		name  string
		files []string
		older bool
		why   string
	}{
		{"the same folder is not older", []string{"payments.yaml", activePayments, "marketing.yaml", activeMarketing}, false, ""},
		{"a folder with a lower version is older",
			[]string{"payments.yaml", activePayments, "marketing.yaml", marketing2}, true, `policy "marketing-pii" is at version 2, the cluster's bundle has 3`},
		{"a folder with one version lower and one higher is not older (CheckAgainst rejects it)",
			[]string{"payments.yaml", payments8, "marketing.yaml", marketing2}, false, ""},
		{"a folder without a policy of the bundle is older",
			[]string{"payments.yaml", payments8}, true, `policy "marketing-pii" (version 3 in the cluster's bundle) is missing and not retired`},
		{"a folder that retires the missing policy is not older",
			[]string{"payments.yaml", payments8, "retired.yaml", "retired: [marketing-pii]\n"}, false, ""},
		{"a policy the bundle lacks is not compared",
			[]string{"payments.yaml", activePayments, "marketing.yaml", activeMarketing, "new.yaml", "policy: new\nversion: 1\nrules:\n  - {match: {tag: PII}, action: hash}\n"}, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			older, why := bundle(t, c.files...).OlderThan(active)
			if older != c.older || why != c.why {
				t.Fatalf("got %t %q, want %t %q", older, why, c.older, c.why)
			}
		})
	}
	if older, _ := active.OlderThan(nil); older {
		t.Fatal("a folder is older than no bundle")
	}
}

func TestRetiredBundlesEncodeAsFormat2(t *testing.T) {
	set := bundle(t,
		"payments.yaml", strings.Replace(activePayments, "version: 7", "version: 8\nretired: [marketing-pii, cards]", 1)+"retired_rules:\n  - {field: customer.phone}\n  - {header: x-old}\n",
		"zz.yaml", "retired: [old-fleet]\n")
	if got := strings.Join(retiredNames(set), " "); got != "cards marketing-pii old-fleet" {
		t.Fatalf("retired %s", got)
	}
	if !set.Retires("old-fleet") || set.Retires("payments-pii") || len(set.Policies) != 1 || len(set.Files) != 2 {
		t.Fatalf("set %+v", set)
	}
	enc := set.Encode()
	var head struct{ Format int }
	if err := json.Unmarshal(enc, &head); err != nil || head.Format != 2 {
		t.Fatalf("format %d (%v)", head.Format, err)
	}
	dec, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dec.Encode(), enc) {
		t.Fatalf("Decode(Encode(s)).Encode() differs:\n%s\n%s", dec.Encode(), enc)
	}
	p := dec.Policy("payments-pii")
	if p.Rules[2].Match.Key != "." || p.Rules[3].Match.Header != "x-user-*" || len(p.RetiredRules) != 2 || p.RetiredRules[1].Header != "x-old" {
		t.Fatalf("decoded %+v", p)
	}
	// Positions and retirements survive: checks on the decoded set still
	// point at the files, and see what it retires.
	active := bundle(t, "payments.yaml", activePayments, "marketing.yaml", activeMarketing)
	if err := dec.CheckAgainst(active); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(enc), `"name":"old-fleet"`, `"name":"payments-pii"`, 1)
	if _, err := Decode([]byte(bad)); err == nil || !strings.Contains(err.Error(), `zz.yaml:1:11: retired[0]: policy "payments-pii" is retired here but payments.yaml:1:9 still defines it`) {
		t.Fatalf("got %v", err)
	}
}

func retiredNames(s *Set) []string {
	var out []string
	for _, r := range s.Retired {
		out = append(out, r.Name)
	}
	return out
}
