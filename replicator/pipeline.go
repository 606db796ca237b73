package replicator

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/internal/kafkaclient"
	"github.com/tributary-dev/tributary/replicator/metrics"
)

// CheckpointTopic is the compacted topic in the target that holds every task's
// next source offset per partition.
const CheckpointTopic = "_tributary.checkpoints"

// Deps are what a pipeline needs from its surroundings. Nil fields get defaults.
type Deps struct {
	Logger  *slog.Logger
	Metrics *metrics.Set
	Now     func() time.Time
	// Transformers rewrite records of a pipeline (by name) before they land:
	// schema-id translation, masking. Pipelines without one pass records as they are.
	Transformers map[string]governance.Transformer
}

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New(nil)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}

// Partition is one source partition.
type Partition struct {
	Topic     string
	Partition int32
}

func (p Partition) String() string { return p.Topic + "/" + strconv.Itoa(int(p.Partition)) }

// Owner returns the task index (0..tasks-1) that owns a source partition. It
// depends only on the topic name and partition number, so adding a topic or a
// partition never moves another partition to a different task.
func Owner(topic string, partition int32, tasks int) int {
	h := fnv.New32a()
	h.Write([]byte(topic))
	return int((uint64(h.Sum32()) + uint64(partition)) % uint64(tasks))
}

// Pipeline is one configured Kafka→Kafka pipeline on this node: it discovers the
// source topics it selects, keeps their target topics in step, and tells its tasks
// which partitions are ready to be mirrored. Construct with NewPipeline, call Run.
type Pipeline struct {
	cfg        *config.Pipeline
	conf       *config.Config // the whole config, for the group offset sync
	sourceName string
	targetName string
	source     *config.Kafka
	target     *config.Kafka
	deps       Deps
	log        *slog.Logger

	// heartbeats: the tasks write heartbeats and the heartbeat topic is
	// mirrored; hbPartitions is the partition count the topic needs.
	heartbeats   bool
	hbPartitions int
	// running is the set of the pipeline's tasks running here.
	running runningTasks
	// syncsReady is set once _tributary.offset-syncs exists in the target:
	// tasks write offset syncs only then.
	syncsReady atomic.Bool
	// kick asks Run for a refresh now (see refreshSoon); buffered, never blocks.
	kick chan struct{}
	// idErr is the last error describing the source topics for their ids,
	// logged once; only Run's goroutine touches it.
	idErr string
	// limits are the target topics' max.message.bytes (see poison.go).
	limits *limitTable
	// cfgSync is what the topic config sync remembers (see topicconfig.go).
	cfgSync configSync

	mu      sync.Mutex
	topics  map[string]int    // selected source topic → partitions ready in the target
	ids     map[string]string // selected source topic → its topic id, where known
	changed chan struct{}     // closed and replaced whenever topics changes
	ready   bool              // at least one refresh succeeded
	initial map[string]bool   // topics found by the first refresh: where start applies
	lastErr error
}

// NewPipeline validates that the pipeline reads from Kafka and returns it.
func NewPipeline(cfg *config.Config, name string, deps Deps) (*Pipeline, error) {
	pc := cfg.Pipeline(name)
	if pc == nil {
		return nil, fmt.Errorf("pipeline %q is not configured", name)
	}
	if pc.Source.Kafka == "" {
		return nil, fmt.Errorf("pipeline %q: source is not a Kafka cluster", name)
	}
	src, ok := cfg.Kafka[pc.Source.Kafka]
	if !ok {
		return nil, fmt.Errorf("pipeline %q: source cluster %q is not configured", name, pc.Source.Kafka)
	}
	tgt, ok := cfg.Kafka[cfg.Target]
	if !ok {
		return nil, fmt.Errorf("pipeline %q: target cluster %q is not configured", name, cfg.Target)
	}
	deps = deps.withDefaults()
	return &Pipeline{
		cfg: pc, conf: cfg, sourceName: pc.Source.Kafka, targetName: cfg.Target, source: src, target: tgt,
		deps: deps, log: deps.Logger.With("pipeline", name),
		heartbeats:   pc.HasHeartbeats() && !src.ReadOnly,
		hbPartitions: heartbeatPartitions(cfg, pc.Source.Kafka),
		topics:       map[string]int{}, ids: map[string]string{}, changed: make(chan struct{}),
		kick:   make(chan struct{}, 1),
		limits: newLimitTable(),
	}, nil
}

// Name returns the pipeline's name.
func (p *Pipeline) Name() string { return p.cfg.Name }

// Tasks returns the number of tasks the pipeline is split into.
func (p *Pipeline) Tasks() int { return p.cfg.Tasks }

// Partitions returns the source partitions owned by task i whose target topics
// are ready, sorted, and a channel closed when that may have changed.
func (p *Pipeline) Partitions(i int) ([]Partition, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Partition
	for t, n := range p.topics {
		for part := int32(0); part < int32(n); part++ {
			if Owner(t, part, p.cfg.Tasks) == i {
				out = append(out, Partition{t, part})
			}
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a].Topic != out[b].Topic {
			return out[a].Topic < out[b].Topic
		}
		return out[a].Partition < out[b].Partition
	})
	return out, p.changed
}

// firstPartitions is Partitions once the first topic refresh has published;
// ok is false when ctx ends first.
func (p *Pipeline) firstPartitions(ctx context.Context, i int) (list []Partition, changed <-chan struct{}, ok bool) {
	for {
		p.mu.Lock()
		ready, ch := p.ready, p.changed
		p.mu.Unlock()
		if ready {
			list, changed = p.Partitions(i)
			return list, changed, true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, nil, false
		}
	}
}

// topicID returns the source topic's id as of the newest refresh, "" when
// unknown (the source does not give ids, or describing the topic failed).
func (p *Pipeline) topicID(topic string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ids[topic]
}

// refreshSoon asks for a topic refresh now rather than at the next
// refresh_interval: a task failed or its source consumer reported a topic
// missing, which a deleted target or source topic causes. Run honours it at
// most once a second, and not while refreshes fail (their backoff holds).
func (p *Pipeline) refreshSoon() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// noteTopicID records a source topic's new id that a task found (a topic
// created again, caught by its offsets before a refresh saw it) and tells the
// pipeline's tasks, so that each drops the old topic's partitions.
func (p *Pipeline) noteTopicID(topic, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.topics[topic]; !ok || id == "" || p.ids[topic] == id {
		return
	}
	p.ids[topic] = id
	close(p.changed)
	p.changed = make(chan struct{})
}

// startsAtConfigured reports whether a partition without a checkpoint starts at
// the pipeline's start setting: only topics that existed when the node first
// listed them do; topics created later are read from their beginning, so that
// "latest" never skips the first records of a new topic (also after a restart).
func (p *Pipeline) startsAtConfigured(topic string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.initial[topic]
}

// lastError is the error of the newest topic refresh, empty after a
// successful one.
func (p *Pipeline) lastError() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastErr == nil {
		return ""
	}
	return p.lastErr.Error()
}

// Topics returns the selected source topics and their partition counts.
func (p *Pipeline) Topics() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.topics))
	for t, n := range p.topics {
		out[t] = n
	}
	return out
}

// Run refreshes the topic table every refresh_interval (sooner after a failure)
// until ctx is cancelled. Errors are logged and retried: an unreachable cluster
// must not take the node down.
func (p *Pipeline) Run(ctx context.Context) error {
	logs := kafkaclient.NewLogs(p.log)
	defer logs.Close()
	tuning := kafkaclient.Tuning{"client.id": "tributary-" + p.cfg.Name + "-admin"}
	scm, over := kafkaclient.Config(p.source, kafkaclient.Admin, nil, tuning)
	logs.WarnOverridden(p.sourceName, kafkaclient.Admin, over)
	srcAdmin, err := kafkaclient.NewAdmin(scm, logs)
	if err != nil {
		return fmt.Errorf("pipeline %s: creating admin client for source %s: %w", p.cfg.Name, p.sourceName, err)
	}
	defer srcAdmin.Close()
	tcm, over := kafkaclient.Config(p.target, kafkaclient.Admin, nil, tuning)
	logs.WarnOverridden(p.targetName, kafkaclient.Admin, over)
	tgtAdmin, err := kafkaclient.NewAdmin(tcm, logs)
	if err != nil {
		return fmt.Errorf("pipeline %s: creating admin client for target %s: %w", p.cfg.Name, p.targetName, err)
	}
	defer tgtAdmin.Close()
	var watchers sync.WaitGroup
	watchers.Add(1)
	go func() {
		defer watchers.Done()
		p.watchLag(ctx, srcAdmin.AdminClient)
	}()
	defer watchers.Wait()

	backoff := newBackoff(500*time.Millisecond, p.cfg.RefreshInterval.D())
	for {
		again, err := p.refresh(ctx, srcAdmin.AdminClient, tgtAdmin.AdminClient)
		if err != nil {
			// A refusal (bad credentials, untrusted certificate) only shows as
			// "broker transport failure" in the request's error: say why.
			if ae := srcAdmin.AccessError(); ae != nil {
				err = fmt.Errorf("%w; source %s refused the connection: %w", err, p.sourceName, ae)
			}
			if ae := tgtAdmin.AccessError(); ae != nil {
				err = fmt.Errorf("%w; target %s refused the connection: %w", err, p.targetName, ae)
			}
		}
		wait := p.cfg.RefreshInterval.D()
		if again {
			wait = min(wait, time.Second)
		}
		if err != nil {
			wait = backoff.next()
			p.log.Warn("refreshing topics failed; retrying", "err", err, "retry_in", wait)
		} else {
			backoff.reset()
		}
		p.mu.Lock()
		p.lastErr = err
		p.mu.Unlock()
		timer := time.NewTimer(wait)
		kick := p.kick
		if err != nil {
			kick = nil // keep the backoff
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-kick:
			timer.Stop()
			// At most one refresh a second, however often tasks ask.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		case <-p.limits.poke: // a task met a size error: read the limits now
			timer.Stop()
		}
	}
}

// refresh lists the source topics, creates or grows their target topics, and
// publishes the partitions that are ready. again asks for the next refresh
// soon: the heartbeat topic was just created or grown in the source.
func (p *Pipeline) refresh(ctx context.Context, srcAdmin, tgtAdmin *kafka.AdminClient) (again bool, err error) {
	md, err := srcAdmin.GetMetadata(nil, true, 10000)
	if err != nil {
		return false, fmt.Errorf("listing topics of source %s (%s): %w", p.sourceName, redactedBootstrap(p.source.Bootstrap), err)
	}
	want := map[string]int{}
	// present: the topics the source still has. A topic missing from the
	// listing (or reported unknown) was deleted; one with another error
	// (leader not available, say) is only unavailable for now.
	present := map[string]bool{}
	for name, t := range md.Topics {
		if t.Error.Code() != kafka.ErrUnknownTopicOrPart {
			present[name] = true
		}
		if t.Error.Code() != kafka.ErrNoError || !p.cfg.Selects(name) || len(t.Partitions) == 0 {
			continue
		}
		want[name] = len(t.Partitions)
	}
	var errs []error
	if p.heartbeats {
		// Internal topics are never selected; this one is mirrored on purpose.
		n, again2, err := p.ensureHeartbeatTopic(ctx, srcAdmin, md)
		if err != nil {
			errs = append(errs, err)
		}
		if n > 0 {
			want[HeartbeatTopic] = n
		}
		again = again2
	}
	tmd, err := tgtAdmin.GetMetadata(nil, true, 10000)
	if err != nil {
		return again, fmt.Errorf("listing topics of target %s (%s): %w", p.targetName, redactedBootstrap(p.target.Bootstrap), err)
	}
	if err := ensureCheckpointTopic(ctx, tgtAdmin, tmd); err != nil {
		return again, err
	}
	if !p.syncsReady.Load() {
		// Offset syncs are an aid for consumer failover: without the topic
		// the pipeline mirrors on and only the syncs wait.
		if err := ensureOffsetSyncTopic(ctx, tgtAdmin, tmd, p.log); err != nil {
			errs = append(errs, err)
		} else {
			p.syncsReady.Store(true)
		}
	}

	ids, err := describeTopicIDs(ctx, srcAdmin, want)
	if err != nil {
		// Not a failed refresh: without ids a re-created topic is only
		// caught by its offsets (see Task.resetOffset), and mirroring goes
		// on. Said once per distinct error, not every refresh.
		if msg := err.Error(); msg != p.idErr {
			p.idErr = msg
			p.log.Warn("cannot read the source topics' ids; a topic deleted and created again is recognised only by its offsets",
				"source", p.sourceName, "err", err)
		}
	} else {
		p.idErr = ""
	}

	ready := map[string]int{}
	var create []string
	for src, n := range want {
		dst := p.cfg.TargetTopic(src)
		t, ok := tmd.Topics[dst]
		switch {
		case !ok || t.Error.Code() == kafka.ErrUnknownTopicOrPart:
			create = append(create, src)
		case t.Error.Code() != kafka.ErrNoError:
			errs = append(errs, fmt.Errorf("target topic %s: %w", dst, t.Error))
		case len(t.Partitions) < n:
			if err := growPartitions(ctx, tgtAdmin, dst, n); err != nil {
				errs = append(errs, err)
				ready[src] = len(t.Partitions) // mirror what fits; the rest follows
				continue
			}
			p.log.Info("grew target topic to follow its source", "source_topic", src, "topic", dst, "partitions", n)
			ready[src] = n
		default:
			ready[src] = n
		}
	}
	// One description of the source topics' settings serves the creation of
	// target topics and the sync of the existing ones (topicconfig.go).
	srcConfigs, srcErr := describeByName(ctx, srcAdmin, slices.Sorted(maps.Keys(want)))
	if srcErr != nil {
		srcErr = fmt.Errorf("describing the settings of %d source topics of %s: %w", len(want), p.sourceName, srcErr)
	}
	errs = append(errs, srcErr)
	created := map[string]int{}
	if len(create) > 0 {
		sort.Strings(create)
		if srcErr == nil {
			var err error
			created, err = p.createTargets(ctx, tgtAdmin, create, want, srcConfigs)
			errs = append(errs, err)
			for t, n := range created {
				ready[t] = n
			}
		}
	}
	// Before publishing: tasks size their batches by these limits, so a
	// new target topic whose limits are not known yet waits a refresh.
	unknown, tgtConfigs, err := p.readLimits(ctx, tgtAdmin, ready)
	errs = append(errs, err)
	for src := range ready {
		if unknown[p.cfg.TargetTopic(src)] {
			delete(ready, src)
			again = true
		}
	}
	if srcErr == nil && tgtConfigs != nil {
		var existing []string
		for src := range ready {
			if _, ok := created[src]; !ok {
				existing = append(existing, src)
			}
		}
		if p.syncTopicConfigs(ctx, tgtAdmin, existing, srcConfigs, tgtConfigs) {
			p.limits.ask() // read the new limits now, not a refresh_interval later
		}
	}
	p.publish(ready, present, ids)
	return again, errors.Join(errs...)
}

// describeTopicIDs returns the topic ids of the named source topics; topics
// the source gives no id for (a zero id, from brokers before Kafka 2.8) are
// left out.
func describeTopicIDs(ctx context.Context, admin *kafka.AdminClient, topics map[string]int) (map[string]string, error) {
	if len(topics) == 0 {
		return map[string]string{}, nil
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	sort.Strings(names)
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := admin.DescribeTopics(dctx, kafka.NewTopicCollectionOfTopicNames(names))
	if err != nil {
		return nil, fmt.Errorf("describing %d topics for their ids: %w", len(names), err)
	}
	out := make(map[string]string, len(res.TopicDescriptions))
	for _, d := range res.TopicDescriptions {
		if d.Error.Code() != kafka.ErrNoError {
			continue
		}
		if id := topicIDString(d.TopicID); id != "" {
			out[d.Name] = id
		}
	}
	return out, nil
}

// topicIDString is a topic id as Kafka's tools print it, "" for the zero id.
func topicIDString(id kafka.UUID) string {
	if id.GetMostSignificantBits() == 0 && id.GetLeastSignificantBits() == 0 {
		return ""
	}
	return id.String()
}

// ensureHeartbeatTopic creates the heartbeat topic in the source, or grows it
// to hbPartitions, and returns its partition count once the source's metadata
// shows it (0 before), and whether to look again soon.
func (p *Pipeline) ensureHeartbeatTopic(ctx context.Context, srcAdmin *kafka.AdminClient, md *kafka.Metadata) (n int, again bool, err error) {
	t, ok := md.Topics[HeartbeatTopic]
	switch {
	case !ok || t.Error.Code() == kafka.ErrUnknownTopicOrPart:
		if err := createTopic(ctx, srcAdmin, heartbeatTopicSpec(p.hbPartitions)); err != nil {
			return 0, false, fmt.Errorf("source %s: %w", p.sourceName, err)
		}
		p.log.Info("created the heartbeat topic in the source", "topic", HeartbeatTopic, "partitions", p.hbPartitions)
		return 0, true, nil // mirrored once the metadata shows it
	case t.Error.Code() == kafka.ErrLeaderNotAvailable:
		return 0, true, nil // just created
	case t.Error.Code() != kafka.ErrNoError:
		return 0, false, fmt.Errorf("source %s: topic %s: %w", p.sourceName, HeartbeatTopic, t.Error)
	case len(t.Partitions) < p.hbPartitions:
		if err := growPartitions(ctx, srcAdmin, HeartbeatTopic, p.hbPartitions); err != nil {
			return len(t.Partitions), false, fmt.Errorf("source %s: %w", p.sourceName, err)
		}
		p.log.Info("grew the heartbeat topic in the source to the largest task count", "topic", HeartbeatTopic, "partitions", p.hbPartitions)
		return len(t.Partitions), true, nil
	}
	return len(t.Partitions), false, nil
}

// describeTopicConfigs reads the configuration of topics (15 s at most).
func describeTopicConfigs(ctx context.Context, admin *kafka.AdminClient, topics []string) ([]kafka.ConfigResourceResult, error) {
	res := make([]kafka.ConfigResource, len(topics))
	for i, t := range topics {
		res[i] = kafka.ConfigResource{Type: kafka.ResourceTopic, Name: t}
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return admin.DescribeConfigs(cctx, res)
}

// createTargets creates the target topics of new source topics with the source's
// partition count and mirrored settings (described: the source topics'
// configs by name). It returns those that now exist.
func (p *Pipeline) createTargets(ctx context.Context, tgtAdmin *kafka.AdminClient, topics []string, parts map[string]int, described map[string]kafka.ConfigResourceResult) (map[string]int, error) {
	configs := map[string]map[string]string{}
	for _, t := range topics {
		if r, ok := described[t]; ok && r.Error.Code() == kafka.ErrNoError {
			configs[t] = p.mirroredConfigs(r)
		}
	}
	var specs []kafka.TopicSpecification
	for _, t := range topics {
		c, ok := configs[t]
		if !ok {
			continue // described with an error: retry on the next refresh
		}
		specs = append(specs, kafka.TopicSpecification{
			Topic: p.cfg.TargetTopic(t), NumPartitions: parts[t], ReplicationFactor: -1, Config: c,
		})
	}
	created := map[string]int{}
	if len(specs) == 0 {
		return created, fmt.Errorf("describing source topics %v: no result", topics)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	results, err := tgtAdmin.CreateTopics(cctx, specs)
	if err != nil {
		return created, fmt.Errorf("creating target topics: %w", err)
	}
	var errs []error
	byTarget := map[string]string{}
	for _, t := range topics {
		byTarget[p.cfg.TargetTopic(t)] = t
	}
	for _, r := range results {
		src := byTarget[r.Topic]
		switch r.Error.Code() {
		case kafka.ErrNoError:
			created[src] = parts[src]
			if p.wasMirrored(src) {
				// Someone deleted the target topic under a running pipeline:
				// what it held is gone. Mirroring goes on from the checkpoints.
				p.deps.Metrics.TargetRecreated.WithLabelValues(p.cfg.Name, r.Topic).Inc()
				p.log.Error("target topic was deleted while mirrored; re-created it with the source's settings. "+
					"The records mirrored before the deletion are gone from the target; mirroring continues from the checkpoints",
					"topic", r.Topic, "source_topic", src, "partitions", parts[src], "config", configs[src])
				continue
			}
			p.log.Info("created target topic", "source_topic", src, "topic", r.Topic, "partitions", parts[src], "config", configs[src])
		case kafka.ErrTopicAlreadyExists:
			// Another node (or task) was first; its next refresh checks partitions.
			created[src] = parts[src]
		default:
			errs = append(errs, fmt.Errorf("creating target topic %s for %s: %w", r.Topic, src, r.Error))
		}
	}
	return created, errors.Join(errs...)
}

// wasMirrored reports whether the pipeline has published a source topic as
// ready (its target topic existed) and still selects it.
func (p *Pipeline) wasMirrored(src string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.topics[src]
	return ok
}

func growPartitions(ctx context.Context, admin *kafka.AdminClient, topic string, n int) error {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := admin.CreatePartitions(cctx, []kafka.PartitionsSpecification{{Topic: topic, IncreaseTo: n}})
	if err != nil {
		return fmt.Errorf("growing topic %s to %d partitions: %w", topic, n, err)
	}
	for _, r := range res {
		if c := r.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrInvalidPartitions {
			return fmt.Errorf("growing topic %s to %d partitions: %w", topic, n, r.Error)
		}
	}
	return nil
}

// ensureCheckpointTopic creates _tributary.checkpoints in the target when missing:
// one partition (its traffic is small, and one partition gives one order), compacted,
// with segments that roll often enough for compaction to keep task start-up fast.
func ensureCheckpointTopic(ctx context.Context, admin *kafka.AdminClient, md *kafka.Metadata) error {
	if t, ok := md.Topics[CheckpointTopic]; ok && t.Error.Code() == kafka.ErrNoError {
		return nil
	}
	return createTopic(ctx, admin, kafka.TopicSpecification{
		Topic: CheckpointTopic, NumPartitions: 1, ReplicationFactor: -1,
		Config: map[string]string{
			"cleanup.policy":            "compact",
			"segment.ms":                "600000",
			"segment.bytes":             strconv.Itoa(64 << 20),
			"min.cleanable.dirty.ratio": "0.1",
		},
	})
}

// createTopic creates one topic; one that already exists (another node or task
// was first) is fine.
func createTopic(ctx context.Context, admin *kafka.AdminClient, spec kafka.TopicSpecification) error {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := admin.CreateTopics(cctx, []kafka.TopicSpecification{spec})
	if err != nil {
		return fmt.Errorf("creating %s: %w", spec.Topic, err)
	}
	for _, r := range res {
		if c := r.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrTopicAlreadyExists {
			return fmt.Errorf("creating %s: %w", spec.Topic, r.Error)
		}
	}
	return nil
}

// publish makes ready the table of mirrored topics. present holds the topics
// the source listing showed (nil: unknown, nothing is dropped); ids the source
// topic ids found by this refresh (nil: none, the previous ones stay).
func (p *Pipeline) publish(ready map[string]int, present map[string]bool, ids map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The first refresh always signals, even when it finds nothing: tasks wait
	// for it in firstPartitions.
	same := p.ready && len(ready) == len(p.topics)
	if !p.ready {
		p.initial = map[string]bool{}
		for t := range ready {
			p.initial[t] = true
		}
	}
	p.ready = true

	// Source topics deleted: their partitions are dropped (the tasks unassign
	// them and remove their lag series); the others go on. Their checkpoints
	// stay in the target, marked with the old topic's id, so a topic created
	// again under the name is read from its own beginning.
	var gone []string
	if present != nil {
		for t := range p.topics {
			if !present[t] {
				gone = append(gone, t)
			}
		}
	}
	slices.Sort(gone)
	for _, t := range gone {
		n := p.topics[t]
		parts := make([]int32, n)
		for i := range parts {
			parts[i] = int32(i)
		}
		p.log.Warn("source topic deleted (the source no longer lists it); its partitions are no longer mirrored, the pipeline's other topics go on",
			"topic", t, "partitions", parts, "topic_id", p.ids[t])
		delete(p.topics, t)
		delete(p.ids, t)
		// A topic created again later is a new topic: read from its beginning.
		delete(p.initial, t)
		p.deps.Metrics.TargetRecreated.DeleteLabelValues(p.cfg.Name, p.cfg.TargetTopic(t))
		same = false
	}
	// Source topics re-created between two refreshes: a new id. The tasks
	// drop the old topic's partitions and read the new one from its beginning.
	recreated := map[string]bool{}
	for t, id := range ids {
		if old := p.ids[t]; old != "" && old != id {
			if _, ok := p.topics[t]; ok {
				p.log.Warn("source topic was deleted and created again (new topic id); mirroring the new topic from its beginning",
					"topic", t, "old_topic_id", old, "topic_id", id)
				recreated[t] = true
				same = false
			}
		}
		if p.ids[t] != id {
			same = false
		}
		p.ids[t] = id
	}

	for t, n := range ready {
		if old, ok := p.topics[t]; !ok || old != n {
			same = false
		}
		if old, ok := p.topics[t]; ok && old > n && !recreated[t] {
			ready[t] = old // never shrink: partitions do not go away
		}
	}
	selected := len(ready)
	if _, ok := ready[HeartbeatTopic]; ok {
		selected--
	}
	p.deps.Metrics.TopicsMirror.WithLabelValues(p.cfg.Name).Set(float64(selected))
	if same {
		return
	}
	added := []string{}
	for t := range ready {
		if _, ok := p.topics[t]; !ok {
			added = append(added, t)
		}
		// At 0 from the start, so that an alert on its increase sees the first one.
		p.deps.Metrics.TargetRecreated.WithLabelValues(p.cfg.Name, p.cfg.TargetTopic(t))
	}
	slices.Sort(added)
	if len(added) > 0 {
		p.log.Info("mirroring topics", "topics", added)
	}
	// Topics the source still has but whose target is not ready now (an
	// error on the target) stay in the table: their tasks keep them.
	for t, n := range p.topics {
		if _, ok := ready[t]; !ok {
			ready[t] = n
		}
	}
	p.topics = ready
	close(p.changed)
	p.changed = make(chan struct{})
}

// backoff is capped exponential backoff with full jitter avoided on purpose:
// tests and operators read retry intervals from logs, so they stay predictable.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff {
	if max < min {
		max = min
	}
	return &backoff{min: min, max: max}
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur *= 2
	}
	if b.cur > b.max {
		b.cur = b.max
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }
