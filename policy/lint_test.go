package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestLintGoodPoliciesAgainstTheirSchemas(t *testing.T) {
	rep := Lint([]string{"testdata/good"}, []Schema{loadSchema(t, "payment.avsc", 1), loadSchema(t, "telemetry.json", 2)})
	if !rep.OK() || len(rep.Warnings) != 0 || rep.Set == nil || len(rep.Set.Policies) != 2 {
		t.Fatalf("errors %v, warnings %v", rep.Errors, rep.Warnings)
	}
}

func TestLintWarnings(t *testing.T) {
	rep := Lint([]string{"testdata/active/payments.yaml"}, []Schema{loadSchema(t, "telemetry.json", 2)})
	want := []string{
		`testdata/active/payments.yaml:8:12: rules[1].match: customer.email matches no field of the known schemas ("telemetry.json")`,
		`testdata/active/payments.yaml:10:12: rules[2].match: card.number matches no field of the known schemas ("telemetry.json")`,
	}
	if !rep.OK() || errString(rep.Warnings) != strings.Join(want, "\n") {
		t.Fatalf("errors %v\nwarnings:\n%s", rep.Errors, errString(rep.Warnings))
	}

	rep = Lint([]string{"testdata/good/fleet.yaml"}, []Schema{loadSchema(t, "telemetry.json", 2)})
	want = []string{
		`"telemetry.json": driver.license: tagged PII but no rule of any policy covers it: its records will be quarantined`,
		`"telemetry.json": driver.name: tagged PII but no rule of any policy covers it: its records will be quarantined`,
	}
	// driver.name has a rule but fleet-telemetry's redact is not... it is: only
	// the license lacks one.
	want = want[:1]
	if !rep.OK() || errString(rep.Warnings) != strings.Join(want, "\n") {
		t.Fatalf("errors %v\nwarnings:\n%s", rep.Errors, errString(rep.Warnings))
	}
}

func TestLintReportsFilesAndSchemasItCannotRead(t *testing.T) {
	rep := Lint([]string{"testdata/missing.yaml"}, nil)
	if rep.OK() || !strings.HasPrefix(rep.Errors[0].Error(), "testdata/missing.yaml: ") {
		t.Fatalf("got %v", rep.Errors)
	}
	rep = Lint([]string{"testdata/good/payments.yaml"}, []Schema{{Type: Avro, Text: `{"type":"record"`, Name: "broken.avsc"}})
	if rep.OK() || !strings.HasPrefix(rep.Errors[0].Error(), `"broken.avsc": avro schema:`) {
		t.Fatalf("got %v", rep.Errors)
	}
	rep = Lint([]string{"testdata/bad/unknown-action.yaml", "testdata/bad/version-zero.yaml"}, nil)
	if rep.OK() || len(rep.Errors) != 3 || rep.Set != nil {
		t.Fatalf("got %v", rep.Errors)
	}
}

func errString(errs []*Error) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "\n")
}

func TestTestRecordShowsBeforeAndAfter(t *testing.T) {
	set, err := LoadFiles("testdata/good/payments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	record := []byte(`{"payment_id":"0b3c5f9e-2f57-4d0e-9c39-1f2a3b4c5d6e","created_at":1715953512000,"amount_cents":129900,
	  "currency":"EUR","status":"SETTLED","merchant_id":"m-4711","merchant_category":5411,"channel":"ecommerce",
	  "customer":{"id":"c-1001","name":"Alice Example","email":"alice@example.com","phone":null,"country":"DE","loyalty_tier":null},
	  "card":{"number":"4111111111111111","brand":"VISA","expiry_month":12,"expiry_year":2027},
	  "location":{"lat":52.520008,"lon":13.404954},"ip_address":"203.0.113.7","risk_score":0.137,"three_ds":true,"attributes":{}}`)
	before, after, touches, err := TestRecord(set, loadSchema(t, "payment.avsc", 0), record, WithHashKey(hashKey))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(before), `"name": "Alice Example"`) || !strings.Contains(string(after), `"name": "`+hexHMAC("Alice Example")+`"`) {
		t.Fatalf("before:\n%s\nafter:\n%s", before, after)
	}
	if !strings.Contains(string(after), `"number": "************1111"`) || !strings.Contains(string(after), `"lat": 52.52,`) {
		t.Fatalf("after:\n%s", after)
	}
	var got []string
	for _, tc := range touches {
		got = append(got, tc.Path+" "+string(tc.Action)+" "+tc.Ref())
	}
	if strings.Join(got, "; ") != "customer.name hash payments-pii@7; customer.email redact payments-pii@7; card.number mask payments-pii@7; location.lat generalize payments-pii@7" {
		t.Fatalf("touches %s", strings.Join(got, "; "))
	}

	// JSON, a stream the policy does not cover, a blocked record.
	jb, ja, jt, err := TestRecord(set, Schema{Type: JSON}, []byte(`{"customer":{"email":"a@b.c"}}`))
	if err != nil || len(jt) != 1 || !strings.Contains(string(ja), `"email": ""`) || !strings.Contains(string(jb), `"email": "a@b.c"`) {
		t.Fatalf("%s %s %v %v", jb, ja, jt, err)
	}
	_, ja, _, err = TestRecord(set, Schema{Type: JSON}, []byte(`{"customer":{"email":"a@b.c"}}`), ForStream("fleet-telemetry", "fleet.x"))
	if err != nil || !strings.Contains(string(ja), `"email": "a@b.c"`) {
		t.Fatalf("%s %v", ja, err)
	}
	_, _, _, err = TestRecord(set, Schema{Type: JSON}, []byte(`{"ssn":"123"}`))
	var v *Violation
	if !errors.As(err, &v) || v.Reason != ReasonBlocked {
		t.Fatalf("got %v", err)
	}
	if _, _, _, err = TestRecord(set, loadSchema(t, "payment.avsc", 0), []byte(`{"payment_id": 3}`)); err == nil || !strings.Contains(err.Error(), "does not fit the schema") {
		t.Fatalf("got %v", err)
	}
}

func TestDiffFlagsLoosening(t *testing.T) {
	old, err := LoadFiles("testdata/good/payments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := strings.NewReplacer("keep_last: 4", "keep_last: 6", "action: block", "action: redact", "version: 7", "version: 8",
		"eu-payments, us-payments", "eu-payments").Replace(string(mustRead(t, "testdata/good/payments.yaml")))
	src = strings.Replace(src, "on_unmatched_pii", "  - {match: {field: customer.phone}, action: drop}\non_unmatched_pii", 1)
	nw, err := Parse("payments.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range Diff(old, nw) {
		got = append(got, c.String())
	}
	want := []string{
		"eu-payments: **.ssn: block → redact (LESS PROTECTED)",
		"eu-payments: card.number: mask keep_last=4 → mask keep_last=6 (LESS PROTECTED)",
		"eu-payments: customer.phone: (no rule) → drop (more protected)",
		"us-payments: tag PII: hash → (no rule) (LESS PROTECTED)",
		"us-payments: **.ssn: block → (no rule) (LESS PROTECTED)",
		"us-payments: card.number: mask keep_last=4 → (no rule) (LESS PROTECTED)",
		"us-payments: customer.email: redact → (no rule) (LESS PROTECTED)",
		"us-payments: location.lat: generalize precision=2 → (no rule) (LESS PROTECTED)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(Diff(old, old)) != 0 {
		t.Fatal("a set differs from itself")
	}
	// Policies for every pipeline are reported once, for all pipelines.
	a := mustParse(t, "g.yaml", "policy: g\nversion: 1\nrules:\n  - {match: {field: x}, action: generalize, precision: 2}\n")
	b := mustParse(t, "g.yaml", "policy: g\nversion: 2\nrules:\n  - {match: {field: x}, action: generalize, precision: 0, truncate: day}\n")
	ch := Diff(a, b)
	if len(ch) != 1 || ch[0].String() != "all pipelines: x: generalize precision=2 → generalize precision=0 truncate=day (more protected)" || ch[0].Loosening() {
		t.Fatalf("got %v", ch)
	}
	if ch := Diff(b, a); len(ch) != 1 || !ch[0].Loosening() {
		t.Fatalf("got %v", ch)
	}
}

func TestDiffShowsRetiredPoliciesAndRules(t *testing.T) {
	old := bundle(t, "payments.yaml", activePayments, "marketing.yaml", activeMarketing, "fleet.yaml", "policy: fleet\nversion: 1\nrules:\n  - {match: {key: vin}, action: hash}\n")
	payments := strings.Replace(activePayments, "version: 7", "version: 8", 1)
	payments = strings.Replace(payments, "  - match: {field: customer.email}\n    action: redact\n", "", 1)
	payments = strings.Replace(payments, "  - match: {header: \"x-user-*\"}\n    action: drop\n", "", 1)
	new := bundle(t, "payments.yaml", payments+"retired_rules: [{field: customer.email}]\n", "retired.yaml", "retired: [marketing-pii]\n")
	var got []string
	for _, c := range Diff(old, new) {
		if !c.Loosening() {
			t.Errorf("%s is not flagged as loosening", c)
		}
		got = append(got, c.String())
	}
	want := []string{
		"all pipelines: contact.email: hash → (policy retired) (LESS PROTECTED)",
		"all pipelines: customer.email: redact → (rule retired) (LESS PROTECTED)",
		"all pipelines: key vin: hash → (no rule) (LESS PROTECTED)",
		"all pipelines: header x-user-*: drop → (no rule) (LESS PROTECTED)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ch := Diff(old, new); ch[0].Retired != "policy" || ch[1].Retired != "rule" || ch[2].Retired != "" || ch[0].OldRule != "marketing-pii@3 rules[0]" {
		t.Fatalf("got %+v", ch)
	}
}
