package auth

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// syncBuffer is a log sink the server's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const (
	readTok    = "read-0123456789abcdef"
	operateTok = "operate-0123456789abcdef"
	adminTok   = "admin-0123456789abcdef"
)

func testTokens(t *testing.T) *Tokens {
	t.Helper()
	toks, err := Parse("tokens.yaml", []byte(
		"- {name: grafana, role: read, sha256: "+sum(readTok)+"}\n"+
			"- {name: oncall, role: operate, sha256: "+sum(operateTok)+"}\n"+
			"- {name: platform, role: admin, sha256: "+sum(adminTok)+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// guarded serves one route per endpoint class behind a Guard, on a real
// server: it answers 200 "reached" when the request got through.
func guarded(t *testing.T, toks *Tokens, node NodeCheck) (*httptest.Server, *prometheus.Registry, *syncBuffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	g, err := New(toks, node, Deps{Logger: slog.New(slog.NewTextHandler(logs, nil)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	reached := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("reached")) })
	mux := http.NewServeMux()
	mux.Handle("GET /read", g.Require(Read, EndpointStatus, reached))
	mux.Handle("POST /operate", g.Require(Operate, EndpointPoliciesReload, reached))
	mux.Handle("POST /admin", g.RequireOrNode(Admin, EndpointClusterJoin, reached))
	mux.Handle("POST /node", g.RequireNode(EndpointClusterPolicy, reached))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, reg, logs
}

func do(t *testing.T, method, url string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, resp.Header, b.String()
}

func TestRolesByEndpointClass(t *testing.T) {
	srv, reg, logs := guarded(t, testTokens(t), Loopback)
	routes := []struct {
		method, path, endpoint string
		need                   Role // 0: nodes only
	}{
		{"GET", "/read", EndpointStatus, Read},
		{"POST", "/operate", EndpointPoliciesReload, Operate},
		{"POST", "/admin", EndpointClusterJoin, Admin},
		{"POST", "/node", EndpointClusterPolicy, 0},
	}
	creds := []struct {
		name   string
		header map[string]string
		role   Role
		reason string // why it is refused when it is, for a route needing a role
	}{
		{"no token", nil, 0, ReasonMissing},
		{"an unknown token", map[string]string{"Authorization": "Bearer not-a-token"}, 0, ReasonInvalid},
		{"a Basic header", map[string]string{"Authorization": "Basic " + adminTok}, 0, ReasonInvalid},
		{"a bare token", map[string]string{"Authorization": adminTok}, 0, ReasonInvalid},
		{"a read token", map[string]string{"Authorization": "Bearer " + readTok}, Read, ReasonForbidden},
		{"an operate token", map[string]string{"Authorization": "bearer " + operateTok}, Operate, ReasonForbidden},
		{"an admin token", map[string]string{"Authorization": "Bearer " + adminTok}, Admin, ReasonForbidden},
	}
	want := map[[2]string]float64{}
	for _, rt := range routes {
		for _, c := range creds {
			t.Run(c.name+" on "+rt.path, func(t *testing.T) {
				code, hdr, body := do(t, rt.method, srv.URL+rt.path, c.header)
				var wantCode int
				var reason string
				switch {
				case rt.need != 0 && c.role >= rt.need:
					wantCode = http.StatusOK
				case rt.need == 0 || c.reason == ReasonForbidden:
					// Nothing but a node opens a node-only route, so no
					// token is asked for.
					wantCode, reason = http.StatusForbidden, ReasonForbidden
				default:
					wantCode, reason = http.StatusUnauthorized, c.reason
				}
				if code != wantCode {
					t.Fatalf("status %d (%s), want %d", code, body, wantCode)
				}
				if wantCode == http.StatusOK && body != "reached" {
					t.Errorf("body %q", body)
				}
				if wantCode == http.StatusUnauthorized && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without WWW-Authenticate: Bearer: %v", hdr)
				}
				if wantCode != http.StatusOK && strings.Contains(body, "reached") {
					t.Errorf("a refused request reached the handler")
				}
				if reason != "" {
					want[[2]string{rt.endpoint, reason}]++
				}
			})
		}
	}
	for _, rt := range routes {
		for _, reason := range []string{ReasonMissing, ReasonInvalid, ReasonForbidden} {
			got := denied(t, reg, rt.endpoint, reason)
			if got != want[[2]string{rt.endpoint, reason}] {
				t.Errorf("tributary_http_denied_total{endpoint=%q,reason=%q} = %v, want %v", rt.endpoint, reason, got, want[[2]string{rt.endpoint, reason}])
			}
		}
	}
	out := logs.String()
	for _, secret := range []string{readTok, operateTok, adminTok, "not-a-token", sum(readTok), sum(adminTok)} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows the token %q:\n%s", secret, out)
		}
	}
	for _, line := range []string{
		`msg="http request denied" endpoint=policies_reload method=POST reason=forbidden why="role read may not call this endpoint, it needs operate"`,
		`msg="http request denied" endpoint=cluster_policy method=POST reason=forbidden why="only nodes may call this endpoint, with a node certificate; a token is never enough"`,
		`msg="http request granted" endpoint=cluster_join method=POST token=platform role=admin`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("the log lacks %q:\n%s", line, out)
		}
	}
	if !strings.Contains(out, "token=grafana") || !strings.Contains(out, "token=oncall") {
		t.Errorf("the log does not name the tokens refused:\n%s", out)
	}
}

// denied reads tributary_http_denied_total{endpoint,reason} from reg.
func denied(t *testing.T, reg *prometheus.Registry, endpoint, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "tributary_http_denied_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == endpoint && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series tributary_http_denied_total{endpoint=%q,reason=%q}", endpoint, reason)
	return 0
}

func TestNodes(t *testing.T) {
	t.Run("a node on loopback reaches node routes and routes open to nodes, without a token", func(t *testing.T) {
		srv, _, _ := guarded(t, testTokens(t), Loopback)
		node := map[string]string{NodeHeader: "eu-2"}
		for _, path := range []string{"/node", "/admin"} {
			if code, _, body := do(t, "POST", srv.URL+path, node); code != http.StatusOK {
				t.Errorf("POST %s as a node: %d %s", path, code, body)
			}
		}
		if code, _, _ := do(t, "POST", srv.URL+"/operate", node); code != http.StatusForbidden {
			t.Errorf("POST /operate as a node: %d, want 403: nodes never reload policies", code)
		}
		for _, h := range []string{"X-Forwarded-For", "Forwarded"} {
			proxied := map[string]string{NodeHeader: "eu-2", h: "for=203.0.113.9"}
			if code, _, _ := do(t, "POST", srv.URL+"/node", proxied); code != http.StatusForbidden {
				t.Errorf("POST /node as a node through a proxy (%s): %d, want 403", h, code)
			}
		}
	})
	t.Run("a request from the network naming itself a node is refused", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		g, err := New(testTokens(t), Loopback, Deps{Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		reached := false
		h := g.RequireNode(EndpointClusterPolicy, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
		for _, remote := range []string{"10.0.0.7:41000", "[2001:db8::1]:41000", "garbage"} {
			r := httptest.NewRequest("POST", "/v1/cluster/policy", nil)
			r.RemoteAddr = remote
			r.Header.Set(NodeHeader, "eu-1")
			r.Header.Set("Authorization", "Bearer "+adminTok) // a token does not help
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden || reached {
				t.Errorf("from %s: %d, reached %v; want 403", remote, w.Code, reached)
			}
		}
		if got := denied(t, reg, EndpointClusterPolicy, ReasonForbidden); got != 3 {
			t.Errorf("forbidden count = %v, want 3", got)
		}
	})
	t.Run("without a node check no request is a node's", func(t *testing.T) {
		srv, _, _ := guarded(t, testTokens(t), nil)
		if code, _, _ := do(t, "POST", srv.URL+"/node", map[string]string{NodeHeader: "eu-2"}); code != http.StatusForbidden {
			t.Errorf("POST /node with only the header: %d, want 403", code)
		}
		if code, _, _ := do(t, "POST", srv.URL+"/admin", map[string]string{NodeHeader: "eu-2"}); code != http.StatusUnauthorized {
			t.Errorf("POST /admin with only the header: %d, want 401 (a token is needed)", code)
		}
	})
}

func TestWithoutTokens(t *testing.T) {
	t.Run("with neither tokens nor a node check nothing is checked", func(t *testing.T) {
		srv, reg, _ := guarded(t, nil, nil)
		for _, path := range []string{"/operate", "/admin", "/node"} {
			if code, _, body := do(t, "POST", srv.URL+path, nil); code != http.StatusOK || body != "reached" {
				t.Errorf("POST %s: %d %s", path, code, body)
			}
		}
		if n, err := testutil.GatherAndCount(reg, "tributary_http_denied_total"); err != nil || n != 0 {
			t.Errorf("denied series without tokens: %d, %v; want none", n, err)
		}
	})
	t.Run("with a node check only, node-only routes still need a node", func(t *testing.T) {
		srv, _, _ := guarded(t, nil, Loopback)
		for _, path := range []string{"/operate", "/admin"} {
			if code, _, body := do(t, "POST", srv.URL+path, nil); code != http.StatusOK || body != "reached" {
				t.Errorf("POST %s: %d %s, want open routes without tokens", path, code, body)
			}
		}
		if code, _, _ := do(t, "POST", srv.URL+"/node", map[string]string{"Authorization": "Bearer " + adminTok}); code != http.StatusForbidden {
			t.Errorf("POST /node without a node claim: %d, want 403", code)
		}
		if code, _, _ := do(t, "POST", srv.URL+"/node", map[string]string{NodeHeader: "eu-2"}); code != http.StatusOK {
			t.Errorf("POST /node as a node: %d, want 200", code)
		}
	})
}

func TestUnknownEndpointLabelPanics(t *testing.T) {
	g, err := New(nil, nil, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("an endpoint label outside the fixed set was accepted")
		}
	}()
	g.Require(Read, "/v1/status?x=1", http.NotFoundHandler())
}

func TestNodeTransportMakesANode(t *testing.T) {
	srv, _, _ := guarded(t, testTokens(t), Loopback)
	client := &http.Client{Transport: NodeTransport(nil, "eu-2")}
	req, _ := http.NewRequest("POST", srv.URL+"/node", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST /node through NodeTransport: %d, want 200", resp.StatusCode)
	}
	if req.Header.Get(NodeHeader) != "" {
		t.Error("NodeTransport changed the caller's request")
	}
}
