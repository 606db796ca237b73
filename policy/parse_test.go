package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadSchema reads a schema from testdata/schemas: .avsc files are Avro, .json
// files JSON Schema.
func loadSchema(t testing.TB, name string, id int) Schema {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/schemas", name))
	if err != nil {
		t.Fatal(err)
	}
	typ := JSON
	if strings.HasSuffix(name, ".avsc") {
		typ = Avro
	}
	return Schema{Type: typ, Text: string(b), ID: id, Name: name}
}

// TestBadPolicyFiles checks that each malformed file gives exactly the expected
// errors, each with its file, line, column and key path.
func TestBadPolicyFiles(t *testing.T) {
	const pay = "testdata/good/payments.yaml"
	cases := []struct {
		file string
		// with are more policy files loaded alongside; active is the bundle
		// the file is checked against (files separated by commas); schema is
		// checked with Lint, keySchema (a file, or RAW) with CheckKeySchemas.
		with, active, schema, keySchema string
		want                            []string
	}{
		{file: "syntax.yaml", want: []string{
			`syntax.yaml:4: syntax error: did not find expected ',' or '}'`}},
		{file: "bad-indentation.yaml", want: []string{
			`bad-indentation.yaml:8: syntax error: did not find expected '-' indicator`}},
		{file: "unquoted-wildcard.yaml", want: []string{
			`unquoted-wildcard.yaml:5: syntax error: did not find expected alphabetic or numeric character (a value starting with "*" must be quoted, as in field: "**.ssn")`}},
		{file: "two-documents.yaml", want: []string{
			`two-documents.yaml:6:1: only one YAML document (one policy) per file is allowed`}},
		{file: "unknown-key.yaml", want: []string{
			`unknown-key.yaml:1:1: polcy: unknown key (did you mean "policy"?)`}},
		{file: "unknown-rule-key.yaml", want: []string{
			`unknown-rule-key.yaml:6:5: rules[0].keep_lsat: unknown key (did you mean "keep_last"?)`}},
		{file: "unknown-match-key.yaml", want: []string{
			`unknown-match-key.yaml:4:13: rules[0].match.feild: unknown key (did you mean "field"?)`}},
		{file: "unknown-action.yaml", want: []string{
			`unknown-action.yaml:14:13: rules[3].action: unknown action "hsah" (did you mean "hash"?)`}},
		{file: "duplicate-key.yaml", want: []string{
			`duplicate-key.yaml:6:5: rules[0].action: duplicate key (first at line 5)`}},
		{file: "missing-version.yaml", want: []string{
			`missing-version.yaml:1:1: version: missing: every policy has a version, an integer that increases on every change`}},
		{file: "version-string.yaml", want: []string{
			`version-string.yaml:2:10: version: want an integer, got the string "7"`}},
		{file: "version-zero.yaml", want: []string{
			`version-zero.yaml:2:10: version: must be at least 1, got 0`}},
		{file: "bad-name.yaml", want: []string{
			`bad-name.yaml:1:9: policy: invalid name "payments pii" (want letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128)`}},
		{file: "rules-not-a-list.yaml", want: []string{
			`rules-not-a-list.yaml:4:3: rules: want a list of rules, got a mapping`}},
		{file: "no-rules.yaml", want: []string{
			`no-rules.yaml:3:8: rules: at least one rule is required`}},
		{file: "missing-match.yaml", want: []string{
			"missing-match.yaml:4:5: rules[0].match: missing: each rule needs `match: {field: <path>}` or `match: {tag: <tag>}`"}},
		{file: "same-match-twice.yaml", want: []string{
			`same-match-twice.yaml:6:12: rules[1].match: same match as rules[0] (testdata/bad/same-match-twice.yaml:4:5), which always wins; merge the two rules`}},
		{file: "keep-last-not-a-number.yaml", want: []string{
			`keep-last-not-a-number.yaml:6:16: rules[0].keep_last: want an integer, got the string "four"`}},
		{file: "negative-keep.yaml", want: []string{
			`negative-keep.yaml:6:17: rules[0].keep_first: must be 0 or more, got -1`}},
		{file: "mask-char.yaml", want: []string{
			`mask-char.yaml:6:16: rules[0].mask_char: want one visible character, got "xx"`}},
		{file: "parameter-of-another-action.yaml", want: []string{
			`parameter-of-another-action.yaml:6:16: rules[0].keep_last: keep_last is not a parameter of action hash (it belongs to action mask)`}},
		{file: "generalize-without-parameters.yaml", want: []string{
			`generalize-without-parameters.yaml:4:5: rules[0]: generalize needs precision (numbers) or truncate (timestamps), or both`}},
		{file: "unknown-truncate.yaml", want: []string{
			`unknown-truncate.yaml:6:15: rules[0].truncate: unknown unit "days" (want one of hour, day, month, year) (did you mean "day"?)`}},
		{file: "replace-null.yaml", want: []string{
			`replace-null.yaml:6:12: rules[0].value: want a string, number or boolean, got null (use action drop for null)`}},
		{file: "path-empty-segment.yaml", want: []string{
			`path-empty-segment.yaml:4:20: rules[0].match.field: empty path segment in "customer..email" (leading, trailing or doubled dot)`}},
		{file: "path-index.yaml", want: []string{
			`path-index.yaml:4:20: rules[0].match.field: array indexes are not supported in "items[0].card"; write items[] to match every element`}},
		{file: "path-partial-wildcard.yaml", want: []string{
			`path-partial-wildcard.yaml:4:20: rules[0].match.field: wildcards must be a whole segment ("*" or "**"), not "cust*" in "cust*.email"`}},
		{file: "buckets-overlap.yaml", want: []string{
			`buckets-overlap.yaml:8:15: rules[0].buckets[1].min: bucket [50, 200) overlaps or is before the previous bucket, which ends at 100 (buckets must be sorted and not overlap)`}},
		{file: "bucket-empty-range.yaml", want: []string{
			`bucket-empty-range.yaml:7:25: rules[0].buckets[0].max: max 100 must be greater than min 100`}},
		{file: "bucket-label.yaml", want: []string{
			`bucket-label.yaml:7:32: rules[0].buckets[0].replacement: want a number, got a string: a bucketed field keeps its numeric type (label ranges with numbers such as their lower bound)`}},
		{file: "bad-topic-regex.yaml", want: []string{
			"bad-topic-regex.yaml:4:12: applies_to.topics[0]: invalid regex \"payments\\\\.(\": missing closing ): `payments\\.(`"}},
		{file: "on-unmatched-forward.yaml", want: []string{
			`on-unmatched-forward.yaml:6:19: on_unmatched_pii: unknown value "forward": the only value is "quarantine" (records with PII no rule covers are always quarantined)`}},
		{file: "many.yaml", want: []string{
			`many.yaml:2:10: version: must be at least 1, got -3`,
			`many.yaml:3:1: ownr: unknown key (did you mean "owner"?)`,
			`many.yaml:8:16: rules[0].precision: precision is not a parameter of action mask (it belongs to action generalize)`,
			`many.yaml:9:12: rules[1].match: needs field (a path such as customer.email) or tag (such as PII)`,
			`many.yaml:11:20: rules[2].match.field: "a.**.**" has "**" twice in a row`}},
		{file: "duplicate-name.yaml", with: pay, want: []string{
			`duplicate-name.yaml:1:9: policy: duplicate policy name "payments-pii" (also in testdata/good/payments.yaml:2:9)`}},
		{file: "conflict.yaml", with: pay, want: []string{
			// Reported at the policy second by name, naming the other.
			`testdata/good/payments.yaml:12:13: rules[2].action: conflicts with policy "payments-extra" rules[0] (testdata/bad/conflict.yaml:5:5) on card.number for pipeline eu-payments: mask keep_last=4 here, hash there`}},
		{file: "lowered-version.yaml", active: "testdata/active/payments.yaml", want: []string{
			`lowered-version.yaml:2:10: version: version 6 is lower than the active version 7 of policy "payments-pii"`}},
		{file: "version-not-raised.yaml", active: "testdata/active/payments.yaml", want: []string{
			`version-not-raised.yaml:2:10: version: policy "payments-pii" changed but its version is still 7; raise it to 8 or more`}},
		{file: "drop-not-nullable.yaml", schema: "payment.avsc", want: []string{
			`drop-not-nullable.yaml:7:13: rules[1].action: drop cannot apply to field card.number of schema "payment.avsc" (string): the type does not allow null and the field has no default; use redact, or add null or a default to the schema`}},
		{file: "hash-number.yaml", schema: "payment.avsc", want: []string{
			`hash-number.yaml:7:13: rules[1].action: hash cannot apply to field amount_cents of schema "payment.avsc" (long): hash needs a string, bytes or fixed field (a pseudonym is not a valid long); use redact, generalize or bucket, or a more specific rule for this field`}},
		{file: "replace-wrong-type.yaml", schema: "payment.avsc", want: []string{
			`replace-wrong-type.yaml:8:12: rules[1].value: "2030" cannot replace field card.expiry_year of schema "payment.avsc" (int): want an int, got a string`}},
		{file: "key-and-field.yaml", want: []string{
			`key-and-field.yaml:4:12: rules[0].match: field and key cannot be combined: a rule matches a field of the value (field), a field of the key (key) or a header (header); write one rule for each`}},
		{file: "header-and-key.yaml", want: []string{
			`header-and-key.yaml:5:7: rules[0].match: key and header cannot be combined: a rule matches a field of the value (field), a field of the key (key) or a header (header); write one rule for each`}},
		{file: "header-with-tag.yaml", want: []string{
			`header-with-tag.yaml:4:38: rules[0].match.tag: tag cannot be combined with header: headers have no schema, so they carry no tags`}},
		{file: "header-generalize.yaml", want: []string{
			`header-generalize.yaml:5:13: rules[0].action: generalize cannot apply to a header: a header value is an untyped string, with no number to round or timestamp to truncate; use hash, redact, mask, replace, drop or block`}},
		{file: "header-bucket.yaml", want: []string{
			`header-bucket.yaml:5:13: rules[0].action: bucket cannot apply to a header: a header value is an untyped string, with no number to put in a bucket; use hash, redact, mask, replace, drop or block`}},
		{file: "header-replace-number.yaml", want: []string{
			`header-replace-number.yaml:6:12: rules[0].value: a header value is a string: replace needs a string value, got a number`}},
		{file: "header-empty.yaml", want: []string{
			`header-empty.yaml:4:21: rules[0].match.header: header must not be empty`}},
		{file: "header-double-star.yaml", want: []string{
			`header-double-star.yaml:4:21: rules[0].match.header: "x-**" has "**": one "*" already matches any run of characters`}},
		{file: "key-empty.yaml", want: []string{
			`key-empty.yaml:4:18: rules[0].match.key: key must not be empty (write "." for the whole key)`}},
		{file: "key-path-index.yaml", want: []string{
			`key-path-index.yaml:4:18: rules[0].match.key: array indexes are not supported in "ids[0]"; write ids[] to match every element`}},
		{file: "field-dot.yaml", want: []string{
			`field-dot.yaml:4:20: rules[0].match.field: empty path segment in "." (leading, trailing or doubled dot) ("." names the whole key, and only in match.key)`}},
		{file: "retired-not-a-list.yaml", want: []string{
			`retired-not-a-list.yaml:6:10: retired: want a list of policy names, got the string "marketing-pii"`}},
		{file: "retired-bad-name.yaml", want: []string{
			`retired-bad-name.yaml:7:5: retired[0]: invalid policy name "marketing pii"`,
			`retired-bad-name.yaml:9:5: retired[2]: policy "fleet-telemetry" is listed twice (also retired[1])`}},
		{file: "retired-still-defined.yaml", with: pay, want: []string{
			`retired-still-defined.yaml:2:25: retired[1]: policy "payments-pii" is retired here but testdata/good/payments.yaml:2:9 still defines it; remove one of the two`}},
		{file: "retired-rule-still-present.yaml", want: []string{
			`retired-rule-still-present.yaml:11:5: retired_rules[1]: {field: card.number} is retired here but rules[1] (testdata/bad/retired-rule-still-present.yaml:6:5) still has it; remove one of the two`,
			`retired-rule-still-present.yaml:12:5: retired_rules[2]: {field: customer.email} is listed twice (also retired_rules[0])`,
			`retired-rule-still-present.yaml:13:5: retired_rules[3]: field and header cannot be combined: a rule matches a field of the value (field), a field of the key (key) or a header (header); write one rule for each`}},
		{file: "key-hash-number.yaml", keySchema: "payment-key.avsc", want: []string{
			`key-hash-number.yaml:7:13: rules[1].action: hash cannot apply to field key.region_code of schema "payment-key.avsc" (long): hash needs a string, bytes or fixed field (a pseudonym is not a valid long); use redact, generalize or bucket, or a more specific rule for this field`}},
		{file: "key-generalize-raw.yaml", keySchema: "RAW", want: []string{
			`key-generalize-raw.yaml:5:13: rules[0].action: generalize cannot apply to the whole key (no schema: raw bytes): raw bytes read as a string have no number to round or bucket and no timestamp to truncate; use hash, redact, mask, replace, drop or block`}},
		{file: "key-replace-number-raw.yaml", keySchema: "RAW", want: []string{
			`key-replace-number-raw.yaml:6:12: rules[0].value: 0 cannot replace the whole key (no schema: raw bytes): raw bytes take a string value`}},
		{file: "removed-policy.yaml", active: "testdata/active/payments.yaml,testdata/active/marketing.yaml", want: []string{
			`testdata/active/marketing.yaml:1:9: policy: active policy "marketing-pii" (version 3) is missing from the new bundle; if its file was deleted or the policy renamed on purpose, list "marketing-pii" under retired: in a policy file`}},
		{file: "removed-rule.yaml", active: "testdata/active/payments.yaml", want: []string{
			`removed-rule.yaml:7:3: rules: rule {field: customer.email} of the active version 7 (rules[1]) is gone; to remove it on purpose, list that match under retired_rules`}},
		{file: "removed-rule-same-version.yaml", active: "testdata/active/payments.yaml", want: []string{
			`removed-rule-same-version.yaml:3:10: version: policy "payments-pii" changed but its version is still 7; raise it to 8 or more`,
			`removed-rule-same-version.yaml:7:3: rules: rule {field: card.number} of the active version 7 (rules[2]) is gone; to remove it on purpose, list that match under retired_rules`}},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		seen[c.file] = true
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata/bad", c.file)
			paths := []string{path}
			if c.with != "" {
				paths = append([]string{c.with}, paths...)
			}
			var err error
			switch {
			case c.schema != "":
				rep := Lint(paths, []Schema{loadSchema(t, c.schema, 1)})
				if !rep.OK() {
					err = &ErrorList{Errors: rep.Errors}
				}
			default:
				var set *Set
				set, err = LoadFiles(paths...)
				if err == nil && c.active != "" {
					active, aerr := LoadFiles(strings.Split(c.active, ",")...)
					if aerr != nil {
						t.Fatal(aerr)
					}
					err = set.CheckAgainst(active)
				}
				if err == nil && c.keySchema != "" {
					ks := Schema{Type: Raw}
					if c.keySchema != "RAW" {
						ks = loadSchema(t, c.keySchema, 1)
					}
					_, err = set.CheckKeySchemas([]Schema{ks})
				}
			}
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			var list *ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an *ErrorList: %v", err, err)
			}
			var got []string
			for _, e := range list.Errors {
				if e.File == "" || e.Line == 0 {
					t.Errorf("error without file and line: %v", e)
				}
				got = append(got, strings.TrimPrefix(e.Error(), "testdata/bad/"))
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			var one *Error
			if !errors.As(err, &one) {
				t.Error("errors.As does not find an *Error")
			}
		})
	}
	files, _ := filepath.Glob("testdata/bad/*.yaml")
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no case", f)
		}
	}
	if len(cases) < 20 {
		t.Errorf("only %d bad files", len(cases))
	}
}

func TestGoodPolicyFilesParse(t *testing.T) {
	set, err := LoadDir("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Versions(), " "); got != "fleet-telemetry@3 payments-pii@7" {
		t.Fatalf("versions %s", got)
	}
	p := set.Policy("payments-pii")
	if p == nil || p.Owner != "compliance@acme.example" || len(p.Rules) != 5 || p.OnUnmatchedPII != "quarantine" {
		t.Fatalf("policy %+v", p)
	}
	if r := p.Rules[2]; r.Action != Mask || r.KeepLast != 4 || r.Match.Field != "card.number" {
		t.Fatalf("rule %+v", r)
	}
	f := set.Policy("fleet-telemetry")
	if !f.Applies("fleet-telemetry", "fleet.telemetry") || f.Applies("fleet-telemetry", "other.fleet.x") || f.Applies("eu-payments", "fleet.x") {
		t.Error("fleet-telemetry's scope is wrong")
	}
	if len(set.Files) != 2 || len(set.Files[0].SHA256) != 64 || set.Policies[0].SHA256 != set.Files[0].SHA256 {
		t.Fatalf("files %+v", set.Files)
	}
}

func TestSetEncodeIsDeterministicAndDecodes(t *testing.T) {
	a, err := LoadFiles("testdata/good/payments.yaml", "testdata/good/fleet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadDir("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	ea, eb := a.Encode(), b.Encode()
	if !bytes.Equal(ea, eb) {
		t.Fatalf("the same files encode differently:\n%s\n%s", ea, eb)
	}
	d, err := Decode(ea)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Encode(), ea) {
		t.Fatal("Decode(Encode(s)).Encode() differs")
	}
	if d.Hash() != a.Hash() {
		t.Fatal("the bundle hash changed through Encode and Decode")
	}
	// Positions survive: a check on the decoded set still points at the file.
	active, _ := LoadFiles("testdata/bad/lowered-version.yaml")
	err = d.CheckAgainst(active)
	if err != nil {
		t.Fatalf("raising the version is fine, got %v", err)
	}
	err = active.CheckAgainst(d)
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/bad/lowered-version.yaml:2:10: version:") {
		t.Fatalf("got %v", err)
	}
	// Values keep their types.
	r := d.Policy("fleet-telemetry").Rules[5]
	if r.Action != Replace || r.Value != "REDACTED-VIN" {
		t.Fatalf("rule %+v", r)
	}
	if _, err := Decode([]byte(`{"format":3}`)); err == nil {
		t.Fatal("an unknown format decodes")
	}
	if _, err := Decode(bytes.Replace(ea, []byte(`"action":"mask"`), []byte(`"action":"mangle"`), 1)); err == nil {
		t.Fatal("an invalid encoded set decodes")
	}
}

func TestSetHashIsSha256sumOfTheFiles(t *testing.T) {
	set, err := LoadDir("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	// `cd testdata/good && LC_ALL=C sha256sum *.yaml | sha256sum`
	lines := ""
	for _, f := range set.Files {
		lines += f.SHA256 + "  " + filepath.Base(f.Name) + "\n"
	}
	other, _ := ParseFiles(Source{Name: "x/fleet.yaml", Data: mustRead(t, "testdata/good/fleet.yaml")}, Source{Name: "y/payments.yaml", Data: mustRead(t, "testdata/good/payments.yaml")})
	if other.Hash() != set.Hash() {
		t.Fatal("the bundle hash depends on the folder")
	}
	if len(set.Hash()) != 64 || lines == "" {
		t.Fatal("bad hash")
	}
	reformatted := bytes.Replace(mustRead(t, "testdata/good/fleet.yaml"), []byte("version: 3"), []byte("version:   3  # same"), 1)
	changed, _ := ParseFiles(Source{Name: "fleet.yaml", Data: reformatted}, Source{Name: "payments.yaml", Data: mustRead(t, "testdata/good/payments.yaml")})
	if changed.Hash() == set.Hash() {
		t.Fatal("the bundle hash ignores file bytes")
	}
	if err := changed.CheckAgainst(set); err != nil {
		t.Fatalf("a reformatted file needs no new version: %v", err)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAllErrorsAtOnceAcrossFiles(t *testing.T) {
	_, err := LoadFiles("testdata/bad/unknown-action.yaml", "testdata/bad/version-zero.yaml", "testdata/bad/mask-char.yaml")
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("got %v", err)
	}
	want := []string{
		`testdata/bad/mask-char.yaml:1:9: policy: duplicate policy name "payments-pii" (also in testdata/bad/version-zero.yaml:1:9)`,
		`testdata/bad/mask-char.yaml:6:16: rules[0].mask_char: want one visible character, got "xx"`,
		`testdata/bad/unknown-action.yaml:14:13: rules[3].action: unknown action "hsah" (did you mean "hash"?)`,
		`testdata/bad/version-zero.yaml:1:9: policy: duplicate policy name "payments-pii" (also in testdata/bad/unknown-action.yaml:1:9)`,
		`testdata/bad/version-zero.yaml:2:10: version: must be at least 1, got 0`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestLoadDirReadsOnlyPolicyFiles(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.yaml"), mustRead(t, "testdata/good/payments.yaml"), 0o644)
	os.WriteFile(filepath.Join(dir, "b.yml"), mustRead(t, "testdata/good/fleet.yaml"), 0o644)
	os.WriteFile(filepath.Join(dir, ".a.yaml.swp"), []byte("garbage"), 0o644)
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("# policies"), 0o644)
	set, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Policies) != 2 {
		t.Fatalf("got %v", set.Versions())
	}
	if _, err := LoadDir(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing folder loads")
	}
	empty, err := LoadDir(t.TempDir())
	if err != nil || len(empty.Policies) != 0 {
		t.Fatalf("an empty folder: %v %v", empty, err)
	}
}

func TestAliasesCannotBlowUp(t *testing.T) {
	var b strings.Builder
	b.WriteString("policy: x\nversion: 1\nrules:\n  - {match: {field: a}, action: redact}\ndescription: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 8; i++ {
		b.WriteString("d" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil {
		t.Fatal("want an error")
	}
}
