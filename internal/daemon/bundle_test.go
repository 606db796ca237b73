package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/replicator/coord"
	"github.com/tributary-dev/tributary/test/harness"
)

// logBundle is bundle version of the log: payments.yaml with payments-pii at
// policy version pv, so that the tributary-policy header tells which bundle
// masked a record.
func logBundle(t *testing.T, version, pv int64) coord.PolicyBundle {
	t.Helper()
	set, err := policy.Parse("payments.yaml", []byte(paymentsPolicy(int(pv), 4)))
	if err != nil {
		t.Fatal(err)
	}
	return coord.PolicyBundle{Version: version, Data: set.Encode(), Hash: set.Hash(), Source: "policies", AppliedIndex: uint64(40 + version)}
}

// unreadable is bundle version of the log as a newer binary wrote it: this
// node cannot decode it.
func unreadable(version int64) coord.PolicyBundle {
	return coord.PolicyBundle{Version: version, Data: []byte(`{"format": 99}`), Hash: "ffff", AppliedIndex: uint64(40 + version)}
}

// outcome is what becomes of records on a node: they wait (with an error
// that is not a rejection), or are governed by payments-pii at policy
// version masks (0: by no policy at all).
type outcome struct {
	waits error // errors.Is; nil: records flow
	masks int64
}

// errCannotApply stands for the error of a bundle this node cannot decode, as
// Ready reports it: records wait with that very error.
var errCannotApply = errors.New("the error of the bundle this node cannot apply")

// checkRecords sends a payments record of the Pub/Sub pipeline eu-payments
// and a record of the bytes pipeline eu-raw through the rollout's masking and
// checks the outcome and the tributary_policy_bundle_ready gauge.
func (r *testRollout) checkRecords(t *testing.T, want outcome) {
	t.Helper()
	payments, err := r.masking.PubSubJSON("eu-payments", nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.masking.Step(governance.StepConfig{Pipeline: "eu-raw", Format: "bytes"})
	if err != nil {
		t.Fatal(err)
	}
	const doc = `{"customer": {"email": "alice@example.com"}, "card": {"number": "4111111111111111"}}`
	rec := &governance.Record{SourceTopic: "payments-sub", Value: []byte(doc)}
	perr := payments.Transform(context.Background(), rec)
	rerr := raw.Transform(context.Background(), &governance.Record{SourceTopic: "raw.events", Value: []byte("opaque")})
	ready := metricValue(t, r.reg, "tributary_policy_bundle_ready")

	if want.waits != nil {
		if want.waits == errCannotApply {
			want.waits = r.masking.Ready()
			if want.waits == nil || errors.Is(want.waits, governance.ErrNoBundle) ||
				!strings.Contains(want.waits.Error(), "cannot apply the cluster's policy bundle") {
				t.Fatalf("Ready() = %v, want the bundle this node cannot apply", want.waits)
			}
		}
		for what, err := range map[string]error{"a payments record": perr, "a bytes record": rerr} {
			if !errors.Is(err, want.waits) {
				t.Errorf("%s: err = %v, want it to wait with %v", what, err, want.waits)
			}
			if re, ok := governance.AsReject(err); ok {
				t.Errorf("%s: a waiting record is rejected %q", what, re.Reason)
			}
		}
		if !errors.Is(r.masking.Ready(), want.waits) {
			t.Errorf("Ready() = %v, want %v", r.masking.Ready(), want.waits)
		}
		if ready != 0 {
			t.Errorf("tributary_policy_bundle_ready = %v while records wait", ready)
		}
		return
	}
	if perr != nil || rerr != nil {
		t.Fatalf("records do not flow: %v, %v", perr, rerr)
	}
	if err := r.masking.Ready(); err != nil {
		t.Errorf("Ready() = %v", err)
	}
	if ready != 1 {
		t.Errorf("tributary_policy_bundle_ready = %v while records flow", ready)
	}
	h := ""
	for _, hd := range rec.Headers {
		if hd.Key == governance.HeaderPolicy {
			h = string(hd.Value)
		}
	}
	if want.masks == 0 {
		if string(rec.Value) != doc || h != "" {
			t.Errorf("with no policies the record became %s (%s %q)", rec.Value, governance.HeaderPolicy, h)
		}
		return
	}
	if wantH := fmt.Sprintf("payments-pii@%d", want.masks); h != wantH {
		t.Errorf("%s = %q, want %q", governance.HeaderPolicy, h, wantH)
	}
	if strings.Contains(string(rec.Value), "alice") {
		t.Errorf("the email was not masked: %s", rec.Value)
	}
}

func TestRolloutApply(t *testing.T) {
	tests := []struct {
		name    string
		bundles func(t *testing.T) []coord.PolicyBundle // delivered in order
		want    outcome
		wantErr string // in Ready()'s error, when records wait
		bundle  int64  // the bundle in /v1/status, when records flow
	}{
		{
			name: "a newer bundle replaces the active one",
			bundles: func(t *testing.T) []coord.PolicyBundle {
				return []coord.PolicyBundle{logBundle(t, 1, 3), logBundle(t, 2, 4)}
			},
			want: outcome{masks: 4}, bundle: 2,
		},
		{
			name: "an older bundle after a newer one is ignored",
			bundles: func(t *testing.T) []coord.PolicyBundle {
				return []coord.PolicyBundle{logBundle(t, 2, 4), logBundle(t, 1, 3)}
			},
			want: outcome{masks: 4}, bundle: 2,
		},
		{
			name: "a bundle of the active version is ignored, even with other contents",
			bundles: func(t *testing.T) []coord.PolicyBundle {
				return []coord.PolicyBundle{logBundle(t, 2, 4), logBundle(t, 2, 9)}
			},
			want: outcome{masks: 4}, bundle: 2,
		},
		{
			name:    "a first bundle that does not decode holds records",
			bundles: func(*testing.T) []coord.PolicyBundle { return []coord.PolicyBundle{unreadable(1)} },
			want:    outcome{waits: errCannotApply}, wantErr: "bundle 1 (log index 41)",
		},
		{
			name: "a bundle that does not decode holds records rather than masking them with the older one",
			bundles: func(t *testing.T) []coord.PolicyBundle {
				return []coord.PolicyBundle{logBundle(t, 1, 3), unreadable(2)}
			},
			want: outcome{waits: errCannotApply}, wantErr: "bundle 2 (log index 42)",
		},
		{
			name: "a good bundle after one that did not decode lets records flow again",
			bundles: func(t *testing.T) []coord.PolicyBundle {
				return []coord.PolicyBundle{logBundle(t, 1, 3), unreadable(2), logBundle(t, 3, 5)}
			},
			want: outcome{masks: 5}, bundle: 3,
		},
		{
			name: "an older bundle after one that did not decode keeps records waiting",
			bundles: func(t *testing.T) []coord.PolicyBundle {
				return []coord.PolicyBundle{logBundle(t, 1, 3), unreadable(3), logBundle(t, 2, 4)}
			},
			want: outcome{waits: errCannotApply}, wantErr: "bundle 3",
		},
		{
			name: "the active bundle delivered again after one that did not decode keeps records waiting",
			bundles: func(t *testing.T) []coord.PolicyBundle {
				return []coord.PolicyBundle{logBundle(t, 1, 3), unreadable(2), logBundle(t, 1, 3)}
			},
			want: outcome{waits: errCannotApply}, wantErr: "bundle 2",
		},
		{
			name:    "the bundle that did not decode delivered again keeps records waiting",
			bundles: func(*testing.T) []coord.PolicyBundle { return []coord.PolicyBundle{unreadable(2), unreadable(2)} },
			want:    outcome{waits: errCannotApply}, wantErr: "bundle 2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRollout("")
			for _, b := range tt.bundles(t) {
				r.apply(b)
			}
			r.checkRecords(t, tt.want)
			if tt.want.waits != nil {
				if err := r.masking.Ready(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Ready() = %v, want an error naming %q", err, tt.wantErr)
				}
				return
			}
			if st := r.status(); st.Bundle != tt.bundle {
				t.Errorf("status shows bundle %d, want %d", st.Bundle, tt.bundle)
			}
		})
	}
}

// fakeState plays the Raft replica's view of the policy bundle for
// awaitBundle.
type fakeState struct {
	mu    sync.Mutex
	view  coord.PolicyView
	polls int
}

func (s *fakeState) PolicyState() coord.PolicyView {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	return s.view
}

// set changes the view and waits until awaitBundle has acted on it: the poll
// after the one that read it has begun.
func (s *fakeState) set(t *testing.T, v coord.PolicyView) {
	t.Helper()
	s.mu.Lock()
	s.view = v
	target := s.polls + 2
	s.mu.Unlock()
	harness.Eventually(t, 5*time.Second, "awaitBundle to look twice", func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.polls < target {
			return fmt.Errorf("%d polls", s.polls)
		}
		return nil
	})
}

// startAwait runs awaitBundle against st, as Run does, until the test ends;
// done is closed when it returns.
func startAwait(t *testing.T, r *testRollout, st *fakeState) (cancel func(), done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := make(chan struct{})
	go func() {
		defer close(d)
		r.awaitBundle(ctx, st, 2*time.Millisecond)
	}()
	t.Cleanup(func() {
		cancel()
		<-d
	})
	return cancel, d
}

// closed reports whether c is closed.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestRolloutAwaitBundle(t *testing.T) {
	current := coord.PolicyView{Current: true}
	withBundle := func(b coord.PolicyBundle) coord.PolicyView {
		return coord.PolicyView{Current: true, HasBundle: true, Bundle: b}
	}
	// step is one view of the replica and what becomes of records then.
	type step struct {
		view  coord.PolicyView
		want  outcome
		known bool // whether watch may propose
	}
	tests := []struct {
		name   string
		folder bool                                    // this node has a policy folder
		before func(t *testing.T) []coord.PolicyBundle // applied by follow first
		steps  []step
	}{
		{
			name: "a replica that is not current holds records, even with a bundle it cannot trust yet",
			steps: []step{
				{view: coord.PolicyView{}, want: outcome{waits: governance.ErrNoBundle}},
				{view: coord.PolicyView{HasBundle: true, Bundle: logBundle(t, 1, 3), Expected: true}, want: outcome{waits: governance.ErrNoBundle}},
			},
		},
		{
			name:  "a current replica's bundle becomes active",
			steps: []step{{view: withBundle(logBundle(t, 4, 6)), want: outcome{masks: 6}, known: true}},
		},
		{
			name:  "a current replica's bundle that does not decode holds records",
			steps: []step{{view: withBundle(unreadable(4)), want: outcome{waits: errCannotApply}, known: true}},
		},
		{
			name:  "a cluster without a bundle and without policy folders lets records through with no policies",
			steps: []step{{view: current, want: outcome{}, known: true}},
		},
		{
			name:   "a node with a policy folder waits for its bundle in a cluster without one",
			folder: true,
			steps:  []step{{view: current, want: outcome{waits: governance.ErrNoBundle}, known: true}},
		},
		{
			name:  "a node waits for the bundle of a member with a policy folder",
			steps: []step{{view: coord.PolicyView{Current: true, Expected: true}, want: outcome{waits: governance.ErrNoBundle}, known: true}},
		},
		{
			name: "records go back to waiting when a member with a policy folder joins, and flow once its bundle comes",
			steps: []step{
				{view: current, want: outcome{}, known: true},
				{view: coord.PolicyView{Current: true, Expected: true}, want: outcome{waits: governance.ErrNoBundle}, known: true},
				{view: coord.PolicyView{Current: true, Expected: true, HasBundle: true, Bundle: logBundle(t, 1, 3)}, want: outcome{masks: 3}, known: true},
			},
		},
		{
			name: "a newer bundle of the replica replaces the active one",
			steps: []step{
				{view: withBundle(logBundle(t, 1, 3)), want: outcome{masks: 3}, known: true},
				{view: withBundle(logBundle(t, 2, 4)), want: outcome{masks: 4}, known: true},
			},
		},
		{
			name:   "a current replica's older bundle does not replace the one follow applied",
			before: func(t *testing.T) []coord.PolicyBundle { return []coord.PolicyBundle{logBundle(t, 5, 7)} },
			steps:  []step{{view: withBundle(logBundle(t, 4, 6)), want: outcome{masks: 7}, known: true}},
		},
		{
			name:   "a current replica without a bundle leaves the one follow applied",
			before: func(t *testing.T) []coord.PolicyBundle { return []coord.PolicyBundle{logBundle(t, 1, 3)} },
			steps:  []step{{view: current, want: outcome{masks: 3}, known: true}},
		},
		{
			name:   "a current replica without a bundle leaves records waiting behind one that did not decode",
			before: func(*testing.T) []coord.PolicyBundle { return []coord.PolicyBundle{unreadable(1)} },
			steps:  []step{{view: current, want: outcome{waits: errCannotApply}, known: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := ""
			if tt.folder {
				dir = t.TempDir()
			}
			r := newTestRollout(dir)
			r.known = make(chan struct{})
			if tt.before != nil {
				for _, b := range tt.before(t) {
					r.apply(b)
				}
			}
			st := &fakeState{}
			_, done := startAwait(t, r, st)
			for i, s := range tt.steps {
				st.set(t, s.view)
				r.checkRecords(t, s.want)
				if closed(r.known) != s.known {
					t.Errorf("step %d: watch released: %v, want %v", i, closed(r.known), s.known)
				}
				if closed(done) {
					t.Fatalf("step %d: awaitBundle returned before ctx ended", i)
				}
			}
		})
	}

	t.Run("awaitBundle ends when ctx ends, whatever the replica says", func(t *testing.T) {
		for _, v := range []coord.PolicyView{{}, current, withBundle(logBundle(t, 1, 3))} {
			r := newTestRollout("")
			st := &fakeState{}
			cancel, done := startAwait(t, r, st)
			st.set(t, v)
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("awaitBundle still runs with view %+v after ctx ended", v)
			}
		}
	})

	t.Run("a replica bundle this node cannot decode is tried once, not on every look", func(t *testing.T) {
		r := newTestRollout("")
		logged := &countingHandler{}
		r.log = slog.New(logged)
		st := &fakeState{}
		startAwait(t, r, st)
		st.set(t, withBundle(unreadable(2)))
		st.set(t, withBundle(unreadable(2)))
		r.checkRecords(t, outcome{waits: errCannotApply})
		if n := logged.errors(); n != 1 {
			t.Errorf("%d errors logged for one bundle, want 1", n)
		}
	})
}

// countingHandler is a slog.Handler that counts the records of level error.
type countingHandler struct {
	mu sync.Mutex
	n  int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
	}
	return nil
}

func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func (h *countingHandler) errors() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
