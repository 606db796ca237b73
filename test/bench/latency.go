package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// runLatency measures end-to-end latency through tributary (exactly-once) at
// a fixed offered load: a producer writes s.latencyRate records/s into a
// fresh source topic for s.latencyFor, stamping its send time into each
// record (header bench-sent); the read_committed watch on the target takes
// the difference on arrival. Before the load, one record per partition is
// sent and awaited, so the pipeline is running when the clock starts.
func (s *suite) runLatency(sc scenario, round int) (res Result) {
	const size = 200
	res = Result{Scenario: sc.name, Workload: fmt.Sprintf("%d/s for %v", s.latencyRate, s.latencyFor), Round: round, RecordBytes: size}
	logf("round %d: %s ...", round, sc.name)
	defer func() {
		if res.OK {
			logf("round %d: %s: p50 %.1f ms, p99 %.1f ms, p999 %.1f ms over %d records", round, sc.name,
				res.Latency.P50ms, res.Latency.P99ms, res.Latency.P999ms, res.Latency.Count)
		} else {
			logf("round %d: %s: FAILED: %s", round, sc.name, res.Error)
		}
	}()
	fail := func(format string, args ...any) Result {
		res.OK, res.Error = false, fmt.Sprintf(format, args...)
		return res
	}
	id := fmt.Sprintf("r%d-latency-%s", round, s.stamp)
	dir := filepath.Join(s.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail("%v", err)
	}
	topic := "bench-latency-" + id
	if err := createTopic(s.source, topic, partitions); err != nil {
		return fail("%v", err)
	}
	defer deleteTopics(s.source, func(t string) bool { return t == topic })
	h, err := s.startTributary(sc, s.source, topic, false, id, dir)
	if err != nil {
		return fail("starting: %v", err)
	}
	defer h.cleanup()
	pid := h.p.pid()

	var lat []float64  // ms; the watch goroutine's until it is done
	var sentAt []int64 // unix ns, lat's records' send times
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	c := newChecker(partitions, checkAny, size)
	warm := make(chan struct{}, partitions)
	wt := startWatch(wctx, s.target, h.dest, partitions, c, nil, func(m *kafka.Message, now time.Time) {
		v, ok := header(m.Headers, sentHeader)
		if !ok {
			warm <- struct{}{}
			return
		}
		if len(v) == 8 {
			at := int64(binary.BigEndian.Uint64(v))
			lat = append(lat, float64(now.UnixNano()-at)/1e6)
			sentAt = append(sentAt, at)
		}
	})
	defer func() { wcancel(); <-wt.done }()

	l, err := newLoader(s.source, kafka.ConfigMap{"linger.ms": 1})
	if err != nil {
		return fail("%v", err)
	}
	closed := false
	defer func() {
		if !closed {
			l.close()
		}
	}()
	seq := make([]int, partitions)
	filler := []byte(strings.Repeat("latency ", 32))
	send := func(p int, stamp bool) error {
		hs := benchHeaders
		if stamp {
			hs = append(slices.Clone(benchHeaders), kafka.Header{Key: sentHeader, Value: binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))})
		}
		err := l.produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: int32(p)},
			Key: recordKey(p, seq[p]), Value: bytesValue(seq[p], size, filler), Headers: hs})
		seq[p]++
		return err
	}
	for p := 0; p < partitions; p++ {
		if err := send(p, false); err != nil {
			return fail("%v", err)
		}
	}
	l.p.Flush(10000)
	deadline := time.After(s.timeout)
	for got := 0; got < partitions; got++ {
		select {
		case <-warm:
		case <-wt.done:
			return fail("warm-up: %v", wt.err)
		case <-h.p.exited:
			return fail("tributary exited (%v) during warm-up; its log ends:\n%s", h.p.err, h.p.logTail(30))
		case <-deadline:
			return fail("warm-up: %v: the pipeline did not deliver one record per partition", errTimeout)
		}
	}
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return fail("%v", err)
	}
	start := time.Now()
	sent := 0
	for {
		el := time.Since(start)
		if el >= s.latencyFor {
			break
		}
		for due := int(el.Seconds() * float64(s.latencyRate)); sent < due; sent++ {
			if err := send(sent%partitions, true); err != nil {
				return fail("%v", err)
			}
		}
		time.Sleep(time.Millisecond)
	}
	loadFor := time.Since(start)
	closed = true
	if err := l.close(); err != nil {
		return fail("%v", err)
	}
	wt.expect <- slices.Clone(seq)
	select {
	case <-wt.complete:
	case <-wt.done:
		return fail("%v", wt.err)
	case <-h.p.exited:
		return fail("tributary exited (%v); its log ends:\n%s", h.p.err, h.p.logTail(30))
	case <-time.After(s.timeout):
		wcancel()
		<-wt.done
		return fail("%v waiting for the last record (%s)", errTimeout, c.missing())
	}
	cpu1, err1 := cpuSeconds(pid)
	rss, err2 := peakRSS(pid)
	if err := errors.Join(err1, err2); err != nil {
		return fail("%v", err)
	}
	time.Sleep(2 * time.Second)
	wcancel()
	<-wt.done
	if wt.err != nil {
		return fail("%v", wt.err)
	}
	if sent == 0 || len(lat) != sent {
		return fail("%d latencies for %d records sent", len(lat), sent)
	}
	secs := make([]float64, int(loadFor/time.Second)+1)
	for i, at := range sentAt {
		if s := int(time.Duration(at-start.UnixNano()) / time.Second); s >= 0 && s < len(secs) {
			secs[s] = max(secs[s], lat[i])
		}
	}
	slices.Sort(lat)
	res.Records = sent
	res.WallS = loadFor.Seconds()
	res.RecordsPerS = float64(sent) / loadFor.Seconds()
	res.MBPerS = res.RecordsPerS * size / 1e6
	res.CPUWholeS = cpu1 - cpu0
	res.CPUPerMWhole = res.CPUWholeS / float64(sent) * 1e6
	res.PeakRSSBytes = rss
	res.Latency = &Latency{OfferedPerS: float64(s.latencyRate), Count: sent,
		P50ms: percentile(lat, 0.5), P99ms: percentile(lat, 0.99), P999ms: percentile(lat, 0.999), Maxms: lat[len(lat)-1], SecondMaxms: secs}
	res.OK = true
	return res
}
