package test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/test/harness"
)

// TestTargetOutageBoundedMemory is the long-outage measurement behind `make
// outage` (README, "Sizing"): one node process mirrors a steady offered load
// (TRIBUTARY_OUTAGE_RATE records/s, default 10,000, 200-byte values stamped
// now) while the target cluster is stopped for TRIBUTARY_OUTAGE (e.g. 5m),
// then started again. The node's VmRSS and VmHWM are sampled every second
// from /proc. It reports the peak RSS, the RSS at the end of the outage and
// the time to catch up, checks the peak against the bound the README states
// (baseline + tasks × (1.5 × buffer_bytes + 64 MiB)), and checks with an independent
// read_committed consumer that every record landed exactly once and in order.
//
// It takes the outage plus a few minutes, so the default suite skips it
// (TRIBUTARY_OUTAGE unset); TestMetricsLagAndLatency covers a short target
// outage's correctness there.
func TestTargetOutageBoundedMemory(t *testing.T) {
	outageEnv := os.Getenv("TRIBUTARY_OUTAGE")
	if outageEnv == "" {
		t.Skip("long target outage: set TRIBUTARY_OUTAGE (e.g. 5m) or run `make outage`")
	}
	outage, err := time.ParseDuration(outageEnv)
	if err != nil || outage <= 0 {
		t.Fatalf("TRIBUTARY_OUTAGE=%q: want a positive duration such as 5m", outageEnv)
	}
	rate := 10000
	if s := os.Getenv("TRIBUTARY_OUTAGE_RATE"); s != "" {
		if rate, err = strconv.Atoi(s); err != nil || rate < 100 {
			t.Fatalf("TRIBUTARY_OUTAGE_RATE=%q: want records per second >= 100", s)
		}
	}
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "outage")
	createTopic(t, source, topic, partitions, nil)
	const tasks = 3 // pipelineYAML's
	cfg, httpAddr := writeConfig(t, source, target, pipelineYAML(topic, topic, ""))
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)
	pid := d.cmd.Process.Pid

	// RSS sampler.
	type sample struct {
		at       time.Time
		rss, hwm int64 // bytes
	}
	var mu sync.Mutex
	var samples []sample
	stopSampling := make(chan struct{})
	var samplerDone sync.WaitGroup
	samplerDone.Add(1)
	go func() {
		defer samplerDone.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			if rss, hwm, err := procMemory(pid); err == nil {
				mu.Lock()
				samples = append(samples, sample{time.Now(), rss, hwm})
				mu.Unlock()
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	peakBetween := func(from, to time.Time) (peak int64, last int64) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range samples {
			if s.at.Before(from) || s.at.After(to) {
				continue
			}
			peak = max(peak, s.rss)
			last = s.rss
		}
		return peak, last
	}

	// Offered load: rate records/s in 10 ms slices, 200-byte values, the
	// partition's sequence number in the key.
	p := newProducer(t, source)
	var produced atomic.Int64
	seq := make([]int, partitions)
	stopLoad := make(chan struct{})
	var loadDone sync.WaitGroup
	loadDone.Add(1)
	go func() {
		defer loadDone.Done()
		value := make([]byte, 200)
		for i := range value {
			value[i] = byte('a' + i%26)
		}
		perSlice := rate / 100
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-stopLoad:
				return
			case <-tick.C:
			}
			now := time.Now()
			for i := 0; i < perSlice; i++ {
				part := int32(n % partitions)
				n++
				m := &kafka.Message{
					TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: part},
					Key:            []byte(strconv.Itoa(seq[part])), Value: value, Timestamp: now,
				}
				seq[part]++
				for p.Produce(m, nil) != nil {
					p.Flush(10)
				}
			}
			produced.Add(int64(perSlice))
		}
	}()
	stopLoadOnce := sync.OnceFunc(func() {
		close(stopLoad)
		loadDone.Wait()
	})
	t.Cleanup(stopLoadOnce)

	m := nodeMetrics{d: d, pipeline: topic, topic: topic}
	lag := func() (float64, error) {
		fams, err := m.scrape()
		if err != nil {
			return 0, err
		}
		v, err := m.perPartition(fams, "tributary_replication_lag_records")
		if err != nil {
			return 0, err
		}
		var sum float64
		for _, x := range v {
			sum += x
		}
		return sum, nil
	}
	// Steady state first: the baseline RSS is what the node needs at this load.
	warm := time.Now()
	time.Sleep(30 * time.Second)
	baselinePeak, baseline := peakBetween(warm, time.Now())
	l0, _ := lag()
	t.Logf("steady state: %d records offered in %v, lag %v, RSS %s (peak %s)", produced.Load(), time.Since(warm).Round(time.Second), l0, mib(baseline), mib(baselinePeak))

	harness.StopCluster(t, harness.Target) // its cleanup restarts the target if the test stops early
	down := time.Now()
	atDown := produced.Load()
	var lastReport time.Time
	for time.Since(down) < outage {
		if d.exitedNow() {
			t.Fatalf("node exited during the outage: %v\n%s", d.err, d.tail(4096))
		}
		if time.Since(lastReport) >= 30*time.Second {
			_, rss := peakBetween(time.Now().Add(-2*time.Second), time.Now())
			l, _ := lag()
			t.Logf("outage +%v: RSS %s, lag %v", time.Since(down).Round(time.Second), mib(rss), l)
			lastReport = time.Now()
		}
		time.Sleep(time.Second)
	}
	outagePeak, atEnd := peakBetween(down, time.Now())
	offeredDuring := produced.Load() - atDown
	harness.StartCluster(t, harness.Target)
	back := time.Now()

	// Caught up: lag within one second of the offered load, while the load goes on.
	var caughtUp time.Duration
	harness.Eventually(t, 20*time.Minute, "lag back within one second of load", func() error {
		if d.exitedNow() {
			t.Fatalf("node exited while catching up: %v\n%s", d.err, d.tail(4096))
		}
		l, err := lag()
		if err != nil {
			return err
		}
		if l > float64(rate) {
			return fmt.Errorf("lag %v records", l)
		}
		return nil
	})
	caughtUp = time.Since(back)
	stopLoadOnce()
	flush(t, p)
	total := produced.Load()
	close(stopSampling)
	samplerDone.Wait()
	overallPeak, _ := peakBetween(warm, time.Now())
	var hwm int64
	mu.Lock()
	if len(samples) > 0 {
		hwm = samples[len(samples)-1].hwm
	}
	mu.Unlock()

	t.Logf("offered %d records/s, achieved %.0f/s (%d during the %v outage, %d in all, 200-byte values), %d tasks, buffer_bytes %s",
		rate, float64(offeredDuring)/outage.Seconds(), offeredDuring, outage, total, tasks, mib(config.DefaultBufferBytes))
	t.Logf("RSS: steady %s; outage peak %s, at the end of the outage %s; peak overall %s (VmHWM %s)",
		mib(baseline), mib(outagePeak), mib(atEnd), mib(overallPeak), mib(hwm))
	t.Logf("caught up (lag < 1 s of load) %v after the target was started again", caughtUp.Round(time.Second))

	perPartition := map[int32]int{}
	for i, n := range seq {
		perPartition[int32(i)] = n
	}
	verifyStreamExactlyOnce(t, target, "regional."+topic, perPartition, 10*time.Minute)

	// The bound the README states: what the node needs at this load, plus per
	// task 1.5 × buffer_bytes for its client queues and 64 MiB for the Go
	// side of a task working at full speed (catching up: transactions of up
	// to 50,000 records and their garbage).
	bound := max(baseline, baselinePeak) + int64(tasks)*(config.DefaultBufferBytes*3/2+64<<20)
	if hwm > bound {
		t.Errorf("VmHWM %s exceeds the stated bound %s (steady-state RSS + %d tasks × (1.5 × buffer_bytes + 64 MiB))", mib(hwm), mib(bound), tasks)
	}
}

// exitedNow reports whether the node process has exited.
func (d *daemon) exitedNow() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// procMemory reads VmRSS and VmHWM (bytes) of a process from /proc.
func procMemory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %q: %w", k, v, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// verifyStreamExactlyOnce reads a topic with an independent read_committed
// consumer and checks, without keeping the records, that partition p holds
// the source offsets 0..want[p]-1 once each, in order
// (tributary-origin-offset).
func verifyStreamExactlyOnce(t testing.TB, bootstrap, topic string, want map[int32]int, timeout time.Duration) {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "verify-" + topic, "isolation.level": "read_committed",
		"enable.auto.commit": false, "auto.offset.reset": "earliest", "enable.metrics.push": false,
		"fetch.queue.backoff.ms": 10, "enable.partition.eof": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var tps []kafka.TopicPartition
	total := 0
	for p, n := range want {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.OffsetBeginning})
		total += n
	}
	if err := c.Assign(tps); err != nil {
		t.Fatal(err)
	}
	next := map[int32]int{}
	bad, got := 0, 0
	deadline := time.Now().Add(timeout)
	var quietSince time.Time
	for time.Now().Before(deadline) {
		switch e := c.Poll(200).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				continue
			}
			quietSince = time.Time{}
			p := e.TopicPartition.Partition
			off, _ := header(e.Headers, "tributary-origin-offset")
			if string(off) != strconv.Itoa(next[p]) {
				bad++
				if bad <= 20 {
					t.Errorf("partition %d: record %d claims source offset %q (duplicate, gap or reorder)", p, next[p], off)
				}
			}
			next[p]++
			got++
		default:
			if got >= total {
				if quietSince.IsZero() {
					quietSince = time.Now()
				} else if time.Since(quietSince) > 3*time.Second {
					deadline = time.Now() // read a little past the count, for duplicates
				}
			}
		}
	}
	for p, n := range want {
		if next[p] != n {
			t.Errorf("partition %d: %d records in the target, want %d", p, next[p], n)
		}
	}
	if bad > 20 {
		t.Errorf("... and %d more out of sequence", bad-20)
	}
	t.Logf("verified %d records in %s: each source offset once, in order", got, topic)
}
