package test

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tributary-dev/tributary/test/harness"
)

// TestMetricsLagAndLatency checks the replication metrics of a running node
// against what the test knows happened: lag is 0 when everything is mirrored;
// while the target cluster is down it is exactly the records produced since
// (the node still sees the source's high watermarks but cannot write
// anything), with lag_seconds > 0, and it stays so, and keeps counting, while
// the tasks give up their transactions and restart; it returns to 0 after the
// target comes back; and the latency histogram counts every replicated record
// exactly once, in buckets from 1 ms to 60 s, with the outage's records in the
// buckets their wait allows.
func TestMetricsLagAndLatency(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "metrics")
	createTopic(t, source, topic, partitions, nil)
	cfg, httpAddr := writeConfig(t, source, target, pipelineYAML(topic, topic, ""))
	start := time.Now()
	d := startDaemon(t, cfg, httpAddr)
	d.waitReady(60 * time.Second)
	pipeline := topic       // pipelineYAML names the pipeline after its topic
	const pipelineTasks = 3 // and gives it 3 tasks
	m := nodeMetrics{d: d, pipeline: pipeline, topic: topic}

	// produceN stamps records base + 1 ms per per-partition sequence number:
	// the bases below make the stamps end when producing starts, so latencies
	// are real (and the records are safe from retention).
	const n, extra = 3000, 1200
	seq := map[int32]int{}
	p := newProducer(t, source)
	producing := time.Now()
	produceN(t, p, topic, 0, n, time.Now().Add(-time.Duration(n/partitions)*time.Millisecond), seq)
	flush(t, p)
	produced := time.Now()
	m.waitCaughtUp(t, 60*time.Second, n)
	t.Logf("%d records produced in %v, mirrored with lag 0 on %d partitions %v later (%v after the node started)",
		n, produced.Sub(producing).Round(time.Millisecond), partitions, time.Since(produced).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// Target down: the next records can be read but not written. Half of them
	// come at once; the other half once every task has given up its open
	// transaction and restarted (a task cannot commit for longer than 30 s),
	// so lag must stay current across task restarts, as alerts on it need.
	harness.StopCluster(t, harness.Target) // its cleanup restarts the target if the test stops early
	outage := time.Now()
	// The outage's batches: each record is stamped no later than its batch was
	// flushed and cannot be written before the target starts again.
	type batch struct {
		flushed time.Time
		count   int
	}
	var batches []batch
	sent := 0 // records produced during the outage
	produceOutage := func(t *testing.T, count int) {
		from := n + sent
		produceN(t, p, topic, from, count, time.Now().Add(-time.Duration((from+count)/partitions)*time.Millisecond), seq)
		flush(t, p)
		sent += count
		batches = append(batches, batch{time.Now(), count})
	}
	// A subtest, so that a failure here still lets the test restart the target
	// and check the catch-up and the histogram.
	t.Run("lag while the target is down", func(t *testing.T) {
		restarts0 := m.value(t, "tributary_task_restarts_total", "", "")
		produceOutage(t, extra/2)
		m.waitOutageLag(t, 20*time.Second, outage, extra/2)
		t.Logf("lag reached %d records %v after the target stopped", extra/2, time.Since(outage).Round(time.Millisecond))

		// Lag holds while the tasks fail and restart.
		var bad []string
		var restarts float64
		for time.Since(outage) < 40*time.Second {
			total, err := m.outageLag()
			if err == nil && total != extra/2 {
				err = fmt.Errorf("lag_records sum %v, want %d", total, extra/2)
			}
			if err != nil && len(bad) < 10 {
				bad = append(bad, fmt.Sprintf("[+%v] %v", time.Since(outage).Round(100*time.Millisecond), err))
			}
			restarts = m.value(t, "tributary_task_restarts_total", "", "") - restarts0
			if restarts >= pipelineTasks {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Logf("%v of %d tasks restarted %v after the target stopped", restarts, pipelineTasks, time.Since(outage).Round(time.Millisecond))
		if len(bad) > 0 {
			t.Errorf("lag did not hold at %d records while the tasks failed: %s", extra/2, strings.Join(bad, "; "))
		}

		produceOutage(t, extra-extra/2)
		second := time.Now()
		m.waitOutageLag(t, 20*time.Second, outage, extra)
		t.Logf("lag reached %d records %v after the second half was produced", extra, time.Since(second).Round(time.Millisecond))
	})
	if sent == 0 {
		t.FailNow() // the subtest failed before producing anything
	}

	restart := time.Now()
	harness.StartCluster(t, harness.Target)
	back := time.Now()
	total := n + sent // n + extra unless the subtest stopped early
	m.waitCaughtUp(t, 60*time.Second, total)
	t.Logf("caught up %v after the target restarted (outage %v)", time.Since(back).Round(time.Millisecond), back.Sub(outage).Round(time.Millisecond))
	if got := countCommitted(t, target, "regional."+topic); got != total {
		t.Errorf("target topic holds %d committed records, want %d", got, total)
	}

	// Every replicated record is observed once by the latency histogram.
	fams, err := m.scrape()
	if err != nil {
		t.Fatal(err)
	}
	replicated, err := m.single(fams, "tributary_records_total", "outcome", "replicated")
	if err != nil {
		t.Fatal(err)
	}
	h, err := m.histogram(fams, "tributary_replication_latency_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if c := h.GetSampleCount(); c != uint64(replicated) || c != uint64(total) {
		t.Errorf("latency histogram count %d, records_total{outcome=replicated} %v, want both %d", c, replicated, total)
	}
	var les []float64
	var prev uint64
	for _, b := range h.GetBucket() {
		les = append(les, b.GetUpperBound())
		if b.GetCumulativeCount() < prev {
			t.Errorf("bucket le=%v: cumulative count %d below the previous bucket's %d", b.GetUpperBound(), b.GetCumulativeCount(), prev)
		}
		prev = b.GetCumulativeCount()
		// At most the records before the outage and those of the outage's
		// batches that waited less than le can be in the bucket.
		allowed := uint64(n)
		for _, ob := range batches {
			if restart.Sub(ob.flushed).Seconds() <= b.GetUpperBound() {
				allowed += uint64(ob.count)
			}
		}
		if b.GetCumulativeCount() > allowed {
			t.Errorf("bucket le=%v: %d observations, want at most %d (the %d records before the outage and the outage's batches that waited less)",
				b.GetUpperBound(), b.GetCumulativeCount(), allowed, n)
		}
	}
	wantLes := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	if les = slices.DeleteFunc(les, func(le float64) bool { return math.IsInf(le, 1) }); !slices.Equal(les, wantLes) {
		t.Errorf("latency buckets le=%v, want %v", les, wantLes)
	}
	if prev != h.GetSampleCount() {
		t.Errorf("the last bucket (le=+Inf) holds %d observations, want the count %d", prev, h.GetSampleCount())
	}
	if !(h.GetSampleSum() > 0) {
		t.Errorf("latency sum %v, want > 0", h.GetSampleSum())
	}
	var waits []string
	for _, ob := range batches {
		waits = append(waits, fmt.Sprintf("%d records at least %v", ob.count, restart.Sub(ob.flushed).Round(time.Millisecond)))
	}
	t.Logf("latency: count %d, sum %.1f s, buckets %s; outage batches waited: %s",
		h.GetSampleCount(), h.GetSampleSum(), bucketsString(h), strings.Join(waits, ", "))
}

// nodeMetrics reads one pipeline's metrics from a node's /metrics.
type nodeMetrics struct {
	d               *daemon
	pipeline, topic string
}

// scrape parses /metrics with Prometheus's text parser. (It returns errors
// rather than failing, so that subtests may call it.)
func (m nodeMetrics) scrape() (map[string]*dto.MetricFamily, error) {
	select {
	case <-m.d.exited:
		return nil, fmt.Errorf("daemon exited: %v\n%s", m.d.err, m.d.tail(4096))
	default:
	}
	text := m.d.metrics()
	if text == "" {
		return nil, fmt.Errorf("/metrics unreachable or empty")
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("parsing /metrics: %w", err)
	}
	return fams, nil
}

// waitCaughtUp waits until the pipeline replicated want records and every
// partition of the topic has lag 0, in records and in seconds.
func (m nodeMetrics) waitCaughtUp(t *testing.T, timeout time.Duration, want int) {
	t.Helper()
	harness.Eventually(t, timeout, fmt.Sprintf("%d records replicated and lag 0", want), func() error {
		fams, err := m.scrape()
		if err != nil {
			return err
		}
		replicated, err := m.single(fams, "tributary_records_total", "outcome", "replicated")
		if err != nil {
			return err
		}
		if replicated != float64(want) {
			return fmt.Errorf("%v replicated", replicated)
		}
		for _, name := range []string{"tributary_replication_lag_records", "tributary_replication_lag_seconds"} {
			v, err := m.perPartition(fams, name)
			if err != nil {
				return err
			}
			for part, x := range v {
				if x != 0 {
					return fmt.Errorf("%s: %v (partition %s not 0)", name, v, part)
				}
			}
		}
		return nil
	})
}

// perPartition returns a gauge's value per partition of the topic, and fails
// unless every partition has one.
func (m nodeMetrics) perPartition(fams map[string]*dto.MetricFamily, name string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, s := range fams[name].GetMetric() {
		l := metricLabels(s)
		if l["pipeline"] == m.pipeline && l["topic"] == m.topic {
			out[l["partition"]] = s.GetGauge().GetValue()
		}
	}
	for p := 0; p < partitions; p++ {
		if _, ok := out[strconv.Itoa(p)]; !ok {
			return nil, fmt.Errorf("%s: no series for partition %d (have %v)", name, p, out)
		}
	}
	return out, nil
}

// value returns the pipeline's series of a counter or gauge whose label key
// has value val (key "": the series with the pipeline label only), and fails
// the test when there is none.
func (m nodeMetrics) value(t *testing.T, name, key, val string) float64 {
	t.Helper()
	var v float64
	harness.Eventually(t, 10*time.Second, name+" scraped", func() error {
		fams, err := m.scrape()
		if err != nil {
			return err
		}
		v, err = m.single(fams, name, key, val)
		return err
	})
	return v
}

// single returns the value of the pipeline's series of a counter or gauge
// whose label key has value val (key "": no label but pipeline).
func (m nodeMetrics) single(fams map[string]*dto.MetricFamily, name, key, val string) (float64, error) {
	for _, s := range fams[name].GetMetric() {
		l := metricLabels(s)
		if l["pipeline"] == m.pipeline && (key == "" && len(l) == 1 || key != "" && l[key] == val) {
			if c := s.GetCounter(); c != nil {
				return c.GetValue(), nil
			}
			return s.GetGauge().GetValue(), nil
		}
	}
	return 0, fmt.Errorf("%s{pipeline=%q,%s=%q}: no such series", name, m.pipeline, key, val)
}

// outageLag returns the sum of the topic's lag_records and checks that every
// partition has both lag series and that lag_seconds > 0 where lag_records is.
func (m nodeMetrics) outageLag() (float64, error) {
	fams, err := m.scrape()
	if err != nil {
		return 0, err
	}
	lag, err := m.perPartition(fams, "tributary_replication_lag_records")
	if err != nil {
		return 0, err
	}
	secs, err := m.perPartition(fams, "tributary_replication_lag_seconds")
	if err != nil {
		return 0, err
	}
	for part, s := range secs {
		if lag[part] > 0 && !(s > 0) {
			return 0, fmt.Errorf("partition %s: lag %v records but lag_seconds %v", part, lag[part], s)
		}
	}
	return sumValues(lag), nil
}

// waitOutageLag waits until outageLag reports want records; its failure
// message lists what the scrapes showed since the target stopped.
func (m nodeMetrics) waitOutageLag(t *testing.T, timeout time.Duration, outage time.Time, want int) {
	t.Helper()
	var seen timeline
	harness.Eventually(t, timeout, fmt.Sprintf("lag of %d records while the target is down", want), func() error {
		total, err := m.outageLag()
		if err == nil && total != float64(want) {
			err = fmt.Errorf("lag_records sum %v, want %d", total, want)
		}
		if err != nil {
			return fmt.Errorf("%w; since the target stopped: %s", err, seen.note(outage, err))
		}
		return nil
	})
}

// histogram returns the pipeline's series of a histogram.
func (m nodeMetrics) histogram(fams map[string]*dto.MetricFamily, name string) (*dto.Histogram, error) {
	f := fams[name]
	if f.GetType() != dto.MetricType_HISTOGRAM {
		return nil, fmt.Errorf("%s: type %v, want histogram", name, f.GetType())
	}
	for _, s := range f.GetMetric() {
		if metricLabels(s)["pipeline"] == m.pipeline {
			return s.GetHistogram(), nil
		}
	}
	return nil, fmt.Errorf("%s{pipeline=%q}: no such series", name, m.pipeline)
}

func metricLabels(s *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, lp := range s.GetLabel() {
		l[lp.GetName()] = lp.GetValue()
	}
	return l
}

func sumValues(v map[string]float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}

func bucketsString(h *dto.Histogram) string {
	var b strings.Builder
	for _, bk := range h.GetBucket() {
		fmt.Fprintf(&b, " le=%v:%d", bk.GetUpperBound(), bk.GetCumulativeCount())
	}
	return strings.TrimSpace(b.String())
}

// timeline records when a polled condition's state changed, for failure messages.
type timeline struct {
	last    string
	entries []string
}

// note records err's text at the time since start if it differs from the last
// one, and returns the changes so far.
func (tl *timeline) note(start time.Time, err error) string {
	if msg := err.Error(); msg != tl.last {
		tl.last = msg
		tl.entries = append(tl.entries, fmt.Sprintf("[+%v] %s", time.Since(start).Round(100*time.Millisecond), msg))
	}
	return strings.Join(tl.entries, "; ")
}
