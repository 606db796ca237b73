package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/pubsubbridge"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/test/harness"
)

// fakeBridge is a Pub/Sub receiver the test drives: Run returns what is sent
// on stop, or ctx's error when the supervisor cancels it; Stats returns what
// the test set.
type fakeBridge struct {
	stop      chan error
	ended     chan struct{} // closed when Run returns
	cancelled atomic.Bool   // Run returned because its ctx ended
	closes    atomic.Int32

	mu    sync.Mutex
	stats pubsubbridge.Stats
}

func (b *fakeBridge) Run(ctx context.Context) error {
	defer close(b.ended)
	select {
	case err := <-b.stop:
		return err
	case <-ctx.Done():
		b.cancelled.Store(true)
		return ctx.Err()
	}
}

func (b *fakeBridge) Stats() pubsubbridge.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stats
}

func (b *fakeBridge) setStats(s pubsubbridge.Stats) {
	b.mu.Lock()
	b.stats = s
	b.mu.Unlock()
}

func (b *fakeBridge) Close() error {
	b.closes.Add(1)
	return nil
}

// receivers is the tests' newBridgeFunc: a call fails with the next error of
// fail while there is one, else makes a new fakeBridge.
type receivers struct {
	mu    sync.Mutex
	fail  []error
	calls map[string]int
	made  map[string][]*fakeBridge
}

func (r *receivers) newTask(id replicator.TaskID) (bridge, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[id.String()]++
	if len(r.fail) > 0 {
		err := r.fail[0]
		r.fail = r.fail[1:]
		return nil, err
	}
	b := &fakeBridge{stop: make(chan error, 1), ended: make(chan struct{})}
	r.made[id.String()] = append(r.made[id.String()], b)
	return b, nil
}

// of returns the number of newTask calls for task id and the receivers made.
func (r *receivers) of(id string) (int, []*fakeBridge) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[id], slices.Clone(r.made[id])
}

// supervisor is a supervisor of fake receivers.
type supervisor struct {
	*bridges
	receivers *receivers
	closed    atomic.Int32 // calls of the closer
}

// newTestSupervisor returns a supervisor whose failed receivers wait from
// backoffMin to backoffMax; it is closed when the test ends.
func newTestSupervisor(t *testing.T, backoffMin, backoffMax time.Duration, log *slog.Logger, fail ...error) *supervisor {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &supervisor{receivers: &receivers{fail: fail, calls: map[string]int{}, made: map[string][]*fakeBridge{}}}
	s.bridges = newSupervisor(&config.Config{}, log, s.receivers.newTask, func() { s.closed.Add(1) })
	s.backoffMin, s.backoffMax = backoffMin, backoffMax
	t.Cleanup(s.Close)
	return s
}

func (s *supervisor) assign(ids ...string) {
	var tasks []replicator.TaskID
	for _, id := range ids {
		tid, err := replicator.ParseTaskID(id)
		if err != nil {
			panic(err)
		}
		tasks = append(tasks, tid)
	}
	s.Assign(context.Background(), tasks)
}

// status is Status sorted by task id.
func (s *supervisor) status() []replicator.TaskStatus {
	st := s.Status()
	sort.Slice(st, func(i, j int) bool { return st[i].ID < st[j].ID })
	return st
}

func (s *supervisor) task(id string) (replicator.TaskStatus, bool) {
	for _, st := range s.Status() {
		if st.ID == id {
			return st, true
		}
	}
	return replicator.TaskStatus{}, false
}

// waitState waits until task id is in state after its attempt-th newTask call.
func (s *supervisor) waitState(t *testing.T, id, state string, attempt int) replicator.TaskStatus {
	t.Helper()
	var st replicator.TaskStatus
	harness.Eventually(t, 5*time.Second, fmt.Sprintf("%s %s after %d attempts", id, state, attempt), func() error {
		var ok bool
		st, ok = s.task(id)
		calls, _ := s.receivers.of(id)
		if !ok || st.State != state || calls != attempt {
			return fmt.Errorf("%+v after %d attempts", st, calls)
		}
		return nil
	})
	return st
}

// only returns the one receiver of task id.
func (s *supervisor) only(t *testing.T, id string) *fakeBridge {
	t.Helper()
	_, made := s.receivers.of(id)
	if len(made) != 1 {
		t.Fatalf("%s has %d receivers, want 1", id, len(made))
	}
	return made[0]
}

// stopped reports whether a receiver's Run returned because it was cancelled,
// and it was closed once.
func stopped(b *fakeBridge) bool {
	select {
	case <-b.ended:
		return b.cancelled.Load() && b.closes.Load() == 1
	default:
		return false
	}
}

func TestSupervisorAssign(t *testing.T) {
	s := newTestSupervisor(t, time.Hour, time.Hour, nil)

	t.Run("assigned tasks start and are listed running", func(t *testing.T) {
		s.assign("fleet/0", "fleet/1")
		s.waitState(t, "fleet/0", metrics.TaskRunning, 1)
		s.waitState(t, "fleet/1", metrics.TaskRunning, 1)
		want := []replicator.TaskStatus{
			{ID: "fleet/0", Pipeline: "fleet", State: metrics.TaskRunning},
			{ID: "fleet/1", Pipeline: "fleet", State: metrics.TaskRunning},
		}
		if got := s.status(); !slices.Equal(got, want) {
			t.Errorf("status %+v, want %+v", got, want)
		}
	})

	t.Run("the receiver's counts are the task's, held messages its lag", func(t *testing.T) {
		s.only(t, "fleet/0").setStats(pubsubbridge.Stats{Written: 12, Quarantined: 2, Outstanding: 3})
		if st, _ := s.task("fleet/0"); st.Replicated != 12 || st.Quarantined != 2 || st.Lag != 3 {
			t.Errorf("status %+v", st)
		}
	})

	t.Run("assigning the same tasks again starts nothing new", func(t *testing.T) {
		s.assign("fleet/1", "fleet/0")
		for _, id := range []string{"fleet/0", "fleet/1"} {
			if calls, made := s.receivers.of(id); calls != 1 || stopped(made[0]) {
				t.Errorf("%s: %d receivers made, the first stopped: %v", id, calls, stopped(made[0]))
			}
		}
	})

	t.Run("unassigning a task stops its receiver before Assign returns and drops it from the status", func(t *testing.T) {
		first := s.only(t, "fleet/0")
		s.assign("fleet/1")
		if !stopped(first) {
			t.Errorf("the receiver of fleet/0 still runs (ended %v, closed %d times)", first.cancelled.Load(), first.closes.Load())
		}
		if st := s.status(); len(st) != 1 || st[0].ID != "fleet/1" {
			t.Errorf("status %+v, want fleet/1 alone", st)
		}
		if stopped(s.only(t, "fleet/1")) {
			t.Error("the receiver of fleet/1 was stopped too")
		}
	})

	t.Run("a task assigned again gets a new receiver with fresh counts", func(t *testing.T) {
		s.assign("fleet/0", "fleet/1")
		st := s.waitState(t, "fleet/0", metrics.TaskRunning, 2)
		if st.Replicated != 0 || st.Quarantined != 0 {
			t.Errorf("status %+v", st)
		}
	})

	t.Run("Close stops every receiver and closes the shared sink once", func(t *testing.T) {
		s.Close()
		for _, id := range []string{"fleet/0", "fleet/1"} {
			_, made := s.receivers.of(id)
			if b := made[len(made)-1]; !stopped(b) {
				t.Errorf("the receiver of %s still runs", id)
			}
		}
		if st := s.Status(); len(st) != 0 {
			t.Errorf("status %+v after Close", st)
		}
		if n := s.closed.Load(); n != 1 {
			t.Errorf("the sink was closed %d times", n)
		}
	})
}

func TestSupervisorFailures(t *testing.T) {
	errReset := errors.New("stream reset by peer")
	tests := []struct {
		name      string
		buildErr  error // newTask's error; nil builds a receiver, which then fails with runErr
		runErr    error
		wantError string
	}{
		{name: "a receiver that fails is reported failed with its error", runErr: errReset,
			wantError: "retrying in 1h0m0s: stream reset by peer"},
		{name: "a receiver that returns without an error is reported failed too",
			wantError: "retrying in 1h0m0s: receiver stopped"},
		{name: "a receiver that cannot be built is reported failed with why", buildErr: errors.New("pubsub.fleet: no credentials"),
			wantError: "retrying in 1h0m0s: pubsub.fleet: no credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The backoff outlasts the test: the task stays failed.
			var fail []error
			if tt.buildErr != nil {
				fail = append(fail, tt.buildErr)
			}
			s := newTestSupervisor(t, time.Hour, time.Hour, nil, fail...)
			s.assign("fleet/0")
			if tt.buildErr == nil {
				s.waitState(t, "fleet/0", metrics.TaskRunning, 1)
				b := s.only(t, "fleet/0")
				b.setStats(pubsubbridge.Stats{Written: 5, Quarantined: 1})
				b.stop <- tt.runErr
			}
			st := s.waitState(t, "fleet/0", metrics.TaskFailed, 1)
			if st.Error != tt.wantError {
				t.Errorf("error %q, want %q", st.Error, tt.wantError)
			}
			if _, made := s.receivers.of("fleet/0"); len(made) == 1 {
				if made[0].closes.Load() != 1 {
					t.Errorf("the failed receiver was closed %d times, want once", made[0].closes.Load())
				}
				if st.Replicated != 5 || st.Quarantined != 1 {
					t.Errorf("the failed receiver's counts are lost: %+v", st)
				}
			}

			start := time.Now()
			s.assign()
			if took := time.Since(start); took > time.Second {
				t.Errorf("unassigning a task waiting out its backoff took %v", took)
			}
			if calls, _ := s.receivers.of("fleet/0"); calls != 1 {
				t.Errorf("%d attempts, want 1", calls)
			}
		})
	}
}

// retryLog records the retry_in of each log line that has one.
type retryLog struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (h *retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *retryLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *retryLog) WithGroup(string) slog.Handler            { return h }
func (h *retryLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "retry_in" {
			h.mu.Lock()
			h.waits = append(h.waits, a.Value.Duration())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func TestSupervisorRestarts(t *testing.T) {
	t.Run("a failed receiver is replaced by a new one after the backoff and the counts add up", func(t *testing.T) {
		s := newTestSupervisor(t, time.Millisecond, 4*time.Millisecond, nil)
		s.assign("fleet/0")
		s.waitState(t, "fleet/0", metrics.TaskRunning, 1)
		first := s.only(t, "fleet/0")
		first.setStats(pubsubbridge.Stats{Written: 5, Quarantined: 1, Outstanding: 2})
		first.stop <- errors.New("stream reset by peer")

		s.waitState(t, "fleet/0", metrics.TaskRunning, 2)
		_, made := s.receivers.of("fleet/0")
		if len(made) != 2 || made[1] == first {
			t.Fatalf("receivers %v, want a second one", made)
		}
		made[1].setStats(pubsubbridge.Stats{Written: 3, Outstanding: 1})
		want := replicator.TaskStatus{ID: "fleet/0", Pipeline: "fleet", State: metrics.TaskRunning, Replicated: 8, Quarantined: 1, Lag: 1}
		if st, _ := s.task("fleet/0"); st != want {
			t.Errorf("status %+v, want %+v", st, want)
		}
		if n := first.closes.Load(); n != 1 {
			t.Errorf("the failed receiver was closed %d times", n)
		}
	})

	t.Run("the backoff doubles up to its maximum", func(t *testing.T) {
		h := &retryLog{}
		fail := slices.Repeat([]error{errors.New("no credentials")}, 5)
		s := newTestSupervisor(t, time.Millisecond, 4*time.Millisecond, slog.New(h), fail...)
		s.assign("fleet/0")
		s.waitState(t, "fleet/0", metrics.TaskRunning, 6)
		h.mu.Lock()
		defer h.mu.Unlock()
		want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond}
		if !slices.Equal(h.waits, want) {
			t.Errorf("waited %v, want %v", h.waits, want)
		}
	})
}

func TestSupervisorWithoutPubSub(t *testing.T) {
	b := newSupervisor(&config.Config{}, slog.New(slog.DiscardHandler), nil, nil)
	b.Assign(context.Background(), []replicator.TaskID{{Pipeline: "fleet"}})
	if st := b.Status(); len(st) != 0 {
		t.Errorf("status %+v of a node without Pub/Sub pipelines", st)
	}
	b.Close()
}

func TestBridgesHas(t *testing.T) {
	cfg := &config.Config{Pipelines: []*config.Pipeline{
		{Name: "fleet", Source: config.Source{PubSub: "gcp", Subscription: "fleet-sub"}},
		{Name: "eu-payments", Source: config.Source{Kafka: "eu"}},
	}}
	b := newSupervisor(cfg, slog.New(slog.DiscardHandler), nil, nil)
	tests := []struct {
		name string
		id   replicator.TaskID
		want bool
	}{
		{"a task of a Pub/Sub pipeline is the supervisor's", replicator.TaskID{Pipeline: "fleet", Index: 2}, true},
		{"a task of a Kafka pipeline is the worker's", replicator.TaskID{Pipeline: "eu-payments"}, false},
		{"a task of an unknown pipeline is nobody's", replicator.TaskID{Pipeline: "gone"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := b.has(tt.id); got != tt.want {
				t.Errorf("has(%s) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}
