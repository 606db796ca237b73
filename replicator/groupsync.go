package replicator

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/kafkaclient"
)

// groupSyncTimeout bounds one round of the group offset sync.
const groupSyncTimeout = 5 * time.Minute

// groupSync is the continuous consumer-group offset sync of one pipeline
// (pipelines[].groups): every interval it translates the committed offsets of
// the selected source groups (the exact translation of TranslateGroup) and
// commits them for the same group in the target, where the group has no
// active members, never moving a committed target offset backwards and never
// past what is mirrored.
//
// Where it runs: inside the pipeline's task 0, on the node that runs it, for
// all of the pipeline's partitions. Task assignment is Raft's, so it runs
// once cluster-wide, in the source's region, and moves with the task on
// failover; it stops with the task. Per task for its own partitions was the
// alternative: it would multiply by `tasks` the calls that cost the most here
// (listing and describing groups in both clusters, reading the checkpoints
// and the offset-sync topic), while translation needs nothing a task holds in
// memory: it reads committed checkpoints and target records like the CLI.
// While task 0 moves, the old and the new owner may both run a round; that is
// harmless (the same offsets, never backwards).
//
// It runs on its own goroutine, never the task's record loop, and its errors
// are logged and counted (tributary_group_offset_sync_errors_total), never
// returned: a group that cannot be synced never stops the pipeline.
type groupSync struct {
	p      *Pipeline
	log    *slog.Logger
	synced prometheus.Counter
	errs   prometheus.Counter
	// last is when the last complete round ended (unix ms); the start
	// before the first.
	last atomic.Int64
}

// syncGroups runs the pipeline's group offset sync until ctx ends.
func (p *Pipeline) syncGroups(ctx context.Context, log *slog.Logger) {
	m := p.deps.Metrics
	g := &groupSync{
		p: p, log: log.With("component", "group-offset-sync"),
		synced: m.GroupOffsetsSynced.WithLabelValues(p.cfg.Name),
		errs:   m.GroupSyncErrors.WithLabelValues(p.cfg.Name),
	}
	g.last.Store(p.deps.Now().UnixMilli())
	m.GroupSyncAge.Set(p.cfg.Name, func() float64 {
		return float64(p.deps.Now().UnixMilli()-g.last.Load()) / 1000
	})
	defer m.GroupSyncAge.Delete(p.cfg.Name)

	logs := kafkaclient.NewLogs(g.log)
	defer logs.Close()
	tuning := kafkaclient.Tuning{"client.id": "tributary-" + p.cfg.Name + "-groups"}
	scm, over := kafkaclient.Config(p.source, kafkaclient.Admin, nil, tuning)
	logs.WarnOverridden(p.sourceName, kafkaclient.Admin, over)
	src, err := kafkaclient.NewAdmin(scm, logs)
	if err != nil {
		g.errs.Inc()
		g.log.Error("group offset sync not started: creating the source admin client", "source", p.sourceName, "err", err)
		return
	}
	defer src.Close()
	tcm, over := kafkaclient.Config(p.target, kafkaclient.Admin, nil, tuning)
	logs.WarnOverridden(p.targetName, kafkaclient.Admin, over)
	tgt, err := kafkaclient.NewAdmin(tcm, logs)
	if err != nil {
		g.errs.Inc()
		g.log.Error("group offset sync not started: creating the target admin client", "target", p.targetName, "err", err)
		return
	}
	defer tgt.Close()

	every := p.cfg.GroupInterval()
	g.log.Info("group offset sync running", "interval", every)
	for {
		rctx, cancel := context.WithTimeout(ctx, groupSyncTimeout)
		failed := g.round(rctx, src.AdminClient, tgt.AdminClient, logs)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if failed == 0 {
			g.last.Store(p.deps.Now().UnixMilli())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// fail logs and counts one failure of a round.
func (g *groupSync) fail(msg string, args ...any) {
	g.errs.Inc()
	g.log.Warn(msg, args...)
}

// round syncs every selected group once and returns how many failures it
// met (0: the round is complete). Partitions not mirrored up to the group's
// offset yet are skipped, not failures: the next round takes them.
func (g *groupSync) round(ctx context.Context, src, tgt *kafka.AdminClient, logs *kafkaclient.Logs) (failed int) {
	p := g.p
	fail := func(msg string, args ...any) {
		g.fail(msg, args...)
		failed++
	}
	listed, err := src.ListConsumerGroups(ctx)
	if err != nil {
		fail("listing consumer groups failed", "source", p.sourceName, "err", err)
		return failed
	}
	for _, e := range listed.Errors {
		fail("listing consumer groups failed", "source", p.sourceName, "err", e)
	}
	var groups []string
	for _, l := range listed.Valid {
		if p.cfg.SelectsGroup(l.GroupID) {
			groups = append(groups, l.GroupID)
		}
	}
	if len(groups) == 0 {
		return failed
	}

	// Groups with active members in the target are theirs: their consumers
	// commit there (and the broker would refuse our commit anyway).
	desc, err := tgt.DescribeConsumerGroups(ctx, groups)
	if err != nil {
		fail("describing consumer groups in the target failed", "target", p.targetName, "groups", len(groups), "err", err)
		return failed
	}
	var idle []string
	for _, d := range desc.ConsumerGroupDescriptions {
		switch c := d.Error.Code(); {
		case c != kafka.ErrNoError && c != kafka.ErrGroupIDNotFound:
			fail("describing a consumer group in the target failed", "group", d.GroupID, "target", p.targetName, "err", d.Error)
		case len(d.Members) > 0 || (d.State != kafka.ConsumerGroupStateEmpty && d.State != kafka.ConsumerGroupStateDead && d.State != kafka.ConsumerGroupStateUnknown):
			g.log.Debug("consumer group active in the target; not syncing it", "group", d.GroupID, "members", len(d.Members), "state", d.State.String())
		default:
			idle = append(idle, d.GroupID)
		}
	}
	if len(idle) == 0 {
		return failed
	}

	// Read once per round for all groups: the checkpoints first (a
	// checkpoint >= C read before the scan means every record below C is in
	// the target), then the pipeline's offset syncs.
	ckpt, err := loadCheckpoints(ctx, p.target, p.targetName, p.cfg.Name, checkpointReadTimeout, logs)
	if err != nil {
		fail("reading checkpoints failed", "topic", CheckpointTopic, "err", err)
		return failed
	}
	ckpts := map[string]map[Partition]int64{p.cfg.Name: ckpt}
	prefix := p.cfg.Name + "/" + p.sourceName + "/"
	ix, err := readSyncIndex(ctx, p.target, func(k string) bool { return strings.HasPrefix(k, prefix) })
	if err != nil {
		fail("reading offset syncs failed", "topic", OffsetSyncTopic, "err", err)
		return failed
	}
	for _, group := range idle {
		if ctx.Err() != nil {
			fail("group offset sync round cut short", "err", ctx.Err())
			return failed
		}
		failed += g.syncGroup(ctx, src, tgt, group, ckpts, ix)
	}
	return failed
}

// syncGroup translates and commits one group's offsets; it returns its
// failures.
func (g *groupSync) syncGroup(ctx context.Context, src, tgt *kafka.AdminClient, group string, ckpts map[string]map[Partition]int64, ix syncIndex) (failed int) {
	p := g.p
	res, err := src.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group}}, kafka.SetAdminRequireStableOffsets(true))
	if err != nil {
		g.fail("reading a group's committed offsets in the source failed", "group", group, "source", p.sourceName, "err", err)
		return 1
	}
	var committed []kafka.TopicPartition
	for _, r := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range r.Partitions {
			switch {
			case tp.Error != nil:
				g.fail("reading a group's committed offset in the source failed", "group", group, "topic", *tp.Topic, "partition", tp.Partition, "err", tp.Error)
				failed++
			case tp.Topic != nil && tp.Offset >= 0:
				committed = append(committed, tp)
			}
		}
	}
	jobs, _ := groupJobs(p.conf, []*config.Pipeline{p.cfg}, p.sourceName, committed)
	if len(jobs) == 0 {
		return failed
	}
	if err := translateJobs(ctx, p.target, jobs, ckpts, ix); err != nil {
		g.fail("translating a group's offsets failed", "group", group, "err", err)
		return failed + 1
	}

	// The group's offsets in the target now: never move one backwards
	// (its consumers there may have gone further, or an earlier round).
	var want []kafka.TopicPartition
	for _, j := range jobs {
		topic := j.out.TargetTopic
		want = append(want, kafka.TopicPartition{Topic: &topic, Partition: j.src.Partition})
	}
	cur, err := tgt.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: want}}, kafka.SetAdminRequireStableOffsets(true))
	if err != nil && kafkaCode(err) != kafka.ErrGroupIDNotFound {
		g.fail("reading a group's committed offsets in the target failed", "group", group, "target", p.targetName, "err", err)
		return failed + 1
	}
	now := map[Partition]int64{}
	for _, r := range cur.ConsumerGroupsTopicPartitions {
		for _, tp := range r.Partitions {
			if tp.Error != nil {
				g.fail("reading a group's committed offset in the target failed", "group", group, "topic", *tp.Topic, "partition", tp.Partition, "err", tp.Error)
				now[Partition{*tp.Topic, tp.Partition}] = 1<<63 - 1 // unknown: leave it alone
				failed++
				continue
			}
			if tp.Topic != nil && tp.Offset >= 0 {
				now[Partition{*tp.Topic, tp.Partition}] = int64(tp.Offset)
			}
		}
	}
	var commit []kafka.TopicPartition
	for _, j := range jobs {
		o := j.out
		if o.Error != "" {
			if o.notMirrored {
				// Never ahead of what is mirrored: the next round takes it.
				g.log.Debug("group offset not mirrored yet; skipped this round", "group", group, "topic", o.SourceTopic, "partition", o.Partition, "offset", o.SourceOffset)
				continue
			}
			g.fail("translating a group's offset failed", "group", group, "topic", o.SourceTopic, "partition", o.Partition, "offset", o.SourceOffset, "err", o.Error)
			failed++
			continue
		}
		if c, ok := now[Partition{o.TargetTopic, o.Partition}]; ok && c >= o.TargetOffset {
			continue
		}
		topic := o.TargetTopic
		commit = append(commit, kafka.TopicPartition{Topic: &topic, Partition: o.Partition, Offset: kafka.Offset(o.TargetOffset)})
	}
	if len(commit) == 0 {
		return failed
	}
	out, err := tgt.AlterConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: commit}})
	if err != nil {
		g.fail("committing a group's offsets in the target failed", "group", group, "target", p.targetName, "partitions", len(commit), "err", err)
		return failed + 1
	}
	n := 0
	for _, r := range out.ConsumerGroupsTopicPartitions {
		for _, tp := range r.Partitions {
			if tp.Error != nil {
				g.fail("committing a group's offset in the target failed", "group", group, "topic", *tp.Topic, "partition", tp.Partition, "offset", int64(tp.Offset), "err", tp.Error)
				failed++
				continue
			}
			n++
		}
	}
	g.synced.Add(float64(n))
	if n > 0 {
		g.log.Debug("group offsets synced", "group", group, "partitions", n)
	}
	return failed
}
