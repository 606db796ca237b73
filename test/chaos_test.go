package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"

	"github.com/tributary-dev/tributary/registry"
	"github.com/tributary-dev/tributary/test/harness"
)

// The chaos suite: three tributary processes mirror a steady stream of Avro
// records whose PII fields a policy masks, on the real brokers, while one
// fault at a time hits them: the target broker SIGKILLed and restarted, one
// node cut off the network (Raft and HTTP, through proxies) for longer than
// failure_timeout, a policy change while the node running tasks is
// SIGKILLed, the target's schema registry down for 20 s while a node dies.
// After each, an independent read_committed consumer proves that every
// record landed exactly once, in order per partition, or sits in the source
// region's quarantine with a reason, and that no raw PII is in the target.
//
// `make test` runs each scenario once on a short stream; `make chaos`
// (TRIBUTARY_CHAOS_LONG=1) runs longer streams, several rounds each. With
// TRIBUTARY_CHAOS_REPORT=path the measurements are also written there as JSON.

const (
	envChaosLong   = "TRIBUTARY_CHAOS_LONG"
	envChaosReport = "TRIBUTARY_CHAOS_REPORT"

	chaosSchema = `{"type":"record","name":"Order","namespace":"chaos","fields":[
		{"name":"seq","type":"long"},
		{"name":"email","type":"string","confluent:tags":["PII"]},
		{"name":"card","type":"string","confluent:tags":["PII"]},
		{"name":"amount","type":"double"}]}`
	chaosPolicyName = "chaos-orders"
	// chaosPII starts every raw PII value produced: finding it in any byte
	// of the target is a leak.
	chaosPII = "PII-"
	// Every chaosBlockEvery-th record carries a header the policy blocks: it
	// must sit in the source region's quarantine, never in the target.
	chaosBlockEvery = 97
)

// chaosSchemaB is the next version (a field with a default): a record of
// it needs the target registry, which has not seen it yet.
const chaosSchemaB = `{"type":"record","name":"Order","namespace":"chaos","fields":[
		{"name":"seq","type":"long"},
		{"name":"email","type":"string","confluent:tags":["PII"]},
		{"name":"card","type":"string","confluent:tags":["PII"]},
		{"name":"amount","type":"double"},
		{"name":"channel","type":"string","default":""}]}`

type chaosOrderB struct {
	chaosOrder
	Channel string `avro:"channel"`
}

type chaosOrder struct {
	Seq    int64   `avro:"seq"`
	Email  string  `avro:"email"`
	Card   string  `avro:"card"`
	Amount float64 `avro:"amount"`
}

func chaosPolicy(version int) string {
	extra := ""
	if version > 1 {
		extra = "  - match: {header: \"x-debug-*\"}\n    action: drop\n"
	}
	return fmt.Sprintf(`policy: %s
version: %d
applies_to: {pipelines: [chaos]}
rules:
  - match: {field: email}
    action: hash
  - match: {field: card}
    action: mask
    keep_last: 4
  - match: {header: x-ssn}
    action: block
%s`, chaosPolicyName, version, extra)
}

// chaosScale is how big a scenario's stream is and how long its faults last.
type chaosScale struct {
	rounds  int
	perTick int           // records per 50 ms
	before  time.Duration // stream time before the fault
	after   time.Duration // stream time after recovery
	cut     time.Duration // how long the partition lasts (> failure_timeout, 3s)
}

func chaosScaleFromEnv() chaosScale {
	if os.Getenv(envChaosLong) == "1" {
		return chaosScale{rounds: 3, perTick: 100, before: 20 * time.Second, after: 20 * time.Second, cut: 20 * time.Second}
	}
	return chaosScale{rounds: 1, perTick: 15, before: 4 * time.Second, after: 4 * time.Second, cut: 10 * time.Second}
}

// chaosResult is one scenario round's measurements.
type chaosResult struct {
	Scenario    string `json:"scenario"`
	Round       int    `json:"round"`
	Records     int    `json:"records"`
	Landed      int    `json:"landed"`
	Quarantined int    `json:"quarantined"`
	Duplicates  int    `json:"duplicates"`
	Losses      int    `json:"losses"`
	Reordered   int    `json:"reordered"`
	Leaks       int    `json:"raw_pii_leaks"`
	// FaultRecovS is the longest time a partition landed nothing after the
	// fault; HealRecovS how long after the heal every partition had landed a
	// record produced after it.
	FaultRecovS float64 `json:"longest_stall_after_fault_s"`
	HealRecovS  float64 `json:"recovery_from_heal_s,omitempty"`
	Note        string  `json:"note,omitempty"`
}

func (r chaosResult) row() string {
	heal := "—"
	if r.HealRecovS > 0 {
		heal = fmt.Sprintf("%.2f s", r.HealRecovS)
	}
	return fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %.2f s | %s | %s |", r.Scenario, r.Round, r.Records, r.Landed,
		r.Quarantined, r.Duplicates, r.Losses, r.Reordered, r.Leaks, r.FaultRecovS, heal, r.Note)
}

const chaosTableHeader = "| scenario | round | records | landed | quarantined | duplicates | losses | reordered | raw PII | longest stall after fault | recovered after heal | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|"

func TestChaos(t *testing.T) {
	harness.Brokers(t)
	if binPath == "" {
		t.Skip("tributary binary not built: real brokers not configured")
	}
	t.Setenv("TRIBUTARY_HASH_KEY", "chaos-hash-key-0123456789abcdef")
	scale := chaosScaleFromEnv()
	var mu sync.Mutex
	var results []chaosResult
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		var b strings.Builder
		b.WriteString(chaosTableHeader + "\n")
		for _, r := range results {
			b.WriteString(r.row() + "\n")
		}
		t.Logf("chaos results (%s=%q):\n%s", envChaosLong, os.Getenv(envChaosLong), b.String())
		if path := os.Getenv(envChaosReport); path != "" {
			out, _ := json.MarshalIndent(results, "", "  ")
			if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
				t.Errorf("writing %s: %v", path, err)
			}
		}
	})
	scenarios := []struct {
		name string
		run  func(t *testing.T, x *chaosRun, round int)
	}{
		{"target-broker-sigkill", chaosTargetBroker},
		{"node-partition", chaosPartition},
		{"policy-change-during-failover", chaosPolicyFailover},
		{"target-registry-down-during-failover", chaosRegistryDown},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for round := 1; round <= scale.rounds; round++ {
				x := newChaosRun(t, scale, sc.name == "node-partition")
				sc.run(t, x, round)
				res := x.verify(round)
				res.Scenario = sc.name
				t.Log(chaosTableHeader + "\n" + res.row())
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				if t.Failed() {
					return
				}
			}
		})
	}
}

// chaosRun is one scenario round: the cluster, the registries, the policy
// folder, the stream and what the tail consumer saw.
type chaosRun struct {
	t              *testing.T
	scale          chaosScale
	source, target string
	topic, dst     string
	c              *testCluster
	srcReg, dstReg *registryProc
	polDir         string
	valID          int32
	// proxies (node-partition only): per node, the proxies in front of its
	// Raft and HTTP ports, and the loopback IP it is bound to.
	raftProxy, httpProxy map[string]*harness.Proxy
	ip                   map[string]string

	stream *chaosStream
	tail   *chaosTail
	// Points the recovery is measured from, with the source offsets each
	// partition had reached then.
	fault, heal       time.Time
	faultSeq, healSeq map[int32]int
	note              string
	// finalPolicy, when set, is the tributary-policy every partition's last
	// record must carry.
	finalPolicy string
}

func newChaosRun(t *testing.T, scale chaosScale, proxied bool) *chaosRun {
	t.Helper()
	source, target := harness.Brokers(t)
	x := &chaosRun{t: t, scale: scale, source: source, target: target}
	x.topic = harness.UniqueName(t, "chaos")
	x.dst = "regional." + x.topic
	createTopic(t, source, x.topic, partitions, nil)
	x.srcReg = startRegistry(t, "")
	x.dstReg = startRegistry(t, filepath.Join(t.TempDir(), "target-registry.json"))
	x.valID = x.srcReg.register(x.topic+"-value", chaosSchema)
	x.polDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(x.polDir, "orders.yaml"), []byte(chaosPolicy(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	clusters := fmt.Sprintf(`  regional:
    region: eu
    bootstrap: %s
    schema_registry: {url: %s}
  central:
    region: cloud
    bootstrap: %s
    schema_registry: {url: %s}
policies: %s`, source, x.srcReg.url(), target, x.dstReg.url(), x.polDir)
	pipelines := fmt.Sprintf(`  - name: chaos
    source: {kafka: regional}
    topics: {include: ['%s']}
    format: avro
    tasks: 3
    commit_interval: 100ms
`, x.topic)
	specs := []nodeSpec{{"n1", "eu"}, {"n2", "eu"}, {"n3", "eu"}}
	// The product's default Raft timeouts: 300 ms ones (the cluster tests')
	// made leadership flap on a loaded two-core machine under the long
	// stream, which is the machine's fault, not the fault under test.
	opts := clusterOpts{timeout: "1s"}
	if proxied {
		x.proxy(specs, &opts)
	}
	x.c = newClusterWith(t, specs, clusters, pipelines, opts)
	x.c.startAll()
	x.c.waitAllRunning(90*time.Second, 3)
	for _, s := range specs {
		x.waitPolicy(s.id, 1, 60*time.Second)
	}
	return x
}

// proxy binds node i on loopback IP 127.0.0.(i+2) and puts a proxy on
// 127.0.0.1 in front of its Raft and HTTP ports, which it advertises: the
// other nodes reach it only through them, and its own connections to them
// come from its IP, so that a proxy can refuse them (CutFrom).
func (x *chaosRun) proxy(specs []nodeSpec, opts *clusterOpts) {
	t := x.t
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("node-partition needs loopback IPs beyond 127.0.0.1: %v", err)
	} else {
		ln.Close()
	}
	x.raftProxy, x.httpProxy, x.ip = map[string]*harness.Proxy{}, map[string]*harness.Proxy{}, map[string]string{}
	addrs := map[string]nodeAddrs{}
	for i, s := range specs {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		on := func() string {
			_, port, _ := net.SplitHostPort(freeAddr(t))
			return net.JoinHostPort(ip, port)
		}
		a := nodeAddrs{raft: on(), http: on()}
		x.raftProxy[s.id] = harness.NewProxy(t, freeAddr(t), a.raft)
		x.httpProxy[s.id] = harness.NewProxy(t, freeAddr(t), a.http)
		a.raftAdvertise, a.httpAdvertise = x.raftProxy[s.id].Addr(), x.httpProxy[s.id].Addr()
		addrs[s.id], x.ip[s.id] = a, ip
	}
	opts.addrs = func(s nodeSpec) nodeAddrs { return addrs[s.id] }
}

// isolate cuts a node off the others: nothing reaches its proxies, and the
// others' proxies refuse its connections. Its Kafka access stays up.
func (x *chaosRun) isolate(id string) {
	x.raftProxy[id].Cut()
	x.httpProxy[id].Cut()
	for other := range x.raftProxy {
		if other != id {
			x.raftProxy[other].CutFrom(x.ip[id])
			x.httpProxy[other].CutFrom(x.ip[id])
		}
	}
}

func (x *chaosRun) healAll() {
	for id := range x.raftProxy {
		x.raftProxy[id].Heal()
		x.httpProxy[id].Heal()
	}
}

// waitPolicy waits until node id runs version v of the chaos policy.
func (x *chaosRun) waitPolicy(id string, v int, timeout time.Duration) {
	x.t.Helper()
	harness.Eventually(x.t, timeout, fmt.Sprintf("%s on %s@%d", id, chaosPolicyName, v), func() error {
		st, err := x.c.status(id)
		if err != nil {
			return err
		}
		if st.Policy.Policies[chaosPolicyName] != int64(v) {
			return fmt.Errorf("active %v (last error %q)", st.Policy.Policies, st.Policy.LastError)
		}
		return nil
	})
}

// start starts the stream and the tail consumer, and waits until records
// land.
func (x *chaosRun) start() {
	x.t.Helper()
	x.stream = startChaosStream(x.t, x.source, x.topic, x.valID, x.scale.perTick)
	harness.Eventually(x.t, 90*time.Second, "the first records mirrored", func() error {
		if n := countCommitted(x.t, x.target, x.dst); n == 0 {
			return fmt.Errorf("nothing in %s yet", x.dst)
		}
		return nil
	})
	x.tail = startChaosTail(x.t, x.target, x.dst)
	time.Sleep(x.scale.before)
}

// markFault and markHeal note when the fault began and ended.
func (x *chaosRun) markFault() { x.fault, x.faultSeq = time.Now(), x.stream.positions() }
func (x *chaosRun) markHeal()  { x.heal, x.healSeq = time.Now(), x.stream.positions() }

// finish lets the stream run on after recovery, stops it, and waits until
// every partition has recovered from the fault (and the heal).
func (x *chaosRun) finish() {
	x.t.Helper()
	from := x.fault
	if !x.heal.IsZero() {
		from = x.heal
	}
	harness.Eventually(x.t, 3*time.Minute, "every partition flows again", func() error {
		if _, err := x.tail.recovered(from, x.healOrFaultSeq()); err != nil {
			return err
		}
		return nil
	})
	time.Sleep(x.scale.after)
	x.stream.stop(x.t)
}

func (x *chaosRun) healOrFaultSeq() map[int32]int {
	if !x.heal.IsZero() {
		return x.healSeq
	}
	return x.faultSeq
}

// verify reads the target with an independent read_committed consumer and the
// source region's quarantine, and checks every record produced.
func (x *chaosRun) verify(round int) chaosResult {
	t := x.t
	t.Helper()
	res := chaosResult{Round: round, Note: x.note}
	total := x.stream.total()
	blocked := x.stream.blockedCount()
	res.Records = total
	got := readAll(t, x.target, x.dst, total-blocked, 3*time.Minute)
	x.tail.close()
	var quarantine map[string]string
	harness.Eventually(t, 60*time.Second, "the blocked records quarantined", func() error {
		quarantine = quarantinedRecords(t, x.source, x.topic)
		if len(quarantine) < blocked {
			return fmt.Errorf("%d quarantined, want at least %d", len(quarantine), blocked)
		}
		return nil
	})
	res.Quarantined = len(quarantine)
	bad := 0
	fail := func(format string, a ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, a...)
		}
	}
	for p := int32(0); p < partitions; p++ {
		n := x.stream.produced(p)
		seen := map[int]bool{}
		last := -1
		var switches []string
		prevPolicy := ""
		for _, r := range got[p] {
			if v, where := chaosLeak(r); v != "" {
				res.Leaks++
				fail("partition %d offset %d: raw PII %q in the %s", p, r.Offset, v, where)
			}
			offHdr, _ := header(r.Headers, "tributary-origin-offset")
			off, err := strconv.Atoi(string(offHdr))
			if err != nil || off < 0 || off >= n {
				fail("partition %d offset %d: tributary-origin-offset %q is no record produced (0..%d)", p, r.Offset, offHdr, n-1)
				continue
			}
			if seen[off] {
				res.Duplicates++
				fail("partition %d: source offset %d landed twice (again at target offset %d)", p, off, r.Offset)
			}
			if off <= last {
				res.Reordered++
				fail("partition %d: source offset %d landed after %d", p, off, last)
			}
			seen[off], last = true, off
			res.Landed++
			if x.stream.isBlocked(p, off) {
				fail("partition %d: source offset %d carries a blocked header and landed", p, off)
			}
			if reason, ok := quarantine[fmt.Sprintf("%d/%d", p, off)]; ok {
				fail("partition %d: source offset %d landed and is quarantined (%s)", p, off, reason)
			}
			pol, _ := header(r.Headers, "tributary-policy")
			if !bytes.Contains(pol, []byte(chaosPolicyName+"@")) {
				fail("partition %d: source offset %d landed without %s (tributary-policy %q)", p, off, chaosPolicyName, pol)
			}
			if string(pol) != prevPolicy {
				switches = append(switches, string(pol))
				prevPolicy = string(pol)
			}
		}
		if x.finalPolicy != "" && prevPolicy != x.finalPolicy {
			fail("partition %d: the last record landed under %q, want %q", p, prevPolicy, x.finalPolicy)
		}
		// Every version switch happens once per partition, forward: one
		// version, then the next, never back.
		for i := 1; i < len(switches); i++ {
			if switches[i] <= switches[i-1] {
				fail("partition %d: policy versions %v in the target: a switch back", p, switches)
				break
			}
		}
		for off := 0; off < n; off++ {
			if seen[off] {
				continue
			}
			reason, ok := quarantine[fmt.Sprintf("%d/%d", p, off)]
			switch {
			case !ok:
				res.Losses++
				fail("partition %d: source offset %d neither landed nor quarantined", p, off)
			case x.stream.isBlocked(p, off) && !strings.HasPrefix(reason, "blocked"):
				fail("partition %d: source offset %d quarantined for %q, want blocked", p, off, reason)
			case !x.stream.isBlocked(p, off):
				// A record quarantined by the fault itself is accounted for,
				// but said: a transient fault should never quarantine.
				fail("partition %d: source offset %d quarantined for %q by the fault", p, off, reason)
			}
		}
	}
	if bad > 20 {
		t.Errorf("... and %d more problems", bad-20)
	}
	res.Leaks += x.diskLeaks()
	if n := len(quarantinedRecords(t, x.target, x.topic)); n != 0 {
		t.Errorf("%d records of %s quarantined in the central cluster, want none (quarantine stays in the source region)", n, x.topic)
	}
	res.FaultRecovS = x.tail.longestStall(x.fault).Seconds()
	if !x.heal.IsZero() {
		if d, err := x.tail.recovered(x.heal, x.healSeq); err == nil {
			res.HealRecovS = d.Seconds()
		} else {
			t.Errorf("recovery from the heal: %v", err)
		}
	}
	return res
}

// diskLeaks greps the target broker's log segments of the mirrored topic for
// raw PII: what read_committed consumers never see (aborted transactions)
// counts too. tributary's producers do not compress, so the bytes are
// there to grep; a known plain string in the keys is the control.
func (x *chaosRun) diskLeaks() int {
	t := x.t
	dir := os.Getenv(harness.EnvKafkaDir)
	if dir == "" {
		t.Logf("%s unset: the target's log segments are not grepped", harness.EnvKafkaDir)
		return 0
	}
	files, _ := filepath.Glob(filepath.Join(dir, harness.Target, "data", x.dst+"-*", "*.log"))
	leaks, control := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("reading the target's segment %s: %v", f, err)
			continue
		}
		control += bytes.Count(b, []byte("order-"))
		if n := bytes.Count(b, []byte(chaosPII)); n > 0 {
			i := bytes.Index(b, []byte(chaosPII))
			t.Errorf("%s: %d raw PII values on the target's disk, the first %q", f, n, b[i:min(i+24, len(b))])
			leaks += n
		}
	}
	if control == 0 {
		t.Errorf("no record key found in the target's segments %v: the disk grep proves nothing", files)
	}
	return leaks
}

// chaosLeak returns the first raw PII value found in a target record.
func chaosLeak(r targetRecord) (string, string) {
	parts := []struct {
		where string
		b     []byte
	}{{"key", r.Key}, {"value", r.Value}}
	for _, h := range r.Headers {
		parts = append(parts, struct {
			where string
			b     []byte
		}{"header " + h.Key, append([]byte(h.Key+"="), h.Value...)})
	}
	for _, p := range parts {
		if i := bytes.Index(p.b, []byte(chaosPII)); i >= 0 {
			end := min(i+24, len(p.b))
			return string(p.b[i:end]), p.where
		}
	}
	return "", ""
}

// chaosStream produces Avro orders (email and card PII) round-robin over the
// partitions every 50 ms until stopped; every chaosBlockEvery-th record
// carries a blocked x-ssn header.
type chaosStream struct {
	p       *producer
	mu      sync.Mutex
	seq     map[int32]int
	blocked map[int32]map[int]bool
	stopped atomic.Bool
	done    chan struct{}
	// next, once set, is the schema id of chaosSchemaB: records from then on
	// use it.
	next atomic.Int32
	// err is what ended the stream early, reported by stop.
	err atomic.Value
}

func startChaosStream(t *testing.T, source, topic string, valID int32, perTick int) *chaosStream {
	schema, schemaB := avro.MustParse(chaosSchema), avro.MustParse(chaosSchemaB)
	s := &chaosStream{p: newProducer(t, source), seq: map[int32]int{}, blocked: map[int32]map[int]bool{}, done: make(chan struct{})}
	// Before the producer closes (cleanups run last-in first-out).
	t.Cleanup(func() { s.stopped.Store(true); <-s.done })
	go func() {
		defer close(s.done)
		i := 0
		for !s.stopped.Load() {
			for k := 0; k < perTick; k, i = k+1, i+1 {
				part := int32(i % partitions)
				order := chaosOrder{Seq: int64(i),
					Email: fmt.Sprintf("%semail-%d@example.com", chaosPII, i),
					Card:  fmt.Sprintf("%s4111-%012d", chaosPII, i), Amount: float64(i) / 100}
				id := valID
				var body []byte
				var err error
				if next := s.next.Load(); next != 0 {
					id = next
					body, err = avro.Marshal(schemaB, chaosOrderB{chaosOrder: order, Channel: "web"})
				} else {
					body, err = avro.Marshal(schema, order)
				}
				if err != nil {
					s.err.Store(fmt.Errorf("encoding record %d: %w", i, err))
					return
				}
				m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: part},
					Key:       []byte("order-" + strconv.Itoa(i)),
					Value:     registry.AppendFrame(nil, registry.SchemaRef{Magic: registry.MagicID, ID: id}, registry.Avro, body),
					Timestamp: time.Now()}
				block := i%chaosBlockEvery == chaosBlockEvery-1
				if block {
					m.Headers = []kafka.Header{{Key: "x-ssn", Value: []byte(fmt.Sprintf("%sssn-%d", chaosPII, i))}}
				}
				for {
					err := s.p.Produce(m, nil)
					if err == nil {
						break
					}
					if e, ok := err.(kafka.Error); ok && e.Code() == kafka.ErrQueueFull {
						s.p.Flush(100)
						continue
					}
					s.err.Store(fmt.Errorf("producing record %d to the source: %w", i, err))
					return
				}
				// One producer, idempotent, in order: the n-th record of a
				// partition is at source offset n.
				s.mu.Lock()
				if block {
					if s.blocked[part] == nil {
						s.blocked[part] = map[int]bool{}
					}
					s.blocked[part][s.seq[part]] = true
				}
				s.seq[part]++
				s.mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return s
}

func (s *chaosStream) stop(t *testing.T) {
	t.Helper()
	s.stopped.Store(true)
	<-s.done
	if err, _ := s.err.Load().(error); err != nil {
		t.Errorf("the stream ended early: %v", err)
	}
	flush(t, s.p)
}

// positions returns how many records each partition has been given so far.
func (s *chaosStream) positions() map[int32]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32]int{}
	for p := int32(0); p < partitions; p++ {
		out[p] = s.seq[p]
	}
	return out
}

func (s *chaosStream) produced(p int32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq[p]
}

func (s *chaosStream) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, v := range s.seq {
		n += v
	}
	return n
}

func (s *chaosStream) blockedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.blocked {
		n += len(m)
	}
	return n
}

func (s *chaosStream) isBlocked(p int32, off int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.blocked[p][off]
}

// chaosTail follows the target topic with a read_committed consumer and notes
// when each source offset became visible there, to measure recovery.
type chaosTail struct {
	c      *kafka.Consumer
	mu     sync.Mutex
	landed map[int32][]tailEntry
	stop   chan struct{}
	done   chan struct{}
}

type tailEntry struct {
	off int
	at  time.Time
}

func startChaosTail(t *testing.T, bootstrap, topic string) *chaosTail {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "chaos-tail-" + topic, "isolation.level": "read_committed",
		"enable.auto.commit": false, "enable.metrics.push": false, "fetch.queue.backoff.ms": 10,
		// It follows the target through its outages: connection errors are expected.
		"log_level": 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := partitionCount(bootstrap, topic)
	if err != nil {
		c.Close()
		t.Fatalf("tail of %s: %v", topic, err)
	}
	var tps []kafka.TopicPartition
	for p := 0; p < n; p++ {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: int32(p), Offset: kafka.OffsetBeginning})
	}
	if err := c.Assign(tps); err != nil {
		c.Close()
		t.Fatal(err)
	}
	tl := &chaosTail{c: c, landed: map[int32][]tailEntry{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(tl.done)
		for {
			select {
			case <-tl.stop:
				return
			default:
			}
			m, ok := c.Poll(100).(*kafka.Message)
			if !ok || m.TopicPartition.Error != nil {
				continue
			}
			h, _ := header(m.Headers, "tributary-origin-offset")
			off, err := strconv.Atoi(string(h))
			if err != nil {
				continue
			}
			tl.mu.Lock()
			tl.landed[m.TopicPartition.Partition] = append(tl.landed[m.TopicPartition.Partition], tailEntry{off, time.Now()})
			tl.mu.Unlock()
		}
	}()
	t.Cleanup(tl.close)
	return tl
}

func (tl *chaosTail) close() {
	select {
	case <-tl.done:
		return
	default:
	}
	close(tl.stop)
	<-tl.done
	tl.c.Close()
}

// recovered returns how long after from every partition landed a record at or
// beyond the source offset it had reached at from (so everything before it
// had landed too, in order): the time to recover. A partition given nothing
// since from does not count.
func (tl *chaosTail) recovered(from time.Time, seqAt map[int32]int) (time.Duration, error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var worst time.Duration
	var waiting []string
	parts := make([]int32, 0, len(seqAt))
	for p := range seqAt {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		found := false
		for _, e := range tl.landed[p] {
			if e.off >= seqAt[p] {
				if d := e.at.Sub(from); d > worst {
					worst = d
				}
				found = true
				break
			}
		}
		if !found {
			waiting = append(waiting, fmt.Sprintf("%d (from offset %d)", p, seqAt[p]))
		}
	}
	if len(waiting) > 0 {
		return 0, fmt.Errorf("partitions %s have landed nothing produced after %s", strings.Join(waiting, ", "), from.Format("15:04:05.000"))
	}
	return worst, nil
}

// longestStall is the longest time any partition landed nothing, from from
// to its last record: how long the fault held the stream up (the stream gives
// every partition records every 50 ms).
func (tl *chaosTail) longestStall(from time.Time) time.Duration {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var worst time.Duration
	for _, es := range tl.landed {
		prev := from
		for _, e := range es {
			if e.at.Before(from) {
				continue
			}
			if d := e.at.Sub(prev); d > worst {
				worst = d
			}
			prev = e.at
		}
	}
	return worst
}

// busiest returns the node running the most tasks (ties: the lowest id).
func (x *chaosRun) busiest() string {
	victim, most := "", -1
	for id, ts := range x.c.running() {
		if len(ts) > most || (len(ts) == most && id < victim) {
			victim, most = id, len(ts)
		}
	}
	return victim
}

// chaosTargetBroker: the central cluster's broker is SIGKILLed mid-stream
// and restarted.
func chaosTargetBroker(t *testing.T, x *chaosRun, round int) {
	x.start()
	x.markFault()
	harness.KillCluster(t, harness.Target)
	down := time.Since(x.fault)
	harness.StartCluster(t, harness.Target)
	x.markHeal()
	x.note = fmt.Sprintf("broker down %.1f s (kill %.1f s + restart)", x.heal.Sub(x.fault).Seconds(), down.Seconds())
	x.finish()
}

// chaosPartition: one node (the leader in odd rounds, a follower in even
// ones) loses its Raft and HTTP traffic both ways, for longer than
// failure_timeout, while its Kafka access stays up; then the network heals.
func chaosPartition(t *testing.T, x *chaosRun, round int) {
	x.start()
	st, err := x.c.anyStatus()
	if err != nil {
		t.Fatal(err)
	}
	victim := st.Cluster.Leader.ID
	if round%2 == 0 {
		victim = ""
		for id, ts := range x.c.running() {
			if id != st.Cluster.Leader.ID && len(ts) > 0 && (victim == "" || id < victim) {
				victim = id
			}
		}
	}
	if victim == "" {
		t.Fatalf("no victim: leader %s, running %v", st.Cluster.Leader.ID, x.c.running())
	}
	moved := x.c.running()[victim]
	role := "follower"
	if victim == st.Cluster.Leader.ID {
		role = "leader"
	}
	t.Logf("isolating %s (%s, runs %v)", victim, role, moved)
	x.markFault()
	x.isolate(victim)
	x.c.waitAllRunning(60*time.Second, 3, victim)
	t.Logf("tasks taken over from %s %s after the cut", victim, time.Since(x.fault).Round(10*time.Millisecond))
	// The isolated node stands down on its own (no leader for failure_timeout).
	harness.Eventually(t, 30*time.Second, victim+" stops its tasks while cut off", func() error {
		st, err := x.c.status(victim)
		if err != nil {
			return err
		}
		if !st.Cluster.Isolated {
			return fmt.Errorf("%s does not report itself isolated", victim)
		}
		for _, task := range st.Tasks {
			if task.Node == victim && task.Running == "running" {
				return fmt.Errorf("%s still runs %s", victim, task.ID)
			}
		}
		return nil
	})
	if rest := x.scale.cut - time.Since(x.fault); rest > 0 {
		time.Sleep(rest)
	}
	x.markHeal()
	x.healAll()
	x.note = fmt.Sprintf("%s %s cut %.1f s, %d connections refused", role, victim, x.heal.Sub(x.fault).Seconds(), x.refused())
	harness.Eventually(t, 60*time.Second, victim+" back in the cluster", func() error {
		st, err := x.c.status(victim)
		if err != nil {
			return err
		}
		if st.Cluster.Leader.ID == "" {
			return fmt.Errorf("%s knows no leader", victim)
		}
		other, err := x.c.anyStatus(victim)
		if err != nil {
			return err
		}
		for _, m := range other.Cluster.Members {
			if m.ID == victim && !m.Alive {
				return fmt.Errorf("%s not alive yet for %s", victim, other.Node.ID)
			}
		}
		return nil
	})
	x.c.waitAllRunning(60*time.Second, 3)
	x.finish()
}

// waitMovedOff waits until the leader has assigned every task to a node other
// than victim.
func (x *chaosRun) waitMovedOff(victim string) {
	x.t.Helper()
	harness.Eventually(x.t, 60*time.Second, "every task assigned away from "+victim, func() error {
		st, err := x.c.anyStatus(victim)
		if err != nil {
			return err
		}
		if len(st.Tasks) != 3 {
			return fmt.Errorf("%d tasks in the status", len(st.Tasks))
		}
		for _, task := range st.Tasks {
			if task.Node == "" || task.Node == victim {
				return fmt.Errorf("%s is %s on %q", task.ID, task.State, task.Node)
			}
		}
		return nil
	})
}

func (x *chaosRun) refused() int {
	n := 0
	for id := range x.raftProxy {
		n += x.raftProxy[id].Refused() + x.httpProxy[id].Refused()
	}
	return n
}

// chaosPolicyFailover: a new policy version is written to the folder while
// the node running the most tasks is SIGKILLed.
func chaosPolicyFailover(t *testing.T, x *chaosRun, round int) {
	x.start()
	victim := x.busiest()
	x.markFault()
	if err := os.WriteFile(filepath.Join(x.polDir, "orders.yaml"), []byte(chaosPolicy(2)), 0o644); err != nil {
		t.Fatal(err)
	}
	x.c.nodes[victim].kill()
	x.note = victim + " killed, policy v1→v2"
	x.c.waitAllRunning(60*time.Second, 3, victim)
	for _, s := range x.c.specs {
		if s.id != victim {
			x.waitPolicy(s.id, 2, 60*time.Second)
		}
	}
	// Records produced from now on must all carry v2.
	x.finalPolicy = chaosPolicyName + "@2"
	x.finish()
	x.c.start(victim).waitReady(90 * time.Second)
	x.waitPolicy(victim, 2, 60*time.Second)
}

// chaosRegistryDown: the target's schema registry stops; a node is SIGKILLed;
// the registry returns 20 s later. From the fault on the stream uses a schema
// version the target registry has not seen, so every task, the moved ones
// too, needs the registry: records wait for it, none is quarantined.
func chaosRegistryDown(t *testing.T, x *chaosRun, round int) {
	idB := x.srcReg.register(x.topic+"-value", chaosSchemaB)
	x.start()
	victim := x.busiest()
	x.dstReg.stop()
	x.markFault()
	x.stream.next.Store(idB)
	x.c.nodes[victim].kill()
	// Not "running": without the registry a task that meets the new schema
	// fails and restarts from its checkpoints until the registry is back.
	x.waitMovedOff(victim)
	if rest := 20*time.Second - time.Since(x.fault); rest > 0 {
		time.Sleep(rest)
	}
	x.dstReg.start()
	x.markHeal()
	x.note = fmt.Sprintf("%s killed, target registry down %.1f s", victim, x.heal.Sub(x.fault).Seconds())
	x.finish()
}
