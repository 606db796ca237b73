package replicator

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is a node's HTTP API: /healthz, /readyz, /metrics, /v1/status, plus
// whatever other components add with Handle before Run.
type Server struct {
	addr   string
	mux    *http.ServeMux
	log    *slog.Logger
	ready  func() error
	status func() any
	// statusHandler, when set by HandleStatus, answers GET /v1/status instead.
	statusHandler http.Handler
	ln            net.Listener
	tls           *tls.Config
	timeouts      timeouts
	redact        func(string) string
}

// timeouts bound what one client can hold of the server: a connection that
// sends its headers slowly (slowloris), a body that never ends, an answer it
// does not read, an idle keep-alive connection. A handler that needs longer to
// answer (offsets translate) extends its own write deadline with
// http.ResponseController.
type timeouts struct {
	readHeader, read, write, idle time.Duration
}

// defaultTimeouts: write covers the slowest ordinary answer (a policy reload
// waits up to 10s for its bundle to commit, a forwarded cluster request 10s,
// the cluster status fan-out a few seconds).
func defaultTimeouts() timeouts {
	return timeouts{readHeader: 10 * time.Second, read: 30 * time.Second, write: 60 * time.Second, idle: 2 * time.Minute}
}

// NewServer listens on addr at once (so a bad address fails at start-up and tests
// can read the bound port from Addr). status returns the JSON body of /v1/status;
// ready returns nil when the node is ready.
func NewServer(addr string, gatherer prometheus.Gatherer, status func() any, ready func() error, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on node.http_addr %s: %w", addr, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{addr: addr, mux: http.NewServeMux(), log: log, ready: ready, status: status, ln: ln, timeouts: defaultTimeouts()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)}))
	s.mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		if s.statusHandler != nil {
			s.statusHandler.ServeHTTP(w, r)
			return
		}
		WriteJSON(w, http.StatusOK, s.status())
	})
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// HandleStatus makes h answer GET /v1/status in place of the status function
// given to NewServer, for a caller that reads the request (a query parameter
// such as ?scope=cluster); the mux cannot register that pattern twice. Call
// before Run.
func (s *Server) HandleStatus(h http.Handler) { s.statusHandler = h }

// UseTLS makes Run serve HTTPS with c (security.tls); call before Run. The
// listener stays the one NewServer bound, so Addr does not change.
func (s *Server) UseTLS(c *tls.Config) { s.tls = c }

// Redact makes every answer's body pass through f before it is sent: the
// daemon removes secrets from error texts that quote them (librdkafka's).
// Call before Run.
func (s *Server) Redact(f func(string) string) { s.redact = f }

// redacting buffers an answer so that its body can be redacted as a whole.
type redacting struct {
	http.ResponseWriter
	code int
	buf  bytes.Buffer
}

func (w *redacting) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *redacting) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.buf.Write(p)
}

// Unwrap lets http.ResponseController reach the connection (write deadlines).
func (w *redacting) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func redactAnswers(h http.Handler, f func(string) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &redacting{ResponseWriter: w}
		h.ServeHTTP(rw, r)
		if rw.code == 0 {
			rw.code = http.StatusOK
		}
		body := rw.buf.String()
		if w.Header().Get("Content-Encoding") == "" { // not compressed (/metrics may gzip)
			body = f(body)
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rw.code)
		_, _ = io.WriteString(w, body)
	})
}

// Handle adds a route; call before Run.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Run serves until ctx is cancelled, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	var h http.Handler = s.mux
	if s.redact != nil {
		h = redactAnswers(h, s.redact)
	}
	srv := &http.Server{Handler: h, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = s.timeouts.readHeader, s.timeouts.read, s.timeouts.write, s.timeouts.idle
	errc := make(chan error, 1)
	ln := s.ln
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving HTTP on %s: %w", s.addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// WriteJSON writes v as indented JSON with the given status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
