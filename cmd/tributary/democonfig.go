package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tributary-dev/tributary/config"
)

// The demo's world: a fleet operator with payments in two regional Kafka
// clusters and vehicle telemetry in Pub/Sub, mirrored into one central cluster.
const (
	demoProject      = "acme-fleet"
	demoPubSubTopic  = "vehicle-telemetry"
	demoSubscription = "telemetry-sub"
	demoTelemetry    = "fleet.telemetry"
)

// demoNodes are the three Raft nodes, one per region.
var demoNodes = []struct{ id, region string }{{"eu-1", "eu"}, {"us-1", "us"}, {"cloud-1", "cloud"}}

// demoConfig is one node's config. It is a real config file: --dir keeps it.
const demoConfig = `# Written by "tributary demo": in-memory Kafka clusters (kfake), a Pub/Sub fake
# (pstest) and schema registries on loopback, rewritten at every start (the
# addresses change). The policies folder is kept and watched: edit it live.
node:
  id: {{id}}
  region: {{region}}
  data_dir: {{dir}}/data/{{id}}
  raft_addr: {{raft}}
  http_addr: {{http}}
cluster:
  bootstrap: [{{bootstrap}}]
  heartbeat_timeout: 300ms
  election_timeout: 300ms
  failure_timeout: 3s
kafka:
  eu-west:
    region: eu
    bootstrap: {{eu}}
    schema_registry: {url: "{{eu_registry}}"}
  us-east:
    region: us
    bootstrap: {{us}}
    schema_registry: {url: "{{us_registry}}"}
  central:
    region: cloud
    bootstrap: {{central}}
    schema_registry: {url: "{{central_registry}}"}
pubsub:
  fleet:
    region: cloud
    project: ` + demoProject + `
    emulator_host: "{{pubsub}}"
target: central
policies: {{dir}}/policies
hash_key_file: {{dir}}/hash.key
pipelines:
  - name: eu-payments
    source: {kafka: eu-west}
    topics: {include: ['payments\..*']}
    format: avro
    tasks: 2
    refresh_interval: 5s
  - name: us-payments
    source: {kafka: us-east}
    topics: {include: ['payments\..*']}
    format: avro
    tasks: 2
    refresh_interval: 5s
  - name: fleet-telemetry
    source: {pubsub: fleet, subscription: ` + demoSubscription + `}
    topic: ` + demoTelemetry + `
    key_attribute: vin
    format: json
    tasks: 2
    pubsub:
      streams: 4
      schema: {subject: ` + demoTelemetry + `-value}
`

// demoPolicies are the example policy files, written unless --dir already
// has a policies folder (then the user's edits stay).
var demoPolicies = map[string]string{
	"payments.yaml": `# Card payments at fuel stations and for in-car services.
policy: payments-pii
version: 1
owner: compliance@acme.example
applies_to: {pipelines: [eu-payments, us-payments]}
rules:
  - match: {field: card.number}
    action: mask
    keep_last: 4
    description: PCI DSS 3.3, show the last four digits at most
  - match: {field: customer.email}
    action: hash
  - match: {field: customer.name}
    action: redact
  - match: {field: location.lat}
    action: generalize
    precision: 2
  - match: {field: location.lon}
    action: generalize
    precision: 2
on_unmatched_pii: quarantine
`,
	"telemetry.yaml": `# Vehicle telemetry from Pub/Sub.
policy: telemetry-pii
version: 1
owner: compliance@acme.example
applies_to: {pipelines: [fleet-telemetry]}
rules:
  - match: {field: driver_email}
    action: hash
  - match: {field: "location.*"}
    action: generalize
    precision: 2
on_unmatched_pii: quarantine
`,
}

// writeConfigs writes and loads the three nodes' configs.
func (w *demoWorld) writeConfigs(httpPort int) ([]*config.Config, error) {
	var boot []string
	raft := map[string]string{}
	for _, n := range demoNodes {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		raft[n.id] = addr
		boot = append(boot, n.id+"@"+addr)
	}
	var out []*config.Config
	for i, n := range demoNodes {
		port := 0
		if httpPort != 0 {
			port = httpPort + i
		}
		text := strings.NewReplacer(
			"{{id}}", n.id, "{{region}}", n.region, "{{dir}}", w.dir, "{{raft}}", raft[n.id],
			"{{http}}", fmt.Sprintf("127.0.0.1:%d", port), "{{bootstrap}}", strings.Join(boot, ", "),
			"{{eu}}", w.eu.ListenAddrs()[0], "{{us}}", w.us.ListenAddrs()[0], "{{central}}", w.central.ListenAddrs()[0],
			"{{eu_registry}}", w.euReg.url, "{{us_registry}}", w.usReg.url, "{{central_registry}}", w.cReg.url,
			"{{pubsub}}", w.pubsub.Addr,
		).Replace(demoConfig)
		path := filepath.Join(w.dir, n.id+".yaml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
		cfg, err := config.Load(path)
		if err != nil {
			return nil, &exitError{code: 2, err: err}
		}
		out = append(out, cfg)
	}
	return out, nil
}
