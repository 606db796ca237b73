package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/tributary-dev/tributary/test/harness"
)

// TestPubSubSubscriptionMirroredAcrossNodeFailure runs three nodes of region
// cloud against a pstest server reached through PUBSUB_EMULATOR_HOST: a
// subscription (two receiver tasks) lands in the real target cluster with the
// connector's mapping, masked by policy; the node running a receiver is killed
// mid-stream, its task moves, and every message lands.
func TestPubSubSubscriptionMirroredAcrossNodeFailure(t *testing.T) {
	_, target := harness.Brokers(t)
	client, topicID, subID := startPubSub(t, true)
	ctx := context.Background()
	polDir := t.TempDir()
	os.WriteFile(filepath.Join(polDir, "telemetry.yaml"), []byte(`policy: telemetry-pii
version: 1
rules:
  - match: {field: driver_email}
    action: hash
`), 0o644)

	dst := harness.UniqueName(t, "fleet.telemetry")
	c := newCluster(t, []nodeSpec{{"c1", "cloud"}, {"c2", "cloud"}, {"c3", "cloud"}}, fmt.Sprintf(`  central: {region: cloud, bootstrap: "%s"}
pubsub:
  fleet: {region: cloud, project: %s, use_emulator_env: true}
policies: %s`, target, pubsubProject, polDir), fmt.Sprintf(`  - name: telemetry
    source: {pubsub: fleet, subscription: %s}
    topic: %s
    key_attribute: vin
    format: json
    tasks: 2
`, subID, dst))
	c.startAll()
	c.waitAllRunning(60*time.Second, 2)

	const total, keys = 1500, 20
	pub := client.Publisher(topicID)
	pub.EnableMessageOrdering = true
	defer pub.Stop()
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < total; i++ {
			key := "key-" + strconv.Itoa(i%keys)
			data, _ := json.Marshal(map[string]any{"seq": i, "driver_email": fmt.Sprintf("d%d@fleet.example", i%7), "rpm": 900 + i})
			r := pub.Publish(ctx, &pubsub.Message{Data: data, OrderingKey: key,
				Attributes: map[string]string{"vin": "WVW" + strconv.Itoa(i%keys), "seq": strconv.Itoa(i)}})
			if i%100 == 99 {
				r.Get(ctx)
			}
		}
		pub.Flush()
	}()

	harness.Eventually(t, 2*time.Minute, "a third of the messages in Kafka", func() error {
		if n := countCommitted(t, target, dst); n < total/3 {
			return fmt.Errorf("%d", n)
		}
		return nil
	})
	var victim string
	for id, ts := range c.running() {
		if len(ts) > 0 {
			victim = id
			break
		}
	}
	c.nodes[victim].kill()
	t.Logf("killed %s, which ran a receiver", victim)
	<-published
	c.waitAllRunning(30*time.Second, 2, victim)

	// Every message lands; a redelivery across the failover may add duplicates
	// (at-least-once across nodes), which the check tolerates but counts.
	seen := map[string]int{}
	lastSeq := map[string]int{} // ordering key → last seq, per partition stream
	var got map[int32][]targetRecord
	harness.Eventually(t, 3*time.Minute, "every message in Kafka", func() error {
		got = readAll(t, target, dst, total, 20*time.Second)
		clear(seen)
		for _, recs := range got {
			for _, r := range recs {
				id, _ := header(r.Headers, "pubsub-message-id")
				seen[string(id)]++
			}
		}
		if len(seen) < total {
			return fmt.Errorf("%d of %d distinct messages", len(seen), total)
		}
		return nil
	})
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("%d distinct messages, %d duplicates after the failover", len(seen), dups)
	for part, recs := range got {
		clear(lastSeq)
		for _, r := range recs {
			if strings.Contains(string(r.Value), "@fleet.example") {
				t.Fatalf("raw e-mail in the target: %s", r.Value)
			}
			if h, _ := header(r.Headers, "tributary-policy"); string(h) != "telemetry-pii@1" {
				t.Fatalf("tributary-policy %q", h)
			}
			vin, _ := header(r.Headers, "vin")
			if string(r.Key) != string(vin) {
				t.Fatalf("key %q, want the vin attribute %q", r.Key, vin)
			}
			ok, _ := header(r.Headers, "pubsub-ordering-key")
			seqH, _ := header(r.Headers, "seq")
			seq, _ := strconv.Atoi(string(seqH))
			if prev, has := lastSeq[string(ok)]; has && seq < prev {
				// A redelivered message may repeat an earlier one; order breaks
				// only if a message comes before one published earlier and not
				// seen again.
				if seen[msgID(r)] == 1 {
					t.Errorf("partition %d, ordering key %s: seq %d after %d", part, ok, seq, prev)
				}
			}
			lastSeq[string(ok)] = max(lastSeq[string(ok)], seq)
			for _, h := range []string{"pubsub-message-id", "pubsub-publish-time", "pubsub-ordering-key"} {
				if _, ok := header(r.Headers, h); !ok {
					t.Fatalf("header %s missing", h)
				}
			}
		}
	}
}

// pubsubProject is the Pub/Sub project of the tests' pstest server.
const pubsubProject = "acme-fleet"

// startPubSub starts a pstest server as a separate endpoint that the daemons
// reach through PUBSUB_EMULATOR_HOST, with a topic and a subscription (10 s ack
// deadline, ordered or not), and a client for publishing. The hash key of the
// policies is set too.
func startPubSub(t *testing.T, ordered bool) (client *pubsub.Client, topicID, subID string) {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	t.Setenv("TRIBUTARY_HASH_KEY", "test-hash-key-0123456789abcdef")
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, pubsubProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	topicID, subID = harness.UniqueName(t, "telemetry"), harness.UniqueName(t, "telemetry-sub")
	topic := "projects/" + pubsubProject + "/topics/" + topicID
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + pubsubProject + "/subscriptions/" + subID, Topic: topic,
		AckDeadlineSeconds: 10, EnableMessageOrdering: ordered,
	}); err != nil {
		t.Fatal(err)
	}
	return client, topicID, subID
}

func msgID(r targetRecord) string {
	id, _ := header(r.Headers, "pubsub-message-id")
	return string(id)
}
