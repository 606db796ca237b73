package pubsubbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tributary-dev/tributary/internal/governance"
)

// Deps are what a Bridge gets from the outside. Sink is required; nil fields
// get safe defaults.
type Deps struct {
	// Sink writes records to the target cluster (required).
	Sink Sink
	// QuarantineSink writes quarantined (raw) messages to a Kafka cluster of
	// the Pub/Sub project's region when that is not the target's
	// (pipelines[].pubsub.quarantine_kafka); nil writes them through Sink.
	// Unused when BridgeConfig.DeadLetterTopic is set.
	QuarantineSink Sink
	// Transformer applies governance to every message, whatever the format
	// (for format json after the bridge checked the JSON syntax); nil lands
	// records as mapped.
	Transformer governance.Transformer
	// MapSchema maps googclient_schema* attributes to a registry subject and
	// version before the Transformer runs; nil leaves Subject empty.
	MapSchema SchemaMapper
	// Client is a Pub/Sub client to use instead of dialing one from
	// BridgeConfig.PubSub (an in-process pstest server, or a client shared by the
	// bridges of one project). The bridge does not close it.
	Client *pubsub.Client
	// Logger defaults to discarding. Messages never log data or attributes.
	Logger *slog.Logger
	// Registerer receives the tributary_pubsub_* metrics; nil registers them on a
	// private registry.
	Registerer prometheus.Registerer
	// Now is the clock of metrics, the dedup window and the ordering fence;
	// defaults to time.Now.
	Now func() time.Time
}

// Bridge mirrors one Pub/Sub subscription into one target Kafka topic.
type Bridge struct {
	cfg       BridgeConfig
	sink      Sink
	qsink     Sink // nil: quarantine through sink
	tr        governance.Transformer
	mapSchema SchemaMapper
	client    *pubsub.Client
	ownClient bool
	sub       *pubsub.Subscriber
	dlq       *pubsub.Publisher // nil: quarantine to Kafka
	log       *slog.Logger
	now       func() time.Time
	m         *metrics
	mp        mapping
	track     *tracker
	fence     *fence
	batch     *batcher
	isJSON    bool
	sinkWarn  every
	nackWarn  every

	ran atomic.Bool

	written, quarantined atomic.Int64 // by this bridge, for Stats

	mu        sync.Mutex // guards stopping and callbacks.Add
	stopping  bool
	callbacks sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Stats is a snapshot of one bridge for status pages.
type Stats struct {
	Written     int64 // records written to the target
	Quarantined int64 // messages quarantined (and acked)
	Outstanding int   // messages held: received, not yet acked or nacked
	// OldestUnacked is the publish time of the oldest held message; zero when none.
	OldestUnacked time.Time
}

// Stats returns the bridge's counts since New; safe for concurrent use.
func (b *Bridge) Stats() Stats {
	oldest, inflight, _ := b.track.stats()
	return Stats{Written: b.written.Load(), Quarantined: b.quarantined.Load(), Outstanding: inflight, OldestUnacked: oldest}
}

// New validates cfg, connects the Pub/Sub client (lazily: nothing is dialed
// before Run) and registers the metrics.
func New(cfg BridgeConfig, deps Deps) (*Bridge, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("pubsub bridge %s: %w", cfg.Pipeline, err)
	}
	if deps.Sink == nil {
		return nil, fmt.Errorf("pubsub bridge %s: Deps.Sink is required", cfg.Pipeline)
	}
	b := &Bridge{
		cfg:       cfg,
		sink:      deps.Sink,
		tr:        deps.Transformer,
		qsink:     deps.QuarantineSink,
		mapSchema: deps.MapSchema,
		client:    deps.Client,
		log:       deps.Logger,
		now:       deps.Now,
		isJSON:    cfg.Format == "json",
		sinkWarn:  every{d: 5 * time.Second},
		nackWarn:  every{d: 5 * time.Second},
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("pipeline", cfg.Pipeline)
	if b.now == nil {
		b.now = time.Now
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if b.client == nil {
		c, err := dial(context.Background(), &cfg)
		if err != nil {
			return nil, fmt.Errorf("pubsub bridge %s: %w", cfg.Pipeline, err)
		}
		b.client, b.ownClient = c, true
	}
	b.sub = b.client.Subscriber(cfg.Subscription)
	if cfg.DeadLetterTopic != "" {
		b.dlq = b.client.Publisher(cfg.DeadLetterTopic)
	}
	b.mp = mapping{topic: cfg.Topic, keyAttribute: cfg.KeyAttribute, origin: cfg.Source, subscription: b.sub.String(), scope: cfg.Subscription}
	b.track = newTracker(cfg.DedupWindow, cfg.DedupMaxIDs)
	b.fence = newFence(cfg.OrderingFenceTimeout)
	queue := cfg.MaxOutstandingMessages
	if queue <= 0 {
		queue = 10_000
	}
	b.batch = newBatcher(b.sink, queue, cfg.BatchMaxMessages, cfg.ProduceConcurrency, cfg.Linger,
		func(id string) { b.track.markHandled(id, b.now()) })
	m, err := newMetrics(reg, cfg.Pipeline, b.track.stats, b.now)
	if err != nil {
		b.closeClients()
		return nil, fmt.Errorf("pubsub bridge %s: registering metrics: %w", cfg.Pipeline, err)
	}
	b.m = m
	return b, nil
}

// Run receives from the subscription until ctx is done or the service returns
// a permanent error, which it returns. On cancellation it stops pulling, waits
// up to ShutdownTimeout for delivery reports of records already handed to the
// Sink (acking those written), nacks the rest and returns nil. Run may be
// called once.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.ran.CompareAndSwap(false, true) {
		return errors.New("pubsubbridge: Run called more than once")
	}
	if err := b.checkSubscription(ctx); err != nil {
		return err
	}
	bctx, cancelBatch := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	defer func() {
		cancelBatch()
		bg.Wait()
	}()
	bg.Go(func() { b.batch.run(bctx) })
	if pc, ok := b.sink.(PartitionCounter); ok {
		if err := b.loadPartitions(ctx, pc); err != nil {
			return nil // ctx done before the target was reachable
		}
		bg.Go(func() { b.refreshPartitions(bctx, pc) })
	} else {
		b.log.Info("sink has no partition count: records go out with PartitionAny; configure the producer with partitioner=murmur2_random")
	}

	b.sub.ReceiveSettings = pubsub.ReceiveSettings{
		MaxExtension:               b.cfg.MaxExtension,
		MaxDurationPerAckExtension: b.cfg.MaxDurationPerAckExtension,
		MinDurationPerAckExtension: b.cfg.MinDurationPerAckExtension,
		MaxOutstandingMessages:     b.cfg.MaxOutstandingMessages,
		MaxOutstandingBytes:        b.cfg.MaxOutstandingBytes,
		NumGoroutines:              b.cfg.Streams,
		// Graceful shutdown: Receive returns only after every callback did and
		// the final acks were sent. With a timeout the client stops its
		// iterators in the background and returns first, so the last acks can
		// be lost (duplicates after a handover). The callbacks bound their own
		// shutdown by ShutdownTimeout.
		ShutdownOptions: &pubsub.ShutdownOptions{Behavior: pubsub.ShutdownBehaviorWaitForProcessing, Timeout: -1},
	}
	b.log.Info("receiving", "subscription", b.sub.String(), "topic", b.cfg.Topic, "streams", b.cfg.Streams)
	err := b.sub.Receive(ctx, b.receive)

	// Callbacks the client stopped waiting for may still run: wait for them
	// before stopping the batcher they depend on.
	b.mu.Lock()
	b.stopping = true
	b.mu.Unlock()
	b.callbacks.Wait()
	if err != nil {
		return fmt.Errorf("receiving from %s: %w", b.sub, err)
	}
	return nil
}

// Close releases the client (when the bridge dialed it), the dead-letter
// publisher and this pipeline's metrics. Call it after Run returned; it is
// idempotent.
func (b *Bridge) Close() error {
	b.closeOnce.Do(func() {
		if b.m != nil {
			b.m.unregister()
		}
		b.closeErr = b.closeClients()
	})
	return b.closeErr
}

func (b *Bridge) closeClients() error {
	if b.dlq != nil {
		b.dlq.Stop()
	}
	if b.ownClient {
		if err := b.client.Close(); err != nil {
			return fmt.Errorf("closing pubsub client: %w", err)
		}
	}
	return nil
}

// checkSubscription reads the subscription's settings to log them and fails
// fast when it does not exist. Reading them needs pubsub.subscriptions.get,
// which the subscriber role lacks, so other errors only warn: the client
// learns exactly-once delivery and ordering from the stream anyway.
func (b *Bridge) checkSubscription(ctx context.Context) error {
	s, err := b.client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: b.sub.String()})
	switch {
	case status.Code(err) == codes.NotFound:
		return fmt.Errorf("subscription %s: %w", b.sub, err)
	case err != nil:
		b.log.Warn("cannot read the subscription's settings; going on", "subscription", b.sub.String(), "err", err)
		return nil
	}
	b.log.Info("subscription", "name", s.GetName(),
		"exactly_once_delivery", s.GetEnableExactlyOnceDelivery(),
		"message_ordering", s.GetEnableMessageOrdering(),
		"ack_deadline_seconds", s.GetAckDeadlineSeconds(),
		"dead_letter_topic", s.GetDeadLetterPolicy().GetDeadLetterTopic())
	return nil
}

func (b *Bridge) loadPartitions(ctx context.Context, pc PartitionCounter) error {
	backoff := b.cfg.RetryBackoff
	for {
		n, err := pc.Partitions(ctx, b.cfg.Topic)
		if err == nil && n > 0 {
			b.batch.parts.Store(int32(n))
			return nil
		}
		if err == nil {
			err = fmt.Errorf("topic has %d partitions", n)
		}
		b.log.Warn("cannot read the target topic's partition count; retrying", "topic", b.cfg.Topic, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, b.cfg.RetryBackoffMax)
	}
}

func (b *Bridge) refreshPartitions(ctx context.Context, pc PartitionCounter) {
	t := time.NewTicker(b.cfg.PartitionRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := pc.Partitions(ctx, b.cfg.Topic)
		if err != nil || n <= 0 {
			continue // keep the last count
		}
		if old := b.batch.parts.Swap(int32(n)); old != int32(n) {
			b.log.Info("target topic's partition count changed", "topic", b.cfg.Topic, "old", old, "new", n)
		}
	}
}

// receive is the Receive callback.
func (b *Bridge) receive(ctx context.Context, m *pubsub.Message) {
	b.mu.Lock()
	if b.stopping {
		b.mu.Unlock()
		m.Nack()
		return
	}
	b.callbacks.Add(1)
	b.mu.Unlock()
	defer b.callbacks.Done()
	b.handle(ctx, m)
}

// handle takes one message to its end: acked after its record was written (or
// it was quarantined, or it is a duplicate), else nacked. It returns only then,
// because the client frees the flow-control slot and dispatches the next
// message of the ordering key when the callback returns.
func (b *Bridge) handle(ctx context.Context, m *pubsub.Message) {
	now := b.now()
	b.m.received.Inc()
	b.m.bytes.Add(float64(len(m.Data)))
	if m.DeliveryAttempt != nil && *m.DeliveryAttempt > 1 {
		b.m.redelivered.WithLabelValues(redeliveryAttempt).Inc()
	}
	if !b.fence.admit(m.OrderingKey, m.ID, now) {
		b.nack(m, nackOrdering)
		return
	}
	f, seen := b.track.begin(m.ID, m.PublishTime, now)
	switch seen {
	case seenHandled:
		b.m.redelivered.WithLabelValues(redeliveryDuplicate).Inc()
		b.m.records.WithLabelValues(outcomeDuplicate).Inc()
		b.ack(ctx, m, time.Time{})
		return
	case seenInFlight:
		// Redelivered while this bridge still works on it (the ack deadline
		// expired): the first delivery's outcome decides. It ends within
		// RetryTimeout, or promptly on shutdown.
		b.m.redelivered.WithLabelValues(redeliveryDuplicate).Inc()
		<-f.done
		if f.ok {
			b.m.records.WithLabelValues(outcomeDuplicate).Inc()
			b.ack(ctx, m, time.Time{})
		} else {
			b.nack(m, nackDuplicate)
		}
		return
	}
	outcome, reason, err := b.process(ctx, m)
	b.track.finish(m.ID, f, err == nil, b.now())
	if err != nil {
		if ctx.Err() != nil {
			reason = nackShutdown
		} else if b.nackWarn.ok() {
			b.log.Warn("message not written within retry_timeout; nacked for redelivery (further ones counted in tributary_pubsub_nacks_total)",
				"message_id", m.ID, "reason", reason, "err", err)
		}
		b.fence.close(m.OrderingKey, m.ID, b.now())
		b.nack(m, reason)
		return
	}
	b.m.records.WithLabelValues(outcome).Inc()
	switch outcome {
	case outcomeWritten:
		b.written.Add(1)
	case outcomeQuarantined:
		b.quarantined.Add(1)
	}
	if outcome == outcomeWritten {
		b.ack(ctx, m, m.PublishTime)
	} else {
		b.ack(ctx, m, time.Time{})
	}
}

// process writes the message's record, or quarantines the message. An error
// means neither happened; reason says why (a nack reason).
func (b *Bridge) process(ctx context.Context, m *pubsub.Message) (outcome, reason string, err error) {
	deadline := time.Now().Add(b.cfg.RetryTimeout)
	if b.isJSON && !json.Valid(m.Data) {
		return b.quarantine(ctx, m, qUndecodable, &governance.RejectError{Reason: reasonUndecodable, Msg: "message data is not valid JSON"}, deadline)
	}
	var rec *governance.Record
	// The transformer and schema mapper get the message's retry deadline, so a
	// hanging dependency ends in a nack instead of holding the message forever.
	tctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err = b.retry(ctx, deadline, func(err error) bool { return isReject(err) || isTooLarge(err) }, func() error {
		// Rebuilt on every attempt: a failed Transform may have changed it.
		rec = b.mp.record(m)
		if b.mapSchema != nil && rec.Schema.Name != "" {
			s, err := b.mapSchema(tctx, rec.Schema)
			if err != nil {
				return fmt.Errorf("mapping schema %s revision %s: %w", rec.Schema.Name, rec.Schema.RevisionID, err)
			}
			rec.Schema = s
		}
		if b.tr != nil {
			return b.tr.Transform(tctx, rec)
		}
		return nil
	})
	if re, ok := asReject(err); ok {
		return b.quarantine(ctx, m, qRejected, re, deadline)
	}
	if isTooLarge(err) {
		return b.quarantine(ctx, m, qTooLarge, &governance.RejectError{Reason: reasonTooLarge, Msg: err.Error()}, deadline)
	}
	if err != nil {
		return "", nackTransform, err
	}
	partition, sticky := b.batch.partition(rec.Key)
	msg := message(rec, partition)
	if size := recordSize(msg); size > b.cfg.MaxMessageBytes {
		return b.quarantine(ctx, m, qTooLarge, &governance.RejectError{Reason: reasonTooLarge,
			Msg: fmt.Sprintf("record of about %d bytes exceeds max_message_bytes %d", size, b.cfg.MaxMessageBytes)}, deadline)
	}
	err = b.retry(ctx, deadline, isTooLarge, func() error {
		err := b.produce(ctx, msg, sticky, m.ID)
		if err != nil && !isTooLarge(err) && ctx.Err() == nil {
			b.m.sinkErrors.Inc()
			if b.sinkWarn.ok() {
				b.log.Warn("writing to the target failed; retrying", "topic", b.cfg.Topic, "err", err)
			}
		}
		return err
	})
	if isTooLarge(err) {
		return b.quarantine(ctx, m, qTooLarge, &governance.RejectError{Reason: reasonTooLarge,
			Msg: fmt.Sprintf("the target refused the record as too large: %v", err)}, deadline)
	}
	if err != nil {
		return "", nackSink, err
	}
	return outcomeWritten, "", nil
}

// produce hands one record to the batcher and waits for its delivery report.
func (b *Bridge) produce(ctx context.Context, msg *kafka.Message, sticky bool, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &produceReq{msg: msg, sticky: sticky, id: id, done: make(chan error, 1)}
	select {
	case b.batch.in <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
	}
	// Shutting down: the record may be on its way; its report can still let
	// us ack it instead of causing a redelivery.
	t := time.NewTimer(b.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case err := <-req.done:
		return err
	case <-t.C:
	}
	req.abandoned.Store(true)
	select {
	case err := <-req.done:
		return err
	default:
		return errAbandoned
	}
}

// retry runs op until it succeeds, fails permanently, the deadline would pass
// or ctx is done, with exponential backoff; it returns op's last error.
func (b *Bridge) retry(ctx context.Context, deadline time.Time, permanent func(error) bool, op func() error) error {
	backoff := b.cfg.RetryBackoff
	for {
		err := op()
		if err == nil || permanent(err) || ctx.Err() != nil || time.Now().Add(backoff).After(deadline) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(backoff*2, b.cfg.RetryBackoffMax)
	}
}

func (b *Bridge) ack(ctx context.Context, m *pubsub.Message, published time.Time) {
	res := m.AckWithResult()
	b.m.acks.Inc()
	if !published.IsZero() {
		b.m.latency.Observe(max(b.now().Sub(published).Seconds(), 0))
	}
	// On an exactly-once subscription the result tells whether Pub/Sub took the
	// ack (then it never redelivers); elsewhere it is ready at once. Waiting
	// keeps the ordering key and the flow-control slot until it is settled.
	gctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		gctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), b.cfg.ShutdownTimeout)
		defer cancel()
	}
	if _, err := res.Get(gctx); err != nil {
		b.m.ackErrors.Inc()
		b.log.Warn("ack failed; a redelivery is suppressed within the dedup window", "message_id", m.ID, "err", err)
	}
}

func (b *Bridge) nack(m *pubsub.Message, reason string) {
	m.Nack()
	b.m.nacks.WithLabelValues(reason).Inc()
}

func isReject(err error) bool {
	_, ok := asReject(err)
	return ok
}

func asReject(err error) (*governance.RejectError, bool) { return governance.AsReject(err) }

// every lets one event through per period (log rate limiting).
type every struct {
	d    time.Duration
	last atomic.Int64
}

func (e *every) ok() bool {
	now := time.Now().UnixNano()
	last := e.last.Load()
	return now-last >= int64(e.d) && e.last.CompareAndSwap(last, now)
}
