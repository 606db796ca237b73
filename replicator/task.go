package replicator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/internal/kafkaclient"
	"github.com/tributary-dev/tributary/replicator/metrics"
)

// Header names added to mirrored records. Consumers and offset translation
// read them (README, "How mirroring works"): they are part of the interface.
const (
	HeaderOrigin          = governance.HeaderOrigin
	HeaderOriginTopic     = governance.HeaderOriginTopic
	HeaderOriginPartition = governance.HeaderOriginPartition
	HeaderOriginOffset    = governance.HeaderOriginOffset
)

const (
	// maxBatch bounds the records of one transaction, so a commit never has to
	// wait for an unbounded queue and librdkafka's queue never fills.
	maxBatch = 50000
	// commitTimeout bounds one CommitTransaction; past it the task restarts and
	// resumes from its checkpoints (InitTransactions aborts what was left open).
	commitTimeout = 30 * time.Second
	// drainTimeout bounds the last commit on shutdown, so the process exits well
	// within 10 s of SIGTERM.
	drainTimeout = 5 * time.Second
	// checkpointReadTimeout bounds reading _tributary.checkpoints at task start.
	checkpointReadTimeout = 90 * time.Second
	// transactionTimeout is transaction.timeout.ms: how long the broker lets a
	// crashed task's transaction block read_committed readers before aborting it.
	transactionTimeout = 20 * time.Second
	// fencedBackoff is how long a fenced task stands by before it tries again,
	// when the node still runs it: longer than an assignment change takes.
	fencedBackoff = 5 * time.Second
	// healthySession is how long a session must have lasted for its failure
	// to restart the task's backoff from its minimum.
	healthySession = time.Minute
	// slowCommit is how long a commit may take before the task asks its
	// pipeline for a topic refresh (see commit).
	slowCommit = 2 * time.Second
)

// TaskID names a task: the pipeline and the index of the task within it.
type TaskID struct {
	Pipeline string
	Index    int
}

func (id TaskID) String() string { return id.Pipeline + "/" + strconv.Itoa(id.Index) }

// ParseTaskID parses "<pipeline>/<index>".
func ParseTaskID(s string) (TaskID, error) {
	i := bytes.LastIndexByte([]byte(s), '/')
	if i <= 0 {
		return TaskID{}, fmt.Errorf("task id %q: want <pipeline>/<index>", s)
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil || n < 0 {
		return TaskID{}, fmt.Errorf("task id %q: bad index", s)
	}
	return TaskID{Pipeline: s[:i], Index: n}, nil
}

// TaskStatus is a snapshot of a task for the status API.
type TaskStatus struct {
	ID          string `json:"id"`
	Pipeline    string `json:"pipeline"`
	State       string `json:"state"`
	Partitions  int    `json:"partitions"`
	Lag         int64  `json:"lag_records"`
	Replicated  int64  `json:"replicated"`
	Skipped     int64  `json:"skipped"`
	Quarantined int64  `json:"quarantined"`
	Error       string `json:"error,omitempty"`
}

// Task mirrors the source partitions that its pipeline assigns to its index.
type Task struct {
	p   *Pipeline
	id  TaskID
	log *slog.Logger

	state       atomic.Value // string
	lastErr     atomic.Value // string
	partitions  atomic.Int64
	lag         atomic.Int64
	replicated  atomic.Int64
	skipped     atomic.Int64
	quarantined atomic.Int64
	stalled     atomic.Int64
	// heartbeatAt is the timestamp (unix ms) of the task's newest heartbeat
	// committed in the target; the task's start until the first one arrives.
	heartbeatAt atomic.Int64
	// lagParts holds the progress of each partition for the whole run (see
	// lagPart); lagMu guards the map, not the atomics inside.
	lagMu    sync.Mutex
	lagParts map[Partition]*lagPart

	replicatedCtr, skippedCtr prometheus.Counter
	bytesCtr                  prometheus.Counter
	latency                   prometheus.Observer
	committed, aborted        prometheus.Counter
	expired                   prometheus.Counter

	// poison is what the task learnt about records the target refuses
	// (poison.go); only the Run goroutine touches it, and it outlives sessions.
	poison *poison
	// syncHist is the sparse offset-sync history of each partition the task
	// wrote syncs for (offsetsync.go), read from the target at the first
	// session; only the Run goroutine touches it, and it outlives sessions.
	syncHist       map[Partition]*syncHistory
	syncHistLoaded bool
}

// Task returns task i of the pipeline.
func (p *Pipeline) Task(i int) *Task {
	m := p.deps.Metrics
	t := &Task{
		p: p, id: TaskID{p.cfg.Name, i},
		log:           p.log.With("task", i),
		replicatedCtr: m.Records.WithLabelValues(p.cfg.Name, metrics.Replicated),
		skippedCtr:    m.Records.WithLabelValues(p.cfg.Name, metrics.Skipped),
		bytesCtr:      m.Bytes.WithLabelValues(p.cfg.Name),
		latency:       m.Latency.WithLabelValues(p.cfg.Name),
		committed:     m.Transactions.WithLabelValues(p.cfg.Name, "committed"),
		aborted:       m.Transactions.WithLabelValues(p.cfg.Name, "aborted"),
		expired:       m.Expired.WithLabelValues(p.cfg.Name),
	}
	// Series that exist at 0 from the start, so dashboards and alerts see them.
	m.Records.WithLabelValues(p.cfg.Name, metrics.Quarantined)
	m.Records.WithLabelValues(p.cfg.Name, metrics.Skipped)
	m.Quarantined.WithLabelValues(p.cfg.Name, ReasonTooLarge)
	m.Quarantined.WithLabelValues(p.cfg.Name, ReasonProduceRejected)
	m.TaskRestarts.WithLabelValues(p.cfg.Name)
	m.Expired.WithLabelValues(p.cfg.Name)
	t.state.Store(metrics.TaskStarting)
	t.lastErr.Store("")
	t.heartbeatAt.Store(p.deps.Now().UnixMilli())
	return t
}

// ID returns the task's id.
func (t *Task) ID() TaskID { return t.id }

// Status returns a snapshot; safe to call concurrently with Run.
//
// A starting task without an error of its own shows its pipeline's last
// refresh error: it waits for that refresh (a source that refuses the node's
// credentials keeps it starting), and the operator should see why.
func (t *Task) Status() TaskStatus {
	state, errText := t.state.Load().(string), t.lastErr.Load().(string)
	if errText == "" && state == metrics.TaskStarting {
		errText = t.p.lastError()
	}
	return TaskStatus{
		ID: t.id.String(), Pipeline: t.id.Pipeline, State: state,
		Partitions: int(t.partitions.Load()), Lag: t.lag.Load(),
		Replicated: t.replicated.Load(), Skipped: t.skipped.Load(), Quarantined: t.quarantined.Load(), Error: errText,
	}
}

// Running reports whether the task is past start-up and mirroring.
func (t *Task) Running() bool { return t.state.Load().(string) == metrics.TaskRunning }

// Run mirrors until ctx is cancelled, restarting with backoff after retryable
// errors (each restart resumes from the checkpoints). It returns nil on
// cancellation. A task fenced by a newer instance stands by for fencedBackoff
// and tries again while the node still runs it; the worker stops it when the
// assignment moves away.
func (t *Task) Run(ctx context.Context) error {
	defer t.dropLag()
	defer t.p.track(t)()
	if t.id.Index == 0 && t.p.cfg.SyncsGroups() {
		// The pipeline's group offset sync lives with its task 0 (see
		// groupSync), on a goroutine of its own, and ends with the task.
		gctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			t.p.syncGroups(gctx, t.log)
		}()
		defer func() { cancel(); <-done }()
	}
	b := newBackoff(500*time.Millisecond, 30*time.Second)
	for {
		t.state.Store(metrics.TaskStarting)
		started := time.Now()
		err := t.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			continue
		}
		t.lastErr.Store(err.Error())
		if errors.Is(err, ErrFenced) {
			// Another instance took the task over: the assignment is moving (or
			// two nodes briefly disagree). Stay off for a while; if this node
			// still owns the task then, it takes it back, which fences the other.
			t.state.Store(metrics.TaskFailed)
			t.log.Warn("task fenced by a newer instance; standing by", "retry_in", fencedBackoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(fencedBackoff):
			}
			continue
		}
		if !IsRetryable(err) {
			t.state.Store(metrics.TaskFailed)
			t.log.Error("task stopped", "err", err)
			return err
		}
		t.state.Store(metrics.TaskFailed)
		t.p.deps.Metrics.TaskRestarts.WithLabelValues(t.id.Pipeline).Inc()
		// A deleted target topic fails the session: the pipeline creates
		// it again at its next refresh, which should not wait a whole
		// refresh_interval.
		t.p.refreshSoon()
		if time.Since(started) >= healthySession {
			b.reset() // a failure after a long healthy run starts the backoff afresh
		}
		wait := b.next()
		t.log.Warn("task failed; restarting from checkpoints", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// partState is the task's view of one assigned source partition.
type partState struct {
	src         Partition
	topicID     string  // the source topic's id when assigned, "" if unknown
	target      *string // target topic
	topicHdr    []byte
	partHdr     []byte
	next        int64 // next source offset, as committed in the target
	pending     int64 // next source offset after the open batch
	lastWritten int64 // next offset of the last checkpoint written
	ckpt        int64 // the checkpoint being written (commitBatch)
	// acks are the partition's records in flight (at-least-once, acks.go).
	acks ackQueue
	// lp is the partition's progress for the lag gauges, nil for heartbeats.
	lp *lagPart
	// headTs is the timestamp (ms) of the first record of the open batch,
	// 0 when none.
	headTs int64
	// heartbeat: a partition of the heartbeat topic. Its records are mirrored
	// but are not user data: no transformer, no record/byte/latency metrics,
	// no lag series.
	heartbeat bool
	// Offset sync sampling: the transaction that last sent a record of this
	// partition, when the next sample is due, and whether one is outstanding.
	lastTxn  uint64
	syncDue  time.Time
	sampling bool
}

// session is one life of the task: fresh clients, checkpoints read, mirror until
// an error or cancellation.
func (t *Task) session(ctx context.Context) (err error) {
	p := t.p
	eos := p.cfg.IsExactlyOnce()
	logs := kafkaclient.NewLogs(t.log)
	defer logs.Close()

	// start: latest applies to the topics of the first topic refresh, so wait
	// for it; it also reads the target topics' limits, which size the
	// producer's batches.
	list, changed, ok := p.firstPartitions(ctx, t.id.Index)
	if !ok {
		return nil // cancelled
	}
	t.loadSyncHistory(ctx)
	lim := p.limits.snapshot()
	batchSize := producerBatchSize(lim.min(), userBatchSize(p.target.Properties))

	prole, pconf, over := ProducerConfig(p.target, p.cfg.Name, t.id.Index, eos, p.cfg.Buffer(), batchSize)
	logs.WarnOverridden(p.targetName, prole, over)
	prod, err := kafka.NewProducer(logs.Attach(pconf))
	if err != nil {
		return fmt.Errorf("creating producer for target %s: %w", p.targetName, err)
	}
	// At-least-once, the delivery reports go to the transaction loop
	// through reports (acks.go), in the order they arrive; delivered
	// counts them.
	var reports inbox
	var delivered atomic.Int64
	var evWG sync.WaitGroup
	evWG.Add(1)
	go func() {
		defer evWG.Done()
		for ev := range prod.Events() {
			switch e := ev.(type) {
			case *kafka.Message:
				reports.add(e)
				delivered.Add(1)
			case kafka.Error:
				t.log.Warn("target producer error", "err", e, "fatal", e.IsFatal())
			}
		}
	}()
	defer func() {
		prod.Close()
		evWG.Wait()
	}()

	if eos {
		if err := inSlices(ctx, 60*time.Second, 0, prod.InitTransactions); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return t.classify(fmt.Errorf("initialising transactions (transactional.id %s) on target %s: %w", txnID(p.cfg.Name, t.id.Index), p.targetName, err))
		}
	}
	ckpts, err := loadCheckpointRecords(ctx, p.target, p.targetName, p.cfg.Name, checkpointReadTimeout, logs)
	if err != nil {
		return fmt.Errorf("reading checkpoints: %w", err)
	}

	cconf, over := ConsumerConfig(p.source, p.cfg.Name, t.id.Index, p.cfg.Buffer())
	logs.WarnOverridden(p.sourceName, kafkaclient.Consumer, over)
	cons, err := kafka.NewConsumer(logs.Attach(cconf))
	if err != nil {
		return fmt.Errorf("creating consumer for source %s: %w", p.sourceName, err)
	}
	defer cons.Close()

	parts := map[Partition]*partState{}
	// The lag series outlive the session (see lagPart).
	defer t.partitions.Store(0)
	assign := func(list []Partition) error {
		// Partitions no longer listed (their source topic was deleted) or
		// whose topic has a new id (deleted and created again) are dropped
		// first; the latter are added back below as a new topic.
		want := make(map[Partition]bool, len(list))
		for _, sp := range list {
			want[sp] = true
		}
		var drop []kafka.TopicPartition
		dropped := map[string][]int32{}
		for sp, ps := range parts {
			id := p.topicID(sp.Topic)
			if want[sp] && (ps.topicID == "" || id == "" || ps.topicID == id) {
				if ps.topicID == "" && id != "" {
					ps.topicID = id // learnt late; the next checkpoint carries it
				}
				continue
			}
			// Between transactions: ps.next is committed. Keep it as the
			// partition's checkpoint for this session, with the topic's id,
			// so that the same topic resumes there and a new one does not.
			ckpts[sp] = checkpoint{Offset: ps.next, TopicID: ps.topicID}
			if ps.next < 0 {
				delete(ckpts, sp)
			}
			topic := sp.Topic
			drop = append(drop, kafka.TopicPartition{Topic: &topic, Partition: sp.Partition})
			dropped[sp.Topic] = append(dropped[sp.Topic], sp.Partition)
			delete(parts, sp)
			if ps.lp != nil {
				t.dropLagPart(sp)
			}
		}
		if len(drop) > 0 {
			for topic, ps := range dropped {
				slices.Sort(ps)
				t.log.Warn("dropping the partitions of a source topic that was deleted (or created again)", "topic", topic, "partitions", ps, "remaining", len(parts))
			}
			if err := cons.IncrementalUnassign(drop); err != nil {
				return fmt.Errorf("unassigning the partitions of deleted source topics: %w", err)
			}
		}
		var add []kafka.TopicPartition
		for _, sp := range list {
			if _, ok := parts[sp]; ok {
				continue
			}
			target := p.cfg.TargetTopic(sp.Topic)
			ps := &partState{
				src: sp, topicID: p.topicID(sp.Topic), target: &target, topicHdr: []byte(sp.Topic),
				partHdr:   []byte(strconv.Itoa(int(sp.Partition))),
				heartbeat: sp.Topic == HeartbeatTopic,
			}
			if !ps.heartbeat {
				ps.lp = t.lagPart(sp)
			}
			start := kafka.OffsetBeginning
			cp, ok := ckpts[sp]
			switch decideCheckpoint(cp, ok, ps.topicID) {
			case useCheckpoint:
				start = kafka.Offset(cp.Offset)
				ps.next, ps.pending, ps.lastWritten = cp.Offset, cp.Offset, cp.Offset
				if cp.TopicID == "" && ps.topicID != "" {
					// An old checkpoint: write it again with the topic's id.
					ps.lastWritten = -1
				}
			case staleCheckpoint:
				t.log.Warn("ignoring the checkpoint of an earlier source topic of the same name (deleted and created again); mirroring the new topic from its beginning",
					"partition", sp.String(), "checkpoint", cp.Offset, "checkpoint_topic_id", cp.TopicID, "topic_id", ps.topicID)
				delete(ckpts, sp)
			case noCheckpoint:
				if ps.heartbeat || (p.cfg.Start == "latest" && p.startsAtConfigured(sp.Topic)) {
					// Heartbeats written before the pipeline first ran say nothing.
					start = kafka.OffsetEnd
				}
			}
			if start < 0 {
				ps.next, ps.pending, ps.lastWritten = -1, -1, -1 // learnt from the first record or EOF
			}
			if ps.lp != nil && ps.next >= 0 {
				ps.lp.next.Store(ps.next)
			}
			parts[sp] = ps
			topic := sp.Topic
			add = append(add, kafka.TopicPartition{Topic: &topic, Partition: sp.Partition, Offset: start})
		}
		data := 0
		for _, ps := range parts {
			if !ps.heartbeat {
				data++
			}
		}
		t.partitions.Store(int64(data))
		if len(add) == 0 {
			return nil
		}
		t.log.Info("assigning source partitions", "count", len(add), "total", len(parts))
		if err := cons.IncrementalAssign(add); err != nil {
			return fmt.Errorf("assigning source partitions: %w", err)
		}
		return nil
	}
	if err := assign(list); err != nil {
		return err
	}
	for sp, ps := range parts {
		t.log.Debug("partition start", "partition", sp.String(), "checkpoint", ps.next)
	}
	if p.heartbeats {
		hctx, hcancel := context.WithCancel(ctx)
		hdone := make(chan struct{})
		go func() {
			defer close(hdone)
			t.writeHeartbeats(hctx, logs)
		}()
		defer func() {
			hcancel()
			<-hdone
		}()
	}
	t.state.Store(metrics.TaskRunning)
	t.lastErr.Store("")
	t.log.Info("task running", "partitions", t.partitions.Load(), "heartbeats", p.heartbeats, "exactly_once", eos, "batch_size", batchSize)

	loop := &txLoop{t: t, prod: prod, cons: cons, parts: parts, eos: eos,
		reports: &reports, delivered: &delivered,
		transform: p.deps.Transformers[p.cfg.Name], logs: logs,
		quarantinedCtr: p.deps.Metrics.Records.WithLabelValues(p.cfg.Name, metrics.Quarantined),
		sampler:        newSampler(p.cfg.OffsetSyncInterval.D()), lim: lim}
	loop.index()
	defer func() {
		if loop.quarantine != nil {
			loop.quarantine.close()
		}
	}()
	for {
		select {
		case <-changed:
			list, changed = p.Partitions(t.id.Index)
			if !eos {
				// Reports are matched to partitions: none may be in
				// flight for a partition that is dropped or replaced.
				if err := loop.settle(ctx); err != nil {
					return t.classify(err)
				}
			}
			if err := assign(list); err != nil {
				return err
			}
			loop.index()
		default:
		}
		if err := loop.runTransaction(ctx); err != nil {
			err = loop.txnCause(err)
			loop.notePoison(err)
			return t.classify(err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if nl := p.limits.snapshot(); nl.ver != loop.lim.ver {
			loop.lim = nl
			if b := producerBatchSize(nl.min(), userBatchSize(p.target.Properties)); b != batchSize {
				// Between transactions nothing is open: a new session with a
				// producer of the new batch.size resumes at the checkpoints.
				if !eos {
					if err := loop.settle(ctx); err != nil {
						return t.classify(err)
					}
				}
				t.log.Info("target topic limits changed; restarting the session with a new batch.size", "batch_size", b, "previous", batchSize)
				return nil
			}
		}
	}
}

// classify turns fencing into ErrFenced: Run then stands by for fencedBackoff
// and tries again, while the node still runs the task.
func (t *Task) classify(err error) error {
	switch kafkaCode(err) {
	case kafka.ErrFenced, kafka.ErrProducerFenced, kafka.ErrInvalidProducerEpoch:
		return fmt.Errorf("%w: %s: %w", ErrFenced, t.id, err)
	}
	return err
}

// txLoop is a session's transaction loop. Each runTransaction collects one
// transaction's worth of records and commits it with the checkpoints of the
// partitions it advanced.
type txLoop struct {
	t     *Task
	prod  *kafka.Producer
	cons  *kafka.Consumer
	parts map[Partition]*partState
	eos   bool

	// At-least-once: the delivery reports not yet taken (acks.go), records
	// produced with a report on the producer's events, and the reports the
	// events goroutine has handed on; byTarget finds a report's source
	// partition.
	reports   *inbox
	produced  int64
	delivered *atomic.Int64
	byTarget  map[Partition]*partState
	// acked counts the acknowledged records not yet added to the task's
	// counters (at-least-once counts records when the target has them).
	acked batchCounts

	transform       governance.Transformer // nil: records pass unchanged
	quarantine      *quarantine            // created at the first rejection
	logs            *kafkaclient.Logs
	rec             governance.Record
	quarantinedCtr  prometheus.Counter
	quarantineLogAt time.Time

	ts       []int64        // source timestamps (ms) of the open batch, for latency
	offBuf   []byte         // lineage offset header values of the open batch
	hdrs     []kafka.Header // the headers of the record being produced, reused
	inTxn    bool
	txn      uint64 // counts transactions begun, for partState.lastTxn
	errLogAt time.Time

	sampler *sampler // offset syncs

	// lim are the target topics' limits the session's producer was sized
	// for; per-record checks use the newest.
	lim topicLimits
	// isolating is the suspect record produced alone in the open
	// transaction (poison.go), nil otherwise.
	isolating *isolated
	isoCh     chan kafka.Event // at-least-once: the suspect's delivery report

	// The open batch, reset by runTransaction.
	counts      batchCounts
	heartbeatTs int64  // newest heartbeat of this pipeline in the batch (ms)
	origin      []byte // the source cluster's name, the value of HeaderOrigin
	target      []byte // the target cluster's name: records from it are a cycle
	lineage     bool   // add the lineage headers
	syncs       bool   // the offset sync topic exists: sample records
}

// batchCounts counts the records of the open batch; they are added to the
// task's totals and metrics once the batch is committed.
type batchCounts struct {
	replicated, skipped, quarantined, bytes int
	byReason                                map[string]int // quarantined, by reason
}

// isolated is a suspect record in a transaction of its own.
type isolated struct {
	src    Partition
	offset int64
	target string
}

// runTransaction is one turn of the loop: it polls records into the open
// transaction until the batch is full, commit_interval has passed or ctx is
// cancelled, and then commits them with their checkpoints.
func (l *txLoop) runTransaction(ctx context.Context) error {
	p := l.t.p
	l.counts = batchCounts{}
	l.heartbeatTs = 0
	l.ts = l.ts[:0]
	l.offBuf = l.offBuf[:0]
	l.origin = []byte(p.sourceName)
	l.target = []byte(p.targetName)
	l.lineage = p.cfg.HasLineage()
	l.syncs = p.syncsReady.Load()
	start, window := time.Now(), p.cfg.CommitInterval.D()
	if err := l.poll(ctx, start.Add(window), start.Add(window/caughtUpFraction)); err != nil {
		return err
	}
	if !l.eos && ctx.Err() != nil {
		return l.settle(ctx)
	}
	return l.commitBatch(ctx)
}

// caughtUpFraction decides when an exactly-once transaction ends before
// commit_interval: once it has been open for commit_interval /
// caughtUpFraction and holds records, it commits as soon as the consumer has
// no record ready (the task has processed all its source delivered). A busy
// task always finds records waiting and keeps whole intervals, so its
// throughput and CPU per record are those of fixed windows; a lightly loaded
// one no longer holds what it read for the rest of the interval: at 10,000
// records/s, p99 end-to-end latency fell from ~180 ms to ~100 ms (README,
// "Benchmarks").
const caughtUpFraction = 4

// poll reads source events into the open transaction until maxBatch records
// are in it, deadline has passed, ctx is cancelled or (exactly once) the task
// has caught up with its source after early.
func (l *txLoop) poll(ctx context.Context, deadline, early time.Time) error {
	for l.counts.replicated < maxBatch && ctx.Err() == nil {
		now := time.Now()
		remaining := deadline.Sub(now)
		if remaining <= 0 {
			break
		}
		ms := int(remaining / time.Millisecond)
		if ms > 100 {
			ms = 100
		}
		if ms < 1 {
			ms = 1
		}
		catchUp := l.eos && l.inTxn && !now.Before(early)
		if catchUp {
			ms = 0 // only what the consumer already holds
		}
		ev := l.cons.Poll(ms)
		if ev == nil && catchUp {
			break
		}
		switch e := ev.(type) {
		case *kafka.Message:
			if err := l.record(ctx, e); err != nil {
				return err
			}
		case kafka.PartitionEOF:
			if ps := l.parts[Partition{*e.Topic, e.Partition}]; ps != nil && int64(e.Offset) > ps.pending {
				l.t.log.Debug("end of partition moves past unread offsets", "partition", ps.src.String(), "from", ps.pending, "to", int64(e.Offset))
				// Everything up to the last stable offset was delivered; what lies
				// between is transaction markers or aborted records. Moving past
				// them keeps lag at zero and restarts short.
				ps.pending = int64(e.Offset)
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("source consumer: %w", e)
			}
			if c := e.Code(); c == kafka.ErrAutoOffsetReset || c == kafka.ErrOffsetOutOfRange {
				// The error names no partition: check each against the source log.
				if err := l.resetOutOfRange(); err != nil {
					return err
				}
				continue
			}
			l.logConsumeErr(e)
		}
	}
	return nil
}

// record processes one polled source record: it moves its partition's pending
// offset past it and, unless the record is another pipeline's heartbeat or
// came from the target (a cycle, skipped), transforms it (or quarantines it),
// adds the origin and lineage headers and produces it in the open
// transaction.
func (l *txLoop) record(ctx context.Context, e *kafka.Message) error {
	if err := e.TopicPartition.Error; err != nil {
		if c := kafkaCode(err); (c == kafka.ErrAutoOffsetReset || c == kafka.ErrOffsetOutOfRange) && e.TopicPartition.Topic != nil {
			return l.resetOffset(*e.TopicPartition.Topic, e.TopicPartition.Partition)
		}
		l.logConsumeErr(err)
		return nil
	}
	ps := l.parts[Partition{*e.TopicPartition.Topic, e.TopicPartition.Partition}]
	if ps == nil {
		return nil
	}
	off := int64(e.TopicPartition.Offset)
	pz := l.t.poison
	iso := pz != nil && pz.suspect(ps.src, off)
	if iso && l.inTxn && l.eos {
		// A suspect goes alone: what was read before it commits first.
		if err := l.commitNow(ctx); err != nil {
			return err
		}
	}
	if err := l.begin(); err != nil {
		return err
	}
	hasOrigin, cycle := originOf(e.Headers, l.target)
	if ps.headTs == 0 && e.TimestampType != kafka.TimestampNotAvailable {
		ps.headTs = e.Timestamp.UnixMilli()
		if lp := ps.lp; lp != nil && lp.headTs.Load() == 0 {
			lp.headTs.Store(ps.headTs) // kept when this session fails
		}
	}
	ps.pending = off + 1
	if ps.heartbeat && !isHeartbeatOf(l.t.p.cfg.Name, e.Key) {
		// Another pipeline's heartbeat (they share the topic): that
		// pipeline mirrors it; a second copy would only duplicate it.
		return nil
	}
	if cycle {
		l.counts.skipped++
		return nil
	}
	if iso {
		if c, ok := pz.culprits[ps.src][off]; ok {
			// It failed alone before: the target will not take it.
			reject := &governance.RejectError{Reason: c.reason, Msg: c.msg}
			if err := l.quarantineRecord(ctx, e, reject); err != nil {
				return fmt.Errorf("quarantining %s offset %d (%s): %w", ps.src, off, reject.Reason, err)
			}
			return nil
		}
	}
	// The record as read, for the quarantine should the target refuse it.
	srcKey, srcValue, srcHeaders := e.Key, e.Value, e.Headers
	if ps.heartbeat {
		// Not user data: no transformer (schemas, policies) sees it. (At
		// least once, it counts when acknowledged: ackedRecord.)
		if l.eos && e.TimestampType != kafka.TimestampNotAvailable {
			l.heartbeatTs = max(l.heartbeatTs, e.Timestamp.UnixMilli())
		}
	} else if l.transform != nil {
		l.rec = governance.Record{SourceTopic: ps.src.Topic, TargetTopic: *ps.target, Key: e.Key, Value: e.Value, Headers: e.Headers}
		if err := l.transform.Transform(ctx, &l.rec); err != nil {
			reject, ok := asReject(err)
			if !ok {
				return fmt.Errorf("transforming %s offset %d: %w", ps.src, off, err)
			}
			if err := l.quarantineRecord(ctx, e, reject); err != nil {
				return fmt.Errorf("quarantining %s offset %d (%s): %w", ps.src, off, reject.Reason, err)
			}
			return nil
		}
		e.Key, e.Value, e.Headers = l.rec.Key, l.rec.Value, l.rec.Headers
	}
	if e.TimestampType == kafka.TimestampNotAvailable {
		e.Timestamp = time.Time{}
	} else if !ps.heartbeat && l.eos {
		l.ts = append(l.ts, e.Timestamp.UnixMilli())
	}
	// The headers go out in a buffer the loop reuses: Produce copies them
	// (as it copies key and value), so nothing of them is allocated per
	// record. The source's slice stays as read, for the quarantine.
	hs := append(l.hdrs[:0], e.Headers...)
	if !hasOrigin {
		hs = append(hs, kafka.Header{Key: HeaderOrigin, Value: l.origin})
	}
	if l.lineage {
		start := len(l.offBuf)
		l.offBuf = strconv.AppendInt(l.offBuf, off, 10)
		hs = append(hs,
			kafka.Header{Key: HeaderOriginTopic, Value: ps.topicHdr},
			kafka.Header{Key: HeaderOriginPartition, Value: ps.partHdr},
			kafka.Header{Key: HeaderOriginOffset, Value: l.offBuf[start:len(l.offBuf):len(l.offBuf)]})
	}
	e.Headers, l.hdrs = hs, hs[:0]
	if reject := l.refusal(ps, e); reject != nil {
		e.Key, e.Value, e.Headers = srcKey, srcValue, srcHeaders
		if err := l.quarantineRecord(ctx, e, reject); err != nil {
			return fmt.Errorf("quarantining %s offset %d (%s): %w", ps.src, off, reject.Reason, err)
		}
		return nil
	}
	e.TopicPartition = kafka.TopicPartition{Topic: ps.target, Partition: ps.src.Partition}
	e.Opaque = nil
	var dr chan kafka.Event
	if ps.lastTxn != l.txn {
		// The first record of the transaction in this partition: the
		// only kind that may be sampled (see syncSample).
		ps.lastTxn = l.txn
		if l.syncs && !ps.heartbeat && !(iso && !l.eos) {
			if smp := l.sampler.take(ps, off, time.Now()); smp != nil {
				e.Opaque = smp
				if l.eos {
					dr = l.sampler.ch
				}
				// At least once, its report comes with the others, in
				// order (acks.go), and drainAcks hands it to the sampler.
			}
		}
	}
	if iso && !l.eos {
		// At least once, a suspect's own delivery report says whether the
		// target takes it (no transaction to fail with it). It has its own
		// channel, so nothing else may be in flight (acks.go).
		if err := l.awaitAcks(commitTimeout); err != nil {
			return err
		}
		if l.isoCh == nil {
			l.isoCh = make(chan kafka.Event, 1)
		}
		dr = l.isoCh
	}
	if err := l.produce(ctx, e, dr); err != nil {
		if c := kafkaCode(err); permanentProduceErrors[c] {
			// Refused by the client before it was queued (larger than
			// message.max.bytes): nothing of it is in the transaction.
			reject := culpritReason(*ps.target, err)
			e.Key, e.Value, e.Headers = srcKey, srcValue, srcHeaders
			e.TopicPartition = kafka.TopicPartition{Topic: &ps.src.Topic, Partition: ps.src.Partition, Offset: kafka.Offset(off)}
			if err := l.quarantineRecord(ctx, e, &governance.RejectError{Reason: reject.reason, Msg: reject.msg}); err != nil {
				return fmt.Errorf("quarantining %s offset %d (%s): %w", ps.src, off, reject.reason, err)
			}
			return nil
		}
		return fmt.Errorf("producing %s offset %d to %s: %w", ps.src, off, *ps.target, err)
	}
	if !ps.heartbeat {
		l.counts.replicated++
		l.counts.bytes += len(e.Key) + len(e.Value)
	}
	var ts int64
	if e.TimestampType != kafka.TimestampNotAvailable {
		ts = e.Timestamp.UnixMilli()
	}
	if !l.eos && !iso {
		ps.acks.push(inflight{off: off, ts: ts, size: int32(len(e.Key) + len(e.Value))})
	}
	if iso {
		// Commit it alone (at least once: wait for its report): if the
		// target refuses it now, it is the culprit (notePoison),
		// quarantined when read again.
		l.isolating = &isolated{src: ps.src, offset: off, target: *ps.target}
		if l.eos {
			if err := l.commitNow(ctx); err != nil {
				return err
			}
		} else {
			if err := l.awaitIsolated(ctx); err != nil {
				return fmt.Errorf("producing %s offset %d to %s: %w", ps.src, off, *ps.target, err)
			}
			l.ackedRecord(ps, inflight{off: off, ts: ts, size: int32(len(e.Key) + len(e.Value))}, time.Now().UnixMilli())
		}
		l.isolating = nil
	}
	return nil
}

// awaitIsolated waits for the delivery report of the suspect just produced
// on isoCh (at-least-once mode).
func (l *txLoop) awaitIsolated(ctx context.Context) error {
	l.prod.Flush(0) // no linger for it
	timer := time.NewTimer(commitTimeout)
	defer timer.Stop()
	select {
	case ev := <-l.isoCh:
		if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
			return m.TopicPartition.Error
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("no delivery report within %s", commitTimeout)
	case <-ctx.Done():
		return fmt.Errorf("waiting for a delivery report: %w", ctx.Err())
	}
}

// refusal returns why the target would refuse record m (ready to produce to
// ps's target topic, headers added) for good, or nil: a batch of m alone is
// larger than the topic's max.message.bytes, or the topic is compacted and m
// has no key.
func (l *txLoop) refusal(ps *partState, m *kafka.Message) *governance.RejectError {
	if ps.heartbeat {
		return nil
	}
	if limit := l.lim.of(*ps.target); limit > 0 {
		if size := recordBatchSize(m); !fitsLimit(size, limit) {
			return &governance.RejectError{Reason: ReasonTooLarge, Msg: fmt.Sprintf(
				"%d bytes with the headers tributary adds (key %d, value %d, %d headers) and batch framing, over max.message.bytes %d of target topic %s",
				size, len(m.Key), len(m.Value), len(m.Headers), limit, *ps.target)}
		}
	}
	if m.Key == nil && l.lim.compacted[*ps.target] {
		return &governance.RejectError{Reason: ReasonProduceRejected, Msg: fmt.Sprintf(
			"target topic %s is compacted and the record has no key (the broker refuses it: INVALID_RECORD)", *ps.target)}
	}
	return nil
}

// commitNow commits the open batch in the middle of a poll and starts a new
// one, for a suspect record that must be alone in its transaction.
func (l *txLoop) commitNow(ctx context.Context) error {
	if err := l.commitBatch(ctx); err != nil {
		return err
	}
	l.counts = batchCounts{}
	l.heartbeatTs = 0
	l.ts = l.ts[:0]
	l.offBuf = l.offBuf[:0]
	return nil
}

// txnCause adds to err, when the open transaction failed before err, the
// error that failed it. A record the target refuses puts the transaction in
// an abortable state, and the next Produce then fails with only "Erroneous
// state"; CommitTransaction says why (in that state it cannot commit).
func (l *txLoop) txnCause(err error) error {
	if !l.eos || !l.inTxn || kafkaCode(err) != kafka.ErrState {
		return err
	}
	cctx, cancel := context.WithTimeout(context.Background(), txnSlice)
	cerr := l.prod.CommitTransaction(cctx)
	cancel()
	if cerr == nil {
		// Not reached in librdkafka's state machine (Produce refuses only
		// outside InTransaction); the records then landed without their
		// checkpoints and are read again: say so.
		l.t.log.Error("a transaction committed after a produce failed with an erroneous state; its records may be duplicated in the target", "err", err)
		return err
	}
	return fmt.Errorf("the transaction failed: %w (then: %w)", cerr, err)
}

// notePoison remembers, after a failed transaction, what a permanent produce
// error says (see poison): the records of the failed batch become suspects,
// or, when a suspect was alone in it, that record becomes a culprit. A size
// error also asks the pipeline to read the target's limits again now.
func (l *txLoop) notePoison(err error) {
	code := kafkaCode(err)
	if !permanentProduceErrors[code] {
		return
	}
	t := l.t
	if isSizeError(code) {
		t.p.limits.ask()
	}
	if iso := l.isolating; iso != nil && t.poison != nil {
		l.isolating = nil
		c := culpritReason(iso.target, err)
		if t.poison.culprits[iso.src] == nil {
			t.poison.culprits[iso.src] = map[int64]culprit{}
		}
		t.poison.culprits[iso.src][iso.offset] = c
		t.log.Warn("the target refused a record on its own; it is quarantined when read again",
			"topic", iso.src.Topic, "partition", iso.src.Partition, "offset", iso.offset, "reason", c.reason, "err", err)
		return
	}
	pz := t.poison
	if pz == nil {
		pz = &poison{suspects: map[Partition][2]int64{}, culprits: map[Partition]map[int64]culprit{}}
	}
	pz.code = code
	n := 0
	for sp, ps := range l.parts {
		if ps.pending < 0 || ps.pending == ps.next {
			continue
		}
		r := [2]int64{ps.next, ps.pending}
		if old, ok := pz.suspects[sp]; ok {
			r = [2]int64{min(old[0], r[0]), max(old[1], r[1])}
		}
		pz.suspects[sp] = r
		n++
	}
	if len(pz.suspects) == 0 {
		return
	}
	t.poison = pz
	t.log.Warn("the target refused a batch with a permanent error; its records are produced one at a time to find the culprit",
		"err", err, "partitions", n)
}

// originOf reports whether headers carry HeaderOrigin, and whether any of
// them names target: the record was mirrored from the target (a cycle).
func originOf(headers []kafka.Header, target []byte) (hasOrigin, cycle bool) {
	for _, h := range headers {
		if h.Key == HeaderOrigin {
			hasOrigin = true
			if bytes.Equal(h.Value, target) {
				cycle = true
			}
		}
	}
	return hasOrigin, cycle
}

// commitBatch ends the open batch: it writes the checkpoints of the partitions
// the batch advanced and the offset syncs that are ready, and commits them in
// the transaction of the batch's records (in at-least-once mode, only after
// those records are acknowledged). Quarantined records are acknowledged
// before any checkpoint past them is written. With no transaction open and
// nothing to write, it does nothing.
func (l *txLoop) commitBatch(ctx context.Context) error {
	if !l.eos {
		if err := l.drainAcks(); err != nil {
			return err
		}
	}
	var advanced []*partState
	for _, ps := range l.parts {
		ps.ckpt = ps.pending
		if !l.eos {
			// At least once: not past a record in flight (acks.go).
			ps.ckpt = ps.acks.safe(ps.pending)
		}
		if ps.ckpt != ps.lastWritten && ps.ckpt >= 0 {
			advanced = append(advanced, ps)
		}
	}
	// Offset syncs of records whose transactions committed; an idle
	// pipeline still writes them, in a transaction of their own.
	l.sampler.drain()
	ready := l.sampler.ready(time.Now())
	if len(advanced) == 0 && !l.inTxn && len(ready) == 0 {
		return nil
	}
	if err := l.begin(); err != nil {
		return err
	}
	if l.quarantine != nil {
		// Acknowledged before any checkpoint past the quarantined offsets is written.
		if err := l.quarantine.flush(commitTimeout); err != nil {
			return err
		}
	}
	if err := l.writeCheckpoints(ctx, advanced, ready); err != nil {
		return err
	}
	if err := l.commit(ctx); err != nil {
		return err
	}
	l.committed(advanced)
	return nil
}

// writeCheckpoints produces, in the open transaction, the checkpoints of the
// advanced partitions and the ready offset syncs.
func (l *txLoop) writeCheckpoints(ctx context.Context, advanced []*partState, ready []*syncSample) error {
	p := l.t.p
	task := l.t.id.String()
	for _, ps := range advanced {
		if err := l.produce(ctx, &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: strPtr(CheckpointTopic), Partition: kafka.PartitionAny},
			Key:            checkpointKey(p.cfg.Name, ps.src),
			Value:          encodeCheckpoint(task, ps.ckpt, ps.topicID),
		}, nil); err != nil {
			return fmt.Errorf("writing checkpoint of %s: %w", ps.src, err)
		}
	}
	for _, smp := range ready {
		// The history in memory moves on even if this transaction aborts:
		// the store then keeps older syncs in some slots, each still true.
		h := l.t.syncHist[smp.ps.src]
		if h == nil {
			h = new(syncHistory)
			l.t.syncHist[smp.ps.src] = h
		}
		s := offsetSync{V: 1, SourceOffset: smp.source, TargetTopic: *smp.ps.target, TargetOffset: smp.target, At: smp.at.UnixMilli(), Task: task}
		for _, k := range h.add(s, l.sampler.every) {
			if err := l.produce(ctx, &kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: strPtr(OffsetSyncTopic), Partition: kafka.PartitionAny},
				Key:            offsetSyncKey(p.cfg.Name, p.sourceName, smp.ps.src, k),
				Value:          encodeOffsetSync(h[k]),
			}, nil); err != nil {
				return fmt.Errorf("writing offset sync of %s: %w", smp.ps.src, err)
			}
		}
	}
	return nil
}

// loadSyncHistory reads, once per task life on this node, the offset-sync
// histories of the pipeline's partitions from the target, so that the syncs
// it writes keep extending them instead of overwriting their older slots.
// A failure is logged, not returned: the histories then start afresh, which
// only makes some translations scan further.
func (t *Task) loadSyncHistory(ctx context.Context) {
	if t.syncHistLoaded {
		return
	}
	t.syncHist = map[Partition]*syncHistory{}
	if !t.p.syncsReady.Load() {
		return // the topic is new (or not there yet): nothing to read
	}
	rctx, cancel := context.WithTimeout(ctx, checkpointReadTimeout)
	defer cancel()
	prefix := t.p.cfg.Name + "/" + t.p.sourceName + "/"
	err := readTopic(rctx, t.p.target, OffsetSyncTopic, func(m *kafka.Message) {
		k := string(m.Key)
		if !strings.HasPrefix(k, prefix) || strings.Count(k, "/") != 4 {
			return
		}
		parts := strings.Split(k, "/")
		part, err1 := strconv.ParseInt(parts[3], 10, 32)
		slot, err2 := strconv.Atoi(parts[4])
		s, ok := decodeOffsetSync(m.Value)
		if err1 != nil || err2 != nil || !ok || slot < 0 || slot >= syncSlots {
			return
		}
		src := Partition{parts[2], int32(part)}
		if Owner(src.Topic, src.Partition, t.p.cfg.Tasks) != t.id.Index {
			return
		}
		h := t.syncHist[src]
		if h == nil {
			h = new(syncHistory)
			t.syncHist[src] = h
		}
		h[slot] = s
	})
	if err != nil {
		if ctx.Err() != nil {
			return // cancelled: try again next life
		}
		t.log.Warn("reading the offset-sync history failed; it starts afresh", "topic", OffsetSyncTopic, "err", err)
	}
	t.syncHistLoaded = true
}

// committed records a committed batch: the partitions' committed offsets and
// lag progress, the heartbeat time, latencies, and the task's counters.
func (l *txLoop) committed(advanced []*partState) {
	t := l.t
	l.sampler.committed()
	if l.heartbeatTs > 0 && l.heartbeatTs > t.heartbeatAt.Load() {
		t.heartbeatAt.Store(l.heartbeatTs)
	}
	now := time.Now().UnixMilli()
	for _, ts := range l.ts {
		t.latency.Observe(float64(now-ts) / 1000)
	}
	commitAt := time.Now().UnixNano()
	for _, ps := range advanced {
		// At least once, records may still be in flight: the oldest of
		// them is the head of what is not committed.
		var head int64
		if ps.acks.len() > 0 {
			head = ps.acks.front().ts
		}
		if lp := ps.lp; lp != nil {
			if ps.ckpt != ps.next {
				lp.progressAt.Store(commitAt)
			}
			lp.next.Store(ps.ckpt)
			if ts := lp.headTs.Load(); ts > 0 {
				lp.lastTs.Store(ts)
			}
			lp.headTs.Store(head)
		}
		ps.next, ps.lastWritten = ps.ckpt, ps.ckpt
		ps.headTs = head
	}

	c := l.counts
	if !l.eos {
		// Counted as the target acknowledged them (drainAcks); every one
		// of those is below the checkpoints just written.
		c.replicated, c.bytes = 0, 0
		l.publishAcked()
	}
	t.replicated.Add(int64(c.replicated))
	t.skipped.Add(int64(c.skipped))
	t.quarantined.Add(int64(c.quarantined))
	l.quarantinedCtr.Add(float64(c.quarantined))
	for reason, n := range c.byReason {
		t.p.deps.Metrics.Quarantined.WithLabelValues(t.id.Pipeline, reason).Add(float64(n))
	}
	if pz := t.poison; pz != nil {
		for _, ps := range advanced {
			if pz.settled(ps.src, ps.next) {
				t.poison = nil
				t.log.Info("records the target refused are settled; batching again")
				break
			}
		}
	}
	t.replicatedCtr.Add(float64(c.replicated))
	t.skippedCtr.Add(float64(c.skipped))
	t.bytesCtr.Add(float64(c.bytes))
}

func (l *txLoop) begin() error {
	if l.inTxn {
		return nil
	}
	if l.eos {
		if err := l.prod.BeginTransaction(); err != nil {
			return fmt.Errorf("beginning transaction: %w", err)
		}
	}
	l.inTxn = true
	l.txn++
	return nil
}

// produce enqueues a message, waiting while librdkafka's queue is full and ctx
// is not done. A
// partition the producer does not know yet (the target topic was just grown and
// its cached metadata is older) triggers a metadata refresh and a retry. dr is
// the message's own delivery channel, nil for all but sampled records.
func (l *txLoop) produce(ctx context.Context, m *kafka.Message, dr chan kafka.Event) error {
	deadline := time.Time{}
	for {
		err := l.prod.Produce(m, dr)
		if err == nil && !l.eos && dr == nil {
			l.produced++
		}
		switch kafkaCode(err) {
		case kafka.ErrQueueFull:
			// Not past ctx: a task stopping (shutdown, hand-over) must not
			// wait for a queue that does not drain; the open transaction is
			// then not committed and its records are read again.
			if ctx.Err() != nil {
				return fmt.Errorf("local produce queue full: %w", ctx.Err())
			}
			if l.eos {
				l.prod.Flush(100)
				continue
			}
			// At least once, Flush would poll the reports out of order
			// (acks.go): take those that arrived and wait a little.
			if err := l.drainAcks(); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
		case kafka.ErrUnknownPartition:
			if deadline.IsZero() {
				deadline = time.Now().Add(30 * time.Second)
			} else if time.Now().After(deadline) {
				return err
			}
			l.prod.GetMetadata(m.TopicPartition.Topic, false, 5000)
			time.Sleep(50 * time.Millisecond)
		default:
			return err
		}
	}
}

// drainAcks takes the delivery reports that arrived (at-least-once mode):
// each acknowledges its partition's oldest record in flight, and the sampler
// gets those of sampled records. It fails on any failed delivery (the
// session then resumes from the checkpoints, which never passed the record)
// and on a report that does not fit the order it relies on (acks.go).
func (l *txLoop) drainAcks() error {
	var failed int
	var firstErr error
	now := time.Now().UnixMilli()
	for _, m := range l.reports.take() {
		if _, ok := m.Opaque.(*syncSample); ok {
			l.sampler.handle(m)
		}
		tp := m.TopicPartition
		if tp.Error != nil {
			if failed == 0 {
				firstErr = tp.Error
			}
			failed++
			continue
		}
		if tp.Topic == nil {
			continue
		}
		ps := l.byTarget[Partition{*tp.Topic, tp.Partition}]
		if ps == nil {
			continue // a checkpoint or an offset sync
		}
		r, err := ps.acks.ack(int64(tp.Offset))
		if err != nil {
			return fmt.Errorf("target topic %s partition %d: %w", *tp.Topic, tp.Partition, err)
		}
		l.ackedRecord(ps, r, now)
	}
	if failed > 0 {
		return fmt.Errorf("%d records not delivered to the target: %w", failed, firstErr)
	}
	return nil
}

// ackedRecord counts a record the target acknowledged (at-least-once); the
// count is published with the checkpoint that covers it (committed), so a
// session that fails before does not count again what it reads again.
func (l *txLoop) ackedRecord(ps *partState, r inflight, now int64) {
	if ps.heartbeat {
		l.heartbeatTs = max(l.heartbeatTs, r.ts)
		return
	}
	l.acked.replicated++
	l.acked.bytes += int(r.size)
	if r.ts > 0 {
		l.t.latency.Observe(float64(now-r.ts) / 1000)
	}
}

// publishAcked adds the acknowledged records to the task's counters once
// the checkpoints past them are written (at-least-once).
func (l *txLoop) publishAcked() {
	t := l.t
	if l.heartbeatTs > 0 && l.heartbeatTs > t.heartbeatAt.Load() {
		t.heartbeatAt.Store(l.heartbeatTs)
	}
	if c := l.acked; c.replicated > 0 {
		t.replicated.Add(int64(c.replicated))
		t.replicatedCtr.Add(float64(c.replicated))
		t.bytesCtr.Add(float64(c.bytes))
		l.acked = batchCounts{}
	}
}

// inFlight reports whether records of the data path await their report.
func (l *txLoop) inFlight() bool {
	for _, ps := range l.parts {
		if ps.acks.len() > 0 {
			return true
		}
	}
	return false
}

// awaitAcks waits up to timeout until no record of the data path is in
// flight (at-least-once mode).
func (l *txLoop) awaitAcks(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := l.drainAcks(); err != nil {
			return err
		}
		if !l.inFlight() {
			return nil
		}
		if time.Now().After(deadline) {
			n := 0
			for _, ps := range l.parts {
				n += ps.acks.len()
			}
			return fmt.Errorf("delivery reports of %d records not seen within %s", n, timeout)
		}
		if err := l.prod.GetFatalError(); err != nil {
			return fmt.Errorf("target producer: %w", err)
		}
		time.Sleep(time.Millisecond)
	}
}

// settle ends what is in flight (at-least-once mode): it waits for the
// reports of the records produced, writes the checkpoints they allow and
// waits for those. A session settles before its partitions change and when
// it ends; on shutdown it writes what was acknowledged within drainTimeout.
func (l *txLoop) settle(ctx context.Context) error {
	timeout := commitTimeout
	if ctx.Err() != nil {
		timeout = drainTimeout
	}
	if err := l.awaitAcks(timeout); err != nil && ctx.Err() == nil {
		return err
	}
	if err := l.commitBatch(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for l.delivered.Load() < l.produced {
		if time.Now().After(deadline) {
			return fmt.Errorf("delivery reports of %d checkpoints not seen within %s", l.produced-l.delivered.Load(), timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return l.drainAcks()
}

// index maps the target partitions to the source partitions they mirror, for
// drainAcks; called whenever the partitions change.
func (l *txLoop) index() {
	if l.byTarget == nil {
		l.byTarget = make(map[Partition]*partState, len(l.parts))
	}
	clear(l.byTarget)
	for _, ps := range l.parts {
		l.byTarget[Partition{*ps.target, ps.src.Partition}] = ps
	}
}

// commit ends the open transaction. On shutdown it still commits, with a short
// deadline of its own, so the records read so far are not read twice.
func (l *txLoop) commit(ctx context.Context) error {
	if !l.inTxn {
		return nil
	}
	l.inTxn = false
	if !l.eos {
		// At least once, the checkpoints are written: their reports are
		// taken with the others (drainAcks).
		l.t.committed.Inc()
		return nil
	}
	// A commit that hangs may wait for a target topic that was deleted (its
	// records wait for the topic's metadata until they time out): ask the
	// pipeline to look now, so it is created again while the commit waits.
	slow := time.AfterFunc(slowCommit, l.t.p.refreshSoon)
	err := inSlices(ctx, commitTimeout, drainTimeout, l.prod.CommitTransaction)
	slow.Stop()
	if err == nil {
		l.t.committed.Inc()
		return nil
	}
	l.t.aborted.Inc()
	var ke kafka.Error
	if errors.As(err, &ke) && ke.TxnRequiresAbort() {
		actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
		aerr := l.prod.AbortTransaction(actx)
		acancel()
		if aerr != nil {
			return fmt.Errorf("committing transaction: %w (abort failed too: %v)", err, aerr)
		}
	}
	// The consumer has moved past records that are not in the target: the
	// session restarts from the checkpoints.
	return fmt.Errorf("committing transaction: %w", err)
}

// txnSlice bounds one blocking transactional call. librdkafka's calls cannot
// be interrupted, but one that timed out may be called again and continues
// where it was: long waits (a target outage) are made of slices, between which
// a shutdown is noticed.
const txnSlice = 2 * time.Second

// inSlices calls a transactional call (InitTransactions, CommitTransaction)
// in slices of at most txnSlice until it succeeds, fails with an error that
// is not retriable, or total has passed; once ctx is cancelled, for at most drain more. (A commit on
// shutdown still completes when it can, so records read are not read twice.)
func inSlices(ctx context.Context, total, drain time.Duration, call func(context.Context) error) error {
	deadline := time.Now().Add(total)
	draining := false
	for {
		if !draining && ctx.Err() != nil {
			draining = true
			if d := time.Now().Add(drain); d.Before(deadline) {
				deadline = d
			}
		}
		slice := min(txnSlice, time.Until(deadline))
		if slice < 10*time.Millisecond {
			slice = 10 * time.Millisecond
		}
		sctx, cancel := context.WithTimeout(context.Background(), slice)
		err := call(sctx)
		cancel()
		if err == nil {
			return nil
		}
		var ke kafka.Error
		if !errors.As(err, &ke) || !ke.IsRetriable() || !time.Now().Before(deadline) {
			return err
		}
	}
}

func (l *txLoop) logConsumeErr(err error) {
	switch kafkaCode(err) {
	case kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic, kafka.ErrUnknownTopicID:
		// A source topic deleted: the pipeline's refresh drops it.
		l.t.p.refreshSoon()
	}
	if time.Since(l.errLogAt) < 10*time.Second {
		return
	}
	l.errLogAt = time.Now()
	l.t.log.Warn("source consumer error; librdkafka retries", "err", err)
}

func strPtr(s string) *string { return &s }

// resetOutOfRange handles a range error that names no partition: every
// partition is checked against its source log and assigned afresh (librdkafka
// stops fetching a partition after such an error, even a transient one right
// after a broker restart).
func (l *txLoop) resetOutOfRange() error {
	for sp := range l.parts {
		if err := l.resetOffset(sp.Topic, sp.Partition); err != nil {
			return err
		}
	}
	return nil
}

// resetOffset handles a fetch position outside the source log: below the log
// start, the source deleted records (retention) before they were mirrored; they
// cannot be recovered, so the loss is logged as an error and counted, and the
// partition continues from the log start. Above the end (the source topic was
// recreated or truncated), it continues from the end.
func (l *txLoop) resetOffset(topic string, partition int32) error {
	ps := l.parts[Partition{topic, partition}]
	if ps == nil {
		return nil
	}
	lo, hi, err := l.cons.QueryWatermarkOffsets(topic, partition, 10000)
	if err != nil {
		return fmt.Errorf("source %s: position out of range, and reading its offsets failed: %w", ps.src, err)
	}
	from := ps.pending
	to := from
	if from < 0 {
		to = lo // nothing read yet: the log start is where it begins
	}
	if from > hi {
		// A topic deleted and created again under the same name starts at
		// offset 0: its id tells it from a truncated one. Its records are
		// all new, so the new topic is read from its beginning.
		if id := l.sourceTopicID(topic); id != "" && ps.topicID != "" && id != ps.topicID {
			to = lo
			l.t.log.Warn("source topic was deleted and created again (new topic id); mirroring the new topic from its beginning",
				"partition", ps.src.String(), "checkpoint", from, "old_topic_id", ps.topicID, "topic_id", id, "log_start", lo, "end", hi)
			ps.topicID = id
			l.t.p.noteTopicID(topic, id)
		} else {
			to = hi
			l.t.log.Error("source partition ends before the checkpoint (truncated?); continuing from its end",
				"partition", ps.src.String(), "checkpoint", from, "end", hi)
		}
	} else if from >= 0 && lo > from {
		to = lo
		lost := lo - from
		l.t.expired.Add(float64(lost))
		l.t.log.Error("source records deleted before they were mirrored (retention); continuing from the log start",
			"partition", ps.src.String(), "from", from, "log_start", lo, "lost", lost)
	}
	if to == from {
		l.t.log.Warn("source reported an offset out of range, but the position is inside the log (broker restart?); fetching again from it",
			"partition", ps.src.String(), "position", from, "log_start", lo, "end", hi)
	}
	// After a range error the partition cannot Seek ("erroneous state"):
	// assign it afresh at the new position.
	tp := []kafka.TopicPartition{{Topic: &topic, Partition: partition}}
	if err := l.cons.IncrementalUnassign(tp); err != nil {
		return fmt.Errorf("unassigning %s: %w", ps.src, err)
	}
	tp[0].Offset = kafka.Offset(to)
	if err := l.cons.IncrementalAssign(tp); err != nil {
		return fmt.Errorf("assigning %s at %d: %w", ps.src, to, err)
	}
	// The next checkpoint records the jump, so a restart does not count the
	// loss again.
	ps.pending = to
	return nil
}

// sourceTopicID describes a source topic for its id, "" when that fails or the
// source gives none.
func (l *txLoop) sourceTopicID(topic string) string {
	admin, err := kafka.NewAdminClientFromConsumer(l.cons)
	if err != nil {
		l.t.log.Warn("describing a source topic for its id failed", "topic", topic, "err", err)
		return ""
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := admin.DescribeTopics(ctx, kafka.NewTopicCollectionOfTopicNames([]string{topic}))
	if err != nil || len(res.TopicDescriptions) != 1 || res.TopicDescriptions[0].Error.Code() != kafka.ErrNoError {
		l.t.log.Warn("describing a source topic for its id failed", "topic", topic, "err", err)
		return ""
	}
	return topicIDString(res.TopicDescriptions[0].TopicID)
}

// quarantineRecord sends a rejected record to the source region's quarantine.
// The message still holds the source record as read (nothing was changed yet).
func (l *txLoop) quarantineRecord(ctx context.Context, m *kafka.Message, reject *governance.RejectError) error {
	if l.quarantine == nil {
		q, err := newQuarantine(ctx, l.t.p.source, l.t.p.sourceName, txnID(l.t.p.cfg.Name, l.t.id.Index)+"-quarantine", l.logs)
		if err != nil {
			return err
		}
		l.quarantine = q
	}
	level := slog.LevelDebug
	if time.Since(l.quarantineLogAt) >= time.Second {
		level, l.quarantineLogAt = slog.LevelWarn, time.Now() // at most one warning a second
	}
	l.t.log.Log(ctx, level, "record quarantined", "topic", *m.TopicPartition.Topic, "partition", m.TopicPartition.Partition,
		"offset", int64(m.TopicPartition.Offset), "reason", reject.Reason, "detail", reject.Msg)
	if err := l.quarantine.add(ctx, m, reject); err != nil {
		return err
	}
	l.counts.quarantined++
	if l.counts.byReason == nil {
		l.counts.byReason = map[string]int{}
	}
	l.counts.byReason[reject.Reason]++
	return nil
}
