package test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/test/harness"
)

// BenchmarkMirror measures one pipeline on the real brokers: records of 200 bytes
// over 6 partitions, preloaded into the source, mirrored by one node with 3 tasks.
// Each iteration mirrors a fresh topic of TRIBUTARY_BENCH_RECORDS records
// (default 500,000); run with -benchtime=1x:
//
//	make bench   # or: go test -run '^$' -bench BenchmarkMirror -benchtime=1x ./test/
func BenchmarkMirror(b *testing.B) {
	for _, eos := range []bool{true, false} {
		b.Run(fmt.Sprintf("exactly_once=%v", eos), func(b *testing.B) {
			benchMirror(b, eos)
		})
	}
}

func benchMirror(b *testing.B, eos bool) {
	source, target := harness.Brokers(b)
	n := 500_000
	if s := os.Getenv("TRIBUTARY_BENCH_RECORDS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	const size = 200
	var total, cpu time.Duration
	for it := 0; it < b.N; it++ {
		b.StopTimer()
		topic := harness.UniqueName(b, "bench")
		createTopic(b, source, topic, partitions, nil)
		p := newProducer(b, source)
		value := make([]byte, size-16)
		for i := range value {
			value[i] = byte(i)
		}
		for i := 0; i < n; i++ {
			t := topic
			m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &t, Partition: int32(i % partitions)},
				Key: []byte(fmt.Sprintf("key-%012d", i)), Value: value}
			for p.Produce(m, nil) != nil {
				p.Flush(100)
			}
		}
		flush(b, p)

		cfg, err := config.Parse("bench.yaml", []byte(fmt.Sprintf(`node: {id: bench, region: eu, http_addr: "127.0.0.1:0"}
kafka:
  regional: {region: eu, bootstrap: "%s"}
  central: {region: cloud, bootstrap: "%s"}
target: central
pipelines:
  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    tasks: 3
    exactly_once: %v
`, source, target, topic, topic, eos)))
		if err != nil {
			b.Fatal(err)
		}
		m := metrics.New(prometheus.NewRegistry())
		w, err := replicator.NewWorker(cfg, replicator.Deps{Metrics: m})
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Assign(w.AllTasks()); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		go func() { done <- w.Run(ctx) }()
		replicated := m.Records.WithLabelValues(topic, metrics.Replicated)
		deadline := time.Now().Add(5 * time.Minute)
		for testutil.ToFloat64(replicated) < float64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("only %v of %d records mirrored in 5 minutes", testutil.ToFloat64(replicated), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(start)
		b.StopTimer()
		total += took
		cpu += processCPU() - cpu0
		cancel()
		<-done
	}
	secs := total.Seconds()
	b.ReportMetric(float64(n*b.N)/secs, "records/s")
	b.ReportMetric(float64(n*b.N*size)/secs/1e6, "MB/s")
	// CPU of the whole test process (user+sys) while it mirrors: the
	// worker's clients and goroutines, and the idle preload producer.
	b.ReportMetric(float64(n*b.N)/cpu.Seconds(), "records/cpu-s")
}

// processCPU is the user and system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
