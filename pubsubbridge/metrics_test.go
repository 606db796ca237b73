package pubsubbridge

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Two receiver tasks of one pipeline on one node share its series: gauges sum
// over both, and the counters survive until the last of them stops.
func TestMetricsOfTwoBridgesOfOnePipeline(t *testing.T) {
	reg := prometheus.NewRegistry()
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	a, err := newMetrics(reg, "telemetry", func() (time.Time, int, int) { return now.Add(-5 * time.Second), 3, 10 }, clock)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newMetrics(reg, "telemetry", func() (time.Time, int, int) { return now.Add(-2 * time.Second), 4, 1 }, clock)
	if err != nil {
		t.Fatalf("second bridge of the pipeline: %v", err)
	}
	a.records.WithLabelValues(outcomeWritten).Add(7)
	b.records.WithLabelValues(outcomeWritten).Add(2)
	gauge := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue() + mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	}
	if got := gauge("tributary_pubsub_outstanding_messages"); got != 7 {
		t.Errorf("outstanding = %v, want 3+4", got)
	}
	if got := gauge("tributary_pubsub_oldest_unacked_age_seconds"); got != 5 {
		t.Errorf("oldest age = %v, want the older bridge's 5s", got)
	}
	a.unregister()
	if got := gauge("tributary_pubsub_outstanding_messages"); got != 4 {
		t.Errorf("after one bridge stopped: outstanding = %v, want 4", got)
	}
	if got := testutil.ToFloat64(b.records.WithLabelValues(outcomeWritten)); got != 9 {
		t.Errorf("records after one bridge stopped = %v, want 9 (not reset)", got)
	}
	b.unregister()
	if got := gauge("tributary_pubsub_outstanding_messages"); got != -1 {
		t.Errorf("series left after the last bridge stopped: %v", got)
	}
	if _, err := newMetrics(reg, "telemetry", func() (time.Time, int, int) { return time.Time{}, 0, 0 }, clock); err != nil {
		t.Errorf("registering again after both stopped: %v", err)
	}
}
