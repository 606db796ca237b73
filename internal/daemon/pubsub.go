package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/pubsubbridge"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/metrics"
)

// bridge is one Pub/Sub receiver as the supervisor runs it.
// *pubsubbridge.Bridge implements it; tests use fakes.
type bridge interface {
	Run(ctx context.Context) error
	Stats() pubsubbridge.Stats
	Close() error
}

// newBridgeFunc builds the receiver of one task.
type newBridgeFunc func(id replicator.TaskID) (bridge, error)

// Backoff of a failed Pub/Sub receiver before it is started again.
const (
	bridgeBackoffMin = time.Second
	bridgeBackoffMax = 30 * time.Second
	// bridgeHealthyAfter is how long a receiver must have run for its next
	// failure to start the backoff from bridgeBackoffMin again.
	bridgeHealthyAfter = time.Minute
)

// bridges supervises the Pub/Sub tasks assigned to this node: task i of a
// Pub/Sub pipeline is one receiver of its subscription (Pub/Sub spreads
// messages over the receivers of all nodes). A receiver that fails is started
// again with backoff, and reported as failed (with its error) meanwhile.
type bridges struct {
	cfg     *config.Config
	log     *slog.Logger
	newTask newBridgeFunc
	closer  func() // closes what the receivers share (the sink)
	// backoffMin and backoffMax bound the wait before a failed receiver is
	// started again: bridgeBackoffMin and bridgeBackoffMax, shorter in tests.
	backoffMin, backoffMax time.Duration

	closeOnce sync.Once
	mu        sync.Mutex // guards running
	running   map[string]*bridgeTask
}

// bridgeTask is one running receiver.
type bridgeTask struct {
	id     replicator.TaskID
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex // guards br, base, state and err
	br    bridge
	base  pubsubbridge.Stats // counts of the task's earlier receivers
	state string
	err   string
}

// newBridges makes the supervisor of cfg's Pub/Sub pipelines, with one
// idempotent Kafka sink into the target shared by all receivers of the node;
// gov holds the governance step of each format json pipeline.
func newBridges(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, gov map[string]*governance.Step) (*bridges, error) {
	hasPubSub := false
	for _, p := range cfg.Pipelines {
		hasPubSub = hasPubSub || p.Source.PubSub != ""
	}
	if !hasPubSub {
		return newSupervisor(cfg, log, nil, nil), nil
	}
	// One sink per cluster written to: the target, and the regional clusters
	// that keep quarantined messages of Pub/Sub projects outside the target's
	// region (raw data stays in its region).
	sinks := map[string]*replicator.Sink{}
	closeSinks := func() {
		for _, s := range sinks {
			s.Close()
		}
	}
	sinkOf := func(cluster string) (*replicator.Sink, error) {
		if s, ok := sinks[cluster]; ok {
			return s, nil
		}
		s, err := replicator.NewSink(cluster, cfg.Kafka[cluster], log)
		if err != nil {
			return nil, fmt.Errorf("kafka.%s: %w", cluster, err)
		}
		sinks[cluster] = s
		return s, nil
	}
	sink, err := sinkOf(cfg.Target)
	if err != nil {
		return nil, err
	}
	quarantine := map[string]*replicator.Sink{} // by pipeline
	for _, p := range cfg.Pipelines {
		if p.Source.PubSub == "" {
			continue
		}
		if cluster, _ := cfg.PubSubQuarantine(p); cluster != "" && cluster != cfg.Target {
			qs, err := sinkOf(cluster)
			if err != nil {
				closeSinks()
				return nil, err
			}
			quarantine[p.Name] = qs
		}
	}
	newTask := func(id replicator.TaskID) (bridge, error) {
		bc, err := pubsubbridge.FromConfig(cfg, id.Pipeline)
		if err != nil {
			return nil, err
		}
		deps := pubsubbridge.Deps{Sink: sink, Logger: log.With("task", id.String()), Registerer: reg}
		if qs := quarantine[id.Pipeline]; qs != nil && bc.DeadLetterTopic == "" {
			deps.QuarantineSink = qs
		}
		if g := gov[id.Pipeline]; g != nil {
			deps.Transformer = g
			if g.Validates() {
				deps.MapSchema = g.MapSchema
			}
		}
		return pubsubbridge.New(bc, deps)
	}
	return newSupervisor(cfg, log, newTask, closeSinks), nil
}

func newSupervisor(cfg *config.Config, log *slog.Logger, newTask newBridgeFunc, closer func()) *bridges {
	return &bridges{cfg: cfg, log: log, newTask: newTask, closer: closer, running: map[string]*bridgeTask{},
		backoffMin: bridgeBackoffMin, backoffMax: bridgeBackoffMax}
}

// has reports whether a task id belongs to a Pub/Sub pipeline.
func (b *bridges) has(id replicator.TaskID) bool {
	p := b.cfg.Pipeline(id.Pipeline)
	return p != nil && p.Source.PubSub != ""
}

// Assign makes the running receivers those of ids: it stops the others (and
// waits for them) and starts the new ones.
func (b *bridges) Assign(ctx context.Context, ids []replicator.TaskID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[string]replicator.TaskID{}
	for _, id := range ids {
		want[id.String()] = id
	}
	for s, t := range b.running {
		if _, ok := want[s]; !ok {
			t.cancel()
			<-t.done
			delete(b.running, s)
			b.log.Info("stopped Pub/Sub task", "task", s)
		}
	}
	for s, id := range want {
		if _, ok := b.running[s]; ok || b.newTask == nil {
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		t := &bridgeTask{id: id, cancel: cancel, done: make(chan struct{}), state: metrics.TaskStarting}
		b.running[s] = t
		b.log.Info("starting Pub/Sub task", "task", s)
		go b.supervise(tctx, t)
	}
}

// supervise runs one receiver until ctx ends, starting a new one with backoff
// whenever it fails (its build included: a receiver whose config cannot be made
// retries too, and says why). A receiver runs once, so each attempt gets a new
// one; the task's counts add up over attempts.
func (b *bridges) supervise(ctx context.Context, t *bridgeTask) {
	defer close(t.done)
	backoff := b.backoffMin
	for ctx.Err() == nil {
		br, err := b.newTask(t.id)
		if err == nil {
			t.start(br)
			started := time.Now()
			err = br.Run(ctx)
			br.Close()
			if time.Since(started) > bridgeHealthyAfter {
				backoff = b.backoffMin // it ran fine for a while: a new failure starts over
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("receiver stopped")
		}
		t.set(metrics.TaskFailed, fmt.Sprintf("retrying in %v: %v", backoff, err))
		b.log.Warn("Pub/Sub task failed; retrying", "task", t.id.String(), "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, b.backoffMax)
	}
}

// start makes br the task's receiver, keeping the counts of the previous one.
func (t *bridgeTask) start(br bridge) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.br != nil {
		old := t.br.Stats()
		t.base.Written += old.Written
		t.base.Quarantined += old.Quarantined
	}
	t.br, t.state, t.err = br, metrics.TaskRunning, ""
}

func (t *bridgeTask) set(state, err string) {
	t.mu.Lock()
	t.state, t.err = state, err
	t.mu.Unlock()
}

// Status lists the assigned Pub/Sub tasks with their state. A receiver's lag
// is the messages it holds, not yet in Kafka (the subscription's backlog is
// only in Cloud Monitoring).
func (b *bridges) Status() []replicator.TaskStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]replicator.TaskStatus, 0, len(b.running))
	for s, t := range b.running {
		t.mu.Lock()
		st := replicator.TaskStatus{ID: s, Pipeline: t.id.Pipeline, State: t.state, Error: t.err}
		st.Replicated, st.Quarantined = t.base.Written, t.base.Quarantined
		if t.br != nil {
			bs := t.br.Stats()
			st.Replicated += bs.Written
			st.Quarantined += bs.Quarantined
			st.Lag = int64(bs.Outstanding)
		}
		t.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// Close stops every receiver and closes the shared sink.
func (b *bridges) Close() {
	b.closeOnce.Do(func() {
		b.Assign(context.Background(), nil)
		if b.closer != nil {
			b.closer()
		}
	})
}
