package pubsubbridge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/config"
)

func TestValidate(t *testing.T) {
	valid := func() BridgeConfig {
		c := BridgeConfig{Pipeline: "p", PubSub: config.PubSub{Project: "proj"}, Subscription: "s", Topic: "t"}
		c.setDefaults()
		return c
	}
	for _, tc := range []struct {
		name string
		edit func(*BridgeConfig)
		want []string
	}{
		{"defaults are valid", func(*BridgeConfig) {}, nil},
		{"required fields are named", func(c *BridgeConfig) { c.Pipeline, c.PubSub.Project, c.Subscription, c.Topic = "", "", "", "" },
			[]string{"pipeline: required", "pubsub.project: required", "subscription: required", "topic: required"}},
		{"retry timeout must end before the ack deadline extension does",
			func(c *BridgeConfig) { c.RetryTimeout, c.MaxExtension = time.Hour, 10*time.Minute },
			[]string{"retry_timeout (1h0m0s) must be < max_extension (10m0s)"}},
		{"extension periods are 10s..600s", func(c *BridgeConfig) { c.MaxDurationPerAckExtension = time.Second },
			[]string{"max_duration_per_ack_extension (1s): must be 0 or between 10s and 600s"}},
		{"format is one of the four", func(c *BridgeConfig) { c.Format = "xml" }, []string{`format ("xml")`}},
		{"every problem is reported", func(c *BridgeConfig) { c.Streams, c.BatchMaxMessages = -1, -1 },
			[]string{"streams (-1)", "batch_max_messages (-1)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestFromConfig(t *testing.T) {
	cfg, err := config.Parse("fromconfig.yaml", []byte(`
node: {id: cloud-1, region: cloud}
kafka:
  central: {region: cloud, bootstrap: "127.0.0.1:9092"}
pubsub:
  fleet: {project: acme-fleet, emulator_host: "127.0.0.1:8085"}
target: central
pipelines:
  - name: fleet-telemetry
    source: {pubsub: fleet, subscription: telemetry-sub}
    topic: fleet.telemetry
    key_attribute: vin
    format: json
`))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	bc, err := FromConfig(cfg, "fleet-telemetry")
	if err != nil {
		t.Fatalf("FromConfig: %v", err)
	}
	if bc.Subscription != "telemetry-sub" || bc.Topic != "fleet.telemetry" || bc.KeyAttribute != "vin" ||
		bc.Format != "json" || bc.Source != "fleet" || bc.PubSub.Project != "acme-fleet" || bc.PubSub.Region != "cloud" ||
		bc.Streams != DefaultStreams || bc.QuarantineTopic != QuarantineTopic {
		t.Errorf("FromConfig = %+v", bc)
	}
	if _, err := FromConfig(cfg, "nope"); err == nil {
		t.Errorf("FromConfig of an unknown pipeline: nil error")
	}

	t.Run("pipelines[].pubsub sets the receiver knobs", func(t *testing.T) {
		cfg, err := config.Parse("knobs.yaml", []byte(`
node: {id: cloud-1, region: cloud}
kafka:
  central: {region: cloud, bootstrap: "127.0.0.1:9092"}
pubsub:
  fleet: {project: acme-fleet}
target: central
pipelines:
  - name: a
    source: {pubsub: fleet, subscription: s}
    topic: a
    pubsub: {streams: 9, max_outstanding_messages: 50, max_outstanding_bytes: 4096, max_extension: 20m,
             retry_timeout: 1m, dedup_window: 2m, dedup_max_ids: 77, max_message_bytes: 2048, dead_letter_topic: dlq}
  - name: b
    source: {pubsub: fleet, subscription: s}
    topic: b
    pubsub: {dedup_window: 0s}
`))
		if err != nil {
			t.Fatal(err)
		}
		a, err := FromConfig(cfg, "a")
		if err != nil {
			t.Fatal(err)
		}
		if a.Streams != 9 || a.MaxOutstandingMessages != 50 || a.MaxOutstandingBytes != 4096 || a.MaxExtension != 20*time.Minute ||
			a.RetryTimeout != time.Minute || a.DedupWindow != 2*time.Minute || a.DedupMaxIDs != 77 || a.MaxMessageBytes != 2048 ||
			a.DeadLetterTopic != "dlq" {
			t.Errorf("FromConfig(a) = %+v", a)
		}
		b, err := FromConfig(cfg, "b")
		if err != nil {
			t.Fatal(err)
		}
		if b.DedupWindow >= 0 || b.Streams != DefaultStreams || b.RetryTimeout != DefaultRetryTimeout {
			t.Errorf("FromConfig(b): dedup_window 0s must turn dedup off (negative), others default: %+v", b)
		}
	})
}

func TestClientOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ps      config.PubSub
		env     string
		want    string
		wantErr string
	}{
		{"the config's emulator host wins over the environment", config.PubSub{EmulatorHost: "a:1"}, "b:2", "a:1", ""},
		{"use_emulator_env takes the environment's", config.PubSub{UseEmulatorEnv: true}, "b:2", "b:2", ""},
		{"use_emulator_env without the variable is an error", config.PubSub{UseEmulatorEnv: true}, "", "", "pubsub.fleet.use_emulator_env is true but PUBSUB_EMULATOR_HOST is not set"},
		{"the variable alone is refused, never used silently", config.PubSub{}, "b:2", "", "PUBSUB_EMULATOR_HOST is set in the environment but pubsub.fleet does not enable an emulator"},
		{"neither: Google", config.PubSub{}, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := emulatorAddr("fleet", tc.ps, tc.env)
			if got != tc.want || (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("emulatorAddr = %q, %v; want %q, %q", got, err, tc.want, tc.wantErr)
			}
			opts, err := clientOptions("fleet", tc.ps, tc.env)
			if (err == nil) != (tc.wantErr == "") || (len(opts) > 0) != (tc.want != "") {
				t.Errorf("clientOptions = %d options, %v", len(opts), err)
			}
		})
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("a credentials file is loaded as the type it declares", func(t *testing.T) {
		if _, err := clientOptions("fleet", config.PubSub{CredentialsFile: write("sa.json", `{"type":"service_account"}`)}, ""); err != nil {
			t.Errorf("service account: %v", err)
		}
	})
	t.Run("unknown credential types and bad files are errors", func(t *testing.T) {
		for _, p := range []string{write("odd.json", `{"type":"gdch_service_account"}`), write("bad.json", `{`), filepath.Join(dir, "missing.json")} {
			if _, err := clientOptions("fleet", config.PubSub{CredentialsFile: p}, ""); err == nil {
				t.Errorf("%s: nil error", filepath.Base(p))
			}
		}
	})
}
