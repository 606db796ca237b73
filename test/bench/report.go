package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Result is one run of one scenario on one workload.
type Result struct {
	Scenario string `json:"scenario"`
	Workload string `json:"workload"`
	Round    int    `json:"round"`
	Records  int    `json:"records"`
	// RecordBytes is the value size of the workload's records.
	RecordBytes int    `json:"record_bytes"`
	OK          bool   `json:"ok"`
	Error       string `json:"error,omitempty"`

	// Seconds from the replicator's start.
	FirstRecordS float64 `json:"time_to_first_record_s"`
	WallS        float64 `json:"wall_s"`
	// The copy phase: from the first record landed to the last.
	CopyS float64 `json:"copy_s"`

	RecordsPerS     float64 `json:"records_per_s"`
	MBPerS          float64 `json:"mb_per_s"`
	CopyRecordsPerS float64 `json:"copy_records_per_s"`

	// CPU seconds (user+sys) of the replicator process.
	CPUBeforeFirstS float64 `json:"cpu_before_first_record_s"`
	CPUWholeS       float64 `json:"cpu_whole_s"`
	CPUCopyS        float64 `json:"cpu_copy_s"`
	// CPU seconds per million records.
	CPUPerMWhole float64 `json:"cpu_s_per_million_whole"`
	CPUPerMCopy  float64 `json:"cpu_s_per_million_copy"`

	PeakRSSBytes int64 `json:"peak_rss_bytes"`

	Latency *Latency `json:"latency,omitempty"`
}

// Latency is the end-to-end latency of the latency scenario.
type Latency struct {
	OfferedPerS float64 `json:"offered_records_per_s"`
	Count       int     `json:"count"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	P999ms      float64 `json:"p999_ms"`
	Maxms       float64 `json:"max_ms"`
	// SecondMaxms is, for each second of the load (by send time), the
	// largest latency of a record sent in it: stalls show as peaks.
	SecondMaxms []float64 `json:"second_max_ms,omitempty"`
}

// finish computes the rates from the raw measurements.
func (r *Result) finish(start, first, last time.Time, cpuFirst, cpuLast float64, rss int64) {
	r.FirstRecordS = first.Sub(start).Seconds()
	r.WallS = last.Sub(start).Seconds()
	r.CopyS = last.Sub(first).Seconds()
	r.CPUBeforeFirstS = cpuFirst
	r.CPUWholeS = cpuLast
	r.CPUCopyS = cpuLast - cpuFirst
	r.PeakRSSBytes = rss
	n := float64(r.Records)
	if r.WallS > 0 {
		r.RecordsPerS = n / r.WallS
		r.MBPerS = n * float64(r.RecordBytes) / r.WallS / 1e6
	}
	if r.CopyS > 0 {
		// The first record is landed when the copy phase starts.
		r.CopyRecordsPerS = (n - 1) / r.CopyS
	}
	if n > 0 {
		r.CPUPerMWhole = r.CPUWholeS / n * 1e6
		r.CPUPerMCopy = r.CPUCopyS / n * 1e6
	}
}

// Summary is the median of a scenario's successful rounds on a workload.
type Summary struct {
	Result
	Rounds int `json:"rounds"`
	Failed int `json:"failed"`
}

// Report is the JSON file.
type Report struct {
	Started     time.Time `json:"started"`
	Records     int       `json:"records"`
	Rounds      int       `json:"rounds"`
	Partitions  int       `json:"partitions"`
	Tasks       int       `json:"tasks"`
	LoadAverage string    `json:"load_average"`
	Notes       []string  `json:"notes,omitempty"`
	Summaries   []Summary `json:"summaries"`
	Targets     []Target  `json:"targets,omitempty"`
	Runs        []Result  `json:"runs"`
}

// summarize groups runs by (scenario, workload) in first-seen order and
// takes each column's median over the successful rounds.
func summarize(runs []Result) []Summary {
	type key struct{ s, w string }
	var order []key
	groups := map[key][]Result{}
	for _, r := range runs {
		k := key{r.Scenario, r.Workload}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []Summary
	for _, k := range order {
		var ok []Result
		s := Summary{Result: Result{Scenario: k.s, Workload: k.w}}
		for _, r := range groups[k] {
			s.Records, s.RecordBytes = r.Records, r.RecordBytes
			if r.OK {
				ok = append(ok, r)
			} else {
				s.Failed++
				if s.Error == "" {
					s.Error = r.Error
				}
			}
		}
		s.Rounds = len(ok)
		s.OK = len(ok) > 0
		if len(ok) > 0 {
			med := func(f func(Result) float64) float64 {
				v := make([]float64, len(ok))
				for i, r := range ok {
					v[i] = f(r)
				}
				return median(v)
			}
			s.FirstRecordS = med(func(r Result) float64 { return r.FirstRecordS })
			s.WallS = med(func(r Result) float64 { return r.WallS })
			s.CopyS = med(func(r Result) float64 { return r.CopyS })
			s.RecordsPerS = med(func(r Result) float64 { return r.RecordsPerS })
			s.MBPerS = med(func(r Result) float64 { return r.MBPerS })
			s.CopyRecordsPerS = med(func(r Result) float64 { return r.CopyRecordsPerS })
			s.CPUBeforeFirstS = med(func(r Result) float64 { return r.CPUBeforeFirstS })
			s.CPUWholeS = med(func(r Result) float64 { return r.CPUWholeS })
			s.CPUCopyS = med(func(r Result) float64 { return r.CPUCopyS })
			s.CPUPerMWhole = med(func(r Result) float64 { return r.CPUPerMWhole })
			s.CPUPerMCopy = med(func(r Result) float64 { return r.CPUPerMCopy })
			s.PeakRSSBytes = int64(med(func(r Result) float64 { return float64(r.PeakRSSBytes) }))
			if ok[0].Latency != nil {
				l := &Latency{}
				lat := func(f func(*Latency) float64) float64 {
					return med(func(r Result) float64 {
						if r.Latency == nil {
							return math.NaN()
						}
						return f(r.Latency)
					})
				}
				l.OfferedPerS = lat(func(l *Latency) float64 { return l.OfferedPerS })
				l.Count = int(lat(func(l *Latency) float64 { return float64(l.Count) }))
				l.P50ms = lat(func(l *Latency) float64 { return l.P50ms })
				l.P99ms = lat(func(l *Latency) float64 { return l.P99ms })
				l.P999ms = lat(func(l *Latency) float64 { return l.P999ms })
				l.Maxms = lat(func(l *Latency) float64 { return l.Maxms })
				s.Latency = l
			}
		}
		out = append(out, s)
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// percentile is the q-quantile (0..1) of sorted v, nearest rank.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// writeMarkdown prints the summaries as one table.
func writeMarkdown(w io.Writer, rep *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d records (1 KiB workload: a quarter), %d partitions, %d tasks, rounds: %d (medians), load average at start: %s\n\n",
		rep.Records, rep.Partitions, rep.Tasks, rep.Rounds, rep.LoadAverage)
	b.WriteString("| scenario | workload | ok/runs | records/s | MB/s | copy records/s | CPU s / M records (whole) | CPU s / M records (copy) | records per CPU-s (copy) | CPU s before first record | time to first record (s) | peak RSS (MiB) | latency p50 / p99 / p999 (ms) |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range rep.Summaries {
		runs := s.Rounds + s.Failed
		if !s.OK {
			fmt.Fprintf(&b, "| %s | %s | %d/%d | FAILED: %s | | | | | | | | | |\n", s.Scenario, s.Workload, s.Rounds, runs, cell(s.Error))
			continue
		}
		lat := "—"
		if s.Latency != nil {
			lat = fmt.Sprintf("%.1f / %.1f / %.1f", s.Latency.P50ms, s.Latency.P99ms, s.Latency.P999ms)
		}
		perCPU, copyRate := "—", "—"
		if s.CPUCopyS > 0 {
			perCPU = count(float64(s.Records) / s.CPUCopyS)
		}
		if s.CopyRecordsPerS > 0 {
			copyRate = count(s.CopyRecordsPerS)
		}
		fmt.Fprintf(&b, "| %s | %s | %d/%d | %s | %.1f | %s | %.2f | %.2f | %s | %.2f | %.2f | %.0f | %s |\n",
			s.Scenario, s.Workload, s.Rounds, runs, count(s.RecordsPerS), s.MBPerS, copyRate,
			s.CPUPerMWhole, s.CPUPerMCopy, perCPU, s.CPUBeforeFirstS, s.FirstRecordS, float64(s.PeakRSSBytes)/(1<<20), lat)
	}
	writeTargets(&b, rep.Targets)
	for _, s := range rep.Summaries {
		if s.Failed > 0 {
			fmt.Fprintf(&b, "\n**FAILED** %s on %s: %d of %d runs: %s", s.Scenario, s.Workload, s.Failed, s.Rounds+s.Failed, s.Error)
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "\n- %s", n)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// count formats a rate: 83.4k, 950.
func count(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// cell makes text safe inside a markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", "/")
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func writeJSON(path string, rep *Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// renderReport prints the markdown table of a JSON report, its summaries and
// targets recomputed from its runs.
func renderReport(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	rep.Summaries = summarize(rep.Runs)
	rep.Targets = targets(rep.Summaries)
	return writeMarkdown(os.Stdout, &rep)
}
