package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/test/harness"
)

// daemonEnv makes the test binary run main() instead of the tests, so process
// tests can start it as the tributary daemon (Prometheus's -test.main).
const daemonEnv = "TRIBUTARY_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(daemonEnv) == "1" {
		main() // os.Args[1:] are tributary's arguments; main exits
	}
	os.Exit(m.Run())
}

// runCLI runs the command line as main does and returns the exit code and output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = exitCode(run(context.Background(), args, &out, &errOut), &errOut)
	return code, out.String(), errOut.String()
}

func TestRun(t *testing.T) {
	// unset-env.bad.yaml refers to this variable; it must be unset.
	t.Setenv("TRIBUTARY_TEST_UNSET_VAR", "")
	os.Unsetenv("TRIBUTARY_TEST_UNSET_VAR")

	td := func(name string) string { return filepath.Join("testdata", name) }
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings
		stderr []string // substrings
	}{
		{"no arguments is bad usage and prints the usage", nil, 2, nil,
			[]string{"usage: tributary <command>", "tributary: no command given"}},
		{"an unknown command is bad usage", []string{"mirror"}, 2, nil,
			[]string{"usage: tributary <command>", `tributary: unknown command "mirror"`}},
		{"help prints the usage on stdout", []string{"help"}, 0, []string{"usage: tributary <command>", "config check FILE"}, nil},
		{"version prints the version", []string{"version"}, 0, []string{"tributary ", "librdkafka "}, nil},
		{"config check of a good file prints ok", []string{"config", "check", td("good.yaml")}, 0,
			[]string{td("good.yaml") + ": ok (1 pipelines, target central)"}, nil},
		{"config check of a YAML syntax error names the line", []string{"config", "check", td("syntax.bad.yaml")}, 2, nil,
			[]string{td("syntax.bad.yaml") + ":8: syntax error: mapping values are not allowed in this context"}},
		{"config check of an unknown key names line and key", []string{"config", "check", td("unknown-key.bad.yaml")}, 2, nil,
			[]string{td("unknown-key.bad.yaml") + `:12:5: pipelines[0].taks: unknown key (did you mean "tasks"?)`}},
		{"config check of a missing node.id names its parent's line", []string{"config", "check", td("missing-node-id.bad.yaml")}, 2, nil,
			[]string{td("missing-node-id.bad.yaml") + ":2:1: node.id: required"}},
		{"config check of a bad regex names the list item", []string{"config", "check", td("bad-regex.bad.yaml")}, 2, nil,
			[]string{td("bad-regex.bad.yaml") + `:12:11: pipelines[0].topics.include[1]: invalid regex "payments.("`}},
		{"config check of an unset environment variable names it", []string{"config", "check", td("unset-env.bad.yaml")}, 2, nil,
			[]string{td("unset-env.bad.yaml") + `:8:22: kafka.central.properties.sasl.username: environment variable "TRIBUTARY_TEST_UNSET_VAR" is not set`}},
		{"config check of a target that is not a kafka cluster names it", []string{"config", "check", td("unknown-target.bad.yaml")}, 2, nil,
			[]string{td("unknown-target.bad.yaml") + `:6:1: target: "centrall" is not a kafka cluster (known: central, eu-west)`}},
		{"config check of a missing file is an error", []string{"config", "check", td("no-such-file.yaml")}, 2, nil,
			[]string{"no-such-file.yaml"}},
		{"config without check is bad usage", []string{"config"}, 2, nil, []string{"usage: tributary config check FILE"}},
		{"config check without a file is bad usage", []string{"config", "check"}, 2, nil, []string{"usage: tributary config check FILE"}},
		{"config check with two files is bad usage", []string{"config", "check", td("good.yaml"), td("good.yaml")}, 2, nil, []string{"usage: tributary config check FILE"}},
		{"run without --config is bad usage", []string{"run"}, 2, nil, []string{"usage: tributary run --config FILE"}},
		{"run with an unknown flag is bad usage", []string{"run", "--confg", td("good.yaml")}, 2, nil, []string{"flag provided but not defined: -confg"}},
		{"run with a bad log level is bad usage", []string{"run", "--config", td("good.yaml"), "--log-level", "loud"}, 2, nil, []string{`--log-level "loud"`}},
		{"run with an invalid config exits 2 and names the problem", []string{"run", "--config", td("unknown-key.bad.yaml")}, 2, nil,
			[]string{td("unknown-key.bad.yaml") + `:12:5: pipelines[0].taks: unknown key`}},
		{"run with an unset environment variable exits 2", []string{"run", "--config", td("unset-env.bad.yaml")}, 2, nil,
			[]string{td("unset-env.bad.yaml") + `:8:22: kafka.central.properties.sasl.username`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tt.args...)
			if code != tt.code {
				t.Errorf("tributary %s: exit code %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), code, tt.code, stdout, stderr)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("tributary %s: stdout lacks %q:\n%s", strings.Join(tt.args, " "), want, stdout)
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("tributary %s: stderr lacks %q:\n%s", strings.Join(tt.args, " "), want, stderr)
				}
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"no error is 0", nil, 0},
		{"a runtime failure is 1", errors.New("target unreachable"), 1},
		{"bad usage is 2", usageErr("bad flag"), 2},
		{"a wrapped usage error keeps its code", fmt.Errorf("starting: %w", &exitError{code: 2, err: errors.New("bad config")}), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := exitCode(tt.err, &stderr); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
			if tt.err != nil && !strings.Contains(stderr.String(), "tributary: "+tt.err.Error()) {
				t.Errorf("exitCode(%v) printed %q", tt.err, stderr.String())
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer the daemon's output goroutine writes while
// the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var startedLine = regexp.MustCompile(`msg="tributary node starting".* http=(\S+)`)

// TestDaemonMirrorsServesAndStopsOnSIGTERM runs the test binary as
// `tributary run --config F` between two kfake clusters, checks the HTTP API
// while it mirrors, and stops it with SIGTERM.
func TestDaemonMirrorsServesAndStopsOnSIGTERM(t *testing.T) {
	source := harness.KFake(t, kfake.SeedTopics(2, "payments.fuel"))
	target := harness.KFake(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tributary.yaml")
	cfg := fmt.Sprintf(`node:
  id: test-1
  region: eu
  data_dir: %s/data
  http_addr: 127.0.0.1:0
  raft_addr: %s
kafka:
  eu-west: {region: eu, bootstrap: "%s"}
  central: {region: cloud, bootstrap: "%s"}
target: central
pipelines:
  - name: eu-payments
    source: {kafka: eu-west}
    topics: {include: ['payments\..*']}
    tasks: 2
`, dir, freeRaftAddr(t), source, target)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "run", "--config", cfgPath)
	cmd.Env = append(os.Environ(), daemonEnv+"=1")
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the daemon: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon stdout:\n%s\ndaemon stderr:\n%s", stdout.String(), stderr.String())
		}
	})

	var addr string
	harness.Eventually(t, 15*time.Second, "the daemon to log its HTTP address", func() error {
		select {
		case <-exited:
			return nil // reported below
		default:
		}
		m := startedLine.FindStringSubmatch(stderr.String())
		if m == nil {
			return errors.New(`no "tributary node starting" line with http= yet`)
		}
		addr = m[1]
		return nil
	})
	if addr == "" {
		t.Fatalf("the daemon exited before it served: %v", cmd.ProcessState)
	}
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("the daemon logged http=%s, want the bound port", addr)
	}
	base := "http://" + addr
	client := &http.Client{Timeout: 2 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	expect200 := func(path string) func() error {
		return func() error {
			code, body, err := get(path)
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("GET %s = %d %s", path, code, body)
			}
			return nil
		}
	}
	harness.Eventually(t, 10*time.Second, "/healthz", expect200("/healthz"))
	harness.Eventually(t, 30*time.Second, "/readyz", expect200("/readyz"))

	produceRecords(t, source, "payments.fuel", 10)
	harness.Eventually(t, 30*time.Second, "the metrics of 10 mirrored records", func() error {
		code, body, err := get("/metrics")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET /metrics = %d", code)
		}
		for _, want := range []string{
			`tributary_records_total{outcome="replicated",pipeline="eu-payments"} 10`,
			`tributary_replication_lag_records{partition="0",pipeline="eu-payments",topic="payments.fuel"} 0`,
			`tributary_replication_lag_records{partition="1",pipeline="eu-payments",topic="payments.fuel"} 0`,
		} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("/metrics lacks %s", want)
			}
		}
		return nil
	})
	code, body, err := get("/v1/status")
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"eu-payments/1"`) {
		t.Errorf("GET /v1/status = %d, %v:\n%s", code, err, body)
	}
	if code, body, err := get("/v1/offsets/translate"); err != nil || code != http.StatusBadRequest || !strings.Contains(body, "group") {
		t.Errorf("GET /v1/offsets/translate without a group = %d, %v:\n%s", code, err, body)
	}

	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("sending SIGTERM: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the daemon did not exit within 10s of SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	t.Logf("the daemon exited %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	if !strings.Contains(stderr.String(), `msg="tributary node stopped"`) {
		t.Errorf("the daemon did not log that it stopped")
	}
}

// produceRecords writes n keyed records to topic and waits for their acks.
func produceRecords(t *testing.T, bootstrap, topic string, n int) {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.metrics.push": false, "log_level": 3})
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	defer p.Close()
	dr := make(chan kafka.Event, n)
	for i := range n {
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: int32(i % 2)}, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
		if err := p.Produce(m, dr); err != nil {
			t.Fatalf("Produce: %v", err)
		}
	}
	for range n {
		select {
		case ev := <-dr:
			if err := ev.(*kafka.Message).TopicPartition.Error; err != nil {
				t.Fatalf("producing: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("producing: no delivery report within 30s")
		}
	}
}

func freeRaftAddr(t *testing.T) string {
	t.Helper()
	a, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	return a
}
