// Package metrics defines tributary's Prometheus metrics, shared by every kind of
// pipeline (Kafka and Pub/Sub sources alike) so that one name means one thing.
//
// Nothing here registers on the default registry: cmd creates a registry and
// passes it to New. Label values come from config (pipeline names, topics the
// pipeline selected) or from the fixed sets below; never from record contents.
package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of one source record (label outcome of tributary_records_total).
const (
	Replicated  = "replicated"
	Quarantined = "quarantined"
	Skipped     = "skipped"
)

// Task states (label state of tributary_tasks).
const (
	TaskRunning    = "running"
	TaskStarting   = "starting"
	TaskFailed     = "failed"
	TaskUnassigned = "unassigned"
)

// TaskStates lists every value of the state label, so that gauges exist at zero.
var TaskStates = []string{TaskRunning, TaskStarting, TaskFailed, TaskUnassigned}

// Set holds the metrics of one node.
type Set struct {
	Records      *prometheus.CounterVec   // pipeline, outcome
	Bytes        *prometheus.CounterVec   // pipeline
	Lag          *prometheus.GaugeVec     // pipeline, topic, partition
	LagSeconds   *prometheus.GaugeVec     // pipeline, topic, partition
	Stalled      *prometheus.GaugeVec     // pipeline
	Latency      *prometheus.HistogramVec // pipeline
	Tasks        *prometheus.GaugeVec     // state
	Transactions *prometheus.CounterVec   // pipeline, result
	TaskRestarts *prometheus.CounterVec   // pipeline
	TopicsMirror *prometheus.GaugeVec     // pipeline
	Expired      *prometheus.CounterVec   // pipeline
	// Quarantined is tributary_quarantined_total{pipeline,reason}: records of
	// Kafka pipelines quarantined, by reason (the governance reasons,
	// too-large, produce-rejected). Pub/Sub pipelines count theirs in
	// tributary_pubsub_quarantined_total.
	Quarantined *prometheus.CounterVec
	// SchemaTranslations counts schema-id translations by pipeline and result:
	// translated, registry-unavailable, or a quarantine reason code.
	SchemaTranslations *prometheus.CounterVec
	// HeartbeatAge is tributary_heartbeat_age_seconds{pipeline}: computed at
	// scrape time, one series per pipeline with heartbeats of which this node
	// runs at least one task.
	HeartbeatAge *GaugeFuncs
	// TargetRecreated is tributary_target_topics_recreated_total{pipeline,topic}:
	// target topics deleted while mirrored and created again by the pipeline.
	// Its series exist at 0 for every mirrored topic, so that an alert on
	// increase() sees the first one.
	TargetRecreated *prometheus.CounterVec
	// GroupOffsetsSynced is tributary_group_offsets_synced_total{pipeline}:
	// partition offsets of consumer groups committed in the target by the
	// continuous group offset sync.
	GroupOffsetsSynced *prometheus.CounterVec
	// GroupSyncErrors is tributary_group_offset_sync_errors_total{pipeline}:
	// failures of the group offset sync (a cluster unreachable, a group or
	// partition that could not be read, translated or committed).
	GroupSyncErrors *prometheus.CounterVec
	// GroupSyncAge is tributary_group_offset_sync_age_seconds{pipeline}:
	// seconds since the last complete round of the pipeline's group offset
	// sync, on the node that runs it (the one running the pipeline's task 0).
	GroupSyncAge *GaugeFuncs
	// TopicConfigChanges is tributary_topic_config_changes_total{pipeline}:
	// mirrored settings of target topics set or deleted to follow their
	// source topics (after creation). TopicConfigErrors is
	// tributary_topic_config_errors_total{pipeline}: such changes that the
	// target refused or that could not be sent.
	TopicConfigChanges *prometheus.CounterVec
	TopicConfigErrors  *prometheus.CounterVec
}

// LatencyBuckets run from 1 ms to 60 s.
var LatencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// New creates the metrics and registers them on reg (nil: not registered, for tests).
func New(reg prometheus.Registerer) *Set {
	s := &Set{
		Records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_records_total",
			Help: "Source records handled, by pipeline and outcome (replicated, quarantined, skipped).",
		}, []string{"pipeline", "outcome"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_bytes_total",
			Help: "Bytes of key and value replicated into the target, by pipeline.",
		}, []string{"pipeline"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_replication_lag_records",
			Help: "Source high watermark (last stable offset) minus the next source offset to be written, per source partition.",
		}, []string{"pipeline", "topic", "partition"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tributary_replication_latency_seconds",
			Help:    "Time from the source record's timestamp to its acknowledged write (transaction commit) in the target.",
			Buckets: LatencyBuckets,
		}, []string{"pipeline"}),
		Tasks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_tasks",
			Help: "Tasks known to this node, by state.",
		}, []string{"state"}),
		Transactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_transactions_total",
			Help: "Target transactions (or checkpoint batches when exactly_once is off) by pipeline and result (committed, aborted).",
		}, []string{"pipeline", "result"}),
		TaskRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_task_restarts_total",
			Help: "Times a task restarted after an error (it resumes from its checkpoints).",
		}, []string{"pipeline"}),
		TopicsMirror: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_mirrored_topics",
			Help: "Source topics a pipeline currently selects.",
		}, []string{"pipeline"}),
	}
	s.LagSeconds = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tributary_replication_lag_seconds",
		Help: "Age of the oldest source record not yet replicated, per source partition; 0 when caught up.",
	}, []string{"pipeline", "topic", "partition"})
	s.Stalled = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tributary_stalled_partitions",
		Help: "Source partitions with lag and no progress for a minute, by pipeline (on this node).",
	}, []string{"pipeline"})
	s.Expired = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_source_records_expired_total",
		Help: "Source records deleted by the source's retention before they were mirrored (unrecoverable; alert on any increase).",
	}, []string{"pipeline"})
	s.Quarantined = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_quarantined_total",
		Help: "Source records of Kafka pipelines quarantined in the source region, by pipeline and reason (a schema or policy reason, too-large, produce-rejected).",
	}, []string{"pipeline", "reason"})
	s.SchemaTranslations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_schema_translations_total",
		Help: "Schema-id translations by pipeline and result: translated, registry-unavailable, or the quarantine reason (not-wire-format, unknown-schema-id, incompatible-schema, bad-schema-reference).",
	}, []string{"pipeline", "result"})
	s.HeartbeatAge = NewGaugeFuncs("tributary_heartbeat_age_seconds",
		"Age of the newest heartbeat of the pipeline's tasks on this node that reached the target (committed); "+
			"before a task's first heartbeat arrives, the time since the task started. Grows when the pipeline stalls, with or without data traffic.",
		"pipeline")
	s.TargetRecreated = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_target_topics_recreated_total",
		Help: "Target topics deleted while mirrored and created again with the source's settings, by pipeline and target topic (what they held before is gone; alert on any increase).",
	}, []string{"pipeline", "topic"})
	s.GroupOffsetsSynced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_group_offsets_synced_total",
		Help: "Partition offsets of source consumer groups translated and committed in the target by the group offset sync, by pipeline.",
	}, []string{"pipeline"})
	s.GroupSyncErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_group_offset_sync_errors_total",
		Help: "Failures of the group offset sync, by pipeline: a cluster that could not be read, a group or partition that could not be read, translated or committed.",
	}, []string{"pipeline"})
	s.GroupSyncAge = NewGaugeFuncs("tributary_group_offset_sync_age_seconds",
		"Seconds since the last complete round of the pipeline's consumer group offset sync; present on the node running it (the pipeline's task 0).",
		"pipeline")
	s.TopicConfigChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_topic_config_changes_total",
		Help: "Mirrored settings of target topics (cleanup.policy, retention.ms, ...) set or deleted to follow a change of their source topic, by pipeline.",
	}, []string{"pipeline"})
	s.TopicConfigErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_topic_config_errors_total",
		Help: "Changes of mirrored target topic settings that failed (refused by the target or not sent), by pipeline; the log names the topic and settings.",
	}, []string{"pipeline"})
	for _, st := range TaskStates {
		s.Tasks.WithLabelValues(st)
	}
	if reg != nil {
		reg.MustRegister(s.Records, s.Bytes, s.Lag, s.Latency, s.Tasks, s.Transactions, s.TaskRestarts, s.TopicsMirror, s.Expired, s.SchemaTranslations, s.LagSeconds, s.Stalled, s.HeartbeatAge, s.Quarantined)
		reg.MustRegister(s.TargetRecreated, s.GroupOffsetsSynced, s.GroupSyncErrors, s.GroupSyncAge)
		reg.MustRegister(s.TopicConfigChanges, s.TopicConfigErrors)
	}
	return s
}

// GaugeFuncs is a gauge with one label whose values are computed by functions
// when the registry is scraped, so that an age is exact at scrape time instead
// of as old as the last update. Series come and go with Set and Delete; it is
// safe for concurrent use. The functions are called without any lock of
// GaugeFuncs held, so they may take their owner's locks.
type GaugeFuncs struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	fns  map[string]func() float64
}

// NewGaugeFuncs returns an empty GaugeFuncs with the given name, help text and
// label name.
func NewGaugeFuncs(name, help, label string) *GaugeFuncs {
	return &GaugeFuncs{desc: prometheus.NewDesc(name, help, []string{label}, nil), fns: map[string]func() float64{}}
}

// Set makes the series with label value v report fn() at each scrape.
func (g *GaugeFuncs) Set(v string, fn func() float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fns[v] = fn
}

// Delete removes the series with label value v.
func (g *GaugeFuncs) Delete(v string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.fns, v)
}

// Value computes the series with label value v now; ok is false when there is none.
func (g *GaugeFuncs) Value(v string) (val float64, ok bool) {
	g.mu.Lock()
	fn, ok := g.fns[v]
	g.mu.Unlock()
	if !ok {
		return 0, false
	}
	return fn(), true
}

// Describe implements prometheus.Collector.
func (g *GaugeFuncs) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

// Collect implements prometheus.Collector.
func (g *GaugeFuncs) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	labels := make([]string, 0, len(g.fns))
	fns := make(map[string]func() float64, len(g.fns))
	for v, fn := range g.fns {
		labels = append(labels, v)
		fns[v] = fn
	}
	g.mu.Unlock()
	sort.Strings(labels)
	for _, v := range labels {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, fns[v](), v)
	}
}
