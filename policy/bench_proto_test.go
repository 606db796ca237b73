package policy

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

// BenchmarkMaskProto is BenchmarkMaskAvro for the Protobuf twin of the
// payment record (testdata/schemas/payment.proto: the same 20 fields, PII
// tags on the customer's name, email and phone; the card number masked by
// path) with the same policy:
//
//	go test -run XXX -bench Mask -benchmem -cpu 1 ./policy/
func BenchmarkMaskProto(b *testing.B) {
	set, err := LoadFiles("testdata/good/payments.yaml")
	if err != nil {
		b.Fatal(err)
	}
	text := protoText(b, "payment.proto")
	plan, err := compileProto(b, set, text)
	if err != nil {
		b.Fatal(err)
	}
	in := encodeProto(b, goMessage(b, goFile(b, text), "Payment"), paymentProtoJSON)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := plan.MaskProto(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDynamicpbRoundTrip is the alternative MaskProto does not take:
// decoding the record into a dynamic message and encoding it again, without
// any masking.
func BenchmarkDynamicpbRoundTrip(b *testing.B) {
	md := goMessage(b, goFile(b, protoText(b, "payment.proto")), "Payment")
	in := encodeProto(b, md, paymentProtoJSON)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(in, m); err != nil {
			b.Fatal(err)
		}
		if _, err := proto.Marshal(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
