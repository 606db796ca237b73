package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/test/harness"
)

// TestSecretsNeverShow loads a config full of recognisable secrets, checks it,
// runs a node with it in-process, reads every answer of its HTTP API and lets
// librdkafka fail on them (it quotes sasl.oauthbearer.config in its errors);
// no secret may appear in the output, the logs, an answer or the error.
func TestSecretsNeverShow(t *testing.T) {
	secrets := map[string]string{
		"sasl.oauthbearer.config":      "OAUTHCFG-Zq81x-tokenvalue",
		"sasl.password":                "SASLPW-Hj27c-password",
		"ssl.key.password":             "SSLKEYPW-Tt55-password",
		"schema_registry.password":     "REGPW-Mm40-password",
		"a password in a registry URL": "URLPW-Kk93-password",
		"the hash key":                 "HASHKEY-Pp62-0123456789",
	}
	source := harness.KFake(t, kfake.SeedTopics(1, "payments.fuel"))
	target := harness.KFake(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "hash.key")
	if err := os.WriteFile(keyFile, []byte(secrets["the hash key"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`node:
  id: test-1
  region: eu
  data_dir: %s/data
  http_addr: 127.0.0.1:0
  raft_addr: %s
kafka:
  eu-west:
    region: eu
    bootstrap: "%s"
    properties:
      sasl.username: tributary
      sasl.password: "%s"
      ssl.key.password: "%s"
    schema_registry: {url: "http://reguser:%s@127.0.0.1:1"}
  central:
    region: cloud
    bootstrap: "%s"
    properties:
      security.protocol: SASL_PLAINTEXT
      sasl.mechanism: OAUTHBEARER
      enable.sasl.oauthbearer.unsecure.jwt: "true"
      sasl.oauthbearer.config: "principal=tributary %s"
    schema_registry: {url: "http://127.0.0.1:1", username: sr, password: "%s"}
target: central
hash_key_file: %s
pipelines:
  - name: eu-payments
    source: {kafka: eu-west}
    topics: {include: ['payments\..*']}
`, dir, freeRaftAddr(t), source, secrets["sasl.password"], secrets["ssl.key.password"], secrets["a password in a registry URL"],
		target, secrets["sasl.oauthbearer.config"], secrets["schema_registry.password"], keyFile)
	cfgPath := filepath.Join(dir, "tributary.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, where, text string) {
		t.Helper()
		for name, s := range secrets {
			// The secret, or a telling piece of it (its unique prefix).
			if strings.Contains(text, s) || strings.Contains(text, s[:12]) {
				t.Errorf("%s shows %s:\n%s", where, name, text)
			}
		}
	}

	t.Run("config check", func(t *testing.T) {
		code, stdout, stderr := runCLI("config", "check", cfgPath)
		if code != 0 {
			t.Fatalf("config check exited %d: %s %s", code, stdout, stderr)
		}
		check(t, "config check", stdout+stderr)
		// A config with mistakes next to the secrets: the errors name
		// places and keys, never values.
		bad := strings.Replace(cfg, "      sasl.username: tributary\n", "      sasl.username: [tributary]\n", 1)
		bad = strings.Replace(bad, "    schema_registry: {url: \"http://127.0.0.1:1\", username: sr,", "    schema_registry: {url: \"http://127.0.0.1:1\", user: sr,", 1)
		bad = strings.Replace(bad, "  http_addr: 127.0.0.1:0\n", "  http_addr: 127.0.0.1:0\n  sasl.password: \""+secrets["sasl.password"]+"\"\n", 1)
		badPath := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(badPath, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr = runCLI("config", "check", badPath)
		if code != 2 {
			t.Fatalf("config check of a bad config exited %d: %s %s", code, stdout, stderr)
		}
		check(t, "config check of a bad config", stdout+stderr)
	})

	t.Run("a running node", func(t *testing.T) {
		var out, logs lockedBuffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("node log:\n%s", logs.String())
			}
		})
		done := make(chan error, 1)
		go func() { done <- run(ctx, []string{"run", "--config", cfgPath, "--log-level", "debug"}, &out, &logs) }()
		var addr string
		harness.Eventually(t, 20*time.Second, "the node to log its HTTP address", func() error {
			select {
			case err := <-done:
				t.Fatalf("the node exited: %v\n%s", err, logs.String())
			default:
			}
			m := startedLine.FindStringSubmatch(logs.String())
			if m == nil {
				return fmt.Errorf("no start line yet")
			}
			addr = m[1]
			return nil
		})
		if t.Failed() {
			return
		}
		// librdkafka fails to get an OAUTHBEARER token from the config and
		// says why, quoting it; wait for that to reach the log.
		harness.Eventually(t, 20*time.Second, "librdkafka's OAUTHBEARER failure in the log", func() error {
			if !strings.Contains(logs.String(), "OAUTHBEARER") {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		client := &http.Client{Timeout: 5 * time.Second}
		for _, path := range []string{"/v1/status", "/v1/status?scope=cluster", "/readyz", "/healthz", "/metrics", "/", "/v1/cluster"} {
			resp, err := client.Get("http://" + addr + path)
			if err != nil {
				t.Errorf("GET %s: %v", path, err)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			check(t, "GET "+path, string(b))
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				check(t, "the node's error", err.Error())
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the node did not stop within 30s")
		}
		check(t, "the node's output", out.String())
		check(t, "the node's log", logs.String())
	})
}
