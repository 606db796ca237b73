package policy

import (
	"fmt"
	"testing"
)

func TestScratch(t *testing.T) {
	rep := Lint([]string{"testdata/good"}, []Schema{loadSchema(t, "payment.avsc", 1), loadSchema(t, "telemetry.json", 2)})
	fmt.Println(rep.OK(), rep.Errors, rep.Warnings)
	rep = Lint([]string{"testdata/active/payments.yaml"}, []Schema{loadSchema(t, "telemetry.json", 2)})
	fmt.Println(rep.OK(), rep.Errors, rep.Warnings)
	old, _ := LoadFiles("testdata/good/payments.yaml")
	nw, _ := LoadFiles("testdata/bad/version-not-raised.yaml")
	for _, c := range Diff(old, nw) {
		fmt.Println(c)
	}
	gd, _ := LoadDir("testdata/good")
	for _, c := range Diff(gd, nil) {
		fmt.Println(c)
	}
}
