package pubsubbridge

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/test/harness"
)

const project = "fleet-project"

// psServer is a Pub/Sub endpoint for one test: pstest in this process (srv
// set, the bridge gets the test's client through Deps.Client), or the pstest
// process reached through PUBSUB_EMULATOR_HOST (srv nil, the bridge dials).
type psServer struct {
	client   *pubsub.Client // admin and publishing
	srv      *pstest.Server
	inflight bool
}

var nameSeq atomic.Int64

// testLogger shows the bridges' warnings with -v only.
func testLogger() *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func uniqueID(prefix string) string { return fmt.Sprintf("%s-%d", prefix, nameSeq.Add(1)) }

func inProcess(t *testing.T, opts ...pstest.ServerReactorOption) *psServer {
	t.Helper()
	srv := pstest.NewServer(opts...)
	t.Cleanup(func() { _ = srv.Close() })
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	c, err := pubsub.NewClient(context.Background(), project, option.WithGRPCConn(conn))
	if err != nil {
		t.Fatalf("pubsub.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &psServer{client: c, srv: srv, inflight: true}
}

// emulator connects to the separate pstest process through
// PUBSUB_EMULATOR_HOST, which TestMain set.
func emulator(t *testing.T) *psServer {
	t.Helper()
	c, err := pubsub.NewClient(context.Background(), project)
	if err != nil {
		t.Fatalf("pubsub.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &psServer{client: c}
}

// topicAndSub creates a topic and a subscription to it (edit adjusts the
// subscription: ordering is on by default) and returns their IDs.
func (ps *psServer) topicAndSub(t *testing.T, edit func(*pubsubpb.Subscription)) (topic, sub string) {
	t.Helper()
	ctx := context.Background()
	topic, sub = uniqueID("telemetry"), uniqueID("telemetry-sub")
	if _, err := ps.client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicName(topic)}); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	s := &pubsubpb.Subscription{
		Name:                  "projects/" + project + "/subscriptions/" + sub,
		Topic:                 topicName(topic),
		AckDeadlineSeconds:    10,
		EnableMessageOrdering: true,
	}
	if edit != nil {
		edit(s)
	}
	if _, err := ps.client.SubscriptionAdminClient.CreateSubscription(ctx, s); err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}
	return topic, sub
}

func (ps *psServer) createTopic(t *testing.T, id string) {
	t.Helper()
	if _, err := ps.client.TopicAdminClient.CreateTopic(context.Background(), &pubsubpb.Topic{Name: topicName(id)}); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
}

func topicName(id string) string { return "projects/" + project + "/topics/" + id }

// publish publishes msgs in order (per ordering key) and returns their ids.
func (ps *psServer) publish(t *testing.T, topic string, msgs []*pubsub.Message) []string {
	t.Helper()
	ctx := context.Background()
	p := ps.client.Publisher(topic)
	p.EnableMessageOrdering = true
	defer p.Stop()
	res := make([]*pubsub.PublishResult, len(msgs))
	for i, m := range msgs {
		res[i] = p.Publish(ctx, m)
	}
	ids := make([]string, len(msgs))
	for i, r := range res {
		id, err := r.Get(ctx)
		if err != nil {
			t.Fatalf("publishing message %d: %v", i, err)
		}
		ids[i] = id
	}
	return ids
}

// publishPaced publishes msgs in chunks, keeping at most backlog of them
// published and not yet written by sink: pstest scans every pending message
// of a subscription every 10 ms, which under -race costs more CPU than the
// bridge when thousands wait. It returns the ids, in msgs' order.
func (ps *psServer) publishPaced(t *testing.T, topic string, msgs []*pubsub.Message, sink *testSink, backlog int) []string {
	t.Helper()
	ids := make([]string, 0, len(msgs))
	chunk := max(backlog/2, 1)
	for start := 0; start < len(msgs); start += chunk {
		end := min(start+chunk, len(msgs))
		harness.Eventually(t, 60*time.Second, "the bridge to catch up", func() error {
			sink.mu.Lock()
			written := len(sink.written)
			sink.mu.Unlock()
			if start-written > backlog-chunk {
				return fmt.Errorf("%d published, %d written", start, written)
			}
			return nil
		})
		ids = append(ids, ps.publish(t, topic, msgs[start:end])...)
	}
	return ids
}

// deps returns the Deps for a bridge on this server.
func (ps *psServer) deps(sink Sink, reg prometheus.Registerer) Deps {
	d := Deps{Sink: sink, Registerer: reg, Logger: testLogger()}
	if ps.inflight {
		d.Client = ps.client
	}
	return d
}

// bridgeConfig is the pipeline of the tests: key from the vin attribute, JSON,
// ten streams (pstest sends about one message per stream every 10 ms), fast
// retries.
func bridgeConfig(sub string, tg *target) BridgeConfig {
	return BridgeConfig{
		Pipeline:               "fleet-telemetry",
		Source:                 "fleet",
		PubSub:                 config.PubSub{Project: project, Region: "cloud", UseEmulatorEnv: true},
		Subscription:           sub,
		Topic:                  tg.topic,
		QuarantineTopic:        tg.quarantine,
		KeyAttribute:           "vin",
		Format:                 "json",
		Streams:                10,
		MaxOutstandingMessages: 400,
		RetryBackoff:           20 * time.Millisecond,
		RetryBackoffMax:        200 * time.Millisecond,
		ShutdownTimeout:        5 * time.Second,
	}
}

// running is a bridge whose Run goroutine the test owns.
type running struct {
	b      *Bridge
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startBridge(t *testing.T, cfg BridgeConfig, deps Deps) *running {
	t.Helper()
	b, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{b: b, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- b.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run, checks that it returns nil in time, and closes the bridge.
func (r *running) stop(t *testing.T) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("Run did not return within 30s of cancellation")
		}
		if err := r.b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// ackChecker is a pstest reactor on Acknowledge: it records every acked
// message id, flags those acked before the sink wrote them, and can drop acks
// (as if they were lost) while drop says so.
type ackChecker struct {
	sink *testSink // set before the bridge starts

	mu      sync.Mutex
	acked   map[string]int
	early   []string // acked, never written
	dropped map[string]bool
	drop    func(id string) bool
}

func newAckChecker() *ackChecker {
	return &ackChecker{acked: map[string]int{}, dropped: map[string]bool{}}
}

func (a *ackChecker) option() pstest.ServerReactorOption {
	return pstest.ServerReactorOption{FuncName: "Acknowledge", Reactor: a}
}

// React implements pstest.Reactor.
func (a *ackChecker) React(req any) (bool, any, error) {
	r, ok := req.(*pubsubpb.AcknowledgeRequest)
	if !ok {
		return false, nil, nil
	}
	ids := make([]string, len(r.AckIds))
	for i, ackID := range r.AckIds {
		ids[i] = ackID[:max(strings.LastIndexByte(ackID, ':'), 0)] // pstest's ack ids are "<message id>:<delivery>"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	dropAll := false
	for _, id := range ids {
		dropAll = dropAll || (a.drop != nil && a.drop(id))
	}
	if dropAll {
		// Lose the whole request, as the network would: all its messages are
		// redelivered when their ack deadline expires.
		for _, id := range ids {
			a.dropped[id] = true
		}
		return true, &emptypb.Empty{}, nil
	}
	for _, id := range ids {
		a.acked[id]++
		if a.sink != nil && !a.sink.isWritten(id) {
			a.early = append(a.early, id)
		}
	}
	return false, nil, nil
}

func (a *ackChecker) earlyAcks() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.early...)
}
