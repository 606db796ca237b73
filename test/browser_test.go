package test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/test/harness"
)

// statusPageMinNodes is the number of cluster members the status page of
// `tributary demo` must list (statuspage.mjs --min-nodes). The demo runs one
// node today; raise it to 3 when the demo runs its three-node cluster.
const statusPageMinNodes = 3

// chromiumPath is Debian's chromium, which test/run.sh installs when missing.
// playwright-core drives it and never downloads a browser of its own.
const chromiumPath = "/usr/bin/chromium"

// TestStatusPage opens the status page of a running `tributary demo` in
// headless Chromium (test/browser/statuspage.mjs): it must load without console
// errors or failed requests, show every member and pipeline of /v1/status, and
// update its lag and records figures. The screenshot is kept in
// $TMPDIR/tributary-test-artifacts/statuspage.png and, with
// TRIBUTARY_UPDATE_SCREENSHOT=1, copied to docs/statuspage.png.
func TestStatusPage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: drives a real browser against the demo (make test runs it)")
	}
	browserDir, err := filepath.Abs("browser")
	if err != nil {
		t.Fatal(err)
	}
	requireBrowser(t)
	installBrowserDeps(t, browserDir)

	demo := startDemo(t, tributaryBinary(t))
	url := demo.waitURL(30 * time.Second)
	demo.waitReady(30 * time.Second)

	artifacts := filepath.Join(os.TempDir(), "tributary-test-artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifacts, "statuspage.png")
	os.Remove(shot) // a failed run must not leave the previous run's picture behind

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "node", "statuspage.mjs", "--min-nodes", strconv.Itoa(statusPageMinNodes), url, shot)
	cmd.Dir = browserDir
	cmd.Env = append(os.Environ(), "CHROMIUM_PATH="+chromiumPath)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if _, statErr := os.Stat(shot); statErr == nil {
		t.Logf("screenshot: %s", shot)
	}
	if err != nil {
		t.Fatalf("statuspage.mjs %s: %v (after %v)\n%s%s\ndemo output (tail):\n%s",
			url, err, time.Since(start).Round(time.Millisecond), stderr.String(), stdout.String(), demo.tail(4096))
	}
	t.Logf("statuspage.mjs took %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(stdout.String()))
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("statuspage.mjs stderr:\n%s", s)
	}

	if os.Getenv("TRIBUTARY_UPDATE_SCREENSHOT") == "1" {
		dst, err := filepath.Abs(filepath.Join("..", "docs", "statuspage.png"))
		if err != nil {
			t.Fatal(err)
		}
		if err := copyFile(shot, dst); err != nil {
			t.Fatalf("updating the screenshot: %v", err)
		}
		t.Logf("TRIBUTARY_UPDATE_SCREENSHOT=1: copied the screenshot to %s", dst)
	}

	if err, took := demo.stop(); err != nil {
		t.Errorf("demo exited with %v after SIGTERM (%v)\n%s", err, took.Round(time.Millisecond), demo.tail(4096))
	}
}

// requireBrowser skips the test when node, npm or Chromium is missing, unless
// the run is test/run.sh's (`make test`), which installs them: there a missing
// tool fails the test.
func requireBrowser(t *testing.T) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = append(missing, chromiumPath+" (Debian package chromium)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "browser test needs " + strings.Join(missing, ", ")
	if os.Getenv(harness.EnvSourceBootstrap) == "" {
		t.Skip(msg + "; `make test` installs Chromium and the npm packages (Node.js >= 20 must be installed)")
	}
	t.Fatal(msg + " (test/run.sh installs Chromium and checks for Node.js)")
}

// installBrowserDeps runs `npm ci` in dir when its node_modules is missing.
func installBrowserDeps(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	t.Logf("npm ci in %s took %v", dir, time.Since(start).Round(time.Millisecond))
}

// startDemo starts `tributary demo` on a free HTTP port; it needs no brokers
// (in-memory kfake clusters). It is a daemon for its helpers (waitReady, tail).
func startDemo(t *testing.T, bin string) *daemon {
	t.Helper()
	addr := freeAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	d := &daemon{t: t, http: addr, exited: make(chan struct{})}
	d.cmd = exec.Command(bin, "demo", "--http-port", port, "--log-level", "warn")
	d.spawn("demo")
	return d
}

var statusPageLine = regexp.MustCompile(`status page: (http://\S+/)`)

// waitURL waits for the demo to print its status page URL and returns it.
func (d *daemon) waitURL(timeout time.Duration) string {
	d.t.Helper()
	var url string
	harness.Eventually(d.t, timeout, "the demo's status page URL", func() error {
		select {
		case <-d.exited:
			d.t.Fatalf("demo exited: %v\n%s", d.err, d.tail(4096))
		default:
		}
		m := statusPageLine.FindStringSubmatch(d.output())
		if m == nil {
			return errors.New("no \"status page: URL\" line yet")
		}
		url = m[1]
		return nil
	})
	if want := "http://" + d.http + "/"; url != want {
		d.t.Fatalf("demo prints status page %s, want %s (--http-port)", url, want)
	}
	return url
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
