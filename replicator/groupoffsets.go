package replicator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/kafkaclient"
)

// ErrNoGroupOffsets reports that a consumer group has no committed offsets for
// any topic the selected pipelines mirror (an unknown group among them).
var ErrNoGroupOffsets = errors.New("replicator: consumer group has no committed offsets for mirrored topics")

type noGroupOffsetsError struct{ msg string }

func (e *noGroupOffsetsError) Error() string        { return e.msg }
func (e *noGroupOffsetsError) Is(target error) bool { return target == ErrNoGroupOffsets }

// TranslatedOffset is one partition of a consumer group: its committed offset
// in the source, and the offset in the target topic from which a consumer
// reads the same records on (none twice, none skipped).
type TranslatedOffset struct {
	Pipeline      string `json:"pipeline"`
	SourceCluster string `json:"source_cluster"`
	SourceTopic   string `json:"source_topic"`
	Partition     int32  `json:"partition"`
	SourceOffset  int64  `json:"source_offset"`
	TargetTopic   string `json:"target_topic"`
	// TargetOffset is -1 when Error is set.
	TargetOffset int64 `json:"target_offset"`
	// Exact is false for pipelines without lineage headers: the offset is one
	// past the newest offset sync below SourceOffset, so a consumer may read
	// some records again but never misses one.
	Exact bool   `json:"exact"`
	Error string `json:"error,omitempty"`
	// notMirrored: Error says the partition is not mirrored up to
	// SourceOffset yet (a state, not a failure: it will be).
	notMirrored bool
}

// GroupOffsets is a consumer group's translation.
type GroupOffsets struct {
	Group   string             `json:"group"`
	Offsets []TranslatedOffset `json:"offsets"`
}

// Failed returns the partitions that could not be translated.
func (g *GroupOffsets) Failed() []TranslatedOffset {
	var out []TranslatedOffset
	for _, o := range g.Offsets {
		if o.Error != "" {
			out = append(out, o)
		}
	}
	return out
}

// translateJob is one (pipeline, source partition) of the group.
type translateJob struct {
	pc        *config.Pipeline
	out       *TranslatedOffset
	src       Partition
	committed int64
	sync      *offsetSync // newest sync with a source offset below committed
	foreign   map[string]bool
	done      bool
}

// TranslateGroup translates a consumer group's committed offsets in the source
// clusters of the given Kafka pipelines (all of them when pipelines is empty)
// into offsets of their target topics.
//
// For a partition with committed offset C it takes the newest offset sync with
// source offset < C and scans the target partition (read_committed) from the
// record after it (or from the log start) for the first record whose lineage
// headers name the partition and an offset >= C: consuming from there reads
// every record from C on, once, whatever transaction markers, aborted,
// quarantined or skipped records lie in between. When the scan reaches the end
// and the pipeline's checkpoint is >= C, the answer is the end; otherwise the
// partition is reported as not mirrored up to C yet. Without lineage headers
// the answer is the record after the sync (Exact false).
//
// Partitions that cannot be translated carry an Error; the error returned is
// for failures of the whole (clusters unreachable, ErrNoGroupOffsets).
func TranslateGroup(ctx context.Context, cfg *config.Config, group string, pipelines []string) (*GroupOffsets, error) {
	var pcs []*config.Pipeline
	for _, pc := range cfg.Pipelines {
		if pc.Source.Kafka == "" || (len(pipelines) > 0 && !slices.Contains(pipelines, pc.Name)) {
			continue
		}
		pcs = append(pcs, pc)
	}
	for _, name := range pipelines {
		if pc := cfg.Pipeline(name); pc == nil || pc.Source.Kafka == "" {
			return nil, fmt.Errorf("pipeline %q is not a configured Kafka pipeline", name)
		}
	}
	if len(pcs) == 0 {
		return nil, errors.New("no Kafka pipelines configured")
	}
	target, ok := cfg.Kafka[cfg.Target]
	if !ok {
		return nil, fmt.Errorf("target cluster %q is not configured", cfg.Target)
	}

	// The group's committed offsets, per source cluster.
	var sources []string
	for _, pc := range pcs {
		if !slices.Contains(sources, pc.Source.Kafka) {
			sources = append(sources, pc.Source.Kafka)
		}
	}
	slices.Sort(sources)
	var jobs []*translateJob
	var unmirrored []string
	for _, src := range sources {
		committed, err := committedOffsets(ctx, cfg.Kafka[src], src, group)
		if err != nil {
			return nil, err
		}
		js, un := groupJobs(cfg, pcs, src, committed)
		jobs = append(jobs, js...)
		for _, t := range un {
			if !slices.Contains(unmirrored, t) {
				unmirrored = append(unmirrored, t)
			}
		}
	}
	if len(jobs) == 0 {
		var names []string
		for _, pc := range pcs {
			names = append(names, pc.Name)
		}
		detail := "none at all (unknown group?)"
		if len(unmirrored) > 0 {
			slices.Sort(unmirrored)
			detail = "only for topics not mirrored: " + strings.Join(unmirrored, ", ")
		}
		return nil, &noGroupOffsetsError{fmt.Sprintf("consumer group %q has no committed offsets in source cluster(s) %s for topics mirrored by pipeline(s) %s: %s",
			group, strings.Join(sources, ", "), strings.Join(names, ", "), detail)}
	}
	// Checkpoints first: a checkpoint >= C read before the scan means every
	// record below C was committed in the target before the scan began.
	ckpts := map[string]map[Partition]int64{}
	for _, j := range jobs {
		if _, ok := ckpts[j.pc.Name]; ok {
			continue
		}
		c, err := loadCheckpoints(ctx, target, cfg.Target, j.pc.Name, checkpointReadTimeout, nil)
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: %w", j.pc.Name, err)
		}
		ckpts[j.pc.Name] = c
	}
	want := map[string]bool{}
	for _, j := range jobs {
		want[j.syncPrefix()] = true
	}
	ix, err := readSyncIndex(ctx, target, func(prefix string) bool { return want[prefix] })
	if err != nil {
		return nil, err
	}
	if err := translateJobs(ctx, target, jobs, ckpts, ix); err != nil {
		return nil, err
	}
	out := &GroupOffsets{Group: group}
	for _, j := range jobs {
		out.Offsets = append(out.Offsets, *j.out)
	}
	return out, nil
}

// groupJobs makes the translation jobs of a group's committed offsets in
// source cluster src: one per (pipeline, partition) of a topic a pipeline in
// pcs mirrors. It also returns the committed topics no pipeline mirrors.
func groupJobs(cfg *config.Config, pcs []*config.Pipeline, src string, committed []kafka.TopicPartition) (jobs []*translateJob, unmirrored []string) {
	for _, tp := range committed {
		mirrored := false
		for _, pc := range pcs {
			if pc.Source.Kafka != src || !pc.Selects(*tp.Topic) {
				continue
			}
			mirrored = true
			sp := Partition{*tp.Topic, tp.Partition}
			jobs = append(jobs, &translateJob{pc: pc, src: sp, committed: int64(tp.Offset), foreign: foreignSources(cfg, pc, sp.Topic),
				out: &TranslatedOffset{Pipeline: pc.Name, SourceCluster: src, SourceTopic: sp.Topic, Partition: sp.Partition,
					SourceOffset: int64(tp.Offset), TargetTopic: pc.TargetTopic(sp.Topic), TargetOffset: -1}})
		}
		if !mirrored && !slices.Contains(unmirrored, *tp.Topic) {
			unmirrored = append(unmirrored, *tp.Topic)
		}
	}
	return jobs, unmirrored
}

// translateJobs translates jobs whose pipelines' checkpoints (read before)
// are in ckpts, starting from the syncs in ix: each job's output gets its
// target offset or its error. It sorts jobs.
func translateJobs(ctx context.Context, target *config.Kafka, jobs []*translateJob, ckpts map[string]map[Partition]int64, ix syncIndex) error {
	slices.SortFunc(jobs, func(a, b *translateJob) int {
		if c := strings.Compare(a.pc.Name, b.pc.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.src.Topic, b.src.Topic); c != 0 {
			return c
		}
		return int(a.src.Partition - b.src.Partition)
	})
	for _, j := range jobs {
		j.sync = ix.below(j.syncPrefix(), j.out.TargetTopic, j.committed)
	}
	var exact, approx []*translateJob
	for _, j := range jobs {
		if j.pc.HasLineage() {
			exact = append(exact, j)
		} else {
			approx = append(approx, j)
		}
	}
	if err := scanTargets(ctx, target, exact, ckpts); err != nil {
		return err
	}
	for _, j := range exact {
		if !j.done {
			approx = append(approx, j) // records without lineage headers on the way
		}
	}
	return approximate(ctx, target, approx)
}

func (j *translateJob) syncPrefix() string {
	return offsetSyncPrefix(j.pc.Name, j.pc.Source.Kafka, j.src)
}

// committedOffsets returns a group's committed offsets in one source cluster.
func committedOffsets(ctx context.Context, k *config.Kafka, name, group string) ([]kafka.TopicPartition, error) {
	admin, err := kafkaclient.NewAdmin(translateAdminConfig(k), nil)
	if err != nil {
		return nil, fmt.Errorf("creating admin client for %s: %w", name, err)
	}
	defer admin.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := admin.ListConsumerGroupOffsets(cctx, []kafka.ConsumerGroupTopicPartitions{{Group: group}}, kafka.SetAdminRequireStableOffsets(true))
	if kafkaCode(err) == kafka.ErrGroupIDNotFound {
		return nil, nil // Kafka answers an unknown group with no offsets; some brokers with this
	}
	if err != nil {
		return nil, fmt.Errorf("reading the committed offsets of group %q in %s (%s): %w", group, name, redactedBootstrap(k.Bootstrap), err)
	}
	var out []kafka.TopicPartition
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Error != nil {
				return nil, fmt.Errorf("reading the committed offset of group %q for %s/%d in %s: %w", group, *tp.Topic, tp.Partition, name, tp.Error)
			}
			if tp.Topic != nil && tp.Offset >= 0 {
				out = append(out, tp)
			}
		}
	}
	return out, nil
}

// foreignSources are the other source clusters whose pipelines write the same
// target topic as pc does for topic: their records in it are not pc's.
func foreignSources(cfg *config.Config, pc *config.Pipeline, topic string) map[string]bool {
	dst := pc.TargetTopic(topic)
	out := map[string]bool{}
	for _, q := range cfg.Pipelines {
		if q.Source.Kafka != "" && q.Source.Kafka != pc.Source.Kafka && q.Selects(topic) && q.TargetTopic(topic) == dst {
			out[q.Source.Kafka] = true
		}
	}
	return out
}

// syncIndex is the offset syncs read from the target, by source partition
// (offsetSyncPrefix): the slots of its sparse history and, from older
// versions, its legacy one-key records.
type syncIndex map[string][]offsetSync

// readSyncIndex reads the committed syncs of the partitions keep selects.
// The topic is compacted (offsetsync.go), so it holds about syncSlots
// records per partition ever mirrored, plus its uncompacted head.
func readSyncIndex(ctx context.Context, target *config.Kafka, keep func(prefix string) bool) (syncIndex, error) {
	ix := syncIndex{}
	err := readTopic(ctx, target, OffsetSyncTopic, func(m *kafka.Message) {
		prefix, ok := offsetSyncPartition(m.Key)
		if !ok || !keep(prefix) {
			return
		}
		if s, ok := decodeOffsetSync(m.Value); ok {
			ix[prefix] = append(ix[prefix], s)
		}
	})
	return ix, err
}

// below returns the newest sync of a partition into targetTopic with a source
// offset below c (for at-least-once pipelines, whose syncs may repeat a
// source offset, the later target offset), nil when there is none.
func (ix syncIndex) below(prefix, targetTopic string, c int64) *offsetSync {
	var best *offsetSync
	for i := range ix[prefix] {
		s := &ix[prefix][i]
		if s.SourceOffset >= c || s.TargetTopic != targetTopic {
			continue
		}
		if best == nil || s.SourceOffset > best.SourceOffset || (s.SourceOffset == best.SourceOffset && s.TargetOffset > best.TargetOffset) {
			best = s
		}
	}
	return best
}

// readTopic calls fn for every committed record of a topic in the target, up
// to its end when the read started. A missing topic has no records.
func readTopic(ctx context.Context, target *config.Kafka, topic string, fn func(*kafka.Message)) error {
	c, err := kafka.NewConsumer(translateConsumerConfig(target))
	if err != nil {
		return fmt.Errorf("creating a consumer for %s: %w", topic, err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		return fmt.Errorf("reading metadata of %s: %w", topic, err)
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() == kafka.ErrUnknownTopicOrPart || len(tm.Partitions) == 0 {
		return nil
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return fmt.Errorf("reading metadata of %s: %w", topic, tm.Error)
	}
	var tps []kafka.TopicPartition
	for _, p := range tm.Partitions {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
	}
	if err := c.Assign(tps); err != nil {
		return fmt.Errorf("assigning %s: %w", topic, err)
	}
	eof := map[int32]bool{}
	for len(eof) < len(tps) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error == nil {
				fn(ev)
			}
		case kafka.PartitionEOF:
			eof[ev.Partition] = true
		case kafka.Error:
			if ev.IsFatal() {
				return fmt.Errorf("reading %s: %w", topic, ev)
			}
		}
	}
	return nil
}

// translateAdminConfig is for admin clients of offset translation. It runs in
// the CLI and behind the HTTP API, neither of which hands it a logger, so its
// clients log to stderr, errors only (log_level 3), and the properties Config
// overrides go unreported here; the node's own clients of the same clusters
// report them.
func translateAdminConfig(k *config.Kafka) *kafka.ConfigMap {
	cm, _ := kafkaclient.Config(k, kafkaclient.Admin, nil, kafkaclient.Tuning{"client.id": "tributary-offsets", "log_level": 3})
	return cm
}

// translateConsumerConfig is for readers of the target: the Consumer role
// reads read_committed, which translation depends on.
func translateConsumerConfig(target *config.Kafka) *kafka.ConfigMap {
	cm, _ := kafkaclient.Config(target, kafkaclient.Consumer, kafkaclient.Required{
		"group.id":                 "tributary-offsets-reader", // required by librdkafka; never joined or committed
		"enable.partition.eof":     true,
		"auto.offset.reset":        "earliest",
		"allow.auto.create.topics": false,
	}, kafkaclient.Tuning{
		"client.id":              "tributary-offsets",
		"fetch.queue.backoff.ms": 10,
		"log_level":              3,
	})
	return cm
}

// scanTargets finds, for each job, the first target record of its partition
// from an offset >= the committed one. Jobs on the same target partition (two
// pipelines writing one topic) are scanned in separate rounds.
func scanTargets(ctx context.Context, target *config.Kafka, jobs []*translateJob, ckpts map[string]map[Partition]int64) error {
	for len(jobs) > 0 {
		round := map[Partition]*translateJob{}
		var later []*translateJob
		for _, j := range jobs {
			tp := Partition{j.out.TargetTopic, j.src.Partition}
			if _, busy := round[tp]; busy {
				later = append(later, j)
				continue
			}
			round[tp] = j
		}
		if err := scanRound(ctx, target, round, ckpts); err != nil {
			return err
		}
		jobs = later
	}
	return nil
}

func scanRound(ctx context.Context, target *config.Kafka, round map[Partition]*translateJob, ckpts map[string]map[Partition]int64) error {
	c, err := kafka.NewConsumer(translateConsumerConfig(target))
	if err != nil {
		return fmt.Errorf("creating a consumer for the target: %w", err)
	}
	defer c.Close()
	var tps []kafka.TopicPartition
	for tp, j := range round {
		start := kafka.OffsetBeginning
		if j.sync != nil {
			start = kafka.Offset(j.sync.TargetOffset + 1)
		}
		topic := tp.Topic
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: tp.Partition, Offset: start})
	}
	if err := c.Assign(tps); err != nil {
		return fmt.Errorf("assigning target partitions: %w", err)
	}
	pending := len(round)
	finish := func(tp kafka.TopicPartition) {
		pending--
		c.IncrementalUnassign([]kafka.TopicPartition{tp})
	}
	for pending > 0 {
		if err := ctx.Err(); err != nil {
			var left []string
			for tp, j := range round {
				if !j.done {
					left = append(left, tp.String())
				}
			}
			slices.Sort(left)
			return fmt.Errorf("scanning target partitions %s: %w", strings.Join(left, ", "), err)
		}
		switch ev := c.Poll(100).(type) {
		case *kafka.Message:
			if ev.TopicPartition.Error != nil {
				continue
			}
			j := round[Partition{*ev.TopicPartition.Topic, ev.TopicPartition.Partition}]
			if j == nil || j.done {
				continue
			}
			off, mine, ok := lineageOf(ev, j)
			switch {
			case !ok:
				// Written without lineage headers (before they were turned
				// on, or by another writer): the approximate answer (the
				// job stays not done).
				finish(ev.TopicPartition)
				delete(round, Partition{*ev.TopicPartition.Topic, ev.TopicPartition.Partition})
			case mine && off >= j.committed:
				j.out.TargetOffset, j.out.Exact, j.done = int64(ev.TopicPartition.Offset), true, true
				finish(ev.TopicPartition)
			}
		case kafka.PartitionEOF:
			j := round[Partition{*ev.Topic, ev.Partition}]
			if j == nil || j.done {
				continue
			}
			j.done = true
			finish(kafka.TopicPartition(ev))
			ck, ok := ckpts[j.pc.Name][j.src]
			if (ok && ck >= j.committed) || (!ok && j.committed == 0) {
				// Every record below C is in the target, none from C on yet:
				// they will land at the end.
				j.out.TargetOffset, j.out.Exact = int64(ev.Offset), true
				continue
			}
			cks := "none"
			if ok {
				cks = strconv.FormatInt(ck, 10)
			}
			j.out.notMirrored = true
			j.out.Error = fmt.Sprintf("not mirrored up to %s/%d offset %d yet (checkpoint %s)", j.src.Topic, j.src.Partition, j.committed, cks)
		case kafka.Error:
			if ev.IsFatal() {
				return fmt.Errorf("scanning the target: %w", ev)
			}
		}
	}
	return nil
}

// lineageOf reads a target record's lineage: the source offset it came from,
// whether it came from the job's source partition, and ok false when it has no
// lineage headers at all (and is not from a foreign source).
func lineageOf(m *kafka.Message, j *translateJob) (off int64, mine, ok bool) {
	var topic, part, offset, origin []byte
	var hasOffset bool
	// The last lineage headers are the pipeline's own: a record mirrored
	// twice keeps the first hop's headers before them.
	for _, h := range m.Headers {
		switch h.Key {
		case HeaderOriginTopic:
			topic = h.Value
		case HeaderOriginPartition:
			part = h.Value
		case HeaderOriginOffset:
			offset, hasOffset = h.Value, true
		case HeaderOrigin:
			origin = h.Value
		}
	}
	if origin != nil && j.foreign[string(origin)] {
		return 0, false, true
	}
	if !hasOffset {
		return 0, false, false
	}
	n, err := strconv.ParseInt(string(offset), 10, 64)
	if err != nil || n < 0 {
		return 0, false, false
	}
	// ParseInt with 32 bits: Atoi and a conversion to int32 read partition
	// 4294967296 as partition 0.
	p, err := strconv.ParseInt(string(part), 10, 32)
	if err != nil || string(topic) != j.src.Topic || int32(p) != j.src.Partition {
		return n, false, true
	}
	return n, true, true
}

// approximate answers jobs without lineage: the record after the newest sync
// below the committed offset (exact when that sync is the record just before
// it), or the target log start.
func approximate(ctx context.Context, target *config.Kafka, jobs []*translateJob) error {
	if len(jobs) == 0 {
		return nil
	}
	c, err := kafka.NewConsumer(translateConsumerConfig(target))
	if err != nil {
		return fmt.Errorf("creating a consumer for the target: %w", err)
	}
	defer c.Close()
	for _, j := range jobs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if j.sync != nil {
			j.out.TargetOffset = j.sync.TargetOffset + 1
			j.out.Exact = j.sync.SourceOffset == j.committed-1
			continue
		}
		lo, _, err := c.QueryWatermarkOffsets(j.out.TargetTopic, j.src.Partition, 10000)
		if err != nil {
			j.out.Error = fmt.Sprintf("reading the log start of %s/%d: %v", j.out.TargetTopic, j.src.Partition, err)
			continue
		}
		j.out.TargetOffset, j.out.Exact = lo, j.committed == 0
	}
	return nil
}

// ApplyGroupOffsets commits translated offsets for the group in the target
// cluster, so that its consumers continue there. It refuses while the group
// has active members in the target (they would overwrite the offsets) and
// when any partition failed to translate.
func ApplyGroupOffsets(ctx context.Context, cfg *config.Config, g *GroupOffsets) error {
	if failed := g.Failed(); len(failed) > 0 {
		return fmt.Errorf("not committing offsets for group %q: %d partitions could not be translated", g.Group, len(failed))
	}
	target, ok := cfg.Kafka[cfg.Target]
	if !ok {
		return fmt.Errorf("target cluster %q is not configured", cfg.Target)
	}
	admin, err := kafkaclient.NewAdmin(translateAdminConfig(target), nil)
	if err != nil {
		return fmt.Errorf("creating admin client for %s: %w", cfg.Target, err)
	}
	defer admin.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	desc, err := admin.DescribeConsumerGroups(cctx, []string{g.Group})
	if err != nil {
		return fmt.Errorf("describing group %q in target %s: %w", g.Group, cfg.Target, err)
	}
	for _, d := range desc.ConsumerGroupDescriptions {
		if c := d.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrGroupIDNotFound {
			return fmt.Errorf("describing group %q in target %s: %w", g.Group, cfg.Target, d.Error)
		}
		if len(d.Members) > 0 {
			return fmt.Errorf("group %q has %d active members in target %s (state %s): stop its consumers there first", g.Group, len(d.Members), cfg.Target, d.State)
		}
	}
	var tps []kafka.TopicPartition
	for _, o := range g.Offsets {
		topic := o.TargetTopic
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: o.Partition, Offset: kafka.Offset(o.TargetOffset)})
	}
	res, err := admin.AlterConsumerGroupOffsets(cctx, []kafka.ConsumerGroupTopicPartitions{{Group: g.Group, Partitions: tps}})
	if err != nil {
		return fmt.Errorf("committing offsets for group %q in target %s: %w", g.Group, cfg.Target, err)
	}
	var errs []error
	for _, r := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range r.Partitions {
			if tp.Error != nil {
				errs = append(errs, fmt.Errorf("committing %s/%d for group %q in target %s: %w", *tp.Topic, tp.Partition, g.Group, cfg.Target, tp.Error))
			}
		}
	}
	return errors.Join(errs...)
}

// translateTimeout bounds one offsets translation served over HTTP.
const translateTimeout = 2 * time.Minute

// TranslateHandler serves GET ?group=G[&pipeline=P...]: TranslateGroup's
// result as JSON (partitions that could not be translated carry an error);
// 400 without a group or with an unknown pipeline, 404 when the group has no
// offsets for mirrored topics, 502 when a cluster cannot be read. It only
// reads; committing offsets is the CLI's --apply. It serves one request at a
// time: another one meanwhile gets 429 with Retry-After.
func TranslateHandler(cfg *config.Config) http.Handler {
	// One translation at a time: each reads the offset-sync topic and scans
	// target partitions, so a few concurrent requests would tie up the node. A second request is
	// told to come back, not queued.
	busy := make(chan struct{}, 1)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case busy <- struct{}{}:
			defer func() { <-busy }()
		default:
			w.Header().Set("Retry-After", "5")
			WriteJSON(w, http.StatusTooManyRequests, map[string]string{"error": "another offsets translation is running on this node; retry later"})
			return
		}
		// Longer than the server's write timeout: a translation may take
		// up to its own 2 minutes.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(translateTimeout + 10*time.Second))
		q := r.URL.Query()
		group := q.Get("group")
		if group == "" {
			WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "query parameter group is required"})
			return
		}
		pipelines := q["pipeline"]
		for _, name := range pipelines {
			if pc := cfg.Pipeline(name); pc == nil || pc.Source.Kafka == "" {
				WriteJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("pipeline %q is not a configured Kafka pipeline", name)})
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), translateTimeout)
		defer cancel()
		res, err := TranslateGroup(ctx, cfg, group, pipelines)
		switch {
		case errors.Is(err, ErrNoGroupOffsets):
			WriteJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		case err != nil:
			WriteJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		default:
			WriteJSON(w, http.StatusOK, res)
		}
	})
}
