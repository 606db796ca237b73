package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"
)

// rec is one target record for the checker.
type rec struct {
	part    int32
	key     []byte
	value   []byte
	headers []kafka.Header
}

func bytesRec(part, seq, size int) rec {
	return rec{int32(part), recordKey(part, seq), bytesValue(seq, size, []byte("filler")), benchHeaders}
}

// withExtraHeaders is what a replicator writes: the source's headers and
// its own.
func withExtraHeaders(r rec) rec {
	r.headers = append([]kafka.Header{{Key: "tributary-origin", Value: []byte("eu")}}, r.headers...)
	return r
}

func feed(c *checker, rs []rec) error {
	for _, r := range rs {
		if err := c.record(r.part, r.key, r.value, r.headers); err != nil {
			return err
		}
	}
	return nil
}

func TestCheckerAcceptsEveryRecordOnceInOrder(t *testing.T) {
	want := partitionCounts(7, 3) // 3, 2, 2
	if !slices.Equal(want, []int{3, 2, 2}) {
		t.Fatalf("partitionCounts(7, 3) = %v", want)
	}
	c := newChecker(3, checkBytes, 200)
	c.expect(want)
	// Partitions interleave any way; within one, order holds.
	rs := []rec{bytesRec(1, 0, 200), bytesRec(0, 0, 200), bytesRec(0, 1, 200), bytesRec(2, 0, 200),
		withExtraHeaders(bytesRec(1, 1, 200)), bytesRec(2, 1, 200)}
	if err := feed(c, rs); err != nil {
		t.Fatal(err)
	}
	if c.complete() {
		t.Fatalf("complete with partition 0 short: %s", c.missing())
	}
	if m := c.missing(); !strings.Contains(m, "6 of 7") || !strings.Contains(m, "p0 2/3") {
		t.Fatalf("missing() = %q", m)
	}
	if err := feed(c, []rec{bytesRec(0, 2, 200)}); err != nil {
		t.Fatal(err)
	}
	if !c.complete() {
		t.Fatalf("not complete: %s", c.missing())
	}
}

func TestCheckerRefuses(t *testing.T) {
	changedHeader := bytesRec(0, 1, 200)
	changedHeader.headers = slices.Clone(benchHeaders)
	changedHeader.headers[1] = kafka.Header{Key: "bench-trace", Value: []byte("x")}
	lostHeader := bytesRec(0, 1, 200)
	lostHeader.headers = benchHeaders[:2]
	wrongValue := bytesRec(0, 1, 200)
	wrongValue.value = bytesValue(7, 200, nil)
	for _, tc := range []struct {
		name string
		recs []rec
		want string
	}{
		{"duplicate", []rec{bytesRec(0, 0, 200), bytesRec(0, 1, 200), bytesRec(0, 1, 200)}, "record 1 again after 1 (duplicate)"},
		{"gap", []rec{bytesRec(0, 0, 200), bytesRec(0, 2, 200)}, "record 2 after 0 (records 1..1 missing or out of order)"},
		{"reordered", []rec{bytesRec(0, 1, 200), bytesRec(0, 0, 200)}, "record 1 after -1"},
		{"other partition", []rec{{1, recordKey(0, 0), bytesValue(0, 200, nil), benchHeaders}}, "belongs to partition 0"},
		{"beyond the end", []rec{bytesRec(2, 0, 200), bytesRec(2, 1, 200)}, "record 1 beyond the 1 written"},
		{"changed header", []rec{bytesRec(0, 0, 200), changedHeader}, "header bench-trace"},
		{"lost header", []rec{bytesRec(0, 0, 200), lostHeader}, "header bench-kind"},
		{"truncated value", []rec{bytesRec(0, 0, 100)}, "value of 100 bytes, want 200"},
		{"wrong value", []rec{bytesRec(0, 0, 200), wrongValue}, "value carries sequence 7"},
		{"not our key", []rec{{0, []byte("k"), nil, benchHeaders}}, "not a benchmark key"},
		{"no such partition", []rec{bytesRec(5, 0, 200)}, "should have 3 partitions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChecker(3, checkBytes, 200)
			c.expect([]int{5, 5, 1})
			err := feed(c, tc.recs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			// The failure sticks: the run is not a measurement.
			if c.record(0, recordKey(0, 0), bytesValue(0, 200, nil), benchHeaders) != err || c.complete() {
				t.Fatal("a failed check recovered")
			}
		})
	}
}

func TestCheckerMasked(t *testing.T) {
	sch, err := avro.Parse(orderSchema)
	if err != nil {
		t.Fatal(err)
	}
	enc := &avroEncoder{schema: sch, id: 3}
	v, err := enc.value(1, 0, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(v, piiMarker); n != len(maskedFields) {
		t.Fatalf("a source value holds %d masked-field markers, want %d", n, len(maskedFields))
	}
	if len(v) < 150 || len(v) > 300 {
		t.Fatalf("an Avro value is %d bytes, want about 200", len(v))
	}
	c := newChecker(1, checkMasked, 0)
	if err := c.record(0, recordKey(0, 0), v, benchHeaders); err == nil || !strings.Contains(err.Error(), "landed unmasked") {
		t.Fatalf("unmasked value: err = %v", err)
	}
	masked := bytes.ReplaceAll(v, piiMarker, []byte("****"))
	c = newChecker(1, checkMasked, 0)
	if err := c.record(0, recordKey(0, 0), masked, benchHeaders); err != nil {
		t.Fatal(err)
	}
	if err := c.record(0, recordKey(0, 1), []byte("plain"), benchHeaders); err == nil || !strings.Contains(err.Error(), "wire format") {
		t.Fatalf("not wire format: err = %v", err)
	}
}

func TestFinishAndSummarize(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(round int, wall, cpu float64, ok bool) Result {
		r := Result{Scenario: "tributary-eos", Workload: "200B", Round: round, Records: 1_000_001, RecordBytes: 200}
		if !ok {
			r.Error = "partition 3: record 9 again after 9 (duplicate)"
			return r
		}
		r.finish(start, start.Add(time.Second), start.Add(time.Duration(wall*float64(time.Second))), 0.5, cpu, 300<<20)
		r.OK = true
		return r
	}
	r := mk(1, 11, 10.5, true)
	if r.FirstRecordS != 1 || r.CopyS != 10 || r.CPUCopyS != 10 || r.CPUBeforeFirstS != 0.5 {
		t.Fatalf("finish: %+v", r)
	}
	if r.CopyRecordsPerS != 100_000 || r.RecordsPerS < 90_909 || r.RecordsPerS > 90_910 {
		t.Fatalf("rates: %+v", r)
	}
	runs := []Result{r, mk(2, 21, 20.5, true), mk(3, 0, 0, false), mk(4, 31, 30.5, true)}
	runs = append(runs, Result{Scenario: "latency", Workload: "10000/s", Round: 1, OK: true, Records: 5,
		Latency: &Latency{OfferedPerS: 10000, Count: 5, P50ms: 3, P99ms: 40, P999ms: 80, Maxms: 90}})
	sums := summarize(runs)
	if len(sums) != 2 {
		t.Fatalf("%d summaries, want 2", len(sums))
	}
	s := sums[0]
	if s.Rounds != 3 || s.Failed != 1 || !s.OK || s.WallS != 21 || s.CPUWholeS != 20.5 || !strings.Contains(s.Error, "duplicate") {
		t.Fatalf("summary (median of 11, 21, 31 s): %+v", s)
	}
	if sums[1].Latency == nil || sums[1].Latency.P99ms != 40 {
		t.Fatalf("latency summary: %+v", sums[1])
	}

	rep := &Report{Records: 1_000_001, Rounds: 4, Partitions: 12, Tasks: 3, LoadAverage: "1.00 2.00 3.00", Summaries: sums, Runs: runs,
		Notes: []string{"a note"}}
	var md bytes.Buffer
	if err := writeMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	out := md.String()
	for _, want := range []string{
		"| tributary-eos | 200B | 3/4 | 47.6k | 9.5 | 50.0k | 20.50 | 20.00 | 50.0k | 0.50 | 1.00 | 300 | — |",
		"| latency | 10000/s | 1/1 |",
		"3.0 / 40.0 / 80.0 |",
		"**FAILED** tributary-eos on 200B: 1 of 4 runs: partition 3: record 9 again after 9 (duplicate)",
		"- a note",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	// Every table row has the header's number of cells.
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "| ") && strings.Count(l, "|") != 14 {
			t.Errorf("row with %d bars, want 14: %s", strings.Count(l, "|"), l)
		}
	}
	allFailed := summarize([]Result{mk(1, 0, 0, false)})
	md.Reset()
	writeMarkdown(&md, &Report{Summaries: allFailed})
	if !strings.Contains(md.String(), "| tributary-eos | 200B | 0/1 | FAILED: partition 3") {
		t.Errorf("a scenario without a good run:\n%s", md.String())
	}

	path := filepath.Join(t.TempDir(), "out", "bench.json")
	if err := writeJSON(path, rep); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Runs) != 5 || back.Summaries[0].CPUPerMWhole != s.CPUPerMWhole || back.Runs[2].OK || back.Summaries[1].Latency.P999ms != 80 {
		t.Fatalf("JSON round trip: %+v", back)
	}
	for _, key := range []string{`"records_per_s"`, `"cpu_s_per_million_copy"`, `"peak_rss_bytes"`, `"time_to_first_record_s"`, `"p99_ms"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestPercentileAndMedian(t *testing.T) {
	v := make([]float64, 1000)
	for i := range v {
		v[i] = float64(i + 1)
	}
	if p := percentile(v, 0.5); p != 500 {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(v, 0.99); p != 990 {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile(v, 0.999); p != 999 {
		t.Errorf("p999 = %v", p)
	}
	if m := median([]float64{3, 1, 2, 10}); m != 2.5 {
		t.Errorf("median = %v", m)
	}
}

func TestMM2Config(t *testing.T) {
	p := mm2Properties("m1", "s:1", "t:2", "bench-200b.x", 3, true, true, "127.0.0.1:9999")
	for _, want := range []string{
		"clusters = m1, central\n", "m1->central.topics = bench-200b\\.x\n", "central->m1.enabled = false\n", "tasks.max = 3\n",
		"central.exactly.once.source.support = enabled\n", "dedicated.mode.enable.internal.rest = true\n",
		"listeners = http://127.0.0.1:9999\n", "m1.consumer.isolation.level = read_committed\n",
		"central.producer.linger.ms = 20\n", "central.producer.batch.size = 1048576\n",
		"central.producer.max.in.flight.requests.per.connection = 5\n", "m1.consumer.max.poll.records = 5000\n",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("mm2.properties lacks %q:\n%s", want, p)
		}
	}
	if p := mm2Properties("m1", "s", "t", "x", 3, false, false, ""); strings.Contains(p, "exactly.once") || strings.Contains(p, "linger") {
		t.Errorf("defaults carry settings:\n%s", p)
	}
	dir := t.TempDir()
	write := func(s string) string {
		f := filepath.Join(dir, "mm2.log")
		os.WriteFile(f, []byte(s), 0o644)
		return f
	}
	on := write("\texactly.once.source.support = enabled\n\ttransactional.id = m1-mm2-MirrorSourceConnector-0\n\tlinger.ms = 20\n\tbatch.size = 1048576\n\tmax.poll.records = 5000\n")
	if err := verifyMM2Log(on, true, true); err != nil {
		t.Fatal(err)
	}
	off := write("\texactly.once.source.support = disabled\n\ttransactional.id = null\n\ttransactional.id = m1-mm2-MirrorHeartbeatConnector-0\n")
	if err := verifyMM2Log(off, true, false); err == nil {
		t.Fatal("exactly-once confirmed from a log without it")
	}
	if err := verifyMM2Log(off, false, true); err == nil || !strings.Contains(err.Error(), "linger.ms = 20") {
		t.Fatalf("tuning confirmed from a log without it: %v", err)
	}
}

func TestProcStats(t *testing.T) {
	// Burn a little CPU so that the count is above zero.
	x := 0
	for i := 0; i < 50_000_000; i++ {
		x += i
	}
	t.Logf("burnt %d", x)
	cpu, err := cpuSeconds(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Fatalf("cpuSeconds = %v, %v", cpu, err)
	}
	rss, err := peakRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("peakRSS = %v, %v", rss, err)
	}
}

func TestKeys(t *testing.T) {
	p, s, err := parseKey(recordKey(11, 123456))
	if err != nil || p != 11 || s != 123456 {
		t.Fatalf("parseKey = %d %d %v", p, s, err)
	}
	if len(recordKey(0, 0)) != keyLen {
		t.Fatal("key length")
	}
}

func TestTargets(t *testing.T) {
	sum := func(sc, w string, rps, cpuCopy float64, rss int64) Summary {
		return Summary{Result: Result{Scenario: sc, Workload: w, OK: true, Records: 1_000_000, RecordsPerS: rps, CPUCopyS: cpuCopy, PeakRSSBytes: rss}, Rounds: 1}
	}
	sums := []Summary{
		sum("ceiling-eos", "200B", 100_000, 5, 100<<20),
		sum("tributary-eos", "200B", 90_000, 10, 150<<20),
		sum("tributary-alo", "200B", 80_000, 10, 250<<20),
		sum("mm2-tuned-eos", "200B", 40_000, 40, 1<<30),
		sum("mm2-default-eos", "200B", 30_000, 50, 1<<30),
		sum("tributary-eos", "1KiB", 10, 10, 100<<20),
	}
	got := map[string]Target{}
	for _, tg := range targets(sums) {
		got[tg.Goal] = tg
	}
	for goal, want := range map[string]Target{
		"bytes, exactly-once: ≥ 85% of the ceiling's records/s":                             {Met: "yes", Measured: "90% (90.0k / 100.0k records/s)"},
		"≥ 3× MirrorMaker 2 (tuned) records per CPU-second, copy phase, eos":                {Met: "yes", Measured: "4.00× (100.0k / 25.0k)"},
		"(reported) MirrorMaker 2 at its defaults, records per CPU-second, copy phase, eos": {Met: "(no goal)", Measured: "5.00× (100.0k / 20.0k)"},
		"≥ 3× MirrorMaker 2 (tuned) records per CPU-second, copy phase, alo":                {Met: "n/a"},
		"at-least-once at least as fast as exactly-once":                                    {Met: "no", Measured: "89% (80.0k / 90.0k records/s)"},
		"peak RSS < 200 MiB for 12 partitions (every tributary run)":                        {Met: "no", Measured: "max 250 MiB"},
		"p99 end-to-end latency < 100 ms at 10,000 records/s, exactly-once":                 {Met: "n/a"},
		"Avro + translation + masking: ≥ 60% of the ceiling":                                {Met: "n/a"},
	} {
		g, ok := got[goal]
		if !ok || g.Met != want.Met || (want.Measured != "" && g.Measured != want.Measured) {
			t.Errorf("%s: got %+v, want %+v", goal, g, want)
		}
	}
}
