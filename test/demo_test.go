package test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// demoSummaryLine is one pipeline's line of the demo's summaries.
var demoSummaryLine = regexp.MustCompile(`^\s+(\S+)\s+records\s+(\d+)\s+lag\s+(\d+)\s+masked fields\s+(\d+)\s+quarantined\s+(\d+)$`)

// TestDemoRunsForADurationAndSummarises runs `tributary demo --duration 20s`
// as users do: it must exit 0 on its own, and its final summary must show
// records replicated and fields masked for every pipeline. It needs no
// brokers: the demo brings its own in-memory clusters.
func TestDemoRunsForADurationAndSummarises(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the demo for 20 s (make test runs it)")
	}
	bin := tributaryBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "demo", "--duration", "20s", "--http-port", "0", "--dir", dir, "--every", "5s")
	out, err := cmd.CombinedOutput()
	t.Logf("demo ran %s:\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("tributary demo --duration 20s: %v", err)
	}
	text := string(out)
	if m := regexp.MustCompile(`started in (\S+)`).FindStringSubmatch(text); m == nil {
		t.Error("no start time printed")
	} else {
		t.Logf("demo start time: %s", m[1]) // measured, reported; not asserted (machine dependent)
	}
	i := strings.Index(text, "final summary")
	if i < 0 {
		t.Fatal("no final summary")
	}
	final := map[string][]int{}
	for _, line := range strings.Split(text[i:], "\n")[1:] {
		m := demoSummaryLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var nums []int
		for _, s := range m[2:] {
			n, _ := strconv.Atoi(s)
			nums = append(nums, n)
		}
		final[m[1]] = nums
	}
	for _, p := range []string{"eu-payments", "us-payments", "fleet-telemetry"} {
		f, ok := final[p]
		if !ok {
			t.Errorf("final summary lacks pipeline %s", p)
			continue
		}
		if records, masked := f[0], f[2]; records == 0 || masked == 0 {
			t.Errorf("%s: %d records, %d masked fields; want both > 0", p, records, masked)
		}
	}
	// --dir keeps what a user edits: the node configs, the policies and the key.
	for _, f := range []string{"eu-1.yaml", "us-1.yaml", "cloud-1.yaml", "policies/payments.yaml", "policies/telemetry.yaml", "hash.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("--dir does not keep %s: %v", f, err)
		}
	}
}
