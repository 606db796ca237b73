package replicator

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// silentBroker accepts connections and never answers, as a broker behind a
// black-holed link would; accepted reports each connection.
func silentBroker(t *testing.T) (addr string, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 64)
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String(), ch
}

func TestTranslateServesOneRequestAtATime(t *testing.T) {
	broker, accepted := silentBroker(t)
	srv := httptest.NewServer(TranslateHandler(mirrorConfig(t, broker, broker, "")))
	defer srv.Close()

	// The first translation hangs on the silent broker, holding the slot.
	ctx1, cancel1 := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx1, http.MethodGet, srv.URL+"?group=billing", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		first <- err
	}()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the first translation never reached the broker")
	}

	resp, err := http.Get(srv.URL + "?group=billing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a second concurrent request: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	cancel1()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("first request = %v, want cancelled", err)
	}
	// Once the first has gone, the slot is free again: a new request is
	// served (and hangs on the broker in turn) rather than refused.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"?group=billing", nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err != nil {
			break // served: it waits on the broker
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("after the first ended: %d, want the request served", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot is still taken 10s after the first request ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerTimeouts: a client that sends its headers slowly or keeps an idle
// connection open is disconnected by the server.
func TestServerTimeouts(t *testing.T) {
	srv, _ := startServer(t, func() any { return map[string]string{} }, func() error { return nil }, func(s *Server) {
		s.timeouts = timeouts{readHeader: 200 * time.Millisecond, read: time.Second, write: time.Second, idle: 300 * time.Millisecond}
	})
	closedWithin := func(t *testing.T, c net.Conn, d time.Duration) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(d))
		rd := bufio.NewReader(c)
		for {
			if _, err := rd.ReadByte(); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("the server kept the connection open for %v", d)
				}
				return
			}
		}
	}
	t.Run("slow headers", func(t *testing.T) {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")); err != nil {
			t.Fatal(err)
		}
		closedWithin(t, c, 5*time.Second)
	})
	t.Run("an idle keep-alive connection", func(t *testing.T) {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		closedWithin(t, c, 5*time.Second) // reads the answer, then EOF once idle
	})
}

// TestServerRedactsAnswers: a secret that made it into an answer (an error
// text quoting it) leaves the server redacted, with the answer's status.
func TestServerRedactsAnswers(t *testing.T) {
	srv, _ := startServer(t, func() any { return map[string]string{"error": "token refresh: bad config at: S3CRET-value"} },
		func() error { return errors.New("broker said S3CRET-value") }, func(s *Server) {
			s.Redact(func(s string) string { return strings.ReplaceAll(s, "S3CRET-value", "<secret>") })
		})
	for path, wantCode := range map[string]int{"/v1/status": 200, "/readyz": 503} {
		code, body, _ := get(t, "http://"+srv.Addr()+path)
		if code != wantCode || strings.Contains(body, "S3CRET") || !strings.Contains(body, "<secret>") {
			t.Errorf("GET %s = %d %s, want %d redacted", path, code, body, wantCode)
		}
	}
}
