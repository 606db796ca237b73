package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/tributary-dev/tributary/test/harness"
)

// Two JSON Schema versions of the target subject. Version 1 tags the driver's
// e-mail as PII; version 2 also requires fuel_pct.
const (
	telemetrySchemaV1 = `{"type":"object","properties":{
  "vin":{"type":"string"},"speed_kmh":{"type":"number","minimum":0},
  "driver_email":{"type":"string","confluent:tags":["PII"]}},
 "required":["vin","speed_kmh","driver_email"]}`
	telemetrySchemaV2 = `{"type":"object","properties":{
  "vin":{"type":"string"},"speed_kmh":{"type":"number","minimum":0},
  "driver_email":{"type":"string","confluent:tags":["PII"]},
  "fuel_pct":{"type":"number","minimum":0,"maximum":100}},
 "required":["vin","speed_kmh","driver_email","fuel_pct"]}`
)

// TestPubSubJSONSchemaValidation runs a node with a format json Pub/Sub
// pipeline validated against a registry subject over HTTP: messages without
// googclient_schema* attributes are checked against the configured version,
// messages of a Pub/Sub schema revision against the version it maps to; the
// PII tag of the schema drives masking; invalid, malformed and unknown-version
// messages are quarantined in the target and acked, the rest land.
func TestPubSubJSONSchemaValidation(t *testing.T) {
	_, target := harness.Brokers(t)
	client, topicID, subID := startPubSub(t, false)
	ctx := context.Background()
	const project = pubsubProject
	fullSub := "projects/" + project + "/subscriptions/" + subID

	dst := harness.UniqueName(t, "fleet.telemetry")
	reg := startRegistry(t, "")
	subject := dst + "-value"
	reg.setCompatibility(subject, "NONE")
	reg.registerJSON(subject, telemetrySchemaV1)
	reg.registerJSON(subject, telemetrySchemaV2)

	polDir := t.TempDir()
	os.WriteFile(filepath.Join(polDir, "telemetry.yaml"), []byte(`policy: telemetry-pii
version: 1
rules:
  - match: {tag: PII}
    action: hash
`), 0o644)
	c := newCluster(t, []nodeSpec{{"c1", "cloud"}}, fmt.Sprintf(`  central: {region: cloud, bootstrap: "%s", schema_registry: {url: "%s"}}
pubsub:
  fleet: {region: cloud, project: %s, use_emulator_env: true}
policies: %s`, target, reg.url(), project, polDir), fmt.Sprintf(`  - name: telemetry
    source: {pubsub: fleet, subscription: %s}
    topic: %s
    key_attribute: vin
    format: json
    pubsub:
      streams: 2
      schema:
        subject: %s
        version: 1
        revisions: {rev-b: 2, rev-gone: 7}
`, subID, dst, subject))
	c.startAll()
	c.waitAllRunning(60*time.Second, 1)

	schemaAttrs := func(rev string) map[string]string {
		return map[string]string{
			"googclient_schemaname":       "projects/" + project + "/schemas/telemetry",
			"googclient_schemarevisionid": rev,
			"googclient_schemaencoding":   "JSON",
		}
	}
	type msg struct {
		data  string
		attrs map[string]string
		want  string // "" lands, else the quarantine reason
	}
	var msgs []msg
	doc := func(i int, extra string) string {
		return fmt.Sprintf(`{"vin":"WVW%05d","speed_kmh":%d,"driver_email":"driver%d@fleet.example"%s}`, i, 40+i%90, i, extra)
	}
	for i := range 40 { // no schema attributes: version 1
		msgs = append(msgs, msg{data: doc(i, ""), attrs: map[string]string{}})
	}
	for i := range 20 { // revision rev-b: version 2, valid
		msgs = append(msgs, msg{data: doc(100+i, `,"fuel_pct":55`), attrs: schemaAttrs("rev-b")})
	}
	for i := range 10 { // revision rev-b without fuel_pct
		msgs = append(msgs, msg{data: doc(200+i, ""), attrs: schemaAttrs("rev-b"), want: "schema-invalid"})
	}
	for i := range 10 { // no attributes, speed of the wrong type
		msgs = append(msgs, msg{data: fmt.Sprintf(`{"vin":"WVW%05d","speed_kmh":"fast","driver_email":"x%d@fleet.example"}`, 300+i, i), attrs: map[string]string{}, want: "schema-invalid"})
	}
	for i := range 5 { // an unmapped revision falls back to the configured version 1
		msgs = append(msgs, msg{data: doc(400+i, ""), attrs: schemaAttrs("rev-new")})
	}
	for i := range 5 { // a revision mapped to a version nobody registered
		msgs = append(msgs, msg{data: doc(500+i, ""), attrs: schemaAttrs("rev-gone"), want: "unknown-subject-version"})
	}
	for i := range 5 {
		msgs = append(msgs, msg{data: fmt.Sprintf(`{"vin":"WVW%05d",`, 600+i), attrs: map[string]string{}, want: "undecodable"})
	}
	pub := client.Publisher(topicID)
	defer pub.Stop()
	wantReason := map[string]string{} // message id → "" or reason
	landing := 0
	for i, m := range msgs {
		m.attrs["vin"] = fmt.Sprintf("vin-%d", i%7)
		id, err := pub.Publish(ctx, &pubsub.Message{Data: []byte(m.data), Attributes: m.attrs}).Get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantReason[id] = m.want
		if m.want == "" {
			landing++
		}
	}

	var got map[int32][]targetRecord
	harness.Eventually(t, 90*time.Second, "every valid message in the target", func() error {
		if n := countCommitted(t, target, dst); n < landing {
			return fmt.Errorf("%d of %d", n, landing)
		}
		return nil
	})
	got = readAll(t, target, dst, landing, 20*time.Second)
	n := 0
	for _, recs := range got {
		for _, r := range recs {
			n++
			id := msgID(r)
			if reason, ok := wantReason[id]; !ok || reason != "" {
				t.Errorf("message %s landed, want quarantine reason %q", id, reason)
			}
			if strings.Contains(string(r.Value), "@fleet.example") {
				t.Errorf("raw e-mail of a PII-tagged field in the target: %s", r.Value)
			}
			var v map[string]any
			if err := json.Unmarshal(r.Value, &v); err != nil || v["driver_email"] == nil || v["vin"] == nil {
				t.Errorf("landed value %s: %v", r.Value, err)
			}
			if h, _ := header(r.Headers, "tributary-policy"); string(h) != "telemetry-pii@1" {
				t.Errorf("tributary-policy %q", h)
			}
		}
	}
	if n != landing {
		t.Errorf("%d records in the target, want %d", n, landing)
	}

	quarantine := map[string]string{} // message id → reason
	harness.Eventually(t, 60*time.Second, "every rejected message quarantined", func() error {
		for _, recs := range readAll(t, target, "_tributary.quarantine", 1<<30, 3*time.Second) {
			for _, r := range recs {
				if s, _ := header(r.Headers, "tributary-source-subscription"); string(s) != fullSub {
					continue
				}
				e, _ := header(r.Headers, "tributary-error")
				quarantine[msgID(r)] = string(e)
			}
		}
		if want := len(msgs) - landing; len(quarantine) < want {
			return fmt.Errorf("%d of %d", len(quarantine), want)
		}
		return nil
	})
	for id, e := range quarantine {
		want := wantReason[id]
		if want == "" || !strings.HasPrefix(e, want+":") {
			t.Errorf("message %s quarantined with %q, want reason %q", id, e, want)
		}
		if strings.Contains(e, "@fleet.example") {
			t.Errorf("quarantine reason carries data: %q", e)
		}
	}
	m := c.nodes["c1"].metrics()
	for _, want := range []string{
		fmt.Sprintf(`tributary_pubsub_schema_validations_total{pipeline="telemetry",result="valid"} %d`, landing),
		fmt.Sprintf(`tributary_pubsub_schema_validations_total{pipeline="telemetry",result="invalid"} %d`, 25),
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
