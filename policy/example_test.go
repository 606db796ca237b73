package policy_test

import (
	"errors"
	"fmt"

	"github.com/tributary-dev/tributary/policy"
)

// A policy file: which fields, which action, with which parameters.
func ExampleParse() {
	set, err := policy.Parse("payments.yaml", []byte(`
policy: payments-pii
version: 7
owner: compliance@acme.example
applies_to: {pipelines: [eu-payments]}
rules:
  - match: {tag: PII}             # fields tagged PII in the schema
    action: hash                  # HMAC-SHA256: a stable pseudonym
  - match: {field: customer.email}
    action: redact                # "", 0, false, or null where allowed
  - match: {field: card.number}
    action: mask
    keep_last: 4
  - match: {field: "items[].price"}
    action: generalize
    precision: 0
  - match: {field: "**.ssn"}      # at any depth; quote patterns starting with *
    action: block                 # quarantine the whole record
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	p := set.Policy("payments-pii")
	fmt.Println(p.Ref(), p.Applies("eu-payments", "payments.card"), p.Applies("us-payments", "payments.card"))
	for _, r := range p.Rules {
		fmt.Printf("%s: %s\n", r.Match, r.String())
	}

	plan, err := policy.Compile(set, "eu-payments", "payments.card", policy.Schema{Type: policy.JSON},
		policy.WithHashKey([]byte("example-key-not-for-production")))
	if err != nil {
		fmt.Println(err)
		return
	}
	out, res, err := plan.MaskJSON([]byte(`{"customer": {"email": "alice@example.com"}, "card": {"number": "4111111111111111"}, "items": [{"price": 12.75}]}`))
	fmt.Println(string(out), err)
	fmt.Println("tributary-policy:", res.Header())
	for _, t := range res.Touches {
		fmt.Println(t.Path, t.Action, t.Count)
	}
	// Output:
	// payments-pii@7 true false
	// tag PII: hash
	// customer.email: redact
	// card.number: mask keep_last=4
	// items[].price: generalize precision=0
	// **.ssn: block
	// {"customer": {"email": ""}, "card": {"number": "************1111"}, "items": [{"price": 13}]} <nil>
	// tributary-policy: payments-pii@7
	// customer.email redact 1
	// card.number mask 1
	// items[].price generalize 1
}

// Every problem of a file comes back at once, each with file:line:col and key.
func ExampleParse_errors() {
	_, err := policy.Parse("payments.yaml", []byte(`policy: payments-pii
version: 7
rules:
  - match: {field: card.number}
    action: mask
    keep_lsat: 4
  - match: {field: customer.email}
    action: hsah
`))
	fmt.Println(err)
	var list *policy.ErrorList
	if errors.As(err, &list) {
		fmt.Println(len(list.Errors), "errors; the first at line", list.Errors[0].Line, "column", list.Errors[0].Col)
	}
	// Output:
	// payments.yaml:6:5: rules[0].keep_lsat: unknown key (did you mean "keep_last"?)
	// payments.yaml:8:13: rules[1].action: unknown action "hsah" (did you mean "hash"?)
	// 2 errors; the first at line 6 column 5
}

// A PII-tagged field without a rule sends the record to quarantine.
func ExamplePlan_Apply_failClosed() {
	set, _ := policy.Parse("p.yaml", []byte("policy: p\nversion: 1\nrules:\n  - {match: {field: name}, action: redact}\n"))
	schema := policy.Schema{Type: policy.Avro, ID: 42, Text: `{"type":"record","name":"User","fields":[
		{"name":"name","type":"string","confluent:tags":["PII"]},
		{"name":"phone","type":"string","confluent:tags":["PII"]}]}`}
	plan, _ := policy.Compile(set, "eu-users", "users", schema)
	_, _, err := plan.Apply([]byte{0x02, 'a', 0x02, 'b'})
	var v *policy.Violation
	if errors.As(err, &v) {
		fmt.Println(v.Reason, v.FieldPath)
	}
	// Output:
	// unmatched-pii phone
}

// Diff shows what a change does to each field, per pipeline.
func ExampleDiff() {
	old, _ := policy.Parse("p.yaml", []byte("policy: p\nversion: 1\napplies_to: {pipelines: [eu-payments]}\nrules:\n  - {match: {field: card.number}, action: mask, keep_last: 4}\n  - {match: {field: email}, action: hash}\n"))
	new, _ := policy.Parse("p.yaml", []byte("policy: p\nversion: 2\napplies_to: {pipelines: [eu-payments]}\nrules:\n  - {match: {field: card.number}, action: mask, keep_last: 6}\n  - {match: {field: email}, action: redact}\n"))
	for _, c := range policy.Diff(old, new) {
		fmt.Println(c, c.Loosening())
	}
	// Output:
	// eu-payments: card.number: mask keep_last=4 → mask keep_last=6 (LESS PROTECTED) true
	// eu-payments: email: hash → redact (more protected) false
}

// A record's key and headers are masked too, each by its own plan; the caller
// merges the three Results into one tributary-policy header.
func ExampleCache_Headers() {
	set, err := policy.Parse("fleet.yaml", []byte(`
policy: fleet-telemetry
version: 4
rules:
  - match: {key: "."}             # the whole key: a VIN, without a schema
    action: hash                  # the same pseudonym as the vin field below
  - match: {field: vin}
    action: hash
  - match: {header: "x-driver-*"} # a glob; header names are case-sensitive
    action: drop
  - match: {header: x-driver-id}  # an exact name wins over a glob
    action: mask
    keep_last: 2
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	cache := policy.NewCache(policy.WithHashKey([]byte("example-key-not-for-production")))

	keyPlan, _ := cache.PlanPart(set, "fleet", "fleet.telemetry", policy.Key, policy.Schema{Type: policy.Raw})
	key, res, _ := keyPlan.Apply([]byte("WVWZZZ1JZXW000001"))

	valuePlan, _ := cache.Plan(set, "fleet", "fleet.telemetry", policy.Schema{Type: policy.JSON})
	value, vres, _ := valuePlan.Apply([]byte(`{"vin":"WVWZZZ1JZXW000001","speed":88}`))
	res.Merge(vres)

	headerPlan, _ := cache.Headers(set, "fleet", "fleet.telemetry")
	var hres policy.Result
	for _, h := range [][2]string{{"traceparent", "00-abc-01"}, {"x-driver-name", "Bob"}, {"x-driver-id", "d-4711"}} {
		v, keep, err := headerPlan.Apply(h[0], []byte(h[1]), &hres)
		if err != nil {
			fmt.Println(err)
			return
		}
		if keep {
			fmt.Printf("header %s: %s\n", h[0], v)
		}
	}
	res.Merge(hres)

	fmt.Println(string(value) == `{"vin":"`+string(key)+`","speed":88}`)
	fmt.Println("tributary-policy:", res.Header())
	for _, t := range res.Touches {
		fmt.Println(t.Path, t.Action, t.Count)
	}
	// Output:
	// header traceparent: 00-abc-01
	// header x-driver-id: ****11
	// true
	// tributary-policy: fleet-telemetry@4
	// key hash 1
	// vin hash 1
	// header.x-driver-* drop 1
	// header.x-driver-id mask 1
}
