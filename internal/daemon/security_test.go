package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/auth"
)

// Made-up tokens of the test; none may appear in any log line.
const (
	readToken    = "tok-read-6f1c2d9e8a7b"
	operateToken = "tok-operate-4b3a2918f7e6"
	adminToken   = "tok-admin-0d1e2f3a4b5c"
)

type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func hexSum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// loopbackAddr returns a loopback address whose port was free a moment ago.
func loopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runningNode is a node started with Run in this process.
type runningNode struct {
	http string
	reg  prometheus.Gatherer
	logs *logSink
	// stop stops the node (once; the test's end calls it too).
	stop func()
}

// startNode writes a config with the given node and extra sections, runs the
// node until the test ends and waits for its HTTP server.
func startNode(t *testing.T, node, extra string) *runningNode {
	t.Helper()
	return startNodeIn(t, node, extra, "")
}

// startNodeIn is startNode with node.data_dir dataDir ("": a new one).
func startNodeIn(t *testing.T, node, extra, dataDir string) *runningNode {
	t.Helper()
	kafka, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kafka.Close)
	dir := t.TempDir()
	text := fmt.Sprintf(`node: %s
kafka:
  regional: {region: eu, bootstrap: %q}
  central: {region: cloud, bootstrap: %q}
target: central
pipelines:
  - {name: orders, source: {kafka: regional}, topics: {include: [orders]}}
%s`, node, kafka.ListenAddrs()[0], kafka.ListenAddrs()[0], extra)
	path := filepath.Join(dir, "tributary.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Node.DataDir = filepath.Join(dir, "data")
	if dataDir != "" {
		cfg.Node.DataDir = dataDir
	}
	rn := &runningNode{logs: &logSink{}}
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Logger: slog.New(slog.NewTextHandler(rn.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Started: func(addr string, reg prometheus.Gatherer) { rn.http, rn.reg = addr, reg; close(started) }})
	}()
	var once sync.Once
	rn.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node stopped with %v", err)
			}
		})
	}
	t.Cleanup(rn.stop)
	select {
	case <-started:
	case err := <-done:
		done <- err
		t.Fatalf("node did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("node did not start within 20s")
	}
	return rn
}

func tokensFile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	content := "- {name: grafana, role: read, sha256: " + hexSum(readToken) + "}\n" +
		"- {name: oncall, role: operate, sha256: " + hexSum(operateToken) + "}\n" +
		"- {name: platform, role: admin, sha256: " + hexSum(adminToken) + "}\n"
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTokensOnTheHTTPAPI runs two nodes with a tokens file and tries every
// endpoint without a token, with a weaker role and with the right one; the
// nodes themselves keep calling each other (registration, cluster status,
// forwarded requests) without any token.
func TestTokensOnTheHTTPAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs two nodes")
	}
	toks := tokensFile(t, 0o600)
	policies := t.TempDir()
	security := fmt.Sprintf("policies: %s\nsecurity: {tokens_file: %s}\n", policies, toks)
	aRaft := loopbackAddr(t)
	a := startNode(t, fmt.Sprintf("{id: a, region: eu, http_addr: '127.0.0.1:0', raft_addr: %q}", aRaft), security)
	bRaft := loopbackAddr(t)
	b := startNode(t, fmt.Sprintf("{id: b, region: eu, http_addr: '127.0.0.1:0', raft_addr: %q}", bRaft),
		security+fmt.Sprintf("cluster: {join: [%q]}\n", a.http))
	A, B := "http://"+a.http, "http://"+b.http

	// b registers itself with a through POST /v1/cluster/join, with no token.
	eventually(t, 30*time.Second, "b registered and alive", func() error {
		code, body := call(t, "GET", A+"/v1/cluster", readToken, "")
		var st struct {
			Members []struct {
				ID    string `json:"id"`
				Alive bool   `json:"alive"`
			} `json:"members"`
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
			return fmt.Errorf("%d %s", code, body)
		}
		for _, m := range st.Members {
			if m.ID == "b" && m.Alive {
				return nil
			}
		}
		return fmt.Errorf("members %+v", st.Members)
	})

	rejoinB := fmt.Sprintf(`{"id":"b","region":"eu","raft_addr":%q,"http_addr":%q}`, bRaft, b.http)
	forged := `{"version":9223372036854775807,"data":"","hash":"forged","source":"attacker"}`
	tests := []struct {
		name, method, url, body string
		token                   string
		want                    int
	}{
		{"anyone reads /healthz", "GET", A + "/healthz", "", "", 200},
		// 200 or 503 (tasks starting): what matters is that no token is asked.
		{"anyone reads /readyz", "GET", A + "/readyz", "", "", anyButDenied},
		{"anyone reads /metrics", "GET", A + "/metrics", "", "", 200},
		{"anyone loads the status page's files", "GET", A + "/", "", "", 200},
		{"anyone loads the status page's script", "GET", A + "/ui/app.js", "", "", 200},

		{"status without a token is 401", "GET", A + "/v1/status", "", "", 401},
		{"status with a wrong token is 401", "GET", A + "/v1/status", "", "tok-read-6f1c2d9e8a7c", 401},
		{"status with a read token works", "GET", A + "/v1/status", "", readToken, 200},
		{"the cluster view without a token is 401", "GET", A + "/v1/status?scope=cluster", "", "", 401},
		{"cluster without a token is 401", "GET", A + "/v1/cluster", "", "", 401},
		{"cluster with a read token works", "GET", A + "/v1/cluster", "", readToken, 200},
		{"offsets translate without a token is 401", "GET", A + "/v1/offsets/translate", "", "", 401},
		// The guard lets it through: the handler itself wants its parameters.
		{"offsets translate with a read token reaches the handler", "GET", A + "/v1/offsets/translate", "", readToken, 400},

		{"reload without a token is 401", "POST", A + "/v1/policies/reload", "", "", 401},
		{"reload with a read token is 403", "POST", A + "/v1/policies/reload", "", readToken, 403},
		{"reload with an operate token works", "POST", A + "/v1/policies/reload", "", operateToken, 202},
		{"reload with an admin token works", "POST", A + "/v1/policies/reload", "", adminToken, 202},

		{"join without a token is 401", "POST", A + "/v1/cluster/join", rejoinB, "", 401},
		{"join with an operate token is 403", "POST", A + "/v1/cluster/join", rejoinB, operateToken, 403},
		{"join with an admin token works", "POST", A + "/v1/cluster/join", rejoinB, adminToken, 200},
		{"join through a follower without a token is 401", "POST", B + "/v1/cluster/join", rejoinB, "", 401},
		{"join through a follower with an admin token is forwarded and works", "POST", B + "/v1/cluster/join", rejoinB, adminToken, 200},

		{"a forged policy bundle without a token is refused", "POST", A + "/v1/cluster/policy", forged, "", 403},
		{"a forged policy bundle with an admin token is refused: nodes only", "POST", A + "/v1/cluster/policy", forged, adminToken, 403},
		{"a forged policy bundle sent to a follower is refused there", "POST", B + "/v1/cluster/policy", forged, adminToken, 403},
		{"a forged load report with an admin token is refused: nodes only", "POST", A + "/v1/cluster/load", `{"node":"a","load":{"x":1e9}}`, adminToken, 403},

		{"removing a member without a token is 401", "DELETE", A + "/v1/cluster/members/b", "", "", 401},
		{"removing a member with a read token is 403", "DELETE", A + "/v1/cluster/members/b", "", readToken, 403},
		{"removing a member with an operate token is 403", "DELETE", A + "/v1/cluster/members/b", "", operateToken, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, tt.method, tt.url, tt.token, tt.body)
			if tt.want == anyButDenied && code != http.StatusUnauthorized && code != http.StatusForbidden {
				return
			}
			if code != tt.want {
				t.Errorf("%s %s: %d %s, want %d", tt.method, tt.url, code, body, tt.want)
			}
		})
	}

	t.Run("the cluster view asks the other member as a node, without the caller's token", func(t *testing.T) {
		code, body := call(t, "GET", A+"/v1/status?scope=cluster", readToken, "")
		var st Status
		if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
			t.Fatalf("%d %s", code, body)
		}
		if len(st.Unreachable) != 0 || st.Scope != scopeCluster {
			t.Errorf("unreachable %+v, scope %q", st.Unreachable, st.Scope)
		}
		if st.Security != securityLoopback {
			t.Errorf("security = %q, want %q", st.Security, securityLoopback)
		}
	})
	t.Run("the cluster kept its members and its policy", func(t *testing.T) {
		code, body := call(t, "GET", A+"/v1/status", readToken, "")
		if code != 200 || strings.Contains(body, "forged") || strings.Contains(body, "attacker") {
			t.Errorf("%d %s", code, body)
		}
	})
	t.Run("an admin removes a member", func(t *testing.T) {
		if code, body := call(t, "DELETE", A+"/v1/cluster/members/b", adminToken, ""); code != 200 {
			t.Errorf("%d %s", code, body)
		}
	})

	t.Run("refusals are counted by endpoint and reason", func(t *testing.T) {
		want := map[[2]string]float64{
			{auth.EndpointStatus, auth.ReasonMissing}: 2, {auth.EndpointStatus, auth.ReasonInvalid}: 1,
			{auth.EndpointCluster, auth.ReasonMissing}: 1, {auth.EndpointOffsetsTranslate, auth.ReasonMissing}: 1,
			{auth.EndpointPoliciesReload, auth.ReasonMissing}: 1, {auth.EndpointPoliciesReload, auth.ReasonForbidden}: 1,
			{auth.EndpointClusterJoin, auth.ReasonMissing}: 1, {auth.EndpointClusterJoin, auth.ReasonForbidden}: 1,
			{auth.EndpointClusterPolicy, auth.ReasonMissing}: 0, {auth.EndpointClusterPolicy, auth.ReasonForbidden}: 2,
			// The bundle sent to b is refused by b, before any forwarding.
			{auth.EndpointClusterLoad, auth.ReasonForbidden}:  1,
			{auth.EndpointClusterMembers, auth.ReasonMissing}: 1, {auth.EndpointClusterMembers, auth.ReasonForbidden}: 2,
		}
		got := deniedCounts(t, a.reg)
		for k, w := range want {
			if got[k] != w {
				t.Errorf("tributary_http_denied_total{endpoint=%q,reason=%q} = %v, want %v", k[0], k[1], got[k], w)
			}
		}
	})
	t.Run("logs name the tokens and never show them", func(t *testing.T) {
		logs := a.logs.String() + b.logs.String()
		for _, secret := range []string{readToken, operateToken, adminToken, hexSum(readToken), hexSum(adminToken)} {
			if strings.Contains(logs, secret) {
				t.Errorf("a log shows %q", secret)
			}
		}
		for _, want := range []string{"token=platform", "token=oncall", "token=grafana", `msg="http request denied"`} {
			if !strings.Contains(logs, want) {
				t.Errorf("the logs lack %q", want)
			}
		}
	})
}

// anyButDenied in a test's want accepts any status but 401 and 403.
const anyButDenied = -1

func deniedCounts(t *testing.T, g prometheus.Gatherer) map[[2]string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "tributary_http_denied_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var k [2]string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "endpoint":
					k[0] = l.GetValue()
				case "reason":
					k[1] = l.GetValue()
				}
			}
			out[k] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestRunRefusesATokensFileOthersCanRead(t *testing.T) {
	toks := tokensFile(t, 0o644)
	cfg := config.Default()
	cfg.Node.ID, cfg.Node.Region, cfg.Node.DataDir = "a", "eu", t.TempDir()
	cfg.Security.TokensFile = toks
	err := Run(context.Background(), cfg, Options{})
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "security.tokens_file: tokens file "+toks+": group or others may access it (mode 0644)") {
		t.Errorf("Run = %v, want a config error about the file's mode", err)
	}
}

func TestSecurityMode(t *testing.T) {
	var logs logSink
	log := slog.New(slog.NewTextHandler(&logs, nil))
	cfg := config.Default()
	if got := securityMode(cfg, nil, log); got != securityLoopback || logs.String() != "" {
		t.Errorf("on loopback: %q, logged %q", got, logs.String())
	}
	cfg.Security.Insecure = true
	if got := securityMode(cfg, nil, log); got != securityOff || !strings.Contains(logs.String(), "level=WARN msg=\"security.insecure is set") {
		t.Errorf("insecure: %q, logged %q", got, logs.String())
	}
}

// TestInsecureNodeSaysSo runs a node with security.insecure: it warns at
// start and /v1/status says "security": "off"; without tokens nothing is
// asked for.
func TestInsecureNodeSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs a node")
	}
	n := startNode(t, fmt.Sprintf("{id: a, region: eu, http_addr: '127.0.0.1:0', raft_addr: %q}", loopbackAddr(t)), "security: {insecure: true}\n")
	code, body := call(t, "GET", "http://"+n.http+"/v1/status", "", "")
	var st Status
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Security != securityOff {
		t.Errorf("GET /v1/status: %d, security %q, want 200 and %q", code, st.Security, securityOff)
	}
	if !strings.Contains(n.logs.String(), `level=WARN msg="security.insecure is set: the node runs without TLS`) {
		t.Errorf("no warning at start:\n%s", n.logs.String())
	}
	if code, body := call(t, "POST", "http://"+n.http+"/v1/policies/reload", "", ""); code != http.StatusConflict {
		t.Errorf("POST /v1/policies/reload without tokens configured: %d %s, want the handler's 409 (no policies folder)", code, body)
	}
}
