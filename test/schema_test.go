package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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

// registryProc is an embedded registry served over real HTTP on a fixed
// loopback address, so that it can be stopped and started again (with its data
// file) while a node uses it.
type registryProc struct {
	t    *testing.T
	addr string
	data string
	srv  *http.Server
	done chan struct{}
}

func startRegistry(t *testing.T, data string) *registryProc {
	r := &registryProc{t: t, addr: freeAddr(t), data: data}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *registryProc) start() {
	r.t.Helper()
	h, err := registry.NewServer(registry.ServerOptions{DataFile: r.data})
	if err != nil {
		r.t.Fatal(err)
	}
	var ln net.Listener
	harness.Eventually(r.t, 10*time.Second, "registry port free", func() error {
		ln, err = net.Listen("tcp", r.addr)
		return err
	})
	r.srv = &http.Server{Handler: h}
	r.done = make(chan struct{})
	go func() { defer close(r.done); r.srv.Serve(ln) }()
}

func (r *registryProc) stop() {
	if r.srv == nil {
		return
	}
	r.srv.Close()
	<-r.done
	r.srv = nil
}

func (r *registryProc) url() string { return "http://" + r.addr }

// register registers an Avro schema under a subject and returns its id.
func (r *registryProc) register(subject, schema string) int32 {
	r.t.Helper()
	return r.registerType(subject, schema, "AVRO")
}

// registerJSON registers a JSON Schema under a subject and returns its id.
func (r *registryProc) registerJSON(subject, schema string) int32 {
	r.t.Helper()
	return r.registerType(subject, schema, "JSON")
}

func (r *registryProc) registerType(subject, schema, typ string) int32 {
	r.t.Helper()
	body, _ := json.Marshal(map[string]string{"schema": schema, "schemaType": typ})
	resp, err := http.Post(r.url()+"/subjects/"+subject+"/versions", "application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		ID      int32  `json:"id"`
		Message string `json:"message"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 {
		r.t.Fatalf("registering under %s: %d %s", subject, resp.StatusCode, out.Message)
	}
	return out.ID
}

func (r *registryProc) setCompatibility(subject, level string) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodPut, r.url()+"/config/"+subject, strings.NewReader(`{"compatibility":"`+level+`"}`))
	req.Header.Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
}

// schemaByID fetches a schema text by id.
func (r *registryProc) schemaByID(id int32) (string, error) {
	resp, err := http.Get(r.url() + "/schemas/ids/" + strconv.Itoa(int(id)))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("%d %s", resp.StatusCode, b)
	}
	var out struct {
		Schema string `json:"schema"`
	}
	return out.Schema, json.Unmarshal(b, &out)
}

const (
	paymentV1 = `{"type":"record","name":"Payment","namespace":"fleet","fields":[{"name":"vin","type":"string"},{"name":"amount","type":"double"}]}`
	// Compatible (BACKWARD): adds a field with a default.
	paymentV2 = `{"type":"record","name":"Payment","namespace":"fleet","fields":[{"name":"vin","type":"string"},{"name":"amount","type":"double"},{"name":"station","type":"string","default":""}]}`
	// Incompatible: amount changes from double to string.
	paymentBad = `{"type":"record","name":"Payment","namespace":"fleet","fields":[{"name":"vin","type":"string"},{"name":"amount","type":"string"}]}`
)

func avroFrame(t *testing.T, id int32, schema string, v any) []byte {
	t.Helper()
	s, err := avro.Parse(schema)
	if err != nil {
		t.Fatal(err)
	}
	body, err := avro.Marshal(s, v)
	if err != nil {
		t.Fatal(err)
	}
	return registry.AppendFrame(nil, registry.SchemaRef{Magic: registry.MagicID, ID: id}, registry.Avro, body)
}

func TestSchemaGovernanceEndToEnd(t *testing.T) {
	source, target := harness.Brokers(t)
	topic := harness.UniqueName(t, "payments")
	createTopic(t, source, topic, 1, nil)
	dir := t.TempDir()
	srcReg := startRegistry(t, "")
	dstReg := startRegistry(t, filepath.Join(dir, "target-registry.json"))
	// The source registry accepts anything (it is the regional team's); the
	// central one enforces its default BACKWARD level.
	srcReg.setCompatibility(topic+"-value", "NONE")
	idV1 := srcReg.register(topic+"-value", paymentV1)
	idBad := srcReg.register(topic+"-value", paymentBad)
	idV2 := srcReg.register(topic+"-value", paymentV2)

	cfgPath, httpAddr := writeConfigWith(t, fmt.Sprintf(`kafka:
  regional:
    region: eu
    bootstrap: %s
    schema_registry: {url: %s}
  central:
    region: cloud
    bootstrap: %s
    schema_registry: {url: %s}
`, source, srcReg.url(), target, dstReg.url()), fmt.Sprintf(`  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    format: avro
`, topic, topic))

	type payment struct {
		Vin    string  `avro:"vin"`
		Amount float64 `avro:"amount"`
	}
	type paymentS struct {
		Vin    string `avro:"vin"`
		Amount string `avro:"amount"`
	}
	type payment2 struct {
		Vin     string  `avro:"vin"`
		Amount  float64 `avro:"amount"`
		Station string  `avro:"station"`
	}
	p := newProducer(t, source)
	send := func(value []byte) {
		t.Helper()
		if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Key: []byte("k"), Value: value}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// offsets 0-9 good (v1), 10-14 incompatible, 15 garbage, 16 unknown id, 17-26 good (v2)
	for i := 0; i < 10; i++ {
		send(avroFrame(t, idV1, paymentV1, payment{Vin: "WVW" + strconv.Itoa(i), Amount: float64(i)}))
	}
	for i := 0; i < 5; i++ {
		send(avroFrame(t, idBad, paymentBad, paymentS{Vin: "BAD" + strconv.Itoa(i), Amount: "x"}))
	}
	send([]byte("garbage, not the wire format"))
	send(registry.AppendFrame(nil, registry.SchemaRef{Magic: registry.MagicID, ID: 9999}, registry.Avro, []byte{1, 2}))
	for i := 0; i < 10; i++ {
		send(avroFrame(t, idV2, paymentV2, payment2{Vin: "V2-" + strconv.Itoa(i), Amount: 1, Station: "DE-1"}))
	}
	flush(t, p)

	d := startDaemon(t, cfgPath, httpAddr)
	d.waitReady(60 * time.Second)
	dst := "regional." + topic
	got := readAll(t, target, dst, 20, time.Minute)[0]
	if len(got) != 20 {
		t.Fatalf("%d records landed, want the 20 compatible ones", len(got))
	}
	for i, r := range got {
		ref, n, err := registry.ReadRef(r.Value, registry.Avro)
		if err != nil {
			t.Fatalf("target record %d: %v", i, err)
		}
		text, err := dstReg.schemaByID(ref.ID)
		if err != nil {
			t.Fatalf("target record %d: schema id %d not in the target registry: %v", i, ref.ID, err)
		}
		s, err := avro.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := avro.Unmarshal(s, r.Value[n:], &v); err != nil {
			t.Fatalf("target record %d does not decode with target schema %d: %v", i, ref.ID, err)
		}
		off, _ := header(r.Headers, "tributary-origin-offset")
		wantVin := "WVW" + strconv.Itoa(i)
		if i >= 10 {
			wantVin = "V2-" + strconv.Itoa(i-10)
		}
		if v["vin"] != wantVin {
			t.Errorf("target record %d (source offset %s): vin %v, want %s", i, off, v["vin"], wantVin)
		}
	}

	// The rejected records are in the source cluster's quarantine, with reasons.
	reasons := map[string]string{}
	harness.Eventually(t, 30*time.Second, "7 records quarantined in the source", func() error {
		reasons = quarantined(t, source, topic)
		if len(reasons) != 7 {
			return fmt.Errorf("%d quarantined: %v", len(reasons), reasons)
		}
		return nil
	})
	for off := 10; off < 15; off++ {
		if !strings.HasPrefix(reasons[strconv.Itoa(off)], "incompatible-schema:") {
			t.Errorf("offset %d: quarantine reason %q, want incompatible-schema", off, reasons[strconv.Itoa(off)])
		}
	}
	if !strings.HasPrefix(reasons["15"], "not-wire-format:") {
		t.Errorf("garbage: reason %q", reasons["15"])
	}
	if !strings.HasPrefix(reasons["16"], "unknown-schema-id:") {
		t.Errorf("unknown id: reason %q", reasons["16"])
	}
	m := d.metrics()
	for _, want := range []string{
		`tributary_records_total{outcome="quarantined",pipeline="` + topic + `"} 7`,
		`tributary_schema_translations_total{pipeline="` + topic + `",result="incompatible-schema"} 5`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The target registry goes away mid-stream: records of a schema not yet
	// translated wait (the task pauses and retries), nothing is quarantined or
	// lost, and they land once it is back.
	dstReg.stop()
	type payment3 struct {
		Vin     string  `avro:"vin"`
		Amount  float64 `avro:"amount"`
		Station string  `avro:"station"`
		Lane    int     `avro:"lane"`
	}
	paymentV3 := `{"type":"record","name":"Payment","namespace":"fleet","fields":[{"name":"vin","type":"string"},{"name":"amount","type":"double"},{"name":"station","type":"string","default":""},{"name":"lane","type":"int","default":0}]}`
	idV3 := srcReg.register(topic+"-value", paymentV3)
	for i := 0; i < 10; i++ {
		send(avroFrame(t, idV3, paymentV3, payment3{Vin: "V3-" + strconv.Itoa(i), Amount: 2, Station: "DE-2", Lane: i}))
	}
	flush(t, p)
	time.Sleep(3 * time.Second)
	if n := countCommitted(t, target, dst); n != 20 {
		t.Fatalf("%d records in the target while its registry is down, want still 20", n)
	}
	dstReg.start()
	got = readAll(t, target, dst, 30, 2*time.Minute)[0]
	if len(got) != 30 {
		t.Fatalf("%d records after the registry came back, want 30", len(got))
	}
	if q := quarantined(t, source, topic); len(q) != 7 {
		t.Errorf("the outage quarantined records: %v", q)
	}
	if m := d.metrics(); !strings.Contains(m, `result="registry-unavailable"`) {
		t.Errorf("the outage is not visible in tributary_schema_translations_total")
	}
}

// quarantined reads the source's quarantine and returns source offset → reason
// for one topic.
func quarantined(t *testing.T, bootstrap, topic string) map[string]string {
	out := map[string]string{}
	readQuarantine(t, bootstrap, func(m *kafka.Message) {
		if st, _ := header(m.Headers, "tributary-source-topic"); string(st) == topic {
			off, _ := header(m.Headers, "tributary-source-offset")
			reason, _ := header(m.Headers, "tributary-error")
			out[string(off)] = string(reason)
		}
	})
	return out
}
