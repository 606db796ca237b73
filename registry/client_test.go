package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/riferrei/srclient"

	"github.com/tributary-dev/tributary/config"
)

// testRegistry is an embedded registry served over real HTTP. It counts and
// logs the requests it serves, and can be stopped and started again on the
// same address with its contents.
type testRegistry struct {
	t       *testing.T
	srv     *Server
	handler http.Handler
	hs      *httptest.Server
	url     string
	calls   atomic.Int64

	mu    sync.Mutex
	paths []string // "METHOD /path" of every request
}

// newTestRegistry starts a registry; wrap, when given, wraps its handler
// (middleware such as basic auth, or a fault injector).
func newTestRegistry(t *testing.T, wrap func(http.Handler) http.Handler) *testRegistry {
	t.Helper()
	srv, err := NewServer(ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := &testRegistry{t: t, srv: srv}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(h)
	}
	r.handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		r.mu.Lock()
		r.paths = append(r.paths, req.Method+" "+req.URL.EscapedPath())
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
	r.hs = httptest.NewServer(r.handler)
	r.url = r.hs.URL
	t.Cleanup(func() { r.hs.Close() })
	return r
}

// sr returns a srclient for setting the registry up, as users' producers do.
func (r *testRegistry) sr() *srclient.SchemaRegistryClient {
	return srclient.NewSchemaRegistryClient(r.url)
}

// client returns our Client for the registry.
func (r *testRegistry) client(t *testing.T) *Client {
	t.Helper()
	c, err := NewClient(&config.SchemaRegistry{URL: r.url}, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// reset zeroes the request count and log.
func (r *testRegistry) reset() {
	r.calls.Store(0)
	r.mu.Lock()
	r.paths = nil
	r.mu.Unlock()
}

func (r *testRegistry) requested(path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.paths {
		if p == path {
			return true
		}
	}
	return false
}

func (r *testRegistry) count(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, p := range r.paths {
		if strings.HasPrefix(p, prefix) {
			n++
		}
	}
	return n
}

func (r *testRegistry) stop() { r.hs.Close() }

// restart serves the same registry on the address it had before stop.
func (r *testRegistry) restart() {
	r.t.Helper()
	addr := r.hs.Listener.Addr().String()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond) // the port may linger for a moment after Close
	}
	if err != nil {
		r.t.Fatalf("restarting on %s: %v", addr, err)
	}
	hs := httptest.NewUnstartedServer(r.handler)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	r.hs = hs
	r.t.Cleanup(hs.Close)
}

func mustCreate(t *testing.T, c *srclient.SchemaRegistryClient, subject, schema string, typ srclient.SchemaType, refs ...srclient.Reference) int {
	t.Helper()
	s, err := c.CreateSchema(subject, schema, typ, refs...)
	if err != nil {
		t.Fatalf("registering under %s: %v", subject, err)
	}
	return s.ID()
}

func TestClientReadsAndRegisters(t *testing.T) {
	reg := newTestRegistry(t, nil)
	c := reg.client(t)
	ctx := context.Background()
	id := mustCreate(t, reg.sr(), "orders-value", v1, srclient.Avro)

	s, err := c.SchemaByID(ctx, id)
	if err != nil || s.ID != id || s.Type != Avro || s.Text != v1 {
		t.Fatalf("SchemaByID = %+v, %v", s, err)
	}
	t.Run("ids are cached", func(t *testing.T) {
		reg.reset()
		if _, err := c.SchemaByID(ctx, id); err != nil || reg.calls.Load() != 0 {
			t.Fatalf("err %v, %d calls", err, reg.calls.Load())
		}
	})
	t.Run("an unknown id is ErrSchemaNotFound", func(t *testing.T) {
		_, err := c.SchemaByID(ctx, 999)
		if !errors.Is(err, ErrSchemaNotFound) || IsRetryable(err) {
			t.Fatalf("err = %v", err)
		}
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != CodeSchemaNotFound || ae.Status != 404 {
			t.Fatalf("err = %v, want the 40403 answer kept", err)
		}
	})
	t.Run("lookup finds the version registration does not report", func(t *testing.T) {
		id2, err := c.Register(ctx, "orders-value", &Schema{Type: Avro, Text: v2})
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Lookup(ctx, "orders-value", &Schema{Type: Avro, Text: v2})
		if err != nil || got.ID != id2 || got.Version != 2 || got.Subject != "orders-value" {
			t.Fatalf("Lookup = %+v, %v", got, err)
		}
		_, err = c.Lookup(ctx, "orders-value", &Schema{Type: Avro, Text: v3})
		if !errors.Is(err, ErrSchemaNotFound) {
			t.Fatalf("unregistered: %v", err)
		}
		_, err = c.Lookup(ctx, "nobody-value", &Schema{Type: Avro, Text: v1})
		if !errors.Is(err, ErrSchemaNotFound) {
			t.Fatalf("unknown subject: %v", err)
		}
	})
	t.Run("a soft-deleted version still reads", func(t *testing.T) {
		if err := reg.sr().DeleteSubjectByVersion("orders-value", 1, false); err != nil {
			t.Fatal(err)
		}
		got, err := c.SchemaByVersion(ctx, "orders-value", 1)
		if err != nil || got.ID != id || got.Version != 1 || got.Subject != "orders-value" {
			t.Fatalf("SchemaByVersion = %+v, %v", got, err)
		}
		if _, err := c.SchemaByVersion(ctx, "orders-value", 7); !errors.Is(err, ErrSchemaNotFound) {
			t.Fatalf("unknown version: %v", err)
		}
		if _, err := c.SchemaByVersion(ctx, "nobody", 1); !errors.Is(err, ErrSchemaNotFound) {
			t.Fatalf("unknown subject: %v", err)
		}
	})
	t.Run("an incompatible registration is an IncompatibleError", func(t *testing.T) {
		bad := rec("Order", field("id", `"long"`))
		_, err := c.Register(ctx, "orders-value", &Schema{Type: Avro, Text: bad})
		var ie *IncompatibleError
		if !errors.As(err, &ie) || ie.Subject != "orders-value" || IsRetryable(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("guids resolve", func(t *testing.T) {
		var v schemaJSON
		call(t, "GET", reg.url+"/subjects/orders-value/versions/2", "", &v)
		g, err := ParseGUID(v.GUID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.SchemaByGUID(ctx, g)
		if err != nil || got.ID != v.ID || got.Text != v2 {
			t.Fatalf("SchemaByGUID = %+v, %v", got, err)
		}
		if _, err := c.SchemaByGUID(ctx, testGUID); !errors.Is(err, ErrSchemaNotFound) {
			t.Fatalf("unknown guid: %v", err)
		}
	})
}

func TestClientCompatibilityChecksEveryRequiredVersion(t *testing.T) {
	reg := newTestRegistry(t, nil)
	c := reg.client(t)
	ctx := context.Background()
	sr := reg.sr()
	// t3 reads t2's data (b is there) but not t1's (b has no default).
	t1 := rec("T", field("a", `"string"`))
	t2 := rec("T", field("a", `"string"`), field("b", `"int"`, `"default":0`))
	t3 := rec("T", field("a", `"string"`), field("b", `"int"`))
	mustCreate(t, sr, "t-value", t1, srclient.Avro)
	mustCreate(t, sr, "t-value", t2, srclient.Avro)
	if _, err := sr.ChangeSubjectCompatibilityLevel("t-value", srclient.BackwardTransitive); err != nil {
		t.Fatal(err)
	}
	level, err := c.Compatibility(ctx, "t-value")
	if err != nil || level != BackwardTransitive {
		t.Fatalf("level %q, %v", level, err)
	}
	if level, err := c.Compatibility(ctx, "other"); err != nil || level != Backward {
		t.Fatalf("global level %q, %v", level, err)
	}
	// srclient's check compares with one version and misses it.
	if ok, err := sr.IsSchemaCompatible("t-value", t3, "latest", srclient.Avro); err != nil || !ok {
		t.Fatalf("srclient IsSchemaCompatible = %v, %v; the quirk is gone, update doc.go", ok, err)
	}
	err = c.CheckCompatibility(ctx, "t-value", &Schema{Type: Avro, Text: t3})
	var ie *IncompatibleError
	if !errors.As(err, &ie) || !strings.Contains(strings.Join(ie.Messages, " "), "{oldSchemaVersion: 1}") {
		t.Fatalf("err = %v, want an IncompatibleError naming version 1", err)
	}
	if err := c.CheckCompatibility(ctx, "t-value", &Schema{Type: Avro, Text: t2}); err != nil {
		t.Fatalf("a registered schema: %v", err)
	}
	if err := c.CheckCompatibility(ctx, "new-subject", &Schema{Type: Avro, Text: t3}); err != nil {
		t.Fatalf("a subject without versions: %v", err)
	}
	if !reg.requested("POST /compatibility/subjects/t-value/versions") {
		t.Fatal("the all-versions endpoint was not used")
	}
}

func TestClientCacheIsBounded(t *testing.T) {
	reg := newTestRegistry(t, nil)
	c, err := NewClient(&config.SchemaRegistry{URL: reg.url}, ClientOptions{CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sr := reg.sr()
	for i := 0; i < 5; i++ {
		id := mustCreate(t, sr, fmt.Sprintf("s%d-value", i), rec(fmt.Sprintf("R%d", i), field("a", `"string"`)), srclient.Avro)
		if _, err := c.SchemaByID(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.byID.len(); n != 2 {
		t.Fatalf("cache holds %d schemas, want 2", n)
	}
}

func TestClientOutagesAreRetryable(t *testing.T) {
	ctx := context.Background()
	failing := func(status int, contentType, body string) func(http.Handler) http.Handler {
		return func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", contentType)
				w.WriteHeader(status)
				io.WriteString(w, body)
			})
		}
	}
	cases := []struct {
		name      string
		wrap      func(http.Handler) http.Handler
		retryable bool
		code      int
	}{
		{"a proxy's 502 page", failing(502, "text/html", "<html><body>Bad Gateway</body></html>"), true, 502},
		{"a plain 503", failing(503, "text/plain", "upstream connect error"), true, 503},
		{"the registry's store error", failing(500, ContentType, `{"error_code":50001,"message":"Error in the backend data store"}`), true, 50001},
		{"throttling", failing(429, "text/plain", "slow down"), true, 429},
		{"a proxy refusing credentials", failing(401, "text/plain", "Unauthorized"), false, 401},
		{"forbidden in JSON", failing(403, ContentType, `{"error_code":40301,"message":"User cannot access the resource."}`), false, 40301},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t, tc.wrap)
			c := reg.client(t)
			for name, call := range map[string]func() error{
				"srclient call": func() error { _, err := c.SchemaByID(ctx, 1); return err },
				"own call":      func() error { return c.CheckCompatibility(ctx, "s", &Schema{Type: Avro, Text: v1}) },
			} {
				err := call()
				if err == nil || IsRetryable(err) != tc.retryable || errors.Is(err, ErrSchemaNotFound) {
					t.Fatalf("%s: err = %v, retryable %v", name, err, IsRetryable(err))
				}
				var ae *APIError
				if !errors.As(err, &ae) || ae.Code != tc.code {
					t.Fatalf("%s: err = %v, want code %d", name, err, tc.code)
				}
			}
		})
	}
	t.Run("a stopped registry", func(t *testing.T) {
		reg := newTestRegistry(t, nil)
		c := reg.client(t)
		reg.stop()
		_, err := c.SchemaByID(ctx, 1)
		if !IsRetryable(err) {
			t.Fatalf("err = %v, not retryable", err)
		}
	})
	t.Run("a registry slower than the timeout", func(t *testing.T) {
		release := make(chan struct{})
		reg := newTestRegistry(t, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				<-release
				h.ServeHTTP(w, r)
			})
		})
		defer close(release)
		c, err := NewClient(&config.SchemaRegistry{URL: reg.url}, ClientOptions{Timeout: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.SchemaByID(ctx, 1)
		if !IsRetryable(err) {
			t.Fatalf("err = %v, not retryable", err)
		}
	})
}

func TestIsRetryable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"record error", &RecordError{Reason: ReasonUnknownSchemaID}, false},
		{"not found", fmt.Errorf("x: %w", ErrSchemaNotFound), false},
		{"incompatible", &IncompatibleError{Subject: "s"}, false},
		{"conflict", &APIError{Status: 409, Code: 409}, false},
		{"invalid schema", &APIError{Status: 422, Code: CodeInvalidSchema}, false},
		{"store error", &APIError{Status: 500, Code: CodeStoreError}, true},
		{"srclient's 50002", srclient.Error{Code: 50002}, true},
		{"srclient's 40403", srclient.Error{Code: 40403}, false},
		{"canceled", context.Canceled, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), true},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"tls alert", &net.OpError{Op: "remote error", Err: errors.New("tls: certificate required")}, false},
		{"unknown authority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, false},
		{"eof", io.ErrUnexpectedEOF, true},
		{"other", errors.New("something"), false},
	}
	for _, tc := range cases {
		if got := IsRetryable(tc.err); got != tc.want {
			t.Errorf("IsRetryable(%s: %v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestNewClientValidates(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  *config.SchemaRegistry
		opts ClientOptions
		want string
	}{
		{"no config", nil, ClientOptions{}, "no schema_registry configured"},
		{"another scheme", &config.SchemaRegistry{URL: "ftp://u:pw@host"}, ClientOptions{}, `want an http:// or https:// URL, got "ftp://u:xxxxx@host"`},
		{"no host", &config.SchemaRegistry{URL: "http://"}, ClientOptions{}, "want an http:// or https:// URL"},
		{"a missing CA file", &config.SchemaRegistry{URL: "https://h", CAFile: filepath.Join(dir, "nope.pem")}, ClientOptions{}, "schema_registry.ca_file"},
		{"a CA file without PEM", &config.SchemaRegistry{URL: "https://h", CAFile: notPEM}, ClientOptions{}, "no PEM certificate found"},
		{"a cert without key", &config.SchemaRegistry{URL: "https://h", CertFile: notPEM}, ClientOptions{}, "cert_file and key_file must be given together"},
		{"a negative timeout", &config.SchemaRegistry{URL: "http://h"}, ClientOptions{Timeout: -1}, "timeout -1ns is negative"},
		{"a negative cache", &config.SchemaRegistry{URL: "http://h"}, ClientOptions{CacheSize: -1}, "cache size -1 is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.cfg, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// basicAuth is the middleware a registry behind an authenticating proxy has:
// a plain-text 401 without the right credentials.
func basicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
				http.Error(w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
}

func TestClientBasicAuth(t *testing.T) {
	reg := newTestRegistry(t, basicAuth("sr-user", "s3cret"))
	ctx := context.Background()
	sr := reg.sr()
	sr.SetCredentials("sr-user", "s3cret")
	id := mustCreate(t, sr, "orders-value", v1, srclient.Avro)

	c, err := NewClient(&config.SchemaRegistry{URL: reg.url, Username: "sr-user", Password: "s3cret"}, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.SchemaByID(ctx, id); err != nil {
		t.Fatalf("srclient call with credentials: %v", err)
	}
	if err := c.CheckCompatibility(ctx, "orders-value", &Schema{Type: Avro, Text: v2}); err != nil {
		t.Fatalf("own call with credentials: %v", err)
	}

	wrong, err := NewClient(&config.SchemaRegistry{URL: reg.url, Username: "sr-user", Password: "guess"}, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	_, err = wrong.SchemaByID(ctx, id)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 401 || IsRetryable(err) || errors.Is(err, ErrSchemaNotFound) {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "guess") {
		t.Fatalf("the error shows the password: %v", err)
	}
}

// writePEM writes one PEM block to a new file in dir.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// clientCert makes a self-signed CA and a client certificate it signed, and
// writes the certificate and key files.
func clientCert(t *testing.T, dir string) (ca *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err = x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "tributary"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return ca, writePEM(t, dir, "client.pem", "CERTIFICATE", der), writePEM(t, dir, "client-key.pem", "PRIVATE KEY", keyDER)
}

func TestClientTLS(t *testing.T) {
	srv, err := NewServer(ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx := context.Background()

	t.Run("a self-signed server verified with ca_file", func(t *testing.T) {
		hs := httptest.NewTLSServer(srv)
		defer hs.Close()
		caFile := writePEM(t, dir, "server-ca.pem", "CERTIFICATE", hs.Certificate().Raw)
		c, err := NewClient(&config.SchemaRegistry{URL: hs.URL, CAFile: caFile}, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Register(ctx, "orders-value", &Schema{Type: Avro, Text: v1}); err != nil {
			t.Fatalf("srclient call over TLS: %v", err)
		}
		if err := c.CheckCompatibility(ctx, "orders-value", &Schema{Type: Avro, Text: v2}); err != nil {
			t.Fatalf("own call over TLS: %v", err)
		}

		untrusting, err := NewClient(&config.SchemaRegistry{URL: hs.URL}, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer untrusting.Close()
		_, err = untrusting.SchemaByID(ctx, 1)
		if err == nil || IsRetryable(err) {
			t.Fatalf("without ca_file: err = %v, retryable %v", err, IsRetryable(err))
		}
	})

	t.Run("a client certificate from cert_file and key_file", func(t *testing.T) {
		clientCA, certFile, keyFile := clientCert(t, dir)
		pool := x509.NewCertPool()
		pool.AddCert(clientCA)
		hs := httptest.NewUnstartedServer(srv)
		hs.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
		hs.StartTLS()
		defer hs.Close()
		caFile := writePEM(t, dir, "server-ca2.pem", "CERTIFICATE", hs.Certificate().Raw)

		c, err := NewClient(&config.SchemaRegistry{URL: hs.URL, CAFile: caFile, CertFile: certFile, KeyFile: keyFile}, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Compatibility(ctx, "orders-value"); err != nil {
			t.Fatalf("with a client certificate: %v", err)
		}

		anonymous, err := NewClient(&config.SchemaRegistry{URL: hs.URL, CAFile: caFile}, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer anonymous.Close()
		_, err = anonymous.Compatibility(ctx, "orders-value")
		if err == nil || IsRetryable(err) {
			t.Fatalf("without a client certificate: err = %v, retryable %v", err, IsRetryable(err))
		}
	})
}

func TestCacheEvictsUnreferencedFirst(t *testing.T) {
	c := newCache[string, int](2)
	c.put("a", 1)
	c.put("b", 2)
	if v, ok := c.get("a"); !ok || v != 1 {
		t.Fatalf("a = %v, %v", v, ok)
	}
	c.put("c", 3) // b was not used since it was added
	if _, ok := c.get("b"); ok {
		t.Fatal("b survived, a recently used entry was evicted instead")
	}
	for _, k := range []string{"a", "c"} {
		if _, ok := c.get(k); !ok {
			t.Fatalf("%s evicted", k)
		}
	}
	c.put("c", 4)
	if v, _ := c.get("c"); v != 4 || c.len() != 2 {
		t.Fatalf("replace: c = %d, len %d", v, c.len())
	}
}
