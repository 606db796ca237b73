package test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"

	"github.com/tributary-dev/tributary/registry"
	"github.com/tributary-dev/tributary/test/harness"
)

const (
	// email is tagged PII; card is listed by a rule but not tagged.
	cardSchemaA = `{"type":"record","name":"CardPayment","namespace":"fleet","fields":[
		{"name":"vin","type":"string"},
		{"name":"email","type":"string","confluent:tags":["PII"]},
		{"name":"card","type":"string"},
		{"name":"amount","type":"double"}]}`
	// B adds a PII-tagged field that no rule covers: fail closed.
	cardSchemaB = `{"type":"record","name":"CardPayment","namespace":"fleet","fields":[
		{"name":"vin","type":"string"},
		{"name":"email","type":"string","confluent:tags":["PII"]},
		{"name":"card","type":"string"},
		{"name":"amount","type":"double"},
		{"name":"owner","type":"string","default":"","confluent:tags":["PII"]}]}`
)

func policyFile(version int, extra string) string {
	return fmt.Sprintf(`policy: payments-pii
version: %d
owner: compliance@acme.example
rules:
  - match: {field: email}
    action: hash
  - match: {field: card}
    action: mask
    keep_last: 4
%s`, version, extra)
}

type cardPayment struct {
	Vin    string  `avro:"vin"`
	Email  string  `avro:"email"`
	Card   string  `avro:"card"`
	Amount float64 `avro:"amount"`
}

type cardPaymentB struct {
	Vin    string  `avro:"vin"`
	Email  string  `avro:"email"`
	Card   string  `avro:"card"`
	Amount float64 `avro:"amount"`
	Owner  string  `avro:"owner"`
}

// TestPIIMaskedBeforeLandingAcrossTwoNodes runs two nodes that share one
// pipeline's tasks, with schema translation and a policy folder: no PII value
// reaches the target, pseudonyms agree across nodes, an uncovered PII tag
// quarantines, a policy change switches at one point, and an invalid edit
// leaves the active bundle in place.
func TestPIIMaskedBeforeLandingAcrossTwoNodes(t *testing.T) {
	source, target := harness.Brokers(t)
	t.Setenv("TRIBUTARY_HASH_KEY", "test-hash-key-0123456789abcdef")
	topic := harness.UniqueName(t, "cards")
	createTopic(t, source, topic, 2, nil)
	srcReg := startRegistry(t, "")
	dstReg := startRegistry(t, "")
	srcReg.setCompatibility(topic+"-value", "NONE")
	idA := srcReg.register(topic+"-value", cardSchemaA)
	idB := srcReg.register(topic+"-value", cardSchemaB)
	polDir := t.TempDir()
	writePolicy := func(text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(polDir, "payments.yaml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy(policyFile(1, ""))

	clusters := fmt.Sprintf(`  regional:
    region: eu
    bootstrap: %s
    schema_registry: {url: %s}
  central:
    region: cloud
    bootstrap: %s
    schema_registry: {url: %s}
policies: %s`, source, srcReg.url(), target, dstReg.url(), polDir)
	c := newCluster(t, []nodeSpec{{"n1", "eu"}, {"n2", "eu"}}, clusters, fmt.Sprintf(`  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    format: avro
    tasks: 2
`, topic, topic))
	c.startAll()
	c.waitAllRunning(60*time.Second, 2)
	if r := c.running(); len(r["n1"]) != 1 || len(r["n2"]) != 1 {
		t.Fatalf("want one task per node, got %v", r)
	}

	emails := []string{}
	for i := 0; i < 5; i++ {
		emails = append(emails, fmt.Sprintf("driver%d@fleet.example", i))
	}
	const card = "4111111111111111"
	p := newProducer(t, source)
	seq := 0
	send := func(part int32, id int32, schema string, v any) {
		t.Helper()
		if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: part}, Value: avroFrame(t, id, schema, v)}, nil); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	for i := 0; i < 100; i++ {
		// Every email goes to both partitions, so both nodes hash it.
		send(int32(i%2), idA, cardSchemaA, cardPayment{Vin: "WVW" + strconv.Itoa(i), Email: emails[(i/2)%5], Card: card, Amount: float64(i)})
	}
	send(0, idB, cardSchemaB, cardPaymentB{Vin: "B1", Email: emails[0], Card: card, Owner: "Erika Mustermann"})
	flush(t, p)

	dst := "regional." + topic
	got := readAll(t, target, dst, 100, 2*time.Minute)
	n := len(got[0]) + len(got[1])
	if n != 100 {
		t.Fatalf("%d records landed, want 100 (the schema-B record is quarantined)", n)
	}
	pseudonyms := map[string]map[int32]string{} // email → partition → hash
	for part, recs := range got {
		for _, r := range recs {
			for _, pii := range append(emails, card, "Erika Mustermann") {
				if bytes.Contains(r.Value, []byte(pii)) {
					t.Fatalf("raw PII %q reached the target (partition %d offset %d)", pii, part, r.Offset)
				}
			}
			if h, _ := header(r.Headers, "tributary-policy"); string(h) != "payments-pii@1" {
				t.Errorf("tributary-policy = %q, want payments-pii@1", h)
			}
			v := decodeTarget(t, dstReg, r.Value)
			if c := v["card"].(string); !strings.HasSuffix(c, "1111") || c == card {
				t.Errorf("card %q is not masked with its last 4 kept", c)
			}
			off, _ := header(r.Headers, "tributary-origin-offset")
			o, _ := strconv.Atoi(string(off))
			orig := emails[((o*2+int(part))/2)%5]
			if pseudonyms[orig] == nil {
				pseudonyms[orig] = map[int32]string{}
			}
			if prev, ok := pseudonyms[orig][part]; ok && prev != v["email"] {
				t.Errorf("one email hashed to two values in partition %d", part)
			}
			pseudonyms[orig][part] = v["email"].(string)
		}
	}
	for e, byPart := range pseudonyms {
		if len(byPart) == 2 && byPart[0] != byPart[1] {
			t.Errorf("email %s: node of partition 0 hashed it to %s, the other node to %s", e, byPart[0], byPart[1])
		}
	}
	q := map[string]string{}
	harness.Eventually(t, 30*time.Second, "the uncovered PII tag quarantined", func() error {
		q = quarantined(t, source, topic)
		if len(q) != 1 {
			return fmt.Errorf("%v", q)
		}
		return nil
	})
	for _, reason := range q {
		if !strings.HasPrefix(reason, "unmatched-pii") {
			t.Errorf("quarantine reason %q, want unmatched-pii", reason)
		}
	}

	// A policy change while records flow: version 2 also redacts the vin. Each
	// record is masked by one version, and per partition the switch happens once.
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		i := 0
		defer func() { done <- i }()
		for ; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			send(int32(i%2), idA, cardSchemaA, cardPayment{Vin: "WVW-late-" + strconv.Itoa(i), Email: emails[i%5], Card: card, Amount: 1})
			if i%20 == 19 {
				p.Flush(1000)
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)
	writePolicy(policyFile(2, "  - match: {field: vin}\n    action: redact\n"))
	for _, id := range []string{"n1", "n2"} {
		harness.Eventually(t, 30*time.Second, id+" applies version 2", func() error {
			if m := c.nodes[id].metrics(); !strings.Contains(m, `tributary_policy_version{policy="payments-pii"} 2`) {
				return fmt.Errorf("not yet")
			}
			return nil
		})
	}
	time.Sleep(time.Second) // records masked by version 2 follow
	close(stop)
	late := <-done
	flush(t, p)
	got = readAll(t, target, dst, 100+late, 2*time.Minute)
	for part, recs := range got {
		seen2 := false
		for _, r := range recs[50:] {
			h, _ := header(r.Headers, "tributary-policy")
			v := decodeTarget(t, dstReg, r.Value)
			switch string(h) {
			case "payments-pii@1":
				if seen2 {
					t.Fatalf("partition %d: a record masked by version 1 after one masked by version 2", part)
				}
				if v["vin"] == "" {
					t.Fatalf("partition %d: version-1 record with a redacted vin (mixed versions)", part)
				}
			case "payments-pii@2":
				seen2 = true
				if v["vin"] != "" {
					t.Fatalf("partition %d: version-2 record with vin %q (mixed versions)", part, v["vin"])
				}
			default:
				t.Fatalf("partition %d: tributary-policy %q", part, h)
			}
		}
		if !seen2 {
			t.Errorf("partition %d never switched to version 2", part)
		}
	}

	// An invalid edit is rejected; version 2 stays active on every node.
	writePolicy(strings.Replace(policyFile(3, ""), "action: hash", "action: hsah", 1))
	resp, err := http.Post("http://"+c.http["n1"]+"/v1/policies/reload", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, id := range []string{"n1", "n2"} {
		harness.Eventually(t, 20*time.Second, id+" reports the rejected edit", func() error {
			st, err := c.status(id)
			if err != nil {
				return err
			}
			if st.Policy.Policies["payments-pii"] != 2 {
				return fmt.Errorf("active versions %v", st.Policy.Policies)
			}
			if !strings.Contains(st.Policy.LastError, `unknown action "hsah"`) {
				return fmt.Errorf("last_error %q", st.Policy.LastError)
			}
			return nil
		})
		if m := c.nodes[id].metrics(); !strings.Contains(m, `tributary_policy_version{policy="payments-pii"} 2`) {
			t.Errorf("%s: tributary_policy_version is not 2", id)
		}
	}
}

// decodeTarget decodes a target record with its schema from the target registry.
func decodeTarget(t *testing.T, reg *registryProc, value []byte) map[string]any {
	t.Helper()
	ref, n, err := registry.ReadRef(value, registry.Avro)
	if err != nil {
		t.Fatal(err)
	}
	text, err := reg.schemaByID(ref.ID)
	if err != nil {
		t.Fatal(err)
	}
	s, err := avro.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := avro.Unmarshal(s, value[n:], &v); err != nil {
		t.Fatalf("decoding with target schema %d: %v", ref.ID, err)
	}
	return v
}
