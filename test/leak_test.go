package test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"

	"github.com/tributary-dev/tributary/registry"
	"github.com/tributary-dev/tributary/test/harness"
)

// The leak suite produces records carrying known PII strings down every path a
// record can take into the central cluster, then reads every byte of every
// record there — keys, values, header names and values — and looks for them.
// Nothing raw may land; every record either landed masked or sits in its
// source region's quarantine with a reason.

const (
	leakKeySchema = `{"type":"record","name":"CustomerKey","namespace":"leak","fields":[
		{"name":"customer_id","type":"string","confluent:tags":["PII"]}]}`
	leakValueSchema = `{"type":"record","name":"Payment","namespace":"leak","fields":[
		{"name":"ref","type":"string"},
		{"name":"email","type":"string","confluent:tags":["PII"]},
		{"name":"card","type":"string"},
		{"name":"note","type":"string"},
		{"name":"amount","type":"double"}]}`
	// leakValueSchemaB adds a PII-tagged field no rule covers.
	leakValueSchemaB = `{"type":"record","name":"Payment","namespace":"leak","fields":[
		{"name":"ref","type":"string"},
		{"name":"email","type":"string","confluent:tags":["PII"]},
		{"name":"card","type":"string"},
		{"name":"note","type":"string"},
		{"name":"amount","type":"double"},
		{"name":"owner","type":"string","default":"","confluent:tags":["PII"]}]}`

	leakAddressSchema = `{"$id":"address.json","type":"object","properties":{
		"street":{"type":"string","confluent:tags":["PII"]},"city":{"type":"string"}}}`
	leakJSONSchema = `{"type":"object","properties":{"id":{"type":"string"},"home":{"$ref":"address.json"}},
		"allOf":[{"properties":{"ssn_like":{"type":"string","confluent:tags":["PII"]}}}],
		"patternProperties":{"^phone_":{"type":"string","confluent:tags":["PII"]}}}`

	leakProtoSchema = `syntax = "proto3";
package leak;
import "confluent/meta.proto";
message Payment {
  string email = 1 [(confluent.field_meta).tags = "PII"];
  string card = 2;
  double amount = 3;
  Driver driver = 4;
}
message Driver {
  string name = 1 [(confluent.field_meta).tags = "PII"];
  string licence = 2 [(confluent.field_meta).tags = "PII"];
}
`
)

// leakProto encodes a leak.Payment by hand (no generated code).
func leakProto(email, card string, amount float64, name, licence string) []byte {
	str := func(b []byte, field int, v string) []byte {
		b = binary.AppendUvarint(b, uint64(field<<3|2))
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	}
	var driver []byte
	driver = str(driver, 1, name)
	driver = str(driver, 2, licence)
	var b []byte
	b = str(b, 1, email)
	b = str(b, 2, card)
	b = binary.AppendUvarint(b, 3<<3|1)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(amount))
	return str(b, 4, string(driver))
}

type leakKey struct {
	CustomerID string `avro:"customer_id"`
}

type leakPayment struct {
	Ref    string  `avro:"ref"`
	Email  string  `avro:"email"`
	Card   string  `avro:"card"`
	Note   string  `avro:"note"`
	Amount float64 `avro:"amount"`
}

type leakPaymentB struct {
	leakPayment
	Owner string `avro:"owner"`
}

func leakPolicies(paymentsVersion int) map[string]string {
	extra := ""
	if paymentsVersion > 1 {
		extra = "  - match: {header: \"x-debug-*\"}\n    action: drop\n"
	}
	return map[string]string{
		"payments.yaml": fmt.Sprintf(`policy: leak-payments
version: %d
applies_to: {pipelines: [leak-avro]}
rules:
  - match: {field: email}
    action: hash
  - match: {field: card}
    action: mask
    keep_last: 4
  - match: {key: customer_id}
    action: hash
  - match: {header: x-customer-email}
    action: hash
  - match: {header: x-ssn}
    action: block
%s`, paymentsVersion, extra),
		"audit.yaml": `policy: leak-audit
version: 1
applies_to: {pipelines: [leak-avro]}
rules:
  - match: {field: note}
    action: redact
`,
		"json.yaml": `policy: leak-json
version: 1
applies_to: {pipelines: [leak-json]}
rules:
  - match: {tag: PII}
    action: hash
  - match: {key: "."}
    action: hash
`,
		"proto.yaml": `policy: leak-proto
version: 1
applies_to: {pipelines: [leak-proto]}
rules:
  - match: {tag: PII}
    action: hash
  - match: {field: card}
    action: mask
    keep_last: 4
`,
		"telemetry.yaml": `policy: leak-telemetry
version: 1
applies_to: {pipelines: [leak-telemetry]}
rules:
  - match: {field: driver_email}
    action: hash
  - match: {header: vin}
    action: hash
  - match: {header: driver_phone}
    action: redact
`,
	}
}

func writePolicies(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// registerFull registers a schema with references and returns its id and GUID.
func registerFull(t *testing.T, r *registryProc, subject, schema, typ string, refs []registry.Reference) (int32, [16]byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"schema": schema, "schemaType": typ, "references": refs})
	resp, err := http.Post(r.url()+"/subjects/"+subject+"/versions", "application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID      int32  `json:"id"`
		GUID    string `json:"guid"`
		Message string `json:"message"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		t.Fatalf("registering under %s: %d %s", subject, resp.StatusCode, out.Message)
	}
	guid, err := registry.ParseGUID(out.GUID)
	if err != nil {
		t.Fatalf("registering under %s: guid %q: %v", subject, out.GUID, err)
	}
	return out.ID, guid
}

// piiLedger remembers every PII string produced.
type piiLedger struct{ values []string }

func (l *piiLedger) pii(kind string, i int) string {
	v := fmt.Sprintf("PII-%s-%04d-%d", kind, i, time.Now().UnixNano()%100000)
	l.values = append(l.values, v)
	return v
}

// leakIn returns the first PII string found in a record read from the target.
func (l *piiLedger) leakIn(r targetRecord) (string, string) {
	parts := map[string][]byte{"key": r.Key, "value": r.Value}
	for _, h := range r.Headers {
		parts["header "+h.Key] = h.Value
		parts["header name "+h.Key] = []byte(h.Key)
	}
	for where, b := range parts {
		for _, v := range l.values {
			if bytes.Contains(b, []byte(v)) {
				return v, where
			}
		}
	}
	return "", ""
}

// TestNoRawPIILandsOnAnyPath is the leak suite: Avro in the wire format, bare
// Avro bodies whose schema id (numeric and GUID) travels in a header, keys with
// PII-tagged key schemas, headers a policy names, JSON Schema with a $ref to
// another subject, allOf and patternProperties, plain string keys, Pub/Sub
// messages with attributes a policy names and a key copied from one of them;
// on a two-node cluster where one node has no policies folder; with a policy
// file deleted, a policy change and a node restarted with a stale folder in
// between. Nothing raw lands; the rest is quarantined in the source region.
func TestNoRawPIILandsOnAnyPath(t *testing.T) {
	source, target := harness.Brokers(t)
	client, topicID, subID := startPubSub(t, false)
	ctx := context.Background()
	avroTopic := harness.UniqueName(t, "leak-avro")
	jsonTopic := harness.UniqueName(t, "leak-json")
	protoTopic := harness.UniqueName(t, "leak-proto")
	telemetryTopic := harness.UniqueName(t, "leak.telemetry")
	createTopic(t, source, avroTopic, 2, nil)
	createTopic(t, source, jsonTopic, 1, nil)
	createTopic(t, source, protoTopic, 1, nil)
	srcReg := startRegistry(t, "")
	dstReg := startRegistry(t, "")
	srcReg.setCompatibility(avroTopic+"-value", "NONE")
	keyID, _ := registerFull(t, srcReg, avroTopic+"-key", leakKeySchema, "AVRO", nil)
	valID, valGUID := registerFull(t, srcReg, avroTopic+"-value", leakValueSchema, "AVRO", nil)
	valIDB, _ := registerFull(t, srcReg, avroTopic+"-value", leakValueSchemaB, "AVRO", nil)
	protoID, _ := registerFull(t, srcReg, protoTopic+"-value", leakProtoSchema, "PROTOBUF", nil)
	registerFull(t, srcReg, jsonTopic+"-address", leakAddressSchema, "JSON", nil)
	jsonID, _ := registerFull(t, srcReg, jsonTopic+"-value", leakJSONSchema, "JSON",
		[]registry.Reference{{Name: "address.json", Subject: jsonTopic + "-address", Version: 1}})

	polDir := t.TempDir()
	writePolicies(t, polDir, leakPolicies(1))
	clusters := fmt.Sprintf(`  regional:
    region: eu
    bootstrap: %s
    schema_registry: {url: %s}
  central:
    region: cloud
    bootstrap: %s
    schema_registry: {url: %s}
pubsub:
  fleet: {region: eu, project: %s, use_emulator_env: true}
policies: %s`, source, srcReg.url(), target, dstReg.url(), pubsubProject, polDir)
	pipelines := fmt.Sprintf(`  - name: leak-avro
    source: {kafka: regional}
    topics: {include: ['%s']}
    format: avro
    tasks: 2
  - name: leak-json
    source: {kafka: regional}
    topics: {include: ['%s']}
    format: json
    tasks: 1
  - name: leak-proto
    source: {kafka: regional}
    topics: {include: ['%s']}
    format: protobuf
    tasks: 1
  - name: leak-telemetry
    source: {pubsub: fleet, subscription: %s}
    topic: %s
    key_attribute: vin
    format: json
    tasks: 1
    pubsub: {quarantine_kafka: regional}
`, avroTopic, jsonTopic, protoTopic, subID, telemetryTopic)
	c := newCluster(t, []nodeSpec{{"n1", "eu"}, {"n2", "eu"}}, clusters, pipelines)
	// n2 has no policies folder: it must govern with the cluster's bundle.
	cfg, err := os.ReadFile(c.cfgs["n2"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.cfgs["n2"], []byte(strings.Replace(string(cfg), "policies: "+polDir+"\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.startAll()
	c.waitAllRunning(90*time.Second, 5)
	// The first bundle (with leak-audit) is active on both nodes before the
	// first record, so that deleting audit.yaml below is a removal.
	for _, id := range []string{"n1", "n2"} {
		harness.Eventually(t, 60*time.Second, id+" holds the first bundle", func() error {
			st, err := c.status(id)
			if err != nil {
				return err
			}
			if len(st.Policy.Policies) != 5 || st.Policy.Policies["leak-audit"] != 1 {
				return fmt.Errorf("active %v", st.Policy.Policies)
			}
			return nil
		})
	}

	var ledger piiLedger
	p := newProducer(t, source)
	valSchema := avro.MustParse(leakValueSchema)
	want := map[string]int{}       // pipeline → records that must land
	quarantine := map[string]int{} // pipeline → records that must be quarantined
	seq := 0
	produce := func(topic string, part int32, key, value []byte, hs []kafka.Header) {
		t.Helper()
		if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: part},
			Key: key, Value: value, Headers: hs, Timestamp: time.Now()}, nil); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	payment := func(i int) leakPayment {
		// Ref is empty: the Avro body starts with 0x00, as a schema id would.
		card := "4111" + strconv.Itoa(1000_0000_0000+i)
		ledger.values = append(ledger.values, card)
		return leakPayment{Ref: "", Email: ledger.pii("email", i), Card: card, Note: ledger.pii("note", i), Amount: float64(i)}
	}
	// One batch of every kind of Kafka record.
	batch := func(b int) {
		t.Helper()
		for i := b * 100; i < b*100+20; i++ {
			part := int32(i % 2)
			key := avroFrame(t, keyID, leakKeySchema, leakKey{CustomerID: ledger.pii("customer", i)})
			pay := payment(i)
			// The wire format, with a PII header the policy hashes.
			produce(avroTopic, part, key, avroFrame(t, valID, leakValueSchema, pay),
				[]kafka.Header{{Key: "x-customer-email", Value: []byte(ledger.pii("hdr-email", i))}, {Key: "trace", Value: []byte("t")}})
			want["leak-avro"]++
			// A bare body starting with 0x00 (an empty ref), its schema id in a header.
			body, err := avro.Marshal(valSchema, payment(i+10_000))
			if err != nil {
				t.Fatal(err)
			}
			produce(avroTopic, part, key, body, []kafka.Header{{Key: registry.ValueSchemaIDHeader,
				Value: registry.AppendRef(nil, registry.SchemaRef{Magic: registry.MagicID, ID: valID}, registry.Avro)}})
			want["leak-avro"]++
			// The same by GUID.
			body, _ = avro.Marshal(valSchema, payment(i+20_000))
			produce(avroTopic, part, key, body, []kafka.Header{{Key: registry.ValueSchemaIDHeader,
				Value: registry.AppendRef(nil, registry.SchemaRef{Magic: registry.MagicGUID, GUID: valGUID}, registry.Avro)}})
			want["leak-avro"]++
			// A header the policy blocks, and a field tagged PII no rule covers.
			if i%5 == 0 {
				produce(avroTopic, part, key, avroFrame(t, valID, leakValueSchema, payment(i+30_000)),
					[]kafka.Header{{Key: "x-ssn", Value: []byte(ledger.pii("ssn", i))}})
				quarantine["leak-avro"]++
				produce(avroTopic, part, key, avroFrame(t, valIDB, leakValueSchemaB,
					leakPaymentB{leakPayment: payment(i + 40_000), Owner: ledger.pii("owner", i)}), nil)
				quarantine["leak-avro"]++
			}
			// JSON Schema: $ref to another subject, allOf, patternProperties;
			// a plain string key.
			doc, _ := json.Marshal(map[string]any{"id": "j-" + strconv.Itoa(i),
				"home":     map[string]any{"street": ledger.pii("street", i), "city": "Berlin"},
				"ssn_like": ledger.pii("ssnlike", i), "phone_mobile": ledger.pii("phone", i)})
			produce(jsonTopic, 0, []byte(ledger.pii("jkey", i)),
				registry.AppendFrame(nil, registry.SchemaRef{Magic: registry.MagicID, ID: jsonID}, registry.JSON, doc), nil)
			want["leak-json"]++
			// Protobuf with PII-tagged fields, nested ones included.
			card := "5500" + strconv.Itoa(1000_0000_0000+i)
			ledger.values = append(ledger.values, card)
			produce(protoTopic, 0, nil, registry.AppendFrame(nil, registry.SchemaRef{Magic: registry.MagicID, ID: protoID, Indexes: []int{0}},
				registry.Protobuf, leakProto(ledger.pii("pemail", i), card, float64(i), ledger.pii("pname", i), ledger.pii("licence", i))), nil)
			want["leak-proto"]++
		}
		flush(t, p)
	}
	pub := client.Publisher(topicID)
	defer pub.Stop()
	publish := func(b int) {
		t.Helper()
		for i := b * 100; i < b*100+15; i++ {
			data, _ := json.Marshal(map[string]any{"seq": i, "driver_email": ledger.pii("driver", i), "rpm": 900 + i})
			if i%5 == 4 {
				data = []byte(`{"seq": ` + strconv.Itoa(i) + `, "driver_email": "` + ledger.pii("broken", i) + `"`) // not JSON
				quarantine["leak-telemetry"]++
			} else {
				want["leak-telemetry"]++
			}
			r := pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: map[string]string{
				"vin": ledger.pii("vin", i), "driver_phone": ledger.pii("tel", i), "model": "ID.4"}})
			if _, err := r.Get(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	batch(0)
	publish(0)

	// A deleted policy file is rejected: its protection stays.
	if err := os.Remove(filepath.Join(polDir, "audit.yaml")); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "the deletion rejected", func() error {
		st, err := c.status("n1")
		if err != nil {
			return err
		}
		if !strings.Contains(st.Policy.LastError, `"leak-audit"`) {
			return fmt.Errorf("last error %q", st.Policy.LastError)
		}
		return nil
	})
	batch(1)
	publish(1)

	// A policy change goes live on both nodes (the deleted file restored).
	writePolicies(t, polDir, leakPolicies(2))
	for _, id := range []string{"n1", "n2"} {
		harness.Eventually(t, 30*time.Second, id+" on leak-payments@2", func() error {
			st, err := c.status(id)
			if err != nil {
				return err
			}
			if st.Policy.Policies["leak-payments"] != 2 {
				return fmt.Errorf("active %v (last error %q)", st.Policy.Policies, st.Policy.LastError)
			}
			return nil
		})
	}

	// n1 restarts with a stale copy of the folder (leak-payments@1): it must not
	// roll the cluster back.
	if err, _ := c.nodes["n1"].stop(); err != nil {
		t.Fatal(err)
	}
	writePolicies(t, polDir, leakPolicies(1))
	c.start("n1").waitReady(90 * time.Second)
	harness.Eventually(t, 30*time.Second, "the stale folder refused", func() error {
		st, err := c.status("n1")
		if err != nil {
			return err
		}
		if !strings.Contains(st.Policy.LastError, "older than the cluster's bundle") {
			return fmt.Errorf("last error %q, active %v", st.Policy.LastError, st.Policy.Policies)
		}
		return nil
	})
	batch(2)
	publish(2)
	for _, id := range []string{"n1", "n2"} {
		if st, err := c.status(id); err != nil || st.Policy.Policies["leak-payments"] != 2 {
			t.Errorf("%s: active %v after the stale restart (%v), want leak-payments@2", id, st.Policy.Policies, err)
		}
	}

	// Read everything back and look for every PII string.
	landed := map[string]int{}
	scan := func(pipeline, topic string) {
		t.Helper()
		var got map[int32][]targetRecord
		harness.Eventually(t, 2*time.Minute, pipeline+": every record landed", func() error {
			got = readAll(t, target, topic, want[pipeline], 20*time.Second)
			n := 0
			for _, recs := range got {
				n += len(recs)
			}
			if n < want[pipeline] {
				return fmt.Errorf("%d of %d", n, want[pipeline])
			}
			landed[pipeline] = n
			return nil
		})
		for _, recs := range got {
			for _, r := range recs {
				if v, where := ledger.leakIn(r); v != "" {
					t.Errorf("%s: raw PII %q in the %s of %s partition %d offset %d", pipeline, v, where, topic, r.Partition, r.Offset)
				}
				if h, ok := header(r.Headers, "tributary-policy"); !ok || len(h) == 0 {
					t.Errorf("%s: record at partition %d offset %d has no tributary-policy header", pipeline, r.Partition, r.Offset)
				}
			}
		}
	}
	scan("leak-avro", "regional."+avroTopic)
	scan("leak-json", "regional."+jsonTopic)
	scan("leak-proto", "regional."+protoTopic)
	scan("leak-telemetry", telemetryTopic)
	for pipeline, n := range want {
		// Pub/Sub is at least once; the Kafka pipelines exactly once.
		if landed[pipeline] != n && !(pipeline == "leak-telemetry" && landed[pipeline] > n) {
			t.Errorf("%s: %d records landed, want %d", pipeline, landed[pipeline], n)
		}
	}

	// The rest sits in the source region's quarantine, with reasons; none of it
	// in the central cluster.
	harness.Eventually(t, 30*time.Second, "leak-avro quarantined in the source", func() error {
		q := quarantinedRecords(t, source, avroTopic)
		if len(q) != quarantine["leak-avro"] {
			return fmt.Errorf("%d quarantined, want %d: %v", len(q), quarantine["leak-avro"], q)
		}
		for off, reason := range q {
			if !strings.HasPrefix(reason, "blocked") && !strings.HasPrefix(reason, "unmatched-pii") {
				return fmt.Errorf("offset %s quarantined for %q", off, reason)
			}
		}
		return nil
	})
	harness.Eventually(t, 30*time.Second, "Pub/Sub messages quarantined in the project's region", func() error {
		if n := quarantinedMessages(t, source, subID); n < quarantine["leak-telemetry"] {
			return fmt.Errorf("%d quarantined in the regional cluster, want %d", n, quarantine["leak-telemetry"])
		}
		return nil
	})
	if n := quarantinedMessages(t, target, subID); n != 0 {
		t.Errorf("%d raw Pub/Sub messages quarantined in the central cluster", n)
	}
	t.Logf("landed %v, quarantined in the source region %v, %d PII strings checked", landed, quarantine, len(ledger.values))
}

// quarantinedRecords reads a cluster's quarantine and returns "partition/offset"
// → reason for the records of one source topic.
func quarantinedRecords(t *testing.T, bootstrap, topic string) map[string]string {
	out := map[string]string{}
	readQuarantine(t, bootstrap, func(m *kafka.Message) {
		if st, _ := header(m.Headers, "tributary-source-topic"); string(st) == topic {
			part, _ := header(m.Headers, "tributary-source-partition")
			off, _ := header(m.Headers, "tributary-source-offset")
			reason, _ := header(m.Headers, "tributary-error")
			out[string(part)+"/"+string(off)] = string(reason)
		}
	})
	return out
}

// quarantinedMessages counts the quarantine records of a Pub/Sub subscription
// in a cluster's _tributary.quarantine.
func quarantinedMessages(t *testing.T, bootstrap, subscription string) int {
	seen := map[string]bool{}
	readQuarantine(t, bootstrap, func(m *kafka.Message) {
		if s, _ := header(m.Headers, "tributary-source-subscription"); strings.HasSuffix(string(s), "/"+subscription) {
			seen[string(m.Key)] = true
		}
	})
	return len(seen)
}

// readQuarantine hands every record of a cluster's _tributary.quarantine to fn.
func readQuarantine(t *testing.T, bootstrap string, fn func(*kafka.Message)) {
	qt := "_tributary.quarantine"
	n, err := partitionCount(bootstrap, qt)
	if err != nil {
		return
	}
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "q", "enable.partition.eof": true, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var tps []kafka.TopicPartition
	for p := 0; p < n; p++ {
		tps = append(tps, kafka.TopicPartition{Topic: &qt, Partition: int32(p), Offset: kafka.OffsetBeginning})
	}
	c.Assign(tps)
	eof := 0
	deadline := time.Now().Add(10 * time.Second)
	for eof < n && time.Now().Before(deadline) {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			fn(e)
		case kafka.PartitionEOF:
			eof++
		}
	}
}
