package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/riferrei/srclient"

	"github.com/tributary-dev/tributary/config"
)

// Client defaults.
const (
	// DefaultClientTimeout bounds one HTTP request to a registry. Registry
	// calls are small; a registry that takes longer is treated as down
	// (the error is retryable) rather than stalling a task.
	DefaultClientTimeout = 10 * time.Second
	// DefaultCacheSize bounds the schemas a Client caches by id and the
	// translations a Translator caches. 10,000 schemas of a few KB each stay
	// well below 100 MB.
	DefaultCacheSize = 10000
)

// maxErrorBody bounds how much of an error response is read and kept.
const maxErrorBody = 64 << 10

// ClientOptions tunes a Client. The zero value gives the defaults.
type ClientOptions struct {
	// Timeout bounds each HTTP request. Default DefaultClientTimeout.
	Timeout time.Duration
	// CacheSize bounds the number of schemas cached by id (CLOCK eviction,
	// an LRU approximation). Default DefaultCacheSize.
	CacheSize int
}

// Client talks to one Confluent-compatible schema registry (one per Kafka
// cluster). It is built on github.com/riferrei/srclient v0.7.3 for the calls
// that library does right and adds small calls of its own for what it lacks;
// see doc.go for the quirks it works around. All methods are safe for
// concurrent use.
//
// Errors: ErrSchemaNotFound and ErrGUIDUnsupported (errors.Is),
// *IncompatibleError and *APIError (errors.As) for the registry's answers;
// IsRetryable tells outages (network, timeouts, 5xx, 429) from the rest.
//
// srclient v0.7.3 takes no context: for the calls made through it ctx is
// checked before the request, which is then bounded by ClientOptions.Timeout
// only. The calls of our own honour ctx throughout.
type Client struct {
	url  string // redacted, for errors
	base string // as configured, without a trailing slash
	sr   *srclient.SchemaRegistryClient
	hc   *http.Client
	byID *cache[int, *Schema]
}

// Schema is a schema as a registry stores it. Schemas returned by a Client
// may be shared with its cache: do not modify them.
type Schema struct {
	// ID is the registry's schema id (0 when the registry did not say).
	ID int
	// Subject and Version are set when the schema was read or looked up
	// under a subject.
	Subject string
	Version int
	// Type is the schema type (Avro when the registry omits it).
	Type SchemaType
	// Text is the schema document.
	Text string
	// References are the schemas this one refers to, by subject and version
	// in the same registry.
	References []Reference
}

// NewClient returns a client for the registry cfg describes: basic auth from
// Username/Password, TLS verified with CAFile (instead of the system roots)
// and a client certificate from CertFile/KeyFile.
func NewClient(cfg *config.SchemaRegistry, opts ClientOptions) (*Client, error) {
	if cfg == nil {
		return nil, errors.New("registry client: no schema_registry configured")
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultClientTimeout
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("registry client: timeout %v is negative", opts.Timeout)
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.CacheSize < 0 {
		return nil, fmt.Errorf("registry client: cache size %d is negative", opts.CacheSize)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, errors.New("registry client: schema_registry.url is not a valid URL") // the text may hold credentials
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("registry client: want an http:// or https:// URL, got %q", u.Redacted())
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("registry client %s: %w", u.Redacted(), err)
	}
	var tr *http.Transport
	if dt, ok := http.DefaultTransport.(*http.Transport); ok {
		tr = dt.Clone()
	} else {
		tr = &http.Transport{Proxy: http.ProxyFromEnvironment, IdleConnTimeout: 90 * time.Second}
	}
	tr.TLSClientConfig = tlsCfg
	tr.MaxIdleConnsPerHost = 16 // srclient's default request concurrency
	hc := &http.Client{
		Timeout: opts.Timeout,
		Transport: &roundTripper{
			base: tr, host: u.Host,
			user: cfg.Username, pass: string(cfg.Password),
		},
	}
	base := strings.TrimRight(cfg.URL, "/")
	sr := srclient.NewSchemaRegistryClient(base, srclient.WithClient(hc))
	// srclient's caches are unbounded maps, and its "subject-latest" entry
	// never expires; ours is bounded and keyed by immutable ids only.
	sr.CachingEnabled(false)
	return &Client{url: u.Redacted(), base: base, sr: sr, hc: hc, byID: newCache[int, *Schema](opts.CacheSize)}, nil
}

func tlsConfig(cfg *config.SchemaRegistry) (*tls.Config, error) {
	if cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("schema_registry.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("schema_registry.ca_file %s: no PEM certificate found", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("schema_registry.cert_file and key_file must be given together")
	}
	if cfg.CertFile != "" {
		key, err := readPrivateFile(cfg.KeyFile, "schema_registry.key_file")
		if err != nil {
			return nil, err
		}
		certPEM, err := os.ReadFile(cfg.CertFile)
		if err != nil {
			return nil, fmt.Errorf("schema_registry.cert_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, key)
		if err != nil {
			return nil, fmt.Errorf("schema_registry.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// roundTripper adds basic auth for requests to the registry's own host (not
// to hosts a redirect leads to) and makes every error response a Confluent
// error body, so that srclient (which reads {"error_code","message"} and
// otherwise returns only the status text) reports a proxy's "502 Bad
// Gateway" page as a code we can classify.
type roundTripper struct {
	base       http.RoundTripper
	host       string
	user, pass string
}

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt.user != "" && req.URL.Host == rt.host {
		req = req.Clone(req.Context())
		req.SetBasicAuth(rt.user, rt.pass)
	}
	resp, err := rt.base.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	var e APIError
	if rerr != nil || json.Unmarshal(b, &e) != nil || e.Code == 0 {
		e = APIError{Code: resp.StatusCode, Message: statusMessage(resp.StatusCode, b)}
		b, _ = json.Marshal(e)
		resp.Header.Set("Content-Type", ContentType)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// statusMessage describes a non-Confluent error response: the status and
// the start of a plain-text body (a proxy's page is no secret, but keep it
// short and on one line).
func statusMessage(status int, body []byte) string {
	msg := "HTTP " + strconv.Itoa(status) + " " + http.StatusText(status)
	text := strings.Join(strings.Fields(string(body)), " ")
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	if text != "" {
		msg += ": " + text
	}
	return msg
}

// URL returns the registry's URL with any password redacted.
func (c *Client) URL() string { return c.url }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// SchemaByID returns the schema with a registry id, from the cache when it
// was read before (ids never change their schema). ErrSchemaNotFound when the
// registry does not know the id.
func (c *Client) SchemaByID(ctx context.Context, id int) (*Schema, error) {
	if s, ok := c.byID.get(id); ok {
		return s, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	got, err := c.sr.GetSchema(id)
	if err != nil {
		return nil, c.fail(err, "fetching schema id "+strconv.Itoa(id), CodeSchemaNotFound)
	}
	t, err := fromSrclientType(got.SchemaType())
	if err != nil {
		return nil, fmt.Errorf("fetching schema id %d from %s: %w", id, c.url, err)
	}
	s := &Schema{ID: id, Type: t, Text: got.Schema(), References: fromSrclientRefs(got.References())}
	c.byID.put(id, s)
	return s, nil
}

// SchemaByGUID returns the schema with a GUID (magic byte 1 framing) through
// GET /schemas/guids/{guid}, which srclient lacks. ErrSchemaNotFound for an
// unknown GUID, ErrGUIDUnsupported when the registry has no such endpoint.
func (c *Client) SchemaByGUID(ctx context.Context, guid [16]byte) (*Schema, error) {
	g := FormatGUID(guid)
	var out schemaJSON
	err := c.do(ctx, http.MethodGet, "/schemas/guids/"+g, nil, &out)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && (ae.Code == http.StatusNotFound || ae.Code == http.StatusMethodNotAllowed) {
			return nil, fmt.Errorf("fetching schema guid %s from %s: %w", g, c.url, ErrGUIDUnsupported)
		}
		return nil, c.fail(err, "fetching schema guid "+g, CodeSchemaNotFound)
	}
	return out.schema()
}

// SchemaByVersion returns a subject's version, soft-deleted ones included
// (a stored schema keeps referencing a version after its soft delete), through
// GET /subjects/{s}/versions/{v}?deleted=true, which srclient lacks.
// ErrSchemaNotFound when the subject or version does not exist.
func (c *Client) SchemaByVersion(ctx context.Context, subject string, version int) (*Schema, error) {
	var out schemaJSON
	path := "/subjects/" + url.PathEscape(subject) + "/versions/" + strconv.Itoa(version) + "?deleted=true"
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, c.fail(err, fmt.Sprintf("fetching subject %q version %d", subject, version),
			CodeSubjectNotFound, CodeVersionNotFound)
	}
	return out.schema()
}

// Lookup returns the version of subject that holds s (POST /subjects/{s}),
// with its id and version. ErrSchemaNotFound when no live version does.
func (c *Client) Lookup(ctx context.Context, subject string, s *Schema) (*Schema, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	got, err := c.sr.LookupSchema(subject, s.Text, srclient.SchemaType(s.Type), toSrclientRefs(s.References)...)
	if err != nil {
		return nil, c.fail(err, fmt.Sprintf("looking up a schema in subject %q", subject),
			CodeSubjectNotFound, CodeSchemaNotFound)
	}
	t, err := fromSrclientType(got.SchemaType())
	if err != nil {
		return nil, fmt.Errorf("looking up a schema in subject %q at %s: %w", subject, c.url, err)
	}
	return &Schema{ID: got.ID(), Subject: subject, Version: got.Version(), Type: t, Text: got.Schema(),
		References: fromSrclientRefs(got.References())}, nil
}

// Register registers s under subject and returns its id. The registry checks
// compatibility as registration does (*IncompatibleError on 409).
// srclient v0.7.3 reports version 0 for a registration; use Lookup for the
// version.
func (c *Client) Register(ctx context.Context, subject string, s *Schema) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	got, err := c.sr.CreateSchema(subject, s.Text, srclient.SchemaType(s.Type), toSrclientRefs(s.References)...)
	if err != nil {
		if ae := asAPIError(err); ae != nil && ae.Code == CodeIncompatibleSchema {
			return 0, &IncompatibleError{Subject: subject, Messages: []string{ae.Message}}
		}
		return 0, c.fail(err, fmt.Sprintf("registering a schema under subject %q", subject))
	}
	return got.ID(), nil
}

// Compatibility returns the compatibility level that applies to subject: its
// own, else the registry's global one (GET /config/{s}?defaultToGlobal=true).
func (c *Client) Compatibility(ctx context.Context, subject string) (Level, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	got, err := c.sr.GetCompatibilityLevel(subject, true)
	if ae := asAPIError(err); ae != nil && (ae.Code == CodeSubjectCompatNotConfigured || ae.Code == CodeSubjectNotFound) {
		// A registry that ignores defaultToGlobal (Confluent before 5.5)
		// answers that the subject has no level of its own.
		got, err = c.sr.GetGlobalCompatibilityLevel()
	}
	if err != nil {
		return "", c.fail(err, fmt.Sprintf("reading the compatibility level of subject %q", subject))
	}
	level, err := ParseLevel(string(*got))
	if err != nil {
		return "", fmt.Errorf("reading the compatibility level of subject %q at %s: %w", subject, c.url, err)
	}
	return level, nil
}

// CheckCompatibility checks s against every version of subject its level
// requires (POST /compatibility/subjects/{s}/versions?verbose=true; srclient's
// IsSchemaCompatible checks one version only). It returns nil when s may be
// registered, *IncompatibleError when not. A registry without that endpoint
// (Confluent before 7.x) is not an error: registration then enforces the
// level.
func (c *Client) CheckCompatibility(ctx context.Context, subject string, s *Schema) error {
	req := schemaRequest{Schema: s.Text, References: s.References}
	if s.Type != Avro {
		req.SchemaType = string(s.Type)
	}
	var out compatResponse
	err := c.do(ctx, http.MethodPost, "/compatibility/subjects/"+url.PathEscape(subject)+"/versions?verbose=true", req, &out)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) {
			switch ae.Code {
			case CodeSubjectNotFound: // no versions to be compatible with
				return nil
			case http.StatusNotFound, http.StatusMethodNotAllowed:
				return nil
			}
		}
		return c.fail(err, fmt.Sprintf("checking compatibility with subject %q", subject))
	}
	if out.IsCompatible {
		return nil
	}
	msgs := out.Messages
	if len(msgs) == 0 {
		msgs = []string{"the registry gave no details"}
	}
	return &IncompatibleError{Subject: subject, Messages: msgs}
}

// schemaRequest is the body of our own compatibility call. It leaves out
// the id and version a registration request may carry, which have no place
// there.
type schemaRequest struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
}

// do makes one call of our own: method on path (relative to the registry
// URL, already escaped), with in as the JSON body when not nil, decoding the
// response into out. Error responses come back as *APIError.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Accept", ContentType+", application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		// Error statuses were made Confluent bodies by roundTripper; a
		// redirect that was not followed lands here too.
		var e APIError
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if json.Unmarshal(b, &e) != nil || e.Code == 0 {
			e = APIError{Code: resp.StatusCode, Message: statusMessage(resp.StatusCode, nil)}
		}
		e.Status = resp.StatusCode
		return &e
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		return fmt.Errorf("decoding the response to %s %s: %w", method, path, err)
	}
	return nil
}

// fail wraps an error of a call for op: registry answers become *APIError
// (wrapped with ErrSchemaNotFound when their code is one of notFound), the
// rest (network, decoding) keep their chain.
func (c *Client) fail(err error, op string, notFound ...int) error {
	if ae := asAPIError(err); ae != nil {
		for _, code := range notFound {
			if ae.Code == code {
				return fmt.Errorf("%s at %s: %w (%w)", op, c.url, ErrSchemaNotFound, ae)
			}
		}
		return fmt.Errorf("%s at %s: %w", op, c.url, ae)
	}
	return fmt.Errorf("%s at %s: %w", op, c.url, err)
}

// asAPIError returns the registry's error response in err, from our own
// calls (*APIError) or from srclient (srclient.Error), or nil.
func asAPIError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var se srclient.Error
	if errors.As(err, &se) {
		return &APIError{Status: statusOf(se.Code), Code: se.Code, Message: se.Message}
	}
	return nil
}

// statusOf derives the HTTP status from a Confluent error code: five-digit
// codes start with it (40403 is a 404), three-digit ones are it.
func statusOf(code int) int {
	if code >= 10000 {
		return code / 100
	}
	return code
}

// IsRetryable reports whether err is a registry outage that is worth
// retrying with backoff: network errors, timeouts, 5xx answers and 429/408.
// A *RecordError, ErrSchemaNotFound, *IncompatibleError, any other 4xx
// (including 401/403), TLS verification failures and context.Canceled are
// not: retrying gives the same answer.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var re *RecordError
	var ie *IncompatibleError
	if errors.As(err, &re) || errors.As(err, &ie) || errors.Is(err, ErrSchemaNotFound) || errors.Is(err, ErrGUIDUnsupported) {
		return false
	}
	if ae := asAPIError(err); ae != nil {
		status := ae.Status
		if status == 0 {
			status = statusOf(ae.Code)
		}
		return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// A certificate the client does not trust, or a handshake the server
	// refuses, is configuration; it is not cured by waiting.
	var cve *tls.CertificateVerificationError
	var uae x509.UnknownAuthorityError
	var he x509.HostnameError
	var cie x509.CertificateInvalidError
	if errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &he) || errors.As(err, &cie) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Op != "remote error" // a TLS alert from the server
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (s schemaJSON) schema() (*Schema, error) {
	t, err := ParseSchemaType(string(s.SchemaType))
	if err != nil {
		return nil, err
	}
	return &Schema{ID: s.ID, Subject: s.Subject, Version: s.Version, Type: t, Text: s.Schema, References: s.References}, nil
}

func fromSrclientType(t *srclient.SchemaType) (SchemaType, error) {
	if t == nil {
		return Avro, nil
	}
	return ParseSchemaType(string(*t))
}

func fromSrclientRefs(refs []srclient.Reference) []Reference {
	if len(refs) == 0 {
		return nil
	}
	out := make([]Reference, len(refs))
	for i, r := range refs {
		out[i] = Reference(r)
	}
	return out
}

func toSrclientRefs(refs []Reference) []srclient.Reference {
	if len(refs) == 0 {
		return nil
	}
	out := make([]srclient.Reference, len(refs))
	for i, r := range refs {
		out[i] = srclient.Reference(r)
	}
	return out
}
