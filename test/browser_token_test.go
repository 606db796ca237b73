package test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/config"
	node "github.com/tributary-dev/tributary/internal/daemon"
	"github.com/tributary-dev/tributary/test/harness"
)

// TestStatusPageAsksForAToken opens the status page of a node with a tokens
// file in headless Chromium (test/browser/tokenform.mjs): the page asks for a
// token, refuses a wrong one, shows the status with the right one, keeps it
// for the tab and asks again in a new tab.
func TestStatusPageAsksForAToken(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: drives a real browser against a node")
	}
	browserDir, err := filepath.Abs("browser")
	if err != nil {
		t.Fatal(err)
	}
	requireBrowser(t)
	installBrowserDeps(t, browserDir)

	const token = "page-token-3a9f1c0e7d5b"
	sum := sha256.Sum256([]byte(token))
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(tokens, []byte("- {name: browser, role: read, sha256: "+hex.EncodeToString(sum[:])+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	kafka := harness.KFake(t, kfake.SeedTopics(1, "orders"))
	path := filepath.Join(dir, "tributary.yaml")
	text := fmt.Sprintf(`node: {id: page-1, region: eu, data_dir: %s/data, http_addr: "127.0.0.1:0", raft_addr: %q}
kafka:
  regional: {region: eu, bootstrap: %q}
  central: {region: cloud, bootstrap: %q}
target: central
pipelines:
  - {name: orders, source: {kafka: regional}, topics: {include: [orders]}}
security: {tokens_file: %s}
`, dir, freeAddr(t), kafka, kafka, tokens)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- node.Run(ctx, cfg, node.Options{Started: func(a string, _ prometheus.Gatherer) { addr <- a }})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a + "/"
	case err := <-done:
		done <- err
		t.Fatalf("node did not start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("node did not start within 30s")
	}

	rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer rcancel()
	cmd := exec.CommandContext(rctx, "node", "tokenform.mjs", url, "page-1")
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "CHROMIUM_PATH="+chromiumPath, "STATUSPAGE_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tokenform.mjs %s: %v\n%s", url, err, out)
	}
	t.Logf("tokenform.mjs: %s", strings.TrimSpace(string(out)))
}
