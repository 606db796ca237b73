package main

import (
	"fmt"
	"strings"
)

// Target is one of issue 15's goals, checked against a run's medians.
type Target struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	// Met is "yes", "no", "n/a" (a scenario it needs did not run or failed)
	// or "(no goal)" for figures reported beside the goals.
	Met string `json:"met"`
}

// targets checks the goals on the summaries of one workload (the 200-byte
// one, where the goals are set; latency and Avro have their own).
func targets(sums []Summary) []Target {
	find := func(scenario, workload string) *Summary {
		for i := range sums {
			s := &sums[i]
			if s.Scenario == scenario && (workload == "" || s.Workload == workload) && s.OK {
				return s
			}
		}
		return nil
	}
	perCPU := func(s *Summary) float64 {
		if s.CPUCopyS <= 0 {
			return 0
		}
		return float64(s.Records) / s.CPUCopyS
	}
	var out []Target
	add := func(goal string, ok bool, measured string, have bool) {
		t := Target{Goal: goal, Measured: measured, Met: "n/a"}
		if have {
			t.Met = map[bool]string{true: "yes", false: "no"}[ok]
		}
		out = append(out, t)
	}
	const w = "200B"
	ratio := func(goal, a, b string, min float64) {
		x, y := find(a, w), find(b, w)
		if x == nil || y == nil || y.RecordsPerS == 0 {
			add(goal, false, "", false)
			return
		}
		r := x.RecordsPerS / y.RecordsPerS
		add(goal, r >= min, fmt.Sprintf("%.0f%% (%s / %s records/s)", 100*r, count(x.RecordsPerS), count(y.RecordsPerS)), true)
	}
	ratio("bytes, exactly-once: ≥ 85% of the ceiling's records/s", "tributary-eos", "ceiling-eos", 0.85)
	if x, y := find("tributary-avro-mask-eos", ""), find("ceiling-eos", w); x != nil && y != nil && y.RecordsPerS > 0 {
		r := x.RecordsPerS / y.RecordsPerS
		add("Avro + translation + masking: ≥ 60% of the ceiling", r >= 0.6, fmt.Sprintf("%.0f%% (%s / %s records/s)", 100*r, count(x.RecordsPerS), count(y.RecordsPerS)), true)
	} else {
		add("Avro + translation + masking: ≥ 60% of the ceiling", false, "", false)
	}
	for _, mode := range []string{"eos", "alo"} {
		for _, mm := range []string{"tuned", "default"} {
			x, y := find("tributary-"+mode, w), find("mm2-"+mm+"-"+mode, w)
			goal := fmt.Sprintf("≥ 3× MirrorMaker 2 (%s) records per CPU-second, copy phase, %s", mm, mode)
			if mm == "default" {
				goal = fmt.Sprintf("(reported) MirrorMaker 2 at its defaults, records per CPU-second, copy phase, %s", mode)
			}
			if x == nil || y == nil || perCPU(y) == 0 {
				add(goal, false, "", false)
				continue
			}
			r := perCPU(x) / perCPU(y)
			add(goal, r >= 3, fmt.Sprintf("%.2f× (%s / %s)", r, count(perCPU(x)), count(perCPU(y))), true)
			if mm == "default" {
				out[len(out)-1].Met = "(no goal)"
			}
		}
	}
	ratio("at-least-once at least as fast as exactly-once", "tributary-alo", "tributary-eos", 1)
	if l := find("latency-tributary-eos", ""); l != nil && l.Latency != nil {
		add("p99 end-to-end latency < 100 ms at 10,000 records/s, exactly-once", l.Latency.P99ms < 100, fmt.Sprintf("%.1f ms", l.Latency.P99ms), true)
	} else {
		add("p99 end-to-end latency < 100 ms at 10,000 records/s, exactly-once", false, "", false)
	}
	worst, have := int64(0), false
	for _, s := range sums {
		if s.OK && strings.HasPrefix(s.Scenario, "tributary-") {
			have = true
			worst = max(worst, s.PeakRSSBytes)
		}
	}
	add("peak RSS < 200 MiB for 12 partitions (every tributary run)", worst < 200<<20, fmt.Sprintf("max %.0f MiB", float64(worst)/(1<<20)), have)
	ratio("WAN: throughput within 20% of the LAN case", "tributary-eos-wan", "tributary-eos", 0.8)
	return out
}

func writeTargets(b *strings.Builder, ts []Target) {
	if len(ts) == 0 {
		return
	}
	b.WriteString("\n| target (issue 15; 200-byte workload) | measured | met |\n|---|---|---|\n")
	for _, t := range ts {
		fmt.Fprintf(b, "| %s | %s | %s |\n", cell(t.Goal), cell(t.Measured), t.Met)
	}
}
