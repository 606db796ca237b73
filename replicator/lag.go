package replicator

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
)

// lagInterval is how often the pipeline reads its source partitions' ends for
// the lag gauges.
const lagInterval = time.Second

// stalledAfter is how long a partition with lag may make no progress before it
// counts in tributary_stalled_partitions.
const stalledAfter = time.Minute

// lagPart is the replication progress of one source partition of a task, kept
// for the task's whole run on this node rather than one session: when a
// session fails (a target outage makes every commit fail), its lag series stay
// and keep counting, which is what alerts need. The task's sessions write it;
// the pipeline's lag watcher reads it.
type lagPart struct {
	src        Partition
	lag        prometheus.Gauge
	lagSeconds prometheus.Gauge
	// next is the next source offset committed in the target, -1 while unknown.
	next atomic.Int64
	// headTs is the timestamp (ms) of the oldest record read but not yet
	// committed, 0 when none; lastTs the headTs of the last committed batch.
	headTs, lastTs atomic.Int64
	progressAt     atomic.Int64 // unix ns: when next last moved, or the partition was first assigned
}

// lagPart returns the task's progress record of a partition, creating it (and
// its series) on first use.
func (t *Task) lagPart(sp Partition) *lagPart {
	t.lagMu.Lock()
	defer t.lagMu.Unlock()
	if lp, ok := t.lagParts[sp]; ok {
		return lp
	}
	m, name, part := t.p.deps.Metrics, t.p.cfg.Name, strconv.Itoa(int(sp.Partition))
	lp := &lagPart{src: sp, lag: m.Lag.WithLabelValues(name, sp.Topic, part), lagSeconds: m.LagSeconds.WithLabelValues(name, sp.Topic, part)}
	lp.next.Store(-1)
	lp.progressAt.Store(time.Now().UnixNano())
	if t.lagParts == nil {
		t.lagParts = map[Partition]*lagPart{}
	}
	t.lagParts[sp] = lp
	return lp
}

// dropLagPart deletes the lag series of one partition: its source topic was
// deleted (or created again, and its partitions start afresh).
func (t *Task) dropLagPart(sp Partition) {
	t.lagMu.Lock()
	defer t.lagMu.Unlock()
	if _, ok := t.lagParts[sp]; !ok {
		return
	}
	delete(t.lagParts, sp)
	part := strconv.Itoa(int(sp.Partition))
	t.p.deps.Metrics.Lag.DeleteLabelValues(t.p.cfg.Name, sp.Topic, part)
	t.p.deps.Metrics.LagSeconds.DeleteLabelValues(t.p.cfg.Name, sp.Topic, part)
}

// dropLag deletes the task's lag series: it no longer runs on this node.
func (t *Task) dropLag() {
	t.lagMu.Lock()
	defer t.lagMu.Unlock()
	for sp := range t.lagParts {
		part := strconv.Itoa(int(sp.Partition))
		t.p.deps.Metrics.Lag.DeleteLabelValues(t.p.cfg.Name, sp.Topic, part)
		t.p.deps.Metrics.LagSeconds.DeleteLabelValues(t.p.cfg.Name, sp.Topic, part)
	}
	t.lagParts = nil
	t.lag.Store(0)
	t.stalled.Store(0)
}

func (t *Task) lagSnapshot() []*lagPart {
	t.lagMu.Lock()
	defer t.lagMu.Unlock()
	out := make([]*lagPart, 0, len(t.lagParts))
	for _, lp := range t.lagParts {
		out = append(out, lp)
	}
	return out
}

// applyLag sets the task's lag gauges from the source's partition ends (the
// last stable offsets); partitions missing from ends keep their values.
func (t *Task) applyLag(ends map[Partition]int64, now time.Time) {
	var total, stalled int64
	for _, lp := range t.lagSnapshot() {
		hi, ok := ends[lp.src]
		next := lp.next.Load()
		if !ok {
			// Keep the last value (a failed read of the source's ends).
			continue
		}
		if next < 0 {
			next = 0
		}
		lag := max(hi-next, 0)
		lp.lag.Set(float64(lag))
		total += lag
		// Lag in time: the age of the oldest record not yet replicated. Read
		// but uncommitted records give it exactly; otherwise (nothing read, as
		// when the target is stalled) the newest committed record bounds it.
		secs := 0.0
		if lag > 0 {
			if ts := lp.headTs.Load(); ts > 0 {
				secs = float64(now.UnixMilli()-ts) / 1000
			} else if ts := lp.lastTs.Load(); ts > 0 {
				secs = float64(now.UnixMilli()-ts) / 1000
			}
			if now.Sub(time.Unix(0, lp.progressAt.Load())) >= stalledAfter {
				stalled++
			}
		}
		lp.lagSeconds.Set(max(secs, 0))
	}
	t.lag.Store(total)
	t.stalled.Store(stalled)
}

// runningTasks is the set of the pipeline's tasks running on this node: the
// lag watcher and the heartbeat age read them.
type runningTasks struct {
	mu    sync.Mutex
	tasks map[*Task]struct{}
}

func (r *runningTasks) snapshot() []*Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Task, 0, len(r.tasks))
	for t := range r.tasks {
		out = append(out, t)
	}
	return out
}

// watchLag reads the last stable offsets of the partitions of the pipeline's
// running tasks every lagInterval, until ctx ends. It does not depend on the
// tasks' sessions, so lag stays current while they fail and restart (the
// target down) or wait in a commit.
func (p *Pipeline) watchLag(ctx context.Context, admin *kafka.AdminClient) {
	tick := time.NewTicker(lagInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		tasks := p.running.snapshot()
		req := map[kafka.TopicPartition]kafka.OffsetSpec{}
		for _, t := range tasks {
			for _, lp := range t.lagSnapshot() {
				topic := lp.src.Topic
				req[kafka.TopicPartition{Topic: &topic, Partition: lp.src.Partition}] = kafka.LatestOffsetSpec
			}
		}
		if len(req) == 0 {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		res, err := admin.ListOffsets(lctx, req, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadCommitted))
		cancel()
		if err != nil {
			// The source is unreachable: the gauges keep their last values
			// and the tasks report the outage.
			p.log.Debug("reading source partition ends for lag failed", "err", err)
			continue
		}
		ends := make(map[Partition]int64, len(res.ResultInfos))
		for tp, info := range res.ResultInfos {
			if info.Error.Code() == kafka.ErrNoError && info.Offset >= 0 && tp.Topic != nil {
				ends[Partition{*tp.Topic, tp.Partition}] = int64(info.Offset)
			}
		}
		now := time.Now()
		for _, t := range tasks {
			t.applyLag(ends, now)
		}
	}
}
