package replicator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/replicator/metrics"
)

// startServer runs a Server on a free loopback port until the test ends and
// checks that Run returns nil on cancellation.
func startServer(t *testing.T, status func() any, ready func() error, setup ...func(*Server)) (*Server, *metrics.Set) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	srv, err := NewServer("127.0.0.1:0", reg, status, ready, nil)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	for _, f := range setup {
		f(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run after cancel = %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return within 5s of cancel")
		}
	})
	return srv, m
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, string(body), resp.Header
}

func TestServer(t *testing.T) {
	var notReady atomic.Value // string; "" when ready
	notReady.Store("")
	status := func() any {
		return map[string]any{"node": "n1", "tasks": []TaskStatus{{ID: "eu/0", Pipeline: "eu", State: metrics.TaskRunning, Lag: 3}}}
	}
	ready := func() error {
		if s := notReady.Load().(string); s != "" {
			return errors.New(s)
		}
		return nil
	}
	srv, m := startServer(t, status, ready, func(s *Server) {
		s.Handle("GET /extra", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("extra")) }))
	})
	base := "http://" + srv.Addr()
	if strings.HasSuffix(srv.Addr(), ":0") {
		t.Fatalf("Addr() = %s, want the bound port", srv.Addr())
	}
	m.Records.WithLabelValues("eu", metrics.Replicated).Add(5)
	m.Lag.WithLabelValues("eu", "orders", "0").Set(7)

	t.Run("healthz answers ok", func(t *testing.T) {
		code, body, _ := get(t, base+"/healthz")
		if code != http.StatusOK || body != "ok\n" {
			t.Errorf("GET /healthz = %d %q, want 200 \"ok\\n\"", code, body)
		}
	})

	t.Run("readyz answers 200 when ready", func(t *testing.T) {
		code, body, _ := get(t, base+"/readyz")
		if code != http.StatusOK || body != "ready\n" {
			t.Errorf("GET /readyz = %d %q, want 200 \"ready\\n\"", code, body)
		}
	})

	t.Run("readyz answers 503 with the reason when not ready", func(t *testing.T) {
		notReady.Store("tasks not running: eu/1 (starting)")
		defer notReady.Store("")
		code, body, _ := get(t, base+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready: tasks not running: eu/1 (starting)") {
			t.Errorf("GET /readyz = %d %q, want 503 with the reason", code, body)
		}
	})

	t.Run("metrics serves the registry in the text format", func(t *testing.T) {
		code, body, _ := get(t, base+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("GET /metrics = %d", code)
		}
		for _, want := range []string{
			`tributary_records_total{outcome="replicated",pipeline="eu"} 5`,
			`tributary_replication_lag_records{partition="0",pipeline="eu",topic="orders"} 7`,
			`tributary_tasks{state="running"} 0`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("GET /metrics lacks %q:\n%s", want, body)
			}
		}
	})

	t.Run("the status endpoint serves the status as JSON", func(t *testing.T) {
		code, body, hdr := get(t, base+"/v1/status")
		if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /v1/status = %d, Content-Type %q", code, hdr.Get("Content-Type"))
		}
		var got struct {
			Node  string       `json:"node"`
			Tasks []TaskStatus `json:"tasks"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("GET /v1/status: %v\n%s", err, body)
		}
		if got.Node != "n1" || len(got.Tasks) != 1 || got.Tasks[0].ID != "eu/0" || got.Tasks[0].Lag != 3 || got.Tasks[0].State != "running" {
			t.Errorf("GET /v1/status = %+v", got)
		}
		if !strings.Contains(body, `"lag_records": 3`) {
			t.Errorf("GET /v1/status does not name the lag lag_records:\n%s", body)
		}
	})

	t.Run("an unknown path is 404", func(t *testing.T) {
		if code, _, _ := get(t, base+"/nope"); code != http.StatusNotFound {
			t.Errorf("GET /nope = %d, want 404", code)
		}
	})

	t.Run("routes added with Handle before Run are served", func(t *testing.T) {
		if code, body, _ := get(t, base+"/extra"); code != http.StatusOK || body != "extra" {
			t.Errorf("GET /extra = %d %q, want 200 \"extra\"", code, body)
		}
	})

	t.Run("other methods are refused", func(t *testing.T) {
		resp, err := http.Post(base+"/healthz", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /healthz = %d, want 405", resp.StatusCode)
		}
	})
}

func TestNewServerFailsOnABusyAddress(t *testing.T) {
	srv, _ := startServer(t, func() any { return nil }, func() error { return nil })
	_, err := NewServer(srv.Addr(), prometheus.NewRegistry(), nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "node.http_addr "+srv.Addr()) {
		t.Errorf("NewServer on a busy address = %v, want an error naming node.http_addr", err)
	}
}
