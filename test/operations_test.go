package test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

const operationsGuidePath = "../docs/operations.md"

// TestOperationsGuideCoversAlerts checks that docs/operations.md has a row of
// its troubleshooting table for every alert of deploy/prometheus/alerts.yml
// (and no row for an alert that does not exist), that each row names a metric
// the alert's expression uses, and that the README links the guide.
func TestOperationsGuideCoversAlerts(t *testing.T) {
	b, err := os.ReadFile(operationsGuidePath)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Troubleshooting\n")
	if !ok {
		t.Fatalf("%s: no \"## Troubleshooting\" section", operationsGuidePath)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{} // alert -> its table row
	cell := regexp.MustCompile("^\\|\\s*`(Tributary[A-Za-z]+)`\\s*\\|")
	for _, line := range strings.Split(section, "\n") {
		if m := cell.FindStringSubmatch(line); m != nil {
			if _, dup := rows[m[1]]; dup {
				t.Errorf("%s: alert %s has two rows", operationsGuidePath, m[1])
			}
			rows[m[1]] = line
		}
	}
	alerts := map[string]bool{}
	for _, g := range loadAlerts(t).Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			row, ok := rows[r.Alert]
			if !ok {
				t.Errorf("%s: the troubleshooting table has no row for alert %s", operationsGuidePath, r.Alert)
				continue
			}
			if n := strings.Count(row, "|"); n != 6 {
				t.Errorf("%s: the row of %s has %d cells, want 5 (alert, symptom, metric, cause, action)", operationsGuidePath, r.Alert, n-1)
			}
			named := false
			for _, m := range metricToken.FindAllString(r.Expr, -1) {
				if strings.Contains(row, m) {
					named = true
				}
			}
			if !named {
				t.Errorf("%s: the row of %s names none of the metrics of its expression %q", operationsGuidePath, r.Alert, r.Expr)
			}
		}
	}
	for a := range rows {
		if !alerts[a] {
			t.Errorf("%s: a row for alert %s, which deploy/prometheus/alerts.yml does not define", operationsGuidePath, a)
		}
	}

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "(docs/operations.md)") {
		t.Error("README.md does not link docs/operations.md")
	}
}
