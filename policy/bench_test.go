package policy

import (
	"testing"

	"github.com/hamba/avro/v2"
)

// The benchmarks mask a realistic payment record (testdata/schemas/payment.avsc:
// 20 fields in nested records, a union and a map; 4 PII values: name, email,
// phone, card number) with the design example's policy. records/s is per core:
// run them with -cpu 1.
//
//	go test -run XXX -bench Mask -benchmem -cpu 1 ./policy/

func BenchmarkMaskAvro(b *testing.B) {
	set, err := LoadFiles("testdata/good/payments.yaml")
	if err != nil {
		b.Fatal(err)
	}
	plan := compile(b, set, loadSchema(b, "payment.avsc", 1))
	in, _ := encodePayment(b, paymentRecord())
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := plan.MaskAvro(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkMaskJSON(b *testing.B) {
	set, err := LoadFiles("testdata/good/payments.yaml")
	if err != nil {
		b.Fatal(err)
	}
	plan := compile(b, set, Schema{Type: JSON, Text: paymentJSONSchema, ID: 2})
	in := []byte(paymentJSON)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := plan.MaskJSON(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkHambaRoundTrip is the alternative MaskAvro does not take: decoding
// the record into Go values and encoding it again, without any masking.
func BenchmarkHambaRoundTrip(b *testing.B) {
	in, hs := encodePayment(b, paymentRecord())
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var m map[string]any
		if err := avro.Unmarshal(hs, in, &m); err != nil {
			b.Fatal(err)
		}
		if _, err := avro.Marshal(hs, m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

const paymentJSON = `{"payment_id":"0b3c5f9e-2f57-4d0e-9c39-1f2a3b4c5d6e","created_at":"2024-05-17T13:45:12Z",` +
	`"amount_cents":129900,"currency":"EUR","status":"SETTLED","merchant_id":"m-4711","merchant_category":5411,` +
	`"channel":"ecommerce","customer":{"id":"c-1001","name":"Alice Example","email":"alice@example.com",` +
	`"phone":"+49 30 1234567","country":"DE","loyalty_tier":"gold"},"card":{"number":"4111111111111111",` +
	`"brand":"VISA","expiry_month":12,"expiry_year":2027},"location":{"lat":52.520008,"lon":13.404954},` +
	`"ip_address":"203.0.113.7","risk_score":0.137,"three_ds":true,"attributes":{"device":"ios"}}`

const paymentJSONSchema = `{"type":"object","properties":{
  "payment_id":{"type":"string","format":"uuid"},"created_at":{"type":"string","format":"date-time"},
  "amount_cents":{"type":"integer"},"currency":{"enum":["EUR","USD","GBP"]},"status":{"type":"string"},
  "merchant_id":{"type":"string"},"merchant_category":{"type":"integer"},"channel":{"type":"string"},
  "customer":{"type":"object","properties":{"id":{"type":"string"},
    "name":{"type":"string","confluent:tags":["PII"]},"email":{"type":["string","null"],"confluent:tags":["PII"]},
    "phone":{"type":["string","null"],"confluent:tags":["PII"]},"country":{"type":"string"},"loyalty_tier":{"type":["string","null"]}}},
  "card":{"type":"object","properties":{"number":{"type":"string"},"brand":{"type":"string"},
    "expiry_month":{"type":"integer"},"expiry_year":{"type":"integer"}}},
  "location":{"type":["object","null"],"properties":{"lat":{"type":"number"},"lon":{"type":"number"}}},
  "ip_address":{"type":"string"},"risk_score":{"type":"number"},"three_ds":{"type":"boolean"},
  "attributes":{"type":"object","additionalProperties":{"type":"string"}}}}`

// BenchmarkHeaderPlan masks the headers of one record: 5 headers, of which two
// match a glob hash rule, one an exact redact rule, and two (a trace context
// and a content type) no rule. The Result is reused across records, as a
// caller reuses one per record it merges key, value and headers into.
//
//	go test -run XXX -bench HeaderPlan -benchmem -cpu 1 ./policy/
func BenchmarkHeaderPlan(b *testing.B) {
	set := mustParse(b, "headers.yaml", `policy: headers
version: 1
rules:
  - {match: {header: "x-user-*"}, action: hash}
  - {match: {header: x-session-id}, action: redact}
  - {match: {header: x-forwarded-for}, action: mask, keep_first: 3}
  - {match: {header: "x-debug-*"}, action: drop}
`)
	plan, err := NewCache(WithHashKey(hashKey)).Headers(set, "eu-payments", "payments.card")
	if err != nil {
		b.Fatal(err)
	}
	in := []header{
		{"traceparent", []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
		{"content-type", []byte("application/avro")},
		{"x-user-id", []byte("c-1001")},
		{"x-user-email", []byte("alice@example.com")},
		{"x-session-id", []byte("s-8c1e2a")},
	}
	out := make([]header, 0, len(in))
	var res Result
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out, res.Touches, res.KeyID = out[:0], res.Touches[:0], ""
		for _, h := range in {
			v, keep, err := plan.Apply(h.name, h.value, &res)
			if err != nil {
				b.Fatal(err)
			}
			if keep {
				out = append(out, header{h.name, v})
			}
		}
	}
	if len(res.Touches) != 2 || res.Touches[0].Count != 2 {
		b.Fatalf("touches %+v", res.Touches)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
