package replicator

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/test/harness"
)

// fakeTransformer rejects values starting with "value-1" (every record whose
// sequence number starts with 1), rewrites the others, and fails with a
// transient error the first few times it is called after outage is set.
type fakeTransformer struct {
	outage atomic.Int64
	calls  atomic.Int64
}

func (f *fakeTransformer) Transform(ctx context.Context, rec *governance.Record) error {
	f.calls.Add(1)
	if f.outage.Load() > 0 {
		f.outage.Add(-1)
		return errors.New("registry unavailable")
	}
	if bytes.HasPrefix(rec.Value, []byte("value-1")) {
		return governance.Reject("incompatible-schema", "schema id 7 is not compatible with subject %s-value", rec.TargetTopic)
	}
	if rec.Value != nil {
		rec.Value = append([]byte("t:"), rec.Value...)
	}
	return nil
}

func TestRejectedRecordsAreQuarantinedInTheSourceAndNothingIsLost(t *testing.T) {
	t.Parallel()
	src, dst := kfakePair(t, 2)
	cfg := mirrorConfig(t, src, dst, "    tasks: 2\n")
	recs := makeRecords(0, 300, 2, nil)
	produce(t, src, recs)

	ft := &fakeTransformer{}
	ft.outage.Store(3) // a registry outage at the start: the task pauses and retries
	m := metrics.New(prometheus.NewRegistry())
	w, err := NewWorker(cfg, Deps{Metrics: m, Transformers: map[string]governance.Transformer{"eu": ft},
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	w.Assign(w.AllTasks())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(ctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()

	var wantRejected, wantLanded []*srcRecord
	for _, r := range recs {
		if bytes.HasPrefix(r.value, []byte("value-1")) {
			wantRejected = append(wantRejected, r)
		} else {
			wantLanded = append(wantLanded, r)
		}
	}
	harness.Eventually(t, 60*time.Second, "all records replicated or quarantined", func() error {
		q := counterValue(t, m.Records.WithLabelValues("eu", metrics.Quarantined))
		r := counterValue(t, m.Records.WithLabelValues("eu", metrics.Replicated))
		if int(q) != len(wantRejected) || int(r) != len(wantLanded) {
			return errors.New("replicated " + strconv.Itoa(int(r)) + ", quarantined " + strconv.Itoa(int(q)))
		}
		return nil
	})
	cancel()
	wg.Wait()

	got := readCommitted(t, dst, dstTopic, 2)
	if len(got) != len(wantLanded) {
		t.Fatalf("%d records in the target, want %d", len(got), len(wantLanded))
	}
	for _, g := range got {
		if g.Value != nil && !bytes.HasPrefix(g.Value, []byte("t:value-")) {
			t.Fatalf("target record was not transformed: %q", g.Value)
		}
		if bytes.HasPrefix(g.Value, []byte("t:value-1")) {
			t.Fatalf("a rejected record landed: %q", g.Value)
		}
	}

	qs := readCommitted(t, src, QuarantineTopic, 1)
	if len(qs) != len(wantRejected) {
		t.Fatalf("%d records in the source's %s, want %d", len(qs), QuarantineTopic, len(wantRejected))
	}
	byOffset := map[string]*srcRecord{}
	for _, r := range wantRejected {
		byOffset[strconv.Itoa(int(r.partition))+"/"+strconv.FormatInt(r.offset, 10)] = r
	}
	for _, q := range qs {
		h := func(k string) string {
			v := headerValues(q, k)
			if len(v) != 1 {
				t.Fatalf("quarantine record %q: header %s = %v", q.Key, k, v)
			}
			return v[0]
		}
		if e := h(HeaderError); e != "incompatible-schema: schema id 7 is not compatible with subject "+dstTopic+"-value" {
			t.Errorf("tributary-error = %q", e)
		}
		if h(HeaderSourceTopic) != srcTopic {
			t.Errorf("tributary-source-topic = %q", h(HeaderSourceTopic))
		}
		r := byOffset[h(HeaderSourcePartition)+"/"+h(HeaderSourceOffset)]
		if r == nil {
			t.Fatalf("quarantine record for %s/%s: not a rejected record", h(HeaderSourcePartition), h(HeaderSourceOffset))
		}
		if string(q.Key) != srcTopic+"/"+h(HeaderSourcePartition)+"/"+h(HeaderSourceOffset) {
			t.Errorf("quarantine key = %q", q.Key)
		}
		if !bytes.Equal(q.Value, r.value) {
			t.Errorf("quarantined value = %q, want the raw source value %q", q.Value, r.value)
		}
		delete(byOffset, h(HeaderSourcePartition)+"/"+h(HeaderSourceOffset))
	}
	if len(byOffset) != 0 {
		t.Errorf("%d rejected records missing from the quarantine", len(byOffset))
	}
	if got := counterValue(t, m.Quarantined.WithLabelValues("eu", "incompatible-schema")); int(got) != len(wantRejected) {
		t.Errorf("tributary_quarantined_total{reason=incompatible-schema} = %v, want %d", got, len(wantRejected))
	}
	if got := counterValue(t, m.TaskRestarts.WithLabelValues("eu")); got < 1 {
		t.Errorf("the transient transformer error did not pause the task (restarts = %v)", got)
	}
}
