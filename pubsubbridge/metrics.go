package pubsubbridge

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Label values of the metrics: fixed sets, never data.
const (
	// nack reasons
	nackSink       = "sink"       // not written within RetryTimeout
	nackTransform  = "transform"  // transformer or schema mapper could not decide
	nackQuarantine = "quarantine" // the quarantine write failed
	nackShutdown   = "shutdown"   // the bridge stopped before the outcome was known
	nackOrdering   = "ordering"   // held back behind a nacked message of its ordering key
	nackDuplicate  = "duplicate"  // a concurrent delivery of the same id failed

	// redelivery kinds
	redeliveryAttempt   = "delivery_attempt" // Pub/Sub's delivery attempt > 1 (dead-letter policy set)
	redeliveryDuplicate = "duplicate_id"     // an id this bridge holds or handled within the window

	// record outcomes
	outcomeWritten     = "written"
	outcomeQuarantined = "quarantined"
	outcomeDuplicate   = "duplicate" // suppressed redelivery, acked without writing

	// quarantine reasons (label); the header carries the precise reason
	qUndecodable = "undecodable"
	qRejected    = "rejected"
	qTooLarge    = "too_large"
)

// metrics are one bridge's children of the package's metric vectors, plus its
// gauge functions. Bridges of several pipelines share the vectors of one
// Registerer.
type metrics struct {
	reg         prometheus.Registerer
	pipeline    string
	vecs        []deleter
	received    prometheus.Counter
	bytes       prometheus.Counter
	acks        prometheus.Counter
	ackErrors   prometheus.Counter
	sinkErrors  prometheus.Counter
	nacks       *prometheus.CounterVec
	redelivered *prometheus.CounterVec
	records     *prometheus.CounterVec
	quarantined *prometheus.CounterVec
	latency     prometheus.Observer
}

type deleter interface {
	DeletePartialMatch(prometheus.Labels) int
}

// newMetrics registers (or reuses) the tributary_pubsub_* vectors on reg and
// the per-pipeline gauge functions, which read stats.
func newMetrics(reg prometheus.Registerer, pipeline string, stats func() (oldest time.Time, inflight, ids int), now func() time.Time) (*metrics, error) {
	m := &metrics{reg: reg, pipeline: pipeline}
	counter := func(name, help string, labels ...string) (*prometheus.CounterVec, error) {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append([]string{"pipeline"}, labels...))
		c, err := register(reg, v)
		if err != nil {
			return v, err // unregistered, so that the caller can go on and report err
		}
		m.vecs = append(m.vecs, c)
		return c, nil
	}
	var errs []error
	must := func(v *prometheus.CounterVec, err error) *prometheus.CounterVec {
		errs = append(errs, err)
		return v
	}
	p := prometheus.Labels{"pipeline": pipeline}
	m.received = must(counter("tributary_pubsub_messages_received_total", "Pub/Sub messages received, redeliveries included.")).With(p)
	m.bytes = must(counter("tributary_pubsub_received_bytes_total", "Bytes of data of the Pub/Sub messages received.")).With(p)
	m.acks = must(counter("tributary_pubsub_acks_total", "Pub/Sub messages acked (written, quarantined or duplicate).")).With(p)
	m.ackErrors = must(counter("tributary_pubsub_ack_errors_total", "Acks that failed on an exactly-once subscription; the message may be redelivered.")).With(p)
	m.sinkErrors = must(counter("tributary_pubsub_sink_errors_total", "Records the Sink failed to write (each attempt).")).With(p)
	m.nacks = must(counter("tributary_pubsub_nacks_total", "Pub/Sub messages nacked for redelivery, by reason.", "reason")).MustCurryWith(p)
	m.redelivered = must(counter("tributary_pubsub_redeliveries_total", "Redelivered Pub/Sub messages: delivery_attempt > 1, or an id already held or handled.", "kind")).MustCurryWith(p)
	m.records = must(counter("tributary_pubsub_records_total", "Pub/Sub messages by outcome: written, quarantined, duplicate.", "outcome")).MustCurryWith(p)
	m.quarantined = must(counter("tributary_pubsub_quarantined_total", "Pub/Sub messages quarantined, by reason: undecodable, rejected, too_large.", "reason")).MustCurryWith(p)
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tributary_pubsub_latency_seconds",
		Help:    "Time from Pub/Sub publish to the ack after the record was written.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
	}, []string{"pipeline"})
	h, err := register(reg, hv)
	errs = append(errs, err)
	if err == nil {
		m.vecs = append(m.vecs, h)
		m.latency = h.With(p)
	}
	if err := errors.Join(errs...); err != nil {
		m.unregister()
		return nil, err
	}
	if err := m.addGauges(stats, now); err != nil {
		m.unregister()
		return nil, err
	}
	return m, nil
}

// pipelineGauges are the gauge functions of one pipeline on one Registerer,
// shared by the pipeline's bridges on this node (several receiver tasks):
// they sum (or take the oldest) over the live bridges, and the pipeline's
// series go away with its last bridge.
type pipelineGauges struct {
	funcs []prometheus.Collector
	now   func() time.Time
	mu    sync.Mutex // guards stats; never held while calling the registry
	stats map[*metrics]func() (time.Time, int, int)
}

type gaugeKey struct {
	reg      prometheus.Registerer
	pipeline string
}

var (
	gaugesMu sync.Mutex // guards gauges and registration of the gauge functions
	gauges   = map[gaugeKey]*pipelineGauges{}
)

func (m *metrics) addGauges(stats func() (time.Time, int, int), now func() time.Time) error {
	gaugesMu.Lock()
	defer gaugesMu.Unlock()
	k := gaugeKey{m.reg, m.pipeline}
	if g := gauges[k]; g != nil {
		g.mu.Lock()
		g.stats[m] = stats
		g.mu.Unlock()
		return nil
	}
	g := &pipelineGauges{stats: map[*metrics]func() (time.Time, int, int){m: stats}, now: now}
	var errs []error
	gauge := func(name, help string, f func() float64) {
		c := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{"pipeline": m.pipeline}}, f)
		if err := m.reg.Register(c); err != nil {
			errs = append(errs, err)
			return
		}
		g.funcs = append(g.funcs, c)
	}
	gauge("tributary_pubsub_outstanding_messages", "Pub/Sub messages held by the bridge: received, not yet acked or nacked.",
		func() float64 { _, n, _ := g.sum(); return float64(n) })
	gauge("tributary_pubsub_oldest_unacked_age_seconds",
		"Age (since publish) of the oldest message held by the bridge; 0 when none. The subscription's backlog is only in Cloud Monitoring.",
		func() float64 {
			oldest, _, _ := g.sum()
			if oldest.IsZero() {
				return 0
			}
			return max(g.now().Sub(oldest).Seconds(), 0)
		})
	gauge("tributary_pubsub_dedup_ids", "Message ids remembered to suppress redeliveries.",
		func() float64 { _, _, n := g.sum(); return float64(n) })
	if err := errors.Join(errs...); err != nil {
		for _, c := range g.funcs {
			m.reg.Unregister(c)
		}
		return err
	}
	gauges[k] = g
	return nil
}

// sum adds up the live bridges' stats; oldest is the oldest of them.
func (g *pipelineGauges) sum() (oldest time.Time, inflight, ids int) {
	g.mu.Lock()
	fs := make([]func() (time.Time, int, int), 0, len(g.stats))
	for _, f := range g.stats {
		fs = append(fs, f)
	}
	g.mu.Unlock()
	for _, f := range fs {
		o, n, d := f()
		if !o.IsZero() && (oldest.IsZero() || o.Before(oldest)) {
			oldest = o
		}
		inflight += n
		ids += d
	}
	return oldest, inflight, ids
}

// register registers c, or returns the collector already registered under the
// same description (another pipeline's bridge).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, err
	}
	return c, nil
}

// unregister removes this bridge from its pipeline's gauges; the last bridge
// of the pipeline on the Registerer also deletes the pipeline's series.
func (m *metrics) unregister() {
	gaugesMu.Lock()
	k := gaugeKey{m.reg, m.pipeline}
	last := true
	if g := gauges[k]; g != nil {
		g.mu.Lock()
		delete(g.stats, m)
		last = len(g.stats) == 0
		g.mu.Unlock()
		if last {
			for _, f := range g.funcs {
				m.reg.Unregister(f)
			}
			delete(gauges, k)
		}
	}
	gaugesMu.Unlock()
	if last {
		for _, v := range m.vecs {
			v.DeletePartialMatch(prometheus.Labels{"pipeline": m.pipeline})
		}
	}
	m.vecs = nil
}
