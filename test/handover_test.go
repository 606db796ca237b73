package test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/test/harness"
)

// TestTaskHandedBackAndForthStaysExactlyOnce moves every task between two
// workers again and again while a stream runs, starting each new owner before
// the old one has stopped (as when two nodes briefly disagree about an
// assignment). Fencing and checkpoints must keep every record exactly once.
func TestTaskHandedBackAndForthStaysExactlyOnce(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "handover")
	createTopic(t, source, topic, partitions, nil)
	cfg, err := config.Parse("handover.yaml", []byte(fmt.Sprintf(`node: {id: w, region: eu}
kafka:
  regional: {region: eu, bootstrap: "%s"}
  central: {region: cloud, bootstrap: "%s"}
target: central
pipelines:
  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    tasks: 3
`, source, target, topic, topic)))
	if err != nil {
		t.Fatal(err)
	}
	newWorker := func() (*replicator.Worker, func()) {
		w, err := replicator.NewWorker(cfg, replicator.Deps{Metrics: metrics.New(prometheus.NewRegistry()), Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		return w, func() { cancel(); <-done }
	}
	w1, stop1 := newWorker()
	defer stop1()
	w2, stop2 := newWorker()
	defer stop2()
	all := w1.AllTasks()

	const total = 60_000
	base := recentBase()
	s := startStream(t, source, topic, total, 500, 40*time.Millisecond, base)
	owner, other := w1, w2
	if err := owner.Assign(all); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ {
		time.Sleep(time.Duration(300+i*150) * time.Millisecond)
		// The new owner starts first; the old one is told a moment later.
		if err := other.Assign(all); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if err := owner.Assign(nil); err != nil {
			t.Fatal(err)
		}
		owner, other = other, owner
	}
	s.wait(t)
	got := readAll(t, target, "regional."+topic, total, 3*time.Minute)
	verifyExactlyOnce(t, got, s.seq, topic, "regional", base, true)
}
