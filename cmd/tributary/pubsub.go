package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/pubsubbridge"
	"github.com/tributary-dev/tributary/registry"
	"github.com/tributary-dev/tributary/replicator"
)

// kafkaSink is the bridge's way into the target cluster: one idempotent
// producer shared by the node's bridges, a delivery channel per batch.
type kafkaSink struct {
	p     *kafka.Producer
	admin *kafka.AdminClient
	log   *slog.Logger
	mu    sync.Mutex
	ready map[string]bool // target topics known to exist
	done  chan struct{}
}

func newKafkaSink(target *config.Kafka, log *slog.Logger) (*kafkaSink, error) {
	cm := kafka.ConfigMap{
		"bootstrap.servers":         target.Bootstrap,
		"enable.metrics.push":       false,
		"enable.idempotence":        true,
		"acks":                      "all",
		"linger.ms":                 5,
		"partitioner":               "murmur2_random", // where Java producers put keys
		"go.delivery.report.fields": "none",
		"message.max.bytes":         64 << 20,
	}
	for k, v := range target.Properties {
		cm[k] = v
	}
	p, err := kafka.NewProducer(&cm)
	if err != nil {
		return nil, fmt.Errorf("creating the Pub/Sub bridge's producer: %w", err)
	}
	admin, err := kafka.NewAdminClientFromProducer(p)
	if err != nil {
		p.Close()
		return nil, err
	}
	s := &kafkaSink{p: p, admin: admin, log: log, ready: map[string]bool{}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ev := range p.Events() {
			if e, ok := ev.(kafka.Error); ok {
				log.Warn("pubsub bridge producer error", "err", e)
			}
		}
	}()
	return s, nil
}

func (s *kafkaSink) Close() {
	s.admin.Close()
	s.p.Close()
	<-s.done
}

// Produce writes a batch and waits for every delivery report.
func (s *kafkaSink) Produce(ctx context.Context, msgs []*kafka.Message) []error {
	errs := make([]error, len(msgs))
	for _, m := range msgs {
		if t := m.TopicPartition.Topic; t != nil && *t == pubsubbridge.QuarantineTopic {
			if err := s.ensureQuarantine(ctx); err != nil {
				for i := range errs {
					errs[i] = err
				}
				return errs
			}
			break
		}
	}
	dr := make(chan kafka.Event, len(msgs))
	pending := 0
	for i, m := range msgs {
		m.Opaque = i
		for {
			err := s.p.Produce(m, dr)
			if err != nil && err.(kafka.Error).Code() == kafka.ErrQueueFull {
				s.p.Flush(50)
				continue
			}
			if err != nil {
				errs[i] = err
			} else {
				pending++
			}
			break
		}
	}
	for pending > 0 {
		select {
		case ev := <-dr:
			m := ev.(*kafka.Message)
			i := m.Opaque.(int)
			pending--
			if m.TopicPartition.Error != nil {
				errs[i] = m.TopicPartition.Error
			}
		case <-ctx.Done():
			// Unknown outcome: report an error, so the message is redelivered
			// (a possible duplicate), never acked unwritten. Late reports land in
			// dr, which nobody reads; it is buffered for all of them.
			for i := range errs {
				if errs[i] == nil {
					errs[i] = ctx.Err()
				}
			}
			return errs
		}
	}
	for _, e := range errs {
		if e != nil {
			return errs
		}
	}
	return nil
}

// ensureQuarantine creates the target's _tributary.quarantine (compacted: a
// message rewritten after a crash replaces itself) before the first record
// goes there; brokers usually do not create topics on produce.
func (s *kafkaSink) ensureQuarantine(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready[pubsubbridge.QuarantineTopic] {
		return nil
	}
	if err := replicator.CreateQuarantineTopic(ctx, s.admin); err != nil {
		return fmt.Errorf("target cluster: %w", err)
	}
	s.ready[pubsubbridge.QuarantineTopic] = true
	return nil
}

// Partitions returns a target topic's partition count, creating the topic
// (with the target's default partitions and replication) when missing.
func (s *kafkaSink) Partitions(ctx context.Context, topic string) (int, error) {
	md, err := s.admin.GetMetadata(&topic, false, 10000)
	if err == nil {
		if t, ok := md.Topics[topic]; ok && t.Error.Code() == kafka.ErrNoError && len(t.Partitions) > 0 {
			return len(t.Partitions), nil
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := s.admin.CreateTopics(cctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: -1, ReplicationFactor: -1}})
	if err != nil {
		return 0, fmt.Errorf("creating target topic %s: %w", topic, err)
	}
	if c := res[0].Error.Code(); c != kafka.ErrNoError && c != kafka.ErrTopicAlreadyExists {
		return 0, fmt.Errorf("creating target topic %s: %w", topic, res[0].Error)
	}
	s.log.Info("created target topic for a Pub/Sub pipeline", "topic", topic)
	return 0, fmt.Errorf("target topic %s just created; its metadata follows", topic)
}

// bridges runs the Pub/Sub tasks assigned to this node: task i of a Pub/Sub
// pipeline is one receiver of its subscription (Pub/Sub spreads messages over
// the receivers of all nodes).
type bridges struct {
	cfg     *config.Config
	log     *slog.Logger
	reg     prometheus.Registerer
	sink    *kafkaSink
	gov     map[string]*pubsubGovernor
	mu      sync.Mutex
	running map[string]context.CancelFunc
	done    map[string]chan struct{}
	stats   map[string]func() pubsubbridge.Stats
}

func newBridges(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, pol *policyEngine) (*bridges, error) {
	b := &bridges{cfg: cfg, log: log, reg: reg, running: map[string]context.CancelFunc{}, done: map[string]chan struct{}{}, stats: map[string]func() pubsubbridge.Stats{}, gov: map[string]*pubsubGovernor{}}
	any := false
	var validations *prometheus.CounterVec
	var val *registry.JSONValidator
	for _, p := range cfg.Pipelines {
		if p.Source.PubSub == "" {
			continue
		}
		any = true
		if p.Format != "json" {
			continue
		}
		g := &pubsubGovernor{e: pol, pipeline: p.Name, subscription: p.Source.Subscription}
		if p.PubSub != nil && p.PubSub.Schema != nil {
			if pol.schemas == nil { // config validation requires the target registry
				return nil, fmt.Errorf("pipeline %s: pubsub.schema needs kafka.%s.schema_registry", p.Name, cfg.Target)
			}
			if val == nil {
				val = registry.NewJSONValidator(pol.schemas)
				validations = prometheus.NewCounterVec(prometheus.CounterOpts{
					Name: "tributary_pubsub_schema_validations_total",
					Help: "Pub/Sub messages checked against their JSON Schema subject, by pipeline and result (valid, invalid).",
				}, []string{"pipeline", "result"})
				reg.MustRegister(validations)
			}
			g.schema, g.val = p.PubSub.Schema, val
			g.validations = validations.MustCurryWith(prometheus.Labels{"pipeline": p.Name})
			g.validations.WithLabelValues("valid")
			g.validations.WithLabelValues("invalid")
		}
		b.gov[p.Name] = g
	}
	if !any {
		return b, nil
	}
	sink, err := newKafkaSink(cfg.Kafka[cfg.Target], log)
	if err != nil {
		return nil, err
	}
	b.sink = sink
	return b, nil
}

// has reports whether a task id belongs to a Pub/Sub pipeline.
func (b *bridges) has(id replicator.TaskID) bool {
	p := b.cfg.Pipeline(id.Pipeline)
	return p != nil && p.Source.PubSub != ""
}

// Assign makes the running bridges those of ids.
func (b *bridges) Assign(ctx context.Context, ids []replicator.TaskID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[string]replicator.TaskID{}
	for _, id := range ids {
		want[id.String()] = id
	}
	for id, cancel := range b.running {
		if _, ok := want[id]; !ok {
			cancel()
			<-b.done[id]
			delete(b.running, id)
			delete(b.done, id)
			delete(b.stats, id)
			b.log.Info("stopped Pub/Sub task", "task", id)
		}
	}
	for s, id := range want {
		if _, ok := b.running[s]; ok {
			continue
		}
		bc, err := pubsubbridge.FromConfig(b.cfg, id.Pipeline)
		if err != nil {
			b.log.Error("Pub/Sub task", "task", s, "err", err)
			continue
		}
		deps := pubsubbridge.Deps{Sink: b.sink, Logger: b.log.With("task", s), Registerer: b.reg}
		if g := b.gov[id.Pipeline]; g != nil {
			deps.Transformer = g
			if g.schema != nil {
				deps.MapSchema = g.mapSchema
			}
		}
		br, err := pubsubbridge.New(bc, deps)
		if err != nil {
			b.log.Error("Pub/Sub task", "task", s, "err", err)
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		b.running[s], b.done[s], b.stats[s] = cancel, done, br.Stats
		b.log.Info("starting Pub/Sub task", "task", s, "subscription", bc.Subscription)
		go func() {
			defer close(done)
			backoff := time.Second
			for tctx.Err() == nil {
				if err := br.Run(tctx); err != nil && tctx.Err() == nil {
					b.log.Warn("Pub/Sub task failed; retrying", "task", s, "err", err, "retry_in", backoff)
					select {
					case <-tctx.Done():
					case <-time.After(backoff):
					}
					backoff = min(2*backoff, 30*time.Second)
					continue
				}
				break
			}
			br.Close()
		}()
	}
}

// Status lists the running Pub/Sub tasks.
func (b *bridges) Status() []replicator.TaskStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []replicator.TaskStatus
	for id := range b.running {
		tid, _ := replicator.ParseTaskID(id)
		st := b.stats[id]()
		// Lag of a receiver: the messages it holds, not yet in Kafka (the
		// subscription's backlog is only in Cloud Monitoring).
		out = append(out, replicator.TaskStatus{ID: id, Pipeline: tid.Pipeline, State: "running",
			Replicated: st.Written, Quarantined: st.Quarantined, Lag: int64(st.Outstanding)})
	}
	return out
}

func (b *bridges) Close() {
	b.Assign(context.Background(), nil)
	if b.sink != nil {
		b.sink.Close()
	}
}

// pubsubGovernor is the governance of a format json Pub/Sub pipeline: JSON
// Schema validation against the target registry when pipelines[].pubsub.schema
// is set, then the active policy bundle (by field path, and by the schema's
// PII tags when there is a schema).
type pubsubGovernor struct {
	e                      *policyEngine
	pipeline, subscription string
	schema                 *config.PubSubSchema // nil: no validation
	val                    *registry.JSONValidator
	validations            *prometheus.CounterVec // result
}

// mapSchema maps a message's Pub/Sub schema revision to the configured subject
// and the version pipelines[].pubsub.schema.revisions gives it (else the
// configured version, else the latest).
func (g *pubsubGovernor) mapSchema(_ context.Context, s pubsubbridge.Schema) (pubsubbridge.Schema, error) {
	s.Subject, s.Version = g.schema.Subject, g.schema.Version
	if v, ok := g.schema.Revisions[s.RevisionID]; ok {
		s.Version = v
	}
	return s, nil
}

func (g *pubsubGovernor) Transform(ctx context.Context, rec *pubsubbridge.Record) error {
	var set *policy.Set
	if b := g.e.active.Load(); b != nil {
		set = b.set
	} else if g.e.cfg.Policies != "" {
		return errors.New("waiting for the cluster's policy bundle")
	}
	ps := policy.Schema{Type: policy.JSON}
	if g.schema != nil {
		subject, version := rec.Schema.Subject, rec.Schema.Version
		if subject == "" { // no googclient_schema* attributes
			subject, version = g.schema.Subject, g.schema.Version
		}
		s, err := g.val.Schema(ctx, subject, version)
		if err == nil {
			err = s.Validate(rec.Value)
		}
		var re *registry.RecordError
		switch {
		case errors.As(err, &re):
			g.validations.WithLabelValues("invalid").Inc()
			return pubsubbridge.Reject(re.Reason, "%s", re.Msg)
		case err != nil:
			return fmt.Errorf("JSON Schema of subject %q: %w", subject, err) // registry outage: retried
		}
		g.validations.WithLabelValues("valid").Inc()
		ps = policy.Schema{Type: policy.JSON, Text: s.Text, ID: s.ID, Name: fmt.Sprintf("%s version %d", s.Subject, s.Version)}
	}
	plan, err := g.e.cache.Plan(set, g.pipeline, g.subscription, ps)
	if err != nil {
		return pubsubbridge.Reject("policy-error", "compiling policies: %v", err)
	}
	if !plan.Touches() {
		return nil // the bridge checked the JSON syntax before
	}
	out, res, err := plan.Apply(rec.Value)
	if err != nil {
		var v *policy.Violation
		if errors.As(err, &v) {
			return pubsubbridge.Reject(v.Reason, "%s", v.Error())
		}
		return pubsubbridge.Reject(policy.ReasonUndecodable, "%v", err)
	}
	rec.Value = out
	if h := res.Header(); h != "" {
		rec.Headers = append(rec.Headers, kafka.Header{Key: HeaderPolicy, Value: []byte(h)})
		for _, t := range res.Touches {
			g.e.masked.WithLabelValues(g.pipeline, t.Policy, string(t.Action)).Add(float64(max(t.Count, 1)))
		}
	}
	return nil
}
