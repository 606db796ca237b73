package policy

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

// FuzzMaskProto feeds arbitrary bytes to the plan of the design example for
// the Protobuf payment record. It must never panic or return output with an
// error; what it accepts, when protobuf-go accepts the input too, must decode
// with the writer schema with every PII field masked and no field the
// schema does not declare, at any depth. Seeds:
// testdata/fuzz/FuzzMaskProto.
func FuzzMaskProto(f *testing.F) {
	set, err := LoadFiles("testdata/good/payments.yaml")
	if err != nil {
		f.Fatal(err)
	}
	text := protoText(f, "payment.proto")
	plan, err := compileProto(f, set, text)
	if err != nil {
		f.Fatal(err)
	}
	md := goMessage(f, goFile(f, text), "Payment")
	good := encodeProto(f, md, paymentProtoJSON)
	f.Add(good)
	f.Add(append(append([]byte{}, good...), good...)) // every field twice
	f.Fuzz(func(t *testing.T, data []byte) {
		out, _, err := plan.MaskProto(data)
		if err != nil {
			var v *Violation
			if !errors.As(err, &v) || out != nil {
				t.Fatalf("error %v is not a violation, or there is output", err)
			}
			return
		}
		if proto.Unmarshal(data, dynamicpb.NewMessage(md)) != nil {
			return // protobuf-go refuses the input too (e.g. invalid UTF-8 in a field no rule reads)
		}
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(out, m); err != nil || hasUnknown(m) {
			t.Fatalf("the output holds fields the writer schema does not declare (or does not decode: %v)", err)
		}
		got := decodeProto(t, md, out)
		c, _ := got["customer"].(map[string]any)
		for _, f := range []string{"name", "phone"} {
			if s, _ := c[f].(string); s != "" && !hex64.MatchString(s) {
				t.Fatalf("customer.%s left unmasked: %q", f, s)
			}
		}
		if s, _ := c["email"].(string); s != "" {
			t.Fatalf("customer.email left unredacted: %q", s)
		}
		if n, _ := fieldOf(got, "card.number").(string); n != "" {
			r := []rune(n)
			if strings.Trim(string(r[:max(0, len(r)-4)]), "*") != "" {
				t.Fatalf("card number left unmasked: %q", n)
			}
		}
	})
}
