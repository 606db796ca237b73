package pubsubbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/test/harness"
)

// fleetMessages returns n telemetry messages over keys ordering keys: most
// carry a vin attribute (the Kafka key), every fourth does not (key = ordering
// key), and every 25th has no ordering key either (null key, no order). The
// seq attribute numbers the messages of each ordering key.
func fleetMessages(n, keys int) []*pubsub.Message {
	seq := map[string]int{}
	msgs := make([]*pubsub.Message, n)
	for i := range msgs {
		attrs := map[string]string{"i": strconv.Itoa(i), "source": "mqtt-bridge", "model": fmt.Sprintf("m%d", i%7)}
		var key string
		if i%25 != 24 {
			key = fmt.Sprintf("car-%02d", i%keys)
			attrs["seq"] = strconv.Itoa(seq[key])
			seq[key]++
		}
		if i%4 != 0 {
			attrs["vin"] = fmt.Sprintf("VIN%05d", i%keys)
		}
		data := fmt.Sprintf(`{"i":%d,"speed_kmh":%d,"lat":48.1%03d,"lon":11.5%03d}`, i, i%180, i%1000, (i*7)%1000)
		msgs[i] = &pubsub.Message{Data: []byte(data), Attributes: attrs, OrderingKey: key}
	}
	return msgs
}

// published pairs the ids Pub/Sub assigned with the messages.
func published(ids []string, msgs []*pubsub.Message) map[string]*pubsub.Message {
	out := make(map[string]*pubsub.Message, len(ids))
	for i, id := range ids {
		out[id] = msgs[i]
	}
	return out
}

// checkMirrored checks that every published message is in recs exactly once
// (at least once when dupsOK) with the connector's mapping, and that the
// messages of each ordering key are in order within each partition.
func checkMirrored(t *testing.T, recs []*kafka.Message, sent map[string]*pubsub.Message, partitions int32, dupsOK bool) {
	t.Helper()
	seen := map[string]int{}
	type pk struct {
		key       string
		partition int32
	}
	lastSeq := map[pk]int{}
	slices.SortStableFunc(recs, func(a, b *kafka.Message) int {
		if c := int(a.TopicPartition.Partition) - int(b.TopicPartition.Partition); c != 0 {
			return c
		}
		return int(a.TopicPartition.Offset - b.TopicPartition.Offset)
	})
	bad := 0
	fail := func(format string, a ...any) {
		bad++
		if bad <= 10 {
			t.Errorf(format, a...)
		}
	}
	for _, r := range recs {
		id := header(r, HeaderMessageID)
		m, ok := sent[id]
		if !ok {
			fail("record at %v has unknown %s %q", r.TopicPartition, HeaderMessageID, id)
			continue
		}
		seen[id]++
		if !bytes.Equal(r.Value, m.Data) {
			fail("message %s: value %q, want %q", id, r.Value, m.Data)
		}
		var wantKey []byte
		if v, ok := m.Attributes["vin"]; ok {
			wantKey = []byte(v)
		} else if m.OrderingKey != "" {
			wantKey = []byte(m.OrderingKey)
		}
		if !bytes.Equal(r.Key, wantKey) {
			fail("message %s: key %q, want %q", id, r.Key, wantKey)
		}
		if wantKey != nil {
			if want := keyPartition(wantKey, partitions); r.TopicPartition.Partition != want {
				fail("message %s: key %q in partition %d, murmur2 says %d", id, wantKey, r.TopicPartition.Partition, want)
			}
		}
		for k, v := range m.Attributes {
			if got := header(r, k); got != v {
				fail("message %s: header %s = %q, want attribute value %q", id, k, got, v)
			}
		}
		pt, err := time.Parse(time.RFC3339Nano, header(r, HeaderPublishTime))
		if err != nil {
			fail("message %s: %s: %v", id, HeaderPublishTime, err)
		} else if !r.Timestamp.Equal(pt.Truncate(time.Millisecond)) {
			fail("message %s: timestamp %v, want the publish time %v", id, r.Timestamp, pt)
		}
		if got := header(r, HeaderOrderingKey); got != m.OrderingKey {
			fail("message %s: %s = %q, want %q", id, HeaderOrderingKey, got, m.OrderingKey)
		}
		if got := header(r, HeaderOrigin); got != "fleet" {
			fail("message %s: %s = %q, want fleet", id, HeaderOrigin, got)
		}
		if m.OrderingKey != "" && seen[id] == 1 {
			seq, _ := strconv.Atoi(m.Attributes["seq"])
			k := pk{m.OrderingKey, r.TopicPartition.Partition}
			if last, ok := lastSeq[k]; ok && seq <= last {
				fail("ordering key %s, partition %d: seq %d after %d", k.key, k.partition, seq, last)
			}
			lastSeq[k] = seq
		}
	}
	missing, dups := 0, 0
	for id := range sent {
		switch n := seen[id]; {
		case n == 0:
			missing++
		case n > 1:
			dups += n - 1
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d messages missing in the target", missing, len(sent))
	}
	switch {
	case dups > 0 && !dupsOK:
		t.Errorf("%d duplicate records in the target", dups)
	case dups > 0:
		t.Logf("%d duplicate records in the target (at least once)", dups)
	}
}

// waitAcked waits until pstest counts an ack for every message of ids.
func waitAcked(t *testing.T, ps *psServer, ids []string, timeout time.Duration) {
	t.Helper()
	harness.Eventually(t, timeout, "every message acked", func() error {
		acked := map[string]bool{}
		for _, m := range ps.srv.Messages() {
			if m.Acks > 0 {
				acked[m.ID] = true
			}
		}
		n := 0
		for _, id := range ids {
			if !acked[id] {
				n++
			}
		}
		if n > 0 {
			return fmt.Errorf("%d of %d not acked", n, len(ids))
		}
		return nil
	})
}

// waitWritten waits until the sink wrote every message of sent.
func waitWritten(t *testing.T, sink *testSink, sent map[string]*pubsub.Message, timeout time.Duration) {
	t.Helper()
	harness.Eventually(t, timeout, "every message written", func() error {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		missing := 0
		var example string
		for id := range sent {
			if sink.written[id] == 0 {
				missing++
				example = id
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d not written, e.g. %s", missing, len(sent), example)
		}
		return nil
	})
}

// waitMetric waits until a counter reaches want: callbacks count an outcome
// just after the record is readable in Kafka.
func waitMetric(t *testing.T, c prometheus.Collector, want float64) {
	t.Helper()
	harness.Eventually(t, 10*time.Second, "metric value", func() error {
		if got := testutil.ToFloat64(c); got != want {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	})
}

// TestMirror runs the main case against pstest in this process and
// against pstest in another process reached through PUBSUB_EMULATOR_HOST:
// 5,000 messages with attributes over 20 ordering keys land with the mapping,
// each once, ordering keys in order.
func TestMirror(t *testing.T) {
	t.Parallel()
	const n, keys, partitions = 5000, 20, 6
	for _, endpoint := range []string{"in-process", "emulator-host"} {
		for _, kind := range targetKinds {
			t.Run(endpoint+"/"+kind, func(t *testing.T) {
				t.Parallel()
				tg := newTarget(t, kind, partitions)
				var ps *psServer
				checker := newAckChecker()
				if endpoint == "in-process" {
					ps = inProcess(t, checker.option())
				} else {
					ps = emulator(t)
				}
				topic, sub := ps.topicAndSub(t, nil)
				sink := newTestSink(newKafkaSink(t, tg.bootstrap))
				checker.sink = sink
				reg := prometheus.NewRegistry()
				cfg := bridgeConfig(sub, tg)
				if endpoint == "emulator-host" {
					cfg.PubSub.EmulatorHost = "" // the bridge must find it in the environment
				}
				r := startBridge(t, cfg, ps.deps(sink, reg))

				msgs := fleetMessages(n, keys)
				start := time.Now()
				sent := published(ps.publishPaced(t, topic, msgs, sink, 1000), msgs)
				recs := readTopic(t, tg.bootstrap, tg.topic, partitions, n, 120*time.Second)
				t.Logf("%d messages mirrored in %v", n, time.Since(start).Round(time.Millisecond))
				checkMirrored(t, recs, sent, partitions, false)
				if early := checker.earlyAcks(); len(early) > 0 {
					t.Errorf("%d messages acked before they were written, e.g. %s", len(early), early[0])
				}
				waitMetric(t, r.b.m.records.WithLabelValues(outcomeWritten), n)
				waitMetric(t, r.b.m.acks, n)
				if got := testutil.ToFloat64(r.b.m.received); got < n {
					t.Errorf("messages_received_total = %v, want >= %d", got, n)
				}
			})
		}
	}
}

// TestTargetDownMidStream takes the target away (every produce fails) while
// messages flow: nothing may be acked that was not written, and once it is
// back everything lands, once and in order. "retried in place" keeps the
// messages (the client extends their deadlines); "nacked" gives them back to
// Pub/Sub after a short RetryTimeout, so they are redelivered and the ordering
// fence must hold their keys.
func TestTargetDownMidStream(t *testing.T) {
	t.Parallel()
	const n, keys, partitions = 400, 8, 4
	for _, mode := range []struct {
		name  string
		retry time.Duration
	}{{"retried in place", time.Minute}, {"nacked", 300 * time.Millisecond}} {
		for _, kind := range targetKinds {
			t.Run(mode.name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				tg := newTarget(t, kind, partitions)
				checker := newAckChecker()
				ps := inProcess(t, checker.option())
				topic, sub := ps.topicAndSub(t, nil)
				sink := newTestSink(newKafkaSink(t, tg.bootstrap))
				checker.sink = sink
				cfg := bridgeConfig(sub, tg)
				cfg.RetryTimeout = mode.retry
				r := startBridge(t, cfg, ps.deps(sink, prometheus.NewRegistry()))

				msgs := fleetMessages(n, keys)
				sent := published(ps.publish(t, topic, msgs), msgs)
				harness.Eventually(t, 30*time.Second, "a third of the messages written", func() error {
					sink.mu.Lock()
					defer sink.mu.Unlock()
					if len(sink.written) < n/3 {
						return fmt.Errorf("%d written", len(sink.written))
					}
					return nil
				})
				sink.down.Store(true)
				time.Sleep(2 * time.Second) // the outage
				sink.mu.Lock()
				writtenDuringOutage := len(sink.written)
				sink.mu.Unlock()
				sink.down.Store(false)

				recs := readTopic(t, tg.bootstrap, tg.topic, partitions, n, 60*time.Second)
				checkMirrored(t, recs, sent, partitions, false)
				if early := checker.earlyAcks(); len(early) > 0 {
					t.Errorf("%d messages acked before they were written, e.g. %s", len(early), early[0])
				}
				if writtenDuringOutage == n {
					t.Errorf("all messages were written before the outage; the test proves nothing")
				}
				m := r.b.m
				if testutil.ToFloat64(m.sinkErrors) == 0 {
					t.Errorf("sink_errors_total = 0 after an outage")
				}
				if mode.retry < time.Second && testutil.ToFloat64(m.nacks.WithLabelValues(nackSink)) == 0 {
					t.Errorf("nacks_total{reason=sink} = 0 with a %v retry timeout", mode.retry)
				}
			})
		}
	}
}

// TestRedeliveryNotDuplicated loses the acks of the first messages, so Pub/Sub
// redelivers them when their ack deadline expires (about 10 s: the client's
// receipt extension). Within the dedup window the redeliveries are acked
// without being written again; with the window off they are duplicated, which
// shows the test would catch it.
func TestRedeliveryNotDuplicated(t *testing.T) {
	t.Parallel()
	const n, lost, partitions = 300, 40, 3
	for _, window := range []time.Duration{10 * time.Minute, -1} {
		name := "window " + window.String()
		if window < 0 {
			name = "window off"
		}
		for _, kind := range targetKinds {
			t.Run(name+"/"+kind, func(t *testing.T) {
				t.Parallel()
				tg := newTarget(t, kind, partitions)
				checker := newAckChecker()
				ps := inProcess(t, checker.option())
				// Without ordering, so that the lost messages do not hold up others.
				topic, sub := ps.topicAndSub(t, func(s *pubsubpb.Subscription) { s.EnableMessageOrdering = false })
				sink := newTestSink(newKafkaSink(t, tg.bootstrap))
				checker.sink = sink
				var losing = true
				checker.drop = func(string) bool {
					if losing && len(checker.dropped) >= lost {
						losing = false
					}
					return losing
				}
				cfg := bridgeConfig(sub, tg)
				cfg.DedupWindow = window
				r := startBridge(t, cfg, ps.deps(sink, prometheus.NewRegistry()))

				msgs := fleetMessages(n, 10)
				for _, m := range msgs {
					m.OrderingKey = ""
				}
				ids := ps.publish(t, topic, msgs)
				sent := published(ids, msgs)
				waitAcked(t, ps, ids, 45*time.Second)
				checker.mu.Lock()
				dropped := len(checker.dropped)
				checker.mu.Unlock()
				if dropped < lost {
					t.Fatalf("only %d acks lost, want >= %d", dropped, lost)
				}
				m := r.b.m
				redelivered := testutil.ToFloat64(m.redelivered.WithLabelValues(redeliveryDuplicate))
				if window > 0 {
					recs := readTopic(t, tg.bootstrap, tg.topic, partitions, n, 30*time.Second)
					checkMirrored(t, recs, sent, partitions, false)
					if got := testutil.ToFloat64(m.records.WithLabelValues(outcomeDuplicate)); got < float64(dropped) || redelivered < float64(dropped) {
						t.Errorf("records_total{outcome=duplicate} = %v, redeliveries_total{kind=duplicate_id} = %v; want >= %d (acks lost)", got, redelivered, dropped)
					}
				} else {
					recs := readTopic(t, tg.bootstrap, tg.topic, partitions, n+dropped, 30*time.Second)
					checkMirrored(t, recs, sent, partitions, true)
				}
			})
		}
	}
}

// policyTransformer stands in for the policy engine: it blocks records with
// an "ssn" field, masks "email", fails once for records whose flaky field is
// set (after scribbling on the record, which must not survive the retry), and
// marks what it touched with tributary-policy.
type policyTransformer struct {
	mu    sync.Mutex
	flaky map[string]bool // message ids that failed once
}

func newPolicyTransformer() *policyTransformer {
	return &policyTransformer{flaky: map[string]bool{}}
}

func (p *policyTransformer) Transform(_ context.Context, rec *governance.Record) error {
	var doc map[string]any
	if err := json.Unmarshal(rec.Value, &doc); err != nil {
		return governance.Reject(reasonUndecodable, "not a JSON object")
	}
	if _, ok := doc["ssn"]; ok {
		return governance.Reject("blocked-by-policy", "field ssn is blocked by fleet-pii@3")
	}
	if doc["flaky"] == true {
		p.mu.Lock()
		first := !p.flaky[rec.MessageID]
		p.flaky[rec.MessageID] = true
		p.mu.Unlock()
		if first {
			rec.Value = []byte(`{"scribbled":true}`)
			return fmt.Errorf("registry unavailable")
		}
	}
	if _, ok := doc["email"]; ok {
		doc["email"] = "***"
	}
	v, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	rec.Value = v
	rec.Headers = append(rec.Headers, kafka.Header{Key: "tributary-policy", Value: []byte("fleet-pii@3")})
	return nil
}

// governanceMessages: valid records with an email, malformed JSON, blocked
// records, flaky ones, one too large for max_message_bytes and one the target
// refuses as too large.
func governanceMessages() (msgs []*pubsub.Message, want map[int]string) {
	want = map[int]string{} // index → quarantine reason, "" = lands
	for i := range 200 {
		data := fmt.Sprintf(`{"i":%d,"email":"driver%d@example.com"}`, i, i)
		attrs := map[string]string{"i": strconv.Itoa(i)}
		switch {
		case i%10 == 3:
			data = fmt.Sprintf(`{"i":%d,"email":`, i) // truncated
			want[i] = reasonUndecodable
		case i%10 == 7:
			data = fmt.Sprintf(`{"i":%d,"ssn":"000-00-0000"}`, i)
			want[i] = "blocked-by-policy"
		case i%10 == 5:
			data = fmt.Sprintf(`{"i":%d,"email":"driver%d@example.com","flaky":true}`, i, i)
		case i == 11:
			data = fmt.Sprintf(`{"i":%d,"blob":%q}`, i, bytes.Repeat([]byte("x"), 5000))
			want[i] = reasonTooLarge
		case i == 21:
			attrs["refuse"] = "1"
			want[i] = reasonTooLarge
		}
		msgs = append(msgs, &pubsub.Message{Data: []byte(data), Attributes: attrs, OrderingKey: fmt.Sprintf("car-%d", i%5)})
	}
	return msgs, want
}

// refuseTooLarge is the target's MESSAGE_TOO_LARGE for records marked refuse
// (outside the quarantine topic).
func refuseTooLarge(quarantine string) func(*kafka.Message) error {
	return func(m *kafka.Message) error {
		if header(m, "refuse") == "1" && *m.TopicPartition.Topic != quarantine {
			return kafka.NewError(kafka.ErrMsgSizeTooLarge, "Broker: Message size too large", false)
		}
		return nil
	}
}

// TestQuarantine sends malformed JSON, records the transformer blocks, and
// oversize records: each is quarantined (Kafka quarantine topic, or the Pub/Sub
// dead-letter topic) and acked, and the rest lands masked.
func TestQuarantine(t *testing.T) {
	t.Parallel()
	for _, dest := range []string{"kafka", "dead-letter-topic"} {
		for _, kind := range targetKinds {
			t.Run(dest+"/"+kind, func(t *testing.T) {
				t.Parallel()
				const partitions = 3
				tg := newTarget(t, kind, partitions)
				checker := newAckChecker()
				ps := inProcess(t, checker.option())
				topic, sub := ps.topicAndSub(t, nil)
				sink := newTestSink(newKafkaSink(t, tg.bootstrap))
				sink.failFor = refuseTooLarge(tg.quarantine)
				cfg := bridgeConfig(sub, tg)
				cfg.MaxMessageBytes = 2000
				if dest == "dead-letter-topic" {
					cfg.DeadLetterTopic = uniqueID("telemetry-dead-letter")
					ps.createTopic(t, cfg.DeadLetterTopic)
				} else {
					checker.sink = sink // quarantine records are written through the sink too
				}
				deps := ps.deps(sink, prometheus.NewRegistry())
				deps.Transformer = newPolicyTransformer()
				r := startBridge(t, cfg, deps)

				msgs, want := governanceMessages()
				ids := ps.publish(t, topic, msgs)
				waitAcked(t, ps, ids, 60*time.Second)
				if early := checker.earlyAcks(); len(early) > 0 {
					t.Errorf("%d messages acked before they were written, e.g. %s", len(early), early[0])
				}
				lands, quarantined := 0, map[string]string{} // id → reason
				for i, id := range ids {
					if want[i] == "" {
						lands++
					} else {
						quarantined[id] = want[i]
					}
				}
				recs := readTopic(t, tg.bootstrap, tg.topic, partitions, lands, 30*time.Second)
				if len(recs) != lands {
					t.Errorf("%d records landed, want %d", len(recs), lands)
				}
				for _, rec := range recs {
					id := header(rec, HeaderMessageID)
					if _, ok := quarantined[id]; ok {
						t.Errorf("message %s landed, want it quarantined", id)
					}
					if bytes.Contains(rec.Value, []byte("@example.com")) || bytes.Contains(rec.Value, []byte("scribbled")) || !bytes.Contains(rec.Value, []byte(`"email":"***"`)) {
						t.Errorf("message %s landed as %s, want the email masked once", id, rec.Value)
					}
					if header(rec, "tributary-policy") != "fleet-pii@3" {
						t.Errorf("message %s: no tributary-policy header", id)
					}
				}

				got := map[string]string{} // id → tributary-error
				if dest == "kafka" {
					for _, q := range readTopic(t, tg.bootstrap, tg.quarantine, tg.qPartitions, len(quarantined), 30*time.Second) {
						id := header(q, HeaderMessageID)
						got[id] = header(q, HeaderError)
						if string(q.Key) != "projects/"+project+"/subscriptions/"+sub+"/"+id {
							t.Errorf("quarantine record key %q, want subscription/message id", q.Key)
						}
						if header(q, HeaderSourceSubscription) == "" || header(q, "i") == "" {
							t.Errorf("quarantine record of %s lacks %s or the attributes", id, HeaderSourceSubscription)
						}
					}
				} else {
					for _, m := range ps.srv.Messages() {
						if m.Topic == topicName(cfg.DeadLetterTopic) {
							got[m.Attributes[HeaderMessageID]] = m.Attributes[HeaderError]
						}
					}
				}
				for id, reason := range quarantined {
					e, ok := got[id]
					switch {
					case !ok:
						t.Errorf("message %s not in the quarantine, want reason %s", id, reason)
					case !bytes.HasPrefix([]byte(e), []byte(reason+":")):
						t.Errorf("message %s quarantined with %q, want reason %s", id, e, reason)
					}
				}
				if len(got) != len(quarantined) {
					t.Errorf("%d messages quarantined, want %d", len(got), len(quarantined))
				}
				for label, want := range map[string]float64{qUndecodable: 20, qRejected: 20, qTooLarge: 2} {
					waitMetric(t, r.b.m.quarantined.WithLabelValues(label), want)
				}
			})
		}
	}
}

// produceOnly hides the PartitionCounter of a Sink: records then go out with
// PartitionAny and the producer's murmur2_random partitioner places them.
type produceOnly struct{ Sink }

// TestExactlyOnceSubscription acks with AckWithResult on a subscription with
// exactly-once delivery and waits for the results. Its sink has no partition
// count, so it also checks that librdkafka's murmur2_random puts the keys where
// the bridge would.
func TestExactlyOnceSubscription(t *testing.T) {
	t.Parallel()
	const n, partitions = 200, 3
	tg := newTarget(t, "kfake", partitions)
	checker := newAckChecker()
	ps := inProcess(t, checker.option())
	topic, sub := ps.topicAndSub(t, func(s *pubsubpb.Subscription) { s.EnableExactlyOnceDelivery = true })
	sink := newTestSink(newKafkaSink(t, tg.bootstrap))
	checker.sink = sink
	r := startBridge(t, bridgeConfig(sub, tg), ps.deps(produceOnly{sink}, prometheus.NewRegistry()))
	msgs := fleetMessages(n, 5)
	ids := ps.publish(t, topic, msgs)
	waitAcked(t, ps, ids, 60*time.Second)
	checkMirrored(t, readTopic(t, tg.bootstrap, tg.topic, partitions, n, 30*time.Second), published(ids, msgs), partitions, false)
	waitMetric(t, r.b.m.acks, n)
	if got := testutil.ToFloat64(r.b.m.ackErrors); got != 0 {
		t.Errorf("ack_errors_total = %v", got)
	}
}

// TestHandover stops a bridge mid-stream (as when its node dies or its task
// moves) and starts another on the same subscription: the stream completes and
// nothing is lost. It runs against the pstest process: stopping a client
// mid-stream makes pstest race with itself (its stream sender marshals a
// message outside the server lock, and a later nack of that message writes
// it), which the race detector would blame on this test binary.
func TestHandover(t *testing.T) {
	t.Parallel()
	const n, keys, partitions = 480, 8, 4
	tg := newTarget(t, "kfake", partitions)
	ps := emulator(t)
	topic, sub := ps.topicAndSub(t, nil)
	sink := newTestSink(newKafkaSink(t, tg.bootstrap))
	cfg := bridgeConfig(sub, tg)
	first := startBridge(t, cfg, ps.deps(sink, prometheus.NewRegistry()))
	msgs := fleetMessages(n, keys)
	ids := ps.publish(t, topic, msgs)
	sent := published(ids, msgs)
	harness.Eventually(t, 60*time.Second, "a quarter written", func() error {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		if len(sink.written) < n/4 {
			return fmt.Errorf("%d written", len(sink.written))
		}
		return nil
	})
	stopped := time.Now()
	first.stop(t)
	t.Logf("first bridge stopped in %v", time.Since(stopped).Round(time.Millisecond))
	expireLeases(t, ps, sub, sink, ids)
	startBridge(t, cfg, ps.deps(sink, prometheus.NewRegistry()))
	waitWritten(t, sink, sent, 60*time.Second)
	recs := readTopic(t, tg.bootstrap, tg.topic, partitions, n, 60*time.Second)
	checkMirrored(t, recs, sent, partitions, true)
}

// expireLeases shortens to one second the leases of the messages not written
// yet, as Pub/Sub ends them when their ack deadline passes after their
// subscriber died. pstest needs the help: messages it sent on a stream that
// closed before the client read them stay leased for the stream ack deadline,
// which the v2 client opens at 600 s (pstest ignores the shorter deadline the
// client sends later with its pings); with message ordering each blocks its
// key. pstest's ack ids are "<message id>:<delivery>"; ids of other deliveries
// are ignored, as are messages not leased.
func expireLeases(t *testing.T, ps *psServer, sub string, sink *testSink, ids []string) {
	t.Helper()
	time.Sleep(time.Second) // until pstest noticed that the streams are gone
	var ackIDs []string
	for _, id := range ids {
		if !sink.isWritten(id) {
			for d := 1; d <= 3; d++ {
				ackIDs = append(ackIDs, fmt.Sprintf("%s:%d", id, d))
			}
		}
	}
	// A deadline, not a nack (0): a nack writes the message pstest's sender
	// may have read without a lock.
	err := ps.client.SubscriptionAdminClient.ModifyAckDeadline(context.Background(), &pubsubpb.ModifyAckDeadlineRequest{
		Subscription: "projects/" + project + "/subscriptions/" + sub, AckIds: ackIDs, AckDeadlineSeconds: 1,
	})
	if err != nil {
		t.Fatalf("ModifyAckDeadline: %v", err)
	}
}

// TestRunFailsOnMissingSubscription: a subscription that does not exist is a
// Run error, not a silent idle bridge.
func TestRunFailsOnMissingSubscription(t *testing.T) {
	t.Parallel()
	ps := inProcess(t)
	b, err := New(bridgeConfig("no-such-sub", &target{topic: "t", quarantine: QuarantineTopic}), ps.deps(nopSink{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v, want a not-found error", err)
	}
}

type nopSink struct{}

func (nopSink) Produce(context.Context, []*kafka.Message) []error { return nil }
