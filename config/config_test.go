package config

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml from the current output")

// testEnv is the environment the testdata files expect. The values are made up.
var testEnv = map[string]string{
	"EU_KAFKA_USER": "eu-mirror",
	"EU_KAFKA_PASS": "not-a-real-password",
	"NODE_ID":       "eu-3",
	"HOME_DIR":      "/srv: a #b",
	"KAFKA_HOST":    "kafka-1.internal",
	"KAFKA_PASS":    "also-not-real",
	"REGISTRY_PASS": "registry-not-real",
	"TASKS":         "8",
}

func lookupTestEnv(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

func TestGoodFiles(t *testing.T) {
	for name, value := range testEnv {
		t.Setenv(name, value)
	}
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.good.yaml: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file)+" loads and matches its golden file", func(t *testing.T) {
			cfg, err := Load(file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := cfg.Redacted()
			for _, secret := range []string{testEnv["EU_KAFKA_PASS"], testEnv["KAFKA_PASS"], testEnv["REGISTRY_PASS"], "pa$word"} {
				if strings.Contains(got, secret) {
					t.Errorf("Redacted() shows the secret %q", secret)
				}
			}
			golden := strings.TrimSuffix(file, ".good.yaml") + ".golden.yaml"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Redacted() differs from %s (run go test -update and review the diff):\n%s", golden, got)
			}
			if err := cfg.Validate(); err != nil {
				t.Errorf("Validate() after Load = %v", err)
			}
		})
	}
}

func TestBadFiles(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // prefixes of each error, in order
	}{
		{"a YAML syntax error gives the parser's line", "syntax.bad.yaml", []string{
			`syntax.bad.yaml:7: syntax error: mapping values are not allowed in this context`,
		}},
		{"unknown keys are errors, with a suggestion when one is close", "unknown-key.bad.yaml", []string{
			`unknown-key.bad.yaml:7:1: polices: unknown key (did you mean "policies"?)`,
			`unknown-key.bad.yaml:12:5: pipelines[0].taks: unknown key (did you mean "tasks"?)`,
			`unknown-key.bad.yaml:13:5: pipelines[0].colour: unknown key`,
		}},
		{"missing required keys point at their parent", "missing-required.bad.yaml", []string{
			`missing-required.bad.yaml:1:1: node.id: required`,
			`missing-required.bad.yaml:4:3: kafka.central.bootstrap: required`,
			`missing-required.bad.yaml:8:5: pipelines[0].name: required`,
		}},
		{"an empty file lacks every required key", "empty.bad.yaml", []string{
			`empty.bad.yaml:1:1: node.id: required`,
			`empty.bad.yaml:1:1: node.region: required`,
			`empty.bad.yaml:1:1: kafka: must define at least one cluster`,
			`empty.bad.yaml:1:1: target: required`,
			`empty.bad.yaml:1:1: pipelines: must define at least one pipeline`,
		}},
		{"group filters are checked like topic filters, with their interval", "groups.bad.yaml", []string{
			"groups.bad.yaml:12:34: pipelines[0].groups.include[1]: invalid regex \"billing(\": missing closing ): `billing(`",
			"groups.bad.yaml:12:57: pipelines[0].groups.exclude[0]: invalid regex \"[z-a]\": invalid character class range: `z-a`",
			`groups.bad.yaml:12:67: pipelines[0].groups.interval: 500ms is less than 1s`,
			`groups.bad.yaml:16:5: pipelines[1].groups.include: must list at least one regex when groups sets exclude or interval (no include: no group is synced)`,
			`groups.bad.yaml:21:31: pipelines[2].groups.interval: 0s is less than 1s`,
			`groups.bad.yaml:25:5: pipelines[3].groups: only for kafka sources`,
		}},
		{"a bad regex is reported with the line of the list item", "bad-regex.bad.yaml", []string{
			"bad-regex.bad.yaml:13:11: pipelines[1].topics.include[0]: invalid regex \"payments.(\": missing closing ): `payments.(`",
			"bad-regex.bad.yaml:14:17: pipelines[1].topics.exclude[0]: invalid regex \"[z-a]\": invalid character class range: `z-a`",
		}},
		{"an unset environment variable is an error, not an empty string", "unset-env.bad.yaml", []string{
			`unset-env.bad.yaml:7:22: kafka.central.properties.sasl.password: environment variable "NOT_SET_ANYWHERE" is not set`,
		}},
		{"a schema format needs both registries", "format-without-registry.bad.yaml", []string{
			`format-without-registry.bad.yaml:13:5: pipelines[0].format: format avro needs kafka.eu-west.schema_registry`,
		}},
		{"target and sources must name a configured cluster", "unknown-target.bad.yaml", []string{
			`unknown-target.bad.yaml:5:1: target: "centrl" is not a kafka cluster (known: central, eu-west)`,
			`unknown-target.bad.yaml:8:14: pipelines[0].source.kafka: "eu-wset" is not a kafka cluster (known: central, eu-west)`,
		}},
		{"values of the wrong type are errors and are not reported twice", "wrong-type.bad.yaml", []string{
			`wrong-type.bad.yaml:3:63: kafka.central.read_only: expected true or false, got "maybe"`,
			`wrong-type.bad.yaml:8:23: pipelines[0].topics.include: expected a list, got ".*"`,
			`wrong-type.bad.yaml:9:12: pipelines[0].tasks: expected an integer, got "four"`,
			`wrong-type.bad.yaml:11:21: cluster.rebalance_margin: expected a number, got "lots"`,
		}},
		{"a duplicate pipeline name names the first one's line", "duplicate-pipeline.bad.yaml", []string{
			`duplicate-pipeline.bad.yaml:9:5: pipelines[1].name: duplicate name "copy", first used by pipelines[0].name at line 6`,
		}},
		{"topic_configs.exclude names mirrored settings, each once, for kafka sources", "topic-configs.bad.yaml", []string{
			`topic-configs.bad.yaml:14:31: pipelines[0].topic_configs.exclude[1]: "retention.msec" is not a mirrored topic setting (one of cleanup.policy, retention.ms, retention.bytes, max.message.bytes, compression.type) (did you mean "retention.ms"?)`,
			`topic-configs.bad.yaml:14:47: pipelines[0].topic_configs.exclude[2]: "segment.bytes" is not a mirrored topic setting (one of cleanup.policy, retention.ms, retention.bytes, max.message.bytes, compression.type)`,
			`topic-configs.bad.yaml:14:62: pipelines[0].topic_configs.exclude[3]: "retention.ms" listed twice, first at pipelines[0].topic_configs.exclude[0] at line 14`,
			`topic-configs.bad.yaml:18:5: pipelines[1].topic_configs: only for kafka sources`,
		}},
		{"a duplicate key is an error", "duplicate-key.bad.yaml", []string{
			`duplicate-key.bad.yaml:4:3: node.id: duplicate key (first at line 2)`,
		}},
		{"a source sets exactly one of kafka and pubsub", "both-sources.bad.yaml", []string{
			`both-sources.bad.yaml:9:5: pipelines[0].source: must set exactly one of kafka or pubsub`,
			`both-sources.bad.yaml:12:5: pipelines[1].source: must set exactly one of kafka or pubsub`,
		}},
		{"bootstrap entries are id@host:port with unique ids and addresses", "bad-bootstrap.bad.yaml", []string{
			`bad-bootstrap.bad.yaml:5:7: cluster.bootstrap[1]: want id@host:port, got "us-1:10.1.0.5:7400"`,
			`bad-bootstrap.bad.yaml:6:7: cluster.bootstrap[2]: duplicate id "eu-1" (also cluster.bootstrap[0])`,
			`bad-bootstrap.bad.yaml:7:7: cluster.bootstrap[3]: duplicate address "10.0.0.5:7400" (also cluster.bootstrap[0])`,
		}},
		{"a node reachable from the network needs TLS or security.insecure", "insecure-addr.bad.yaml", []string{
			`insecure-addr.bad.yaml:2:58: node.http_addr: node.http_addr (":7480") or node.raft_addr ("10.0.0.5:7400") is not a loopback address and security.tls is not set: configure security.tls (and security.tokens_file), or set security.insecure: true`,
		}},
		{"bearer tokens never cross the network in clear text, insecure or not", "tokens-without-tls.bad.yaml", []string{
			`tokens-without-tls.bad.yaml:9:3: security.tokens_file: bearer tokens need security.tls when node.http_addr ("10.0.0.5:7480") or node.raft_addr ("10.0.0.5:7400") is not a loopback address`,
		}},
		{"durations need a unit and sane bounds", "bad-duration.bad.yaml", []string{
			`bad-duration.bad.yaml:3:22: cluster.heartbeat_timeout: invalid duration "30"`,
			`bad-duration.bad.yaml:4:3: cluster.failure_timeout: 500ms must be > cluster.heartbeat_timeout (1s)`,
			`bad-duration.bad.yaml:12:23: pipelines[0].refresh_interval: invalid duration "soon"`,
			`bad-duration.bad.yaml:13:5: pipelines[0].commit_interval: 1m0s is more than 10s`,
		}},
		{"every problem in a file is reported, each with its own line", "many.bad.yaml", []string{
			`many.bad.yaml:2:3: node.id: "eu 1" must match [A-Za-z0-9._-]+`,
			`many.bad.yaml:6:3: cluster.election_timeout: 500ms must be >= cluster.heartbeat_timeout (2s)`,
			`many.bad.yaml:11:23: kafka.central.schema_registry.url: want an http:// or https:// URL, got "ftp://registry"`,
			`many.bad.yaml:17:5: pipelines[0].rename: "{topic}" with source.kafka "central", the target, would mirror every topic onto itself`,
			`many.bad.yaml:18:5: pipelines[0].format: "xml" is not one of avro, json, protobuf, bytes`,
			`many.bad.yaml:19:5: pipelines[0].start: "middle" is not earliest or latest`,
			`many.bad.yaml:20:5: pipelines[1].topic: required for a pubsub source`,
			`many.bad.yaml:21:14: pipelines[1].source.pubsub: "fleet" is not a pubsub project (known: none)`,
			`many.bad.yaml:22:5: pipelines[1].topics: only for kafka sources`,
			`many.bad.yaml:23:5: pipelines[1].tasks: 0 is not in 1..1024`,
			`many.bad.yaml:27:5: pipelines[2].rename: unknown placeholder "{cluster}" in "{cluster}.{topic}"`,
		}},
		{"pubsub and kafka sources reject each other's keys", "pubsub-misuse.bad.yaml", []string{
			`pubsub-misuse.bad.yaml:5:3: pubsub.fleet.project: required`,
			`pubsub-misuse.bad.yaml:8:5: pipelines[0].topic: required for a pubsub source`,
			`pubsub-misuse.bad.yaml:9:5: pipelines[0].source.subscription: required for a pubsub source`,
			`pubsub-misuse.bad.yaml:9:14: pipelines[0].source.pubsub: "flet" is not a pubsub project (known: fleet)`,
			`pubsub-misuse.bad.yaml:10:5: pipelines[0].rename: only for kafka sources`,
			`pubsub-misuse.bad.yaml:11:5: pipelines[0].topics: only for kafka sources`,
			`pubsub-misuse.bad.yaml:13:30: pipelines[1].source.subscription: only for pubsub sources`,
			`pubsub-misuse.bad.yaml:15:5: pipelines[1].topic: only for pubsub sources`,
			`pubsub-misuse.bad.yaml:16:5: pipelines[1].key_attribute: only for pubsub sources`,
		}},
		{"pubsub receiver settings, schema validation and heartbeats", "pubsub-receive.bad.yaml", []string{
			`pubsub-receive.bad.yaml:12:5: pipelines[0].heartbeats: only for kafka sources`,
			`pubsub-receive.bad.yaml:14:7: pipelines[0].pubsub.streams: must be >= 1, got 0`,
			`pubsub-receive.bad.yaml:15:7: pipelines[0].pubsub.max_outstanding_bytes: must be >= 1, got -1`,
			`pubsub-receive.bad.yaml:16:7: pipelines[0].pubsub.retry_timeout: 2h0m0s must be < max_extension`,
			`pubsub-receive.bad.yaml:17:7: pipelines[0].pubsub.dedup_window: must be >= 0 (0s: off), got -1s`,
			`pubsub-receive.bad.yaml:18:7: pipelines[0].pubsub.schema: JSON Schema validation needs format json, not "bytes"`,
			`pubsub-receive.bad.yaml:18:7: pipelines[0].pubsub.schema: needs kafka.central.schema_registry`,
			`pubsub-receive.bad.yaml:19:9: pipelines[0].pubsub.schema.subject: required`,
			`pubsub-receive.bad.yaml:20:9: pipelines[0].pubsub.schema.version: must be >= 1 (leave it out for the latest), got 0`,
			`pubsub-receive.bad.yaml:21:21: pipelines[0].pubsub.schema.revisions.abc123: version must be >= 1, got 0`,
			`pubsub-receive.bad.yaml:25:5: pipelines[1].heartbeats: kafka.eu-west is read_only: heartbeats need writes to the source`,
			`pubsub-receive.bad.yaml:26:5: pipelines[1].offset_sync_interval: must be > 0, got 0s`,
			`pubsub-receive.bad.yaml:27:5: pipelines[1].pubsub: only for pubsub sources`,
		}},
		{"governance is enforced or none, with a suggestion for a near miss", "governance.bad.yaml", []string{
			`governance.bad.yaml:9:5: pipelines[0].governance: "nnoe" is not one of enforced, none (did you mean "none"?)`,
			`governance.bad.yaml:13:5: pipelines[1].governance: "off" is not one of enforced, none`,
			`governance.bad.yaml:17:5: pipelines[2].governance: "" is not one of enforced, none`,
		}},
		{"a pubsub pipeline outside the target's region quarantines in its own region", "pubsub-quarantine.bad.yaml", []string{
			`pubsub-quarantine.bad.yaml:8:32: pubsub.fleet.region: required`,
			`pubsub-quarantine.bad.yaml:12:14: pipelines[0].source.pubsub: pipeline "nowhere" reads pubsub.eu-fleet in region "eu", but the target kafka.central is in region "cloud": ` +
				`quarantined (raw) messages must stay in "eu"; set pubsub.dead_letter_topic (a Pub/Sub topic of project "acme-eu") or pubsub.quarantine_kafka (a kafka cluster in region "eu")`,
			`pubsub-quarantine.bad.yaml:17:14: pipelines[1].pubsub.quarantine_kafka: "eu-wset" is not a kafka cluster (did you mean "eu-west"?)`,
			`pubsub-quarantine.bad.yaml:21:14: pipelines[2].pubsub.quarantine_kafka: "asia" is not a kafka cluster (known: central, eu-audit, eu-west)`,
			`pubsub-quarantine.bad.yaml:25:14: pipelines[3].pubsub.quarantine_kafka: kafka.central is in region "cloud" but pubsub.eu-fleet is in region "eu"`,
			`pubsub-quarantine.bad.yaml:29:14: pipelines[4].pubsub.quarantine_kafka: kafka.eu-audit is read_only: quarantine needs writes to it`,
			`pubsub-quarantine.bad.yaml:33:38: pipelines[5].pubsub.quarantine_kafka: set dead_letter_topic or quarantine_kafka, not both`,
			`pubsub-quarantine.bad.yaml:37:14: pipelines[6].pubsub.dead_letter_topic: "projects/acme-fleet/topics/dlq" is in project "acme-fleet", not in pubsub.eu-fleet's project "acme-eu"`,
			`pubsub-quarantine.bad.yaml:41:14: pipelines[7].pubsub.dead_letter_topic: "goog-dlq" is not a Pub/Sub topic id`,
			`pubsub-quarantine.bad.yaml:45:14: pipelines[8].pubsub.dead_letter_topic: "projects/acme-eu/subscriptions/dlq" is neither a topic id nor projects/<project>/topics/<id>`,
		}},
		{"memory and disk limits are in range, and buffer_bytes is for kafka sources", "buffers.bad.yaml", []string{
			`buffers.bad.yaml:2:30: node.min_free_bytes: must be >= 1, got 0`,
			`buffers.bad.yaml:13:5: pipelines[0].buffer_bytes: 1048576 is not in 4194304..4294967296 (4 MiB..4 GiB)`,
			`buffers.bad.yaml:17:5: pipelines[1].buffer_bytes: 0 is not in 4194304..4294967296 (4 MiB..4 GiB)`,
			`buffers.bad.yaml:21:5: pipelines[2].buffer_bytes: only for kafka sources (pubsub sources use pubsub.max_outstanding_bytes)`,
		}},
		{"zeros written in the file are not replaced by defaults", "explicit-zero.bad.yaml", []string{
			`explicit-zero.bad.yaml:2:30: node.data_dir: required`,
			`explicit-zero.bad.yaml:2:44: node.raft_addr: want host:port, got ":7400"`,
			`explicit-zero.bad.yaml:3:11: cluster.rebalance_margin: 1.5 is not in [0, 1]`,
			`explicit-zero.bad.yaml:3:34: cluster.heartbeat_timeout: must be > 0, got 0s`,
			`explicit-zero.bad.yaml:11:5: pipelines[0].tasks: 0 is not in 1..1024`,
			`explicit-zero.bad.yaml:12:5: pipelines[0].format: "" is not one of avro, json, protobuf, bytes`,
			`explicit-zero.bad.yaml:13:5: pipelines[0].commit_interval: must be > 0, got 0s`,
		}},
		{"alias cycles are errors, not endless loops", "alias-cycle.bad.yaml", []string{
			`alias-cycle.bad.yaml:1:37: node: << merges a mapping into itself`,
			`alias-cycle.bad.yaml:6:5: pipelines[0].topics.include[0]: expected a string, got a mapping`,
		}},
		{"the file must be a mapping", "not-a-mapping.bad.yaml", []string{
			`not-a-mapping.bad.yaml:1:1: expected a mapping, got a list`,
		}},
		{"only one YAML document is read", "two-documents.bad.yaml", []string{
			`two-documents.bad.yaml:2:1: only one YAML document is allowed`,
		}},
	}

	var covered []string
	for _, tt := range tests {
		covered = append(covered, tt.file)
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := parseWithEnv(tt.file, data, lookupTestEnv)
			if err == nil {
				t.Fatalf("no error; config:\n%s", cfg.Redacted())
			}
			if cfg != nil {
				t.Errorf("got a config along with the error")
			}
			var list *ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not a *ErrorList: %v", err, err)
			}
			for i, e := range list.Errors {
				if i >= len(tt.want) || !strings.HasPrefix(e.Error(), tt.want[i]) {
					t.Errorf("error %d:\n got: %s\nwant: %s", i, e, at(tt.want, i))
				}
				if e.File != tt.file || e.Line == 0 {
					t.Errorf("error %d has file %q line %d", i, e.File, e.Line)
				}
			}
			for i := len(list.Errors); i < len(tt.want); i++ {
				t.Errorf("missing error %d: %s", i, tt.want[i])
			}
		})
	}

	t.Run("every bad file in testdata has expectations", func(t *testing.T) {
		files, _ := filepath.Glob("testdata/*.bad.yaml")
		for _, f := range files {
			if !slices.Contains(covered, filepath.Base(f)) {
				t.Errorf("%s is not in the table", f)
			}
		}
	})
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(no more errors)"
}

func TestErrorsAs(t *testing.T) {
	_, err := Parse("t.yaml", []byte("node: {id: a, region: eu}\ntarget: nowhere\nbogus: 1\n"))
	t.Run("errors.As finds the first *Error with its line", func(t *testing.T) {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("errors.As(%v, *Error) = false", err)
		}
		if e.File != "t.yaml" || e.Line != 1 || e.Path != "kafka" {
			t.Errorf("first error = %+v", *e)
		}
	})
	t.Run("the list holds every problem sorted by line", func(t *testing.T) {
		var list *ErrorList
		if !errors.As(err, &list) {
			t.Fatalf("errors.As(%v, *ErrorList) = false", err)
		}
		var lines []int
		for _, e := range list.Errors {
			lines = append(lines, e.Line)
		}
		if !slices.IsSorted(lines) || len(lines) != 3 {
			t.Errorf("lines = %v, want 3 sorted lines; errors:\n%v", lines, err)
		}
	})
	t.Run("an unreadable file keeps its fs error", func(t *testing.T) {
		_, err := Load("testdata/does-not-exist.yaml")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load of a missing file = %v, want fs.ErrNotExist", err)
		}
	})
}

func TestExpand(t *testing.T) {
	tests := []struct {
		name, in, want, err string
	}{
		{"text without a dollar is unchanged", "plain", "plain", ""},
		{"a variable expands", "${TASKS}", "8", ""},
		{"variables expand inside text", "a-${TASKS}-${NODE_ID}", "a-8-eu-3", ""},
		{"a double dollar is a literal dollar", "pa$$word", "pa$word", ""},
		{"a double dollar escapes a reference", "$${TASKS}", "${TASKS}", ""},
		{"a dollar before other characters stays", "orders$|a$b", "orders$|a$b", ""},
		{"a trailing dollar stays", "audit$", "audit$", ""},
		{"a value with YAML syntax stays text", "${HOME_DIR}", "/srv: a #b", ""},
		{"an unset variable is an error", "${NOPE}", "", `environment variable "NOPE" is not set`},
		{"all unset variables are named", "${NOPE}${NADA}", "", `environment variables "NOPE", "NADA" are not set`},
		{"an unterminated reference is an error", "${TASKS", "", `unterminated "${"`},
		{"an invalid name is an error", "${1X}", "", `invalid variable name "1X"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expand(tt.in, lookupTestEnv)
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Errorf("expand(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestLoadedValues(t *testing.T) {
	data, err := os.ReadFile("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parseWithEnv("full.good.yaml", data, lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	payments, fleet := cfg.Pipeline("eu-payments"), cfg.Pipeline("fleet-telemetry")
	if payments == nil || fleet == nil || cfg.Pipeline("nope") != nil {
		t.Fatalf("Pipeline lookups: %v %v %v", payments, fleet, cfg.Pipeline("nope"))
	}

	t.Run("group filters are anchored regexes with a 30s default interval", func(t *testing.T) {
		for group, want := range map[string]bool{
			"payments-app": true, "payments-": true, "payments-app-test": false, "x-payments-app": false, "payments": false,
		} {
			if got := payments.SelectsGroup(group); got != want {
				t.Errorf("SelectsGroup(%q) = %v, want %v", group, got, want)
			}
		}
		if !payments.SyncsGroups() || payments.GroupInterval() != 30*time.Second {
			t.Errorf("SyncsGroups() = %v, GroupInterval() = %s; want true, 30s", payments.SyncsGroups(), payments.GroupInterval())
		}
		if fleet.SyncsGroups() || fleet.SelectsGroup("payments-app") {
			t.Error("a pipeline without groups syncs some")
		}
	})

	t.Run("topic filters are anchored regexes that skip internal topics", func(t *testing.T) {
		for topic, want := range map[string]bool{
			"payments.card": true, "payments.": true, "payments": false, "x.payments.card": false,
			"payments.card.internal": false, "_payments.x": false, "orders": false,
		} {
			if got := payments.Selects(topic); got != want {
				t.Errorf("Selects(%q) = %v, want %v", topic, got, want)
			}
		}
	})
	t.Run("target topics follow the rename template or the pubsub topic", func(t *testing.T) {
		if got := payments.TargetTopic("payments.card"); got != "eu-west.payments.card" {
			t.Errorf("kafka TargetTopic = %q", got)
		}
		if got := fleet.TargetTopic("ignored"); got != "fleet.telemetry" {
			t.Errorf("pubsub TargetTopic = %q", got)
		}
	})
	t.Run("environment variables expand into properties", func(t *testing.T) {
		props := cfg.Kafka["eu-west"].Properties
		if props["sasl.username"] != "eu-mirror" || props["sasl.password"] != "not-a-real-password" {
			t.Errorf("properties = %v", props)
		}
	})
	t.Run("defaults fill what the file leaves out", func(t *testing.T) {
		if fleet.Tasks != 1 || fleet.Start != "earliest" || fleet.CommitInterval.D() != 100*time.Millisecond ||
			fleet.RefreshInterval.D() != 30*time.Second || !fleet.IsExactlyOnce() || !fleet.HasLineage() || fleet.Rename != "" {
			t.Errorf("fleet pipeline = %+v", fleet)
		}
		if cfg.Cluster.FailureTimeout.D() != 10*time.Second || cfg.PubSub["fleet"].Region != "cloud" {
			t.Errorf("cluster = %+v", cfg.Cluster)
		}
	})
	t.Run("Line finds a key, else its nearest written parent", func(t *testing.T) {
		for path, want := range map[string]int{
			"pipelines[0].topics.include[0]":         30,
			"kafka.eu-west.bootstrap":                12,
			"kafka.eu-west.properties.sasl.password": 14,
			"pipelines[1].tasks":                     38,
			"cluster.failure_timeout":                7,
			"no.such.key":                            1,
		} {
			if got := cfg.Line(path); got != want {
				t.Errorf("Line(%q) = %d, want %d", path, got, want)
			}
		}
	})
}

func TestUngoverned(t *testing.T) {
	data, err := os.ReadFile("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parseWithEnv("full.good.yaml", data, lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		pipeline *Pipeline
		want     bool
	}{
		{"a pipeline that leaves governance out is governed", cfg.Pipeline("eu-payments"), false},
		{"a pipeline with governance: none is ungoverned", cfg.Pipeline("eu-diagnostics"), true},
		{"a pipeline built in code without governance is governed", &Pipeline{Name: "p"}, false},
		{"a pipeline built in code with GovernanceNone is ungoverned", &Pipeline{Name: "p", Governance: GovernanceNone}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pipeline.Ungoverned(); got != tt.want {
				t.Errorf("Ungoverned() = %v, want %v (governance %q)", got, tt.want, tt.pipeline.Governance)
			}
		})
	}
}

func TestPubSubQuarantine(t *testing.T) {
	cfg, err := Load("testdata/pubsub-regions.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/full.good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	full, err := parseWithEnv("full.good.yaml", data, lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                  string
		cfg                   *Config
		pipeline              string
		wantKafka, wantDeadLt string
	}{
		{"a project in the target's region quarantines in the target", cfg, "fleet", "central", ""},
		{"a dead-letter topic id becomes a full name in the source's project", cfg, "eu-fleet-dlt", "", "projects/acme-eu/topics/quarantine"},
		{"a full dead-letter topic name stays as written", cfg, "eu-fleet-dlt-full", "", "projects/acme-eu/topics/quarantine"},
		{"quarantine_kafka names the cluster that receives the quarantine", cfg, "eu-fleet-kafka", "eu-west", ""},
		{"a kafka pipeline has no pubsub quarantine", full, "eu-payments", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.cfg.Pipeline(tt.pipeline)
			if p == nil {
				t.Fatalf("no pipeline %q", tt.pipeline)
			}
			k, d := tt.cfg.PubSubQuarantine(p)
			if k != tt.wantKafka || d != tt.wantDeadLt {
				t.Errorf("PubSubQuarantine(%s) = %q, %q; want %q, %q", tt.pipeline, k, d, tt.wantKafka, tt.wantDeadLt)
			}
		})
	}
	t.Run("a nil pipeline has no pubsub quarantine", func(t *testing.T) {
		if k, d := cfg.PubSubQuarantine(nil); k != "" || d != "" {
			t.Errorf("PubSubQuarantine(nil) = %q, %q", k, d)
		}
	})
}

func TestValidateBuiltInCode(t *testing.T) {
	build := func() *Config {
		c := Default()
		c.Node.ID, c.Node.Region = "n1", "eu"
		c.Kafka = map[string]*Kafka{"central": {Region: "eu", Bootstrap: "localhost:9092"}}
		c.Target = "central"
		c.Pipelines = []*Pipeline{{
			Name: "p", Source: Source{Kafka: "central"}, Topics: Topics{Include: []string{"a.*"}},
			Rename: "copy.{topic}", Format: "bytes", Tasks: 1, Start: "latest",
			RefreshInterval: Duration(time.Second), CommitInterval: Duration(time.Second),
		}}
		return c
	}
	t.Run("a complete config validates and compiles its filters", func(t *testing.T) {
		c := build()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if !c.Pipelines[0].Selects("abc") || c.Pipelines[0].Selects("xabc") {
			t.Error("Selects does not use the compiled, anchored filter")
		}
	})
	t.Run("errors carry the path but no file or line", func(t *testing.T) {
		c := build()
		c.Kafka["eu"] = nil
		c.Pipelines[0].Tasks = 2000
		err := c.Validate()
		want := "kafka.eu.region: required\nkafka.eu.bootstrap: required\npipelines[0].tasks: 2000 is not in 1..1024"
		if err == nil || err.Error() != want {
			t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
		}
	})
}

func TestRedactedHidesSecretProperties(t *testing.T) {
	for key, secret := range map[string]bool{
		"sasl.password": true, "ssl.key.password": true, "sasl.oauthbearer.client.secret": true,
		"sasl.jaas.config": true, "ssl.key": true, "ssl.key.pem": true, "SASL.PASSWORD": true,
		"sasl.username": false, "ssl.key.location": false, "security.protocol": false,
	} {
		t.Run(key+" is secret: "+map[bool]string{true: "yes", false: "no"}[secret], func(t *testing.T) {
			if got := IsSecretProperty(key); got != secret {
				t.Errorf("IsSecretProperty(%q) = %v", key, got)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseWithEnv("fuzz.yaml", data, lookupTestEnv)
		if err != nil {
			var list *ErrorList
			if !errors.As(err, &list) || len(list.Errors) == 0 {
				t.Fatalf("error is not a non-empty *ErrorList: %#v", err)
			}
			for _, e := range list.Errors {
				if e.File != "fuzz.yaml" || e.Line < 0 {
					t.Fatalf("bad error position: %+v", e)
				}
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Validate() after a successful Parse: %v", err)
		}
		out := cfg.Redacted()
		if strings.Contains(out, "$") {
			return // a "$$" in the input printed as "$" means something else when parsed again
		}
		again, err := parseWithEnv("again.yaml", []byte(out), lookupTestEnv)
		if err != nil {
			t.Fatalf("Redacted() output does not parse: %v\n%s", err, out)
		}
		if got := again.Redacted(); got != out {
			t.Fatalf("Redacted() is not stable:\n%s\nthen\n%s", out, got)
		}
	})
}
