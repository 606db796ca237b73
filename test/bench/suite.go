package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"

	"github.com/tributary-dev/tributary/test/harness"
)

const (
	partitions = 12
	wanDelay   = 50 * time.Millisecond
)

type kind int

const (
	kindCeiling kind = iota
	kindTributary
	kindMM2
	kindLatency
)

type scenario struct {
	name  string
	kind  kind
	eos   bool
	tuned bool // MirrorMaker 2 tuned
	wan   bool // source through the delaying proxy
	avro  bool // the Avro workload only
}

// scenarios, in the order they run within a round.
var scenarios = []scenario{
	{name: "ceiling-eos", kind: kindCeiling, eos: true},
	{name: "ceiling-alo", kind: kindCeiling},
	{name: "tributary-eos", kind: kindTributary, eos: true},
	{name: "tributary-alo", kind: kindTributary},
	{name: "tributary-avro-mask-eos", kind: kindTributary, eos: true, avro: true},
	{name: "mm2-default-eos", kind: kindMM2, eos: true},
	{name: "mm2-tuned-eos", kind: kindMM2, eos: true, tuned: true},
	{name: "mm2-default-alo", kind: kindMM2},
	{name: "mm2-tuned-alo", kind: kindMM2, tuned: true},
	{name: "tributary-eos-wan", kind: kindTributary, eos: true, wan: true},
	{name: "mm2-tuned-eos-wan", kind: kindMM2, eos: true, tuned: true, wan: true},
	{name: "latency-tributary-eos", kind: kindLatency, eos: true},
}

// defaultSkip are the scenarios left out unless SCENARIOS names them.
var defaultSkip = map[string]bool{"mm2-tuned-eos-wan": true}

type workload struct {
	name  string
	n     int
	size  int // value bytes (Avro: approximate)
	check valueCheck
	avro  bool
	topic string
	// counts per partition
	counts []int
}

type suite struct {
	source, target      string
	wanSource           string // the proxy's address, when a WAN scenario runs
	records, rounds     int
	tasks               int
	timeout             time.Duration
	latencyRate         int
	latencyFor          time.Duration
	dir                 string
	bin, self, mm2Libs  string
	srcReg, dstReg      *registryServer
	avroEnc             *avroEncoder
	stamp               string
	selected            []scenario
	workloads           []*workload
	proxy               *harness.Proxy
	jsonPath, mdPath    string
	kafkaVersion, cache string
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(key string, def int) int {
	if v := os.Getenv(key); v != "" {
		if n, err := strconv.Atoi(strings.ReplaceAll(v, "_", "")); err == nil {
			return n
		}
	}
	return def
}

func suiteMain(args []string) error {
	s := &suite{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&s.records, "records", envInt("RECORDS", 2_000_000), "records of the 200-byte workload (the 1 KiB one has a quarter) [RECORDS]")
	fs.IntVar(&s.rounds, "rounds", envInt("ROUNDS", 3), "rounds; the table shows medians [ROUNDS]")
	fs.IntVar(&s.tasks, "tasks", envInt("TASKS", 3), "tasks of every replicator (tributary tasks, MM2 tasks.max, ceiling loops) [TASKS]")
	only := fs.String("scenarios", env("SCENARIOS", ""), "comma-separated scenarios (default: all but "+keys(defaultSkip)+") [SCENARIOS]")
	wls := fs.String("workloads", env("WORKLOADS", "200B,1KiB"), "bytes workloads: 200B, 1KiB [WORKLOADS]")
	fs.DurationVar(&s.timeout, "timeout", 15*time.Minute, "per-run timeout [BENCH_TIMEOUT]")
	fs.StringVar(&s.jsonPath, "json", env("BENCH_JSON", "test/artifacts/bench.json"), "JSON output [BENCH_JSON]")
	fs.StringVar(&s.mdPath, "md", env("BENCH_MD", ""), "also write the markdown table here [BENCH_MD]")
	fs.StringVar(&s.dir, "dir", env("BENCH_DIR", ""), "work directory: configs and logs of every run (default: a new one under $TMPDIR) [BENCH_DIR]")
	fs.IntVar(&s.latencyRate, "latency-rate", envInt("LATENCY_RATE", 10000), "offered load of the latency scenario, records/s [LATENCY_RATE]")
	latSecs := fs.Int("latency-seconds", envInt("LATENCY_SECONDS", 0), "duration of the latency scenario's load (default: RECORDS/2M × 60 s, 5..60 s) [LATENCY_SECONDS]")
	if t := os.Getenv("BENCH_TIMEOUT"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil {
			return fmt.Errorf("BENCH_TIMEOUT: %w", err)
		}
		s.timeout = d
	}
	render := fs.String("render", "", "print the table of an existing JSON report (medians and targets recomputed from its runs) and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *render != "" {
		return renderReport(*render)
	}
	if s.records < partitions || s.rounds < 1 || s.tasks < 1 {
		return fmt.Errorf("need RECORDS >= %d, ROUNDS >= 1, TASKS >= 1", partitions)
	}
	s.latencyFor = time.Duration(*latSecs) * time.Second
	if s.latencyFor == 0 {
		s.latencyFor = min(max(time.Duration(float64(s.records)/2e6*60*float64(time.Second)), 5*time.Second), 60*time.Second)
	}
	s.source, s.target = os.Getenv("TRIBUTARY_TEST_SOURCE_BOOTSTRAP"), os.Getenv("TRIBUTARY_TEST_TARGET_BOOTSTRAP")
	if s.source == "" || s.target == "" {
		return errors.New("TRIBUTARY_TEST_SOURCE_BOOTSTRAP / TRIBUTARY_TEST_TARGET_BOOTSTRAP not set: run through `make bench-suite` (test/run.sh suite), or source the env of `test/harness/kafka.sh start DIR` started with KAFKA_WAN=1")
	}
	s.kafkaVersion = env("KAFKA_VERSION", "4.1.1")
	s.cache = env("TRIBUTARY_CACHE", filepath.Join(env("HOME", "/root"), ".cache", "tributary"))

	known := map[string]scenario{}
	for _, sc := range scenarios {
		known[sc.name] = sc
	}
	if *only == "" {
		for _, sc := range scenarios {
			if !defaultSkip[sc.name] {
				s.selected = append(s.selected, sc)
			}
		}
	} else {
		for _, n := range strings.Split(*only, ",") {
			sc, ok := known[strings.TrimSpace(n)]
			if !ok {
				return fmt.Errorf("unknown scenario %q (known: %s)", n, names())
			}
			s.selected = append(s.selected, sc)
		}
	}
	s.stamp = time.Now().UTC().Format("0102-150405")
	var err error
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "tributary-bench-"+s.stamp+"-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	logf("work directory (configs, logs): %s", s.dir)
	if s.self, err = os.Executable(); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		logf("%v: stopping the replicators", sig)
		stopAll()
		os.Exit(130)
	}()
	if err := s.prepare(*wls); err != nil {
		return err
	}
	defer s.close()

	rep := &Report{Started: time.Now().UTC(), Records: s.records, Rounds: s.rounds, Partitions: partitions, Tasks: s.tasks, LoadAverage: loadAverage()}
	for round := 1; round <= s.rounds; round++ {
		for _, w := range s.workloads {
			for _, sc := range s.selected {
				if sc.kind == kindLatency || sc.avro != w.avro || (sc.wan && w.name != "200B") {
					continue
				}
				rep.Runs = append(rep.Runs, s.run(sc, w, round))
			}
		}
		for _, sc := range s.selected {
			if sc.kind == kindLatency {
				rep.Runs = append(rep.Runs, s.runLatency(sc, round))
			}
		}
	}
	rep.Summaries = summarize(rep.Runs)
	rep.Targets = targets(rep.Summaries)
	rep.Notes = append(rep.Notes,
		fmt.Sprintf("load average at the end: %s", loadAverage()),
		"records/s and MB/s: from the replicator's start to the last record read back; copy phase: from the first record read back to the last",
		fmt.Sprintf("WAN: the source reached through a proxy that delays every byte by %v each way (round trips only, no TCP window limit)", wanDelay),
		fmt.Sprintf("latency: %d records/s offered for %v, exactly-once, send time stamped by the producer, read back read_committed", s.latencyRate, s.latencyFor))
	if err := writeMarkdown(os.Stdout, rep); err != nil {
		return err
	}
	if s.mdPath != "" {
		f, err := os.Create(s.mdPath)
		if err != nil {
			return err
		}
		writeMarkdown(f, rep)
		f.Close()
	}
	if err := writeJSON(s.jsonPath, rep); err != nil {
		return fmt.Errorf("writing %s: %w", s.jsonPath, err)
	}
	logf("wrote %s", s.jsonPath)
	for _, r := range rep.Runs {
		if !r.OK {
			return fmt.Errorf("%s on %s, round %d FAILED: %s", r.Scenario, r.Workload, r.Round, r.Error)
		}
	}
	return nil
}

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return strings.Join(out, ",")
}

func names() string {
	var out []string
	for _, sc := range scenarios {
		out = append(out, sc.name)
	}
	return strings.Join(out, ", ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// prepare builds tributary, fetches MirrorMaker 2, starts the registries
// and the WAN proxy, and pre-loads the workloads.
func (s *suite) prepare(wls string) error {
	need := map[kind]bool{}
	wan, avroNeeded := false, false
	for _, sc := range s.selected {
		need[sc.kind] = true
		wan = wan || sc.wan
		avroNeeded = avroNeeded || sc.avro
	}
	if need[kindTributary] || need[kindLatency] {
		s.bin = os.Getenv("TRIBUTARY_BIN")
		if s.bin == "" {
			s.bin = filepath.Join(s.dir, "tributary")
			logf("go build -o %s ./cmd/tributary", s.bin)
			out, err := exec.Command("go", "build", "-o", s.bin, "./cmd/tributary").CombinedOutput()
			if err != nil {
				return fmt.Errorf("building tributary (run from the repository root): %v\n%s", err, out)
			}
		}
	}
	if need[kindMM2] {
		libs, err := fetchMM2(s.cache, s.kafkaVersion)
		if err != nil {
			return err
		}
		s.mm2Libs = libs
	}
	if wan {
		listen, broker := os.Getenv("TRIBUTARY_TEST_SOURCE_WAN_BOOTSTRAP"), os.Getenv("TRIBUTARY_TEST_SOURCE_WAN_LISTENER")
		if listen == "" || broker == "" {
			return errors.New("a WAN scenario needs the source's WAN listener: start the brokers with KAFKA_WAN=1 (make bench-suite does)")
		}
		p, err := harness.StartProxy(listen, broker)
		if err != nil {
			return err
		}
		p.SetDelay(wanDelay)
		s.proxy, s.wanSource = p, listen
		logf("WAN: %s -> %s, %v each way", listen, broker, wanDelay)
	}
	byName := map[string]*workload{
		"200B": {name: "200B", n: s.records, size: 200, check: checkBytes},
		"1KiB": {name: "1KiB", n: s.records / 4, size: 1024, check: checkBytes},
	}
	for _, n := range strings.Split(wls, ",") {
		w, ok := byName[strings.TrimSpace(n)]
		if !ok {
			return fmt.Errorf("unknown workload %q (200B, 1KiB)", n)
		}
		s.workloads = append(s.workloads, w)
	}
	if avroNeeded {
		s.workloads = append(s.workloads, &workload{name: "avro-20-fields", n: s.records, size: 0, check: checkMasked, avro: true})
		var err error
		if s.srcReg, err = startRegistry(); err != nil {
			return err
		}
		if s.dstReg, err = startRegistry(); err != nil {
			return err
		}
	}
	for _, w := range s.workloads {
		if err := s.preload(w); err != nil {
			return fmt.Errorf("pre-loading %s: %w", w.name, err)
		}
	}
	return nil
}

func (s *suite) close() {
	if s.proxy != nil {
		s.proxy.Close()
	}
	if s.srcReg != nil {
		s.srcReg.close()
	}
	if s.dstReg != nil {
		s.dstReg.close()
	}
	if _, err := deleteTopics(s.source, func(t string) bool { return strings.Contains(t, s.stamp) }); err != nil {
		logf("cleanup: deleting the source topics: %v", err)
	}
}

func (s *suite) preload(w *workload) error {
	w.topic = fmt.Sprintf("bench-%s-%s", strings.ToLower(w.name), s.stamp)
	if err := createTopic(s.source, w.topic, partitions); err != nil {
		return err
	}
	w.counts = partitionCounts(w.n, partitions)
	if w.avro {
		sch, err := avro.Parse(orderSchema)
		if err != nil {
			return err
		}
		id, err := s.srcReg.register(w.topic+"-value", orderSchema)
		if err != nil {
			return err
		}
		s.avroEnc = &avroEncoder{schema: sch, id: id}
	}
	l, err := newLoader(s.source, nil)
	if err != nil {
		return err
	}
	t0 := time.Now()
	filler := []byte(strings.Repeat("tributary benchmark payload ", 64))
	seq := make([]int, partitions)
	var bytes int64
	for i := 0; i < w.n; i++ {
		p := i % partitions
		var v []byte
		if w.avro {
			if v, err = s.avroEnc.value(i, seq[p], time.Now().UnixMilli()); err != nil {
				l.close()
				return err
			}
		} else {
			v = bytesValue(seq[p], w.size, filler)
		}
		bytes += int64(len(v))
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &w.topic, Partition: int32(p)},
			Key: recordKey(p, seq[p]), Value: v, Headers: benchHeaders}
		if err := l.produce(m); err != nil {
			l.close()
			return err
		}
		seq[p]++
	}
	if err := l.close(); err != nil {
		return err
	}
	if w.avro {
		w.size = int(bytes / int64(w.n))
	}
	logf("pre-loaded %s: %d records of %d bytes into %s in %.1f s", w.name, w.n, w.size, w.topic, time.Since(t0).Seconds())
	return nil
}

// runHandle is a started replicator.
type runHandle struct {
	p       *proc
	dest    string // target topic
	started time.Time
	// verify, if set, checks the replicator's log after the run (MM2:
	// exactly-once and the tuning really on).
	verify  func() error
	cleanup func()
}

// run measures one scenario on one workload.
func (s *suite) run(sc scenario, w *workload, round int) (res Result) {
	res = Result{Scenario: sc.name, Workload: w.name, Round: round, Records: w.n, RecordBytes: w.size}
	id := runID(sc, w, round)
	logf("round %d: %s on %s (%d records) ...", round, sc.name, w.name, w.n)
	defer func() {
		if res.OK {
			logf("round %d: %s on %s: %.0f records/s, %.2f CPU s/M records (copy %.2f), first record after %.2f s, peak RSS %.0f MiB",
				round, sc.name, w.name, res.RecordsPerS, res.CPUPerMWhole, res.CPUPerMCopy, res.FirstRecordS, float64(res.PeakRSSBytes)/(1<<20))
		} else {
			logf("round %d: %s on %s: FAILED: %s", round, sc.name, w.name, res.Error)
		}
	}()
	fail := func(format string, args ...any) Result {
		res.OK, res.Error = false, fmt.Sprintf(format, args...)
		return res
	}
	dir := filepath.Join(s.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail("%v", err)
	}
	source := s.source
	if sc.wan {
		source = s.wanSource
	}
	var h *runHandle
	var err error
	switch sc.kind {
	case kindCeiling:
		h, err = s.startCeiling(sc, w, id, dir)
	case kindTributary:
		h, err = s.startTributary(sc, source, w.topic, w.avro, id, dir)
	case kindMM2:
		h, err = s.startMM2(sc, source, w.topic, id, dir)
	}
	if err != nil {
		return fail("starting: %v", err)
	}
	defer h.cleanup()
	pid := h.p.pid()

	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	c := newChecker(partitions, w.check, w.size)
	c.expect(w.counts)
	var cpuFirst float64
	var cpuErr error
	wt := startWatch(wctx, s.target, h.dest, partitions, c, func(time.Time) { cpuFirst, cpuErr = cpuSeconds(pid) }, nil)
	defer func() { wcancel(); <-wt.done }()

	wait := func(ch chan time.Time, what string) (time.Time, error) {
		select {
		case t := <-ch:
			return t, nil
		case <-wt.done:
			return time.Time{}, fmt.Errorf("waiting for %s: %v", what, wt.err)
		case <-h.p.exited:
			return time.Time{}, fmt.Errorf("%s exited (%v) before %s; its log ends:\n%s", h.p.name, h.p.err, what, h.p.logTail(30))
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%w after %v waiting for %s (%s)", errTimeout, s.timeout, what, "see "+h.p.log)
		}
	}
	first, err := wait(wt.first, "the first record")
	if err != nil {
		return fail("%v", err)
	}
	if cpuErr != nil {
		return fail("reading the CPU time of %s: %v", h.p.name, cpuErr)
	}
	last, err := wait(wt.complete, "the last record")
	if err != nil {
		wcancel()
		<-wt.done
		return fail("%v (%s)", err, c.missing())
	}
	cpuLast, err1 := cpuSeconds(pid)
	rss, err2 := peakRSS(pid)
	if err := errors.Join(err1, err2); err != nil {
		return fail("measuring %s: %v", h.p.name, err)
	}
	// A late duplicate still fails the run.
	select {
	case <-wt.done:
	case <-time.After(2 * time.Second):
	}
	wcancel()
	<-wt.done
	if wt.err != nil {
		return fail("%v", wt.err)
	}
	h.p.stop(30 * time.Second)
	if h.verify != nil {
		if err := h.verify(); err != nil {
			return fail("%v", err)
		}
	}
	res.finish(h.started, first, last, cpuFirst, cpuLast, rss)
	res.OK = true
	return res
}

var nonAlnum = regexp.MustCompile(`[^a-z0-9]+`)

func runID(sc scenario, w *workload, round int) string {
	return fmt.Sprintf("r%d-%s-%s-%04d", round, sc.name, nonAlnum.ReplaceAllString(strings.ToLower(w.name), ""), rand.IntN(10000))
}

// freeAddr is a loopback address whose port was free a moment ago, below
// the ephemeral range (as test/daemon_test.go picks them).
func freeAddr() (string, error) {
	for i := 0; i < 1000; i++ {
		port := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return l.Addr().String(), nil
	}
	return "", errors.New("no free port below the ephemeral range")
}

func (s *suite) startCeiling(sc scenario, w *workload, id, dir string) (*runHandle, error) {
	dest := "ceiling-" + id
	if err := createTopic(s.target, dest, partitions); err != nil {
		return nil, err
	}
	if err := createTopic(s.target, dest+"-offsets", 1); err != nil {
		return nil, err
	}
	h := &runHandle{dest: dest, started: time.Now()}
	p, err := startProc("ceiling", filepath.Join(dir, "ceiling.log"), nil, s.self, "ceiling",
		"-source", s.source, "-target", s.target, "-topic", w.topic, "-dest", dest,
		"-partitions", strconv.Itoa(partitions), "-tasks", strconv.Itoa(s.tasks),
		"-eos="+strconv.FormatBool(sc.eos), "-offsets", dest+"-offsets", "-id", "bench-"+id)
	if err != nil {
		return nil, err
	}
	h.p = p
	h.cleanup = func() {
		p.stop(30 * time.Second)
		s.deleteTargetTopics(dest)
	}
	return h, nil
}

func (s *suite) deleteTargetTopics(contains string) {
	if _, err := deleteTopics(s.target, func(t string) bool { return strings.Contains(t, contains) }); err != nil {
		logf("cleanup: deleting target topics with %q: %v", contains, err)
	}
}

// tributaryConfig is the node config of a one-node tributary mirroring
// topic from source into "<pipeline>.<topic>" on the target.
func (s *suite) tributaryConfig(dir, source, topic, pipeline string, eos, avroFormat bool) (cfg, httpAddr string, err error) {
	httpAddr, err = freeAddr()
	if err != nil {
		return "", "", err
	}
	raftAddr, err := freeAddr()
	if err != nil {
		return "", "", err
	}
	reg := func(r *registryServer) string {
		if r == nil || !avroFormat {
			return ""
		}
		return "\n    schema_registry: {url: " + r.url + "}"
	}
	text := fmt.Sprintf(`node:
  id: bench-1
  region: eu
  data_dir: %s/data
  http_addr: %s
  raft_addr: %s
kafka:
  regional:
    region: eu
    bootstrap: %s%s
  central:
    region: cloud
    bootstrap: %s%s
target: central
`, dir, httpAddr, raftAddr, source, reg(s.srcReg), s.target, reg(s.dstReg))
	if avroFormat {
		pd, err := writePolicy(dir)
		if err != nil {
			return "", "", err
		}
		text += "policies: " + pd + "\n"
	}
	text += fmt.Sprintf(`pipelines:
  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    tasks: %d
    exactly_once: %v
    rename: "{pipeline}.{topic}"
`, pipeline, regexp.QuoteMeta(topic), s.tasks, eos)
	if avroFormat {
		text += "    format: avro\n"
	}
	cfg = filepath.Join(dir, "tributary.yaml")
	return cfg, httpAddr, os.WriteFile(cfg, []byte(text), 0o644)
}

func (s *suite) startTributary(sc scenario, source, topic string, avroFormat bool, id, dir string) (*runHandle, error) {
	pipeline := nonAlnum.ReplaceAllString(id, "-")
	cfg, _, err := s.tributaryConfig(dir, source, topic, pipeline, sc.eos, avroFormat)
	if err != nil {
		return nil, err
	}
	h := &runHandle{dest: pipeline + "." + topic, started: time.Now()}
	p, err := startProc("tributary", filepath.Join(dir, "tributary.log"), nil, s.bin, "run", "--config", cfg, "--log-level", "info")
	if err != nil {
		return nil, err
	}
	h.p = p
	h.cleanup = func() {
		p.stop(30 * time.Second)
		s.deleteTargetTopics(pipeline)
	}
	return h, nil
}
