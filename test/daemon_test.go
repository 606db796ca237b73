package test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/test/harness"
)

// daemon is a tributary node running as a separate process.
type daemon struct {
	t      testing.TB
	cfg    string
	http   string
	cmd    *exec.Cmd
	out    logBuffer
	exited chan struct{}
	err    error
	// scheme and client reach the node's HTTP API; unset, "http" and the
	// default client (a node with security.tls needs "https" and a client
	// that trusts its CA).
	scheme string
	client *http.Client
}

// get sends GET path to the node's HTTP API.
func (d *daemon) get(path string) (*http.Response, error) {
	scheme, client := d.scheme, d.client
	if scheme == "" {
		scheme = "http"
	}
	if client == nil {
		client = http.DefaultClient
	}
	return client.Get(scheme + "://" + d.http + path)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
// Ports come from below the kernel's ephemeral range (32768 and up): a port
// picked with ":0" is an ephemeral one, which any outgoing connection (a Kafka
// client's, say) may take before the node binds it.
// A port is handed out once per test process: two random picks of the same
// free port gave two nodes of one cluster the same HTTP address ("bind:
// address already in use" in a full suite run).
var handedOut sync.Map

func freeAddr(t testing.TB) string {
	t.Helper()
	for i := 0; i < 1000; i++ {
		port := 20000 + rand.IntN(12000)
		if _, taken := handedOut.LoadOrStore(port, true); taken {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return l.Addr().String()
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// writeConfig writes a node config with the given pipelines section and returns
// its path and HTTP address.
func writeConfig(t testing.TB, source, target, pipelines string) (path, httpAddr string) {
	t.Helper()
	return writeConfigWith(t, fmt.Sprintf(`kafka:
  regional:
    region: eu
    bootstrap: %s
  central:
    region: cloud
    bootstrap: %s
`, source, target), pipelines)
}

// writeConfigWith writes a node config with the given kafka and pipelines
// sections (target: central).
func writeConfigWith(t testing.TB, kafkaSection, pipelines string) (path, httpAddr string) {
	t.Helper()
	dir := t.TempDir()
	httpAddr = freeAddr(t)
	text := fmt.Sprintf(`node:
  id: test-1
  region: eu
  data_dir: %s/data
  http_addr: %s
  raft_addr: %s
%starget: central
pipelines:
%s`, dir, httpAddr, freeAddr(t), kafkaSection, pipelines)
	path = filepath.Join(dir, "tributary.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, httpAddr
}

func startDaemon(t testing.TB, cfg, httpAddr string) *daemon {
	t.Helper()
	return startDaemonEnv(t, cfg, httpAddr)
}

// startDaemonEnv is startDaemon with env (KEY=value) added to the node's
// environment, for configs that use ${VAR}.
func startDaemonEnv(t testing.TB, cfg, httpAddr string, env ...string) *daemon {
	t.Helper()
	if binPath == "" {
		t.Skip("tributary binary not built: real brokers not configured")
	}
	d := &daemon{t: t, cfg: cfg, http: httpAddr, exited: make(chan struct{})}
	d.cmd = exec.Command(binPath, "run", "--config", cfg, "--log-level", "debug")
	if len(env) > 0 {
		d.cmd.Env = append(os.Environ(), env...)
	}
	d.spawn("node")
	return d
}

// spawn starts d.cmd with its output in d.out and in a file that outlives the
// test, for post-mortems ($TMPDIR/tributary-test-logs/<test>/<kind>-*.log);
// the process is killed when the test ends.
func (d *daemon) spawn(kind string) {
	t := d.t
	t.Helper()
	logDir := filepath.Join(os.TempDir(), "tributary-test-logs", sanitizeName(t.Name()))
	os.MkdirAll(logDir, 0o755)
	f, err := os.CreateTemp(logDir, kind+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	// One writer for both, so exec.Cmd never calls it from two goroutines at once.
	w := io.MultiWriter(&d.out, f)
	d.cmd.Stdout, d.cmd.Stderr = w, w
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("%s output in %s; last 8 KiB:\n%s", kind, f.Name(), d.tail(8192))
		}
	})
}

func (d *daemon) output() string { return d.out.String() }

func (d *daemon) tail(n int) string { return d.out.tail(n) }

func (d *daemon) kill() {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
}

// stop sends SIGTERM and returns the exit error and how long the exit took.
func (d *daemon) stop() (error, time.Duration) {
	start := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return d.err, time.Since(start)
	case <-time.After(20 * time.Second):
		d.kill()
		return fmt.Errorf("did not exit within 20 s of SIGTERM"), time.Since(start)
	}
}

// waitReady waits until /readyz answers 200.
func (d *daemon) waitReady(timeout time.Duration) {
	d.t.Helper()
	harness.Eventually(d.t, timeout, "node ready", func() error {
		select {
		case <-d.exited:
			d.t.Fatalf("daemon exited: %v\n%s", d.err, d.tail(4096))
		default:
		}
		resp, err := d.get("/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}
		return nil
	})
}

// metric returns the text of /metrics.
func (d *daemon) metrics() string {
	resp, err := d.get("/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}
