package registry

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tributary-dev/tributary/internal/protoschema"
)

// ContentType is the media type of the registry API's requests and responses.
const ContentType = "application/vnd.schemaregistry.v1+json"

// maxBody bounds request bodies. Confluent's default schema size limit is far
// below this; it only keeps a client from making the server buffer without end.
const maxBody = 16 << 20

// maxRefDepth bounds the depth of reference chains resolved for one schema.
const maxRefDepth = 32

// Limits on what one schema may cost to read, so that a hostile schema is a
// 422 and never an out-of-memory or a stack overflow. maxSchemaBytes: a
// Confluent registry keeps each schema in one record of its _schemas topic,
// 1 MiB by default, so real schemas stay below it. maxReferences bounds the
// distinct schemas a schema's references reach (each resolved once);
// maxRefExpansion the reference tree they unfold to, since a diamond of
// references repeated at every level would otherwise double it level after
// level. Protobuf nesting depth and name length are bounded by protoLimits.
const (
	maxSchemaBytes  = 1 << 20
	maxReferences   = 256
	maxRefExpansion = 4096
)

// ServerOptions configures the embedded registry.
type ServerOptions struct {
	// DataFile is the JSON snapshot the registry keeps its contents in,
	// rewritten atomically on every change and read at start. Empty keeps
	// everything in memory.
	DataFile string
	// Compatibility is the global compatibility level of a new registry and
	// what DELETE /config resets it to. Default Backward, as Confluent's.
	Compatibility Level
	// Logger receives one line per failed store write, per server start and
	// per new version of a schema accepted leniently (a warning naming the
	// subject, id, version and reasons, never the schema's contents).
	// Default: discard.
	Logger *slog.Logger
	// BasicAuth, when set, is required of every request (401 otherwise);
	// see LoadBasicAuth.
	BasicAuth *BasicAuth
	// TLSCertFile and TLSKeyFile, when set, make Serve speak HTTPS (TLS 1.2
	// or later). The key file must be readable by its owner only.
	TLSCertFile, TLSKeyFile string
}

// Server is an embedded Confluent-compatible schema registry. It is an
// http.Handler; all methods are safe for concurrent use.
type Server struct {
	opts ServerOptions
	log  *slog.Logger
	mux  *http.ServeMux

	// mu guards st; writers hold it for the whole mutation and store write, so
	// registrations are serialised as Confluent's leader serialises them.
	mu sync.RWMutex
	st *state

	// parsedMu guards parsed, the parsed form of schema ids (schemas are
	// immutable, so entries never go stale). Lock order: mu, then parsedMu.
	parsedMu sync.Mutex
	parsed   map[int]*parsed

	tls *tls.Config // from TLSCertFile and TLSKeyFile; nil: plain HTTP
}

// NewServer returns a registry loaded from opts.DataFile when it exists.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Compatibility == "" {
		opts.Compatibility = Backward
	}
	level, err := ParseLevel(string(opts.Compatibility))
	if err != nil {
		return nil, fmt.Errorf("registry server: %w", err)
	}
	opts.Compatibility = level
	s := &Server{opts: opts, log: opts.Logger, parsed: map[int]*parsed{}}
	if s.tls, err = serverTLS(opts.TLSCertFile, opts.TLSKeyFile); err != nil {
		return nil, err
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.DataFile != "" {
		if s.st, err = loadState(opts.DataFile, level); err != nil {
			return nil, err
		}
	} else {
		s.st = newState(level)
	}
	s.routes()
	return s, nil
}

// Serve listens on addr and serves the registry until ctx is cancelled:
// `tributary registry serve --addr A --data F` is
// registry.Serve(ctx, A, registry.ServerOptions{DataFile: F, Logger: l}).
func Serve(ctx context.Context, addr string, opts ServerOptions) error {
	s, err := NewServer(opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("registry server: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves the registry on ln until ctx is cancelled, then shuts down
// gracefully (in-flight requests get 5 seconds). It closes ln. A cancelled
// ctx is not an error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	scheme := "http"
	if s.tls != nil {
		ln, scheme = tls.NewListener(ln, s.tls), "https"
	}
	hs := &http.Server{
		Handler: s, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ReadHeaderTimeout: serverReadHeaderTimeout, ReadTimeout: serverReadTimeout,
		WriteTimeout: serverWriteTimeout, IdleTimeout: serverIdleTimeout,
	}
	s.log.Info("schema registry listening", "addr", ln.Addr().String(), "scheme", scheme, "basic_auth", s.opts.BasicAuth != nil, "data", s.opts.DataFile)
	done := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
			done <- nil
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		done <- hs.Shutdown(sctx)
	}()
	err := hs.Serve(ln)
	if !errors.Is(err, http.ErrServerClosed) {
		close(stop)
		<-done
		return fmt.Errorf("registry server: %w", err)
	}
	if err := <-done; err != nil {
		return fmt.Errorf("registry server shutdown: %w", err)
	}
	return nil
}

// ServeHTTP serves the registry API. Unknown paths get Confluent's 404 body and
// known paths with another method a 405.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r) {
		return
	}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		// The mux answers 404 or 405 in plain text; keep its status, use our body.
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		status := probe.status
		if status >= 300 && status < 400 {
			h.ServeHTTP(w, r) // the mux's redirect to the cleaned path
			return
		}
		if status == 0 {
			status = http.StatusNotFound
		}
		if status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.header.Get("Allow"))
		}
		writeErr(w, &APIError{Status: status, Code: status, Message: fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	s.mux.ServeHTTP(w, r)
}

type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(status int)      { p.status = status }

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, struct{}{}) })
	m.HandleFunc("GET /subjects", s.handle(s.listSubjects))
	m.HandleFunc("GET /subjects/{subject}/versions", s.handle(s.listVersions))
	m.HandleFunc("POST /subjects/{subject}/versions", s.handle(s.register))
	m.HandleFunc("GET /subjects/{subject}/versions/{version}", s.handle(s.getVersion))
	m.HandleFunc("GET /subjects/{subject}/versions/{version}/schema", s.handleRaw(s.getVersionSchema))
	m.HandleFunc("GET /subjects/{subject}/versions/{version}/referencedby", s.handle(s.referencedBy))
	m.HandleFunc("DELETE /subjects/{subject}/versions/{version}", s.handle(s.deleteVersion))
	m.HandleFunc("POST /subjects/{subject}", s.handle(s.lookup))
	m.HandleFunc("DELETE /subjects/{subject}", s.handle(s.deleteSubject))
	m.HandleFunc("GET /schemas/types", s.handle(func(*http.Request) (any, *APIError) {
		return []SchemaType{JSON, Protobuf, Avro}, nil
	}))
	m.HandleFunc("GET /schemas/ids/{id}", s.handle(s.schemaByID))
	m.HandleFunc("GET /schemas/ids/{id}/schema", s.handleRaw(s.rawSchemaByID))
	m.HandleFunc("GET /schemas/ids/{id}/versions", s.handle(s.versionsByID))
	m.HandleFunc("GET /schemas/ids/{id}/subjects", s.handle(s.subjectsByID))
	m.HandleFunc("GET /schemas/guids/{guid}", s.handle(s.schemaByGUID))
	m.HandleFunc("GET /config", s.handle(s.getConfig))
	m.HandleFunc("PUT /config", s.handle(s.putConfig))
	m.HandleFunc("DELETE /config", s.handle(s.deleteConfig))
	m.HandleFunc("GET /config/{subject}", s.handle(s.getConfig))
	m.HandleFunc("PUT /config/{subject}", s.handle(s.putConfig))
	m.HandleFunc("DELETE /config/{subject}", s.handle(s.deleteConfig))
	m.HandleFunc("GET /mode", s.handle(s.getMode))
	m.HandleFunc("PUT /mode", s.handle(s.putMode))
	m.HandleFunc("GET /mode/{subject}", s.handle(s.getMode))
	m.HandleFunc("PUT /mode/{subject}", s.handle(s.putMode))
	m.HandleFunc("DELETE /mode/{subject}", s.handle(s.deleteMode))
	m.HandleFunc("POST /compatibility/subjects/{subject}/versions/{version}", s.handle(s.compatOne))
	m.HandleFunc("POST /compatibility/subjects/{subject}/versions", s.handle(s.compatAll))
	s.mux = m
}

func (s *Server) handle(f func(*http.Request) (any, *APIError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, e := f(r)
		if e != nil {
			if e.Code == CodeStoreError {
				s.log.Error("schema registry store write failed", "path", r.URL.Path, "err", e.Message)
			}
			writeErr(w, e)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) handleRaw(f func(*http.Request) (string, *APIError)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, e := f(r)
		if e != nil {
			writeErr(w, e)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(&APIError{Code: 50001, Message: "encoding response: " + err.Error()})
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, e *APIError) {
	status := e.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, e)
}

// Error constructors with Confluent's status, code and message wording.
func errSubjectNotFound(s string) *APIError {
	return apiErr(404, CodeSubjectNotFound, "Subject '%s' not found.", s)
}
func errVersionNotFound(v int) *APIError {
	return apiErr(404, CodeVersionNotFound, "Version %d not found.", v)
}
func errSchemaNotFound(what string) *APIError {
	return apiErr(404, CodeSchemaNotFound, "Schema %s not found", what)
}
func errInvalidSchema(err error) *APIError {
	msg := strings.TrimPrefix(err.Error(), ErrInvalidSchema.Error()+": ")
	return apiErr(422, CodeInvalidSchema, "Invalid schema: %s", msg)
}
func errInvalidVersion(v string) *APIError {
	return apiErr(422, CodeInvalidVersion, "The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\"", v)
}
func errNotPermitted(format string, args ...any) *APIError {
	return apiErr(422, CodeOperationNotPermitted, format, args...)
}
func errStore(err error) *APIError {
	return apiErr(500, CodeStoreError, "Error while storing the schema registry data: %v", err)
}
func errBadRequest(err error) *APIError {
	return apiErr(400, 400, "Invalid request body: %v", err)
}

// commit persists next and makes it the served state. The caller holds mu.
func (s *Server) commit(next *state) *APIError {
	if s.opts.DataFile != "" {
		b, err := next.marshal()
		if err == nil {
			err = writeFileAtomic(s.opts.DataFile, b)
		}
		if err != nil {
			return errStore(err)
		}
	}
	s.st = next
	return nil
}

// versionParam parses {version}: a positive int32, "latest" or -1. It
// returns 0 for latest.
func versionParam(r *http.Request) (int, *APIError) {
	v := r.PathValue("version")
	if v == "latest" || v == "-1" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > math.MaxInt32 {
		return 0, errInvalidVersion(v)
	}
	return int(n), nil
}

func boolParam(r *http.Request, name string) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return b
}

func decodeBody(r *http.Request, v any) *APIError {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return errBadRequest(err)
	}
	return nil
}

// schemaJSON is a schema version as the API returns it. Fields a given
// endpoint does not return are left empty and omitted.
type schemaJSON struct {
	Subject    string      `json:"subject,omitempty"`
	Version    int         `json:"version,omitempty"`
	ID         int         `json:"id,omitempty"`
	GUID       string      `json:"guid,omitempty"`
	SchemaType SchemaType  `json:"schemaType,omitempty"`
	References []Reference `json:"references,omitempty"`
	Schema     string      `json:"schema"`
}

func versionJSON(subject string, v *versionRec, rec *schemaRec) schemaJSON {
	out := schemaJSON{Subject: subject, Version: v.Version, ID: rec.ID, GUID: rec.GUID,
		References: rec.References, Schema: rec.Schema}
	if rec.Type != Avro {
		out.SchemaType = rec.Type
	}
	return out
}

// GET /subjects[?deleted=true][&subjectPrefix=p]
func (s *Server) listSubjects(r *http.Request) (any, *APIError) {
	deleted := boolParam(r, "deleted")
	prefix := r.URL.Query().Get("subjectPrefix")
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []string{}
	for name, sub := range s.st.Subjects {
		if strings.HasPrefix(name, prefix) && len(sub.live(deleted)) > 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

// GET /subjects/{subject}/versions[?deleted=true]
func (s *Server) listVersions(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	vs := s.st.Subjects[subject].live(boolParam(r, "deleted"))
	if len(vs) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	out := make([]int, len(vs))
	for i, v := range vs {
		out[i] = v.Version
	}
	return out, nil
}

// resolveVersion finds a version of a subject for reads: latest (0) is the
// newest live version; a soft-deleted version is found only with deleted.
func (st *state) resolveVersion(subject string, version int, deleted bool) (*versionRec, *APIError) {
	sub := st.Subjects[subject]
	live := sub.live(deleted)
	if len(live) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	if version == 0 {
		return live[len(live)-1], nil
	}
	v := sub.find(version)
	if v == nil || (v.Deleted && !deleted) {
		return nil, errVersionNotFound(version)
	}
	return v, nil
}

// GET /subjects/{subject}/versions/{version}[?deleted=true]
func (s *Server) getVersion(r *http.Request) (any, *APIError) {
	version, e := versionParam(r)
	if e != nil {
		return nil, e
	}
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, e := s.st.resolveVersion(subject, version, boolParam(r, "deleted"))
	if e != nil {
		return nil, e
	}
	out := versionJSON(subject, v, s.st.Schemas[v.ID])
	if out.Schema, e = s.schemaText(s.st, s.st.Schemas[v.ID], r); e != nil {
		return nil, e
	}
	return out, nil
}

// GET /subjects/{subject}/versions/{version}/schema
func (s *Server) getVersionSchema(r *http.Request) (string, *APIError) {
	version, e := versionParam(r)
	if e != nil {
		return "", e
	}
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, e := s.st.resolveVersion(subject, version, boolParam(r, "deleted"))
	if e != nil {
		return "", e
	}
	return s.schemaText(s.st, s.st.Schemas[v.ID], r)
}

// GET /subjects/{subject}/versions/{version}/referencedby
func (s *Server) referencedBy(r *http.Request) (any, *APIError) {
	version, e := versionParam(r)
	if e != nil {
		return nil, e
	}
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, e := s.st.resolveVersion(subject, version, boolParam(r, "deleted"))
	if e != nil {
		return nil, e
	}
	ids := s.st.referencedBy(subject, v.Version, false)
	if ids == nil {
		ids = []int{}
	}
	return ids, nil
}

type registerRequest struct {
	Schema     string      `json:"schema"`
	SchemaType string      `json:"schemaType"`
	References []Reference `json:"references"`
	// ID and Version are honoured in IMPORT mode only.
	ID      int `json:"id"`
	Version int `json:"version"`
}

// candidate parses a request's schema with its references resolved in st.
func (s *Server) candidate(st *state, req *registerRequest) (*parsed, *APIError) {
	t, err := ParseSchemaType(req.SchemaType)
	if err != nil {
		return nil, errInvalidSchema(err)
	}
	if len(req.Schema) > maxSchemaBytes {
		return nil, errInvalidSchema(fmt.Errorf("the schema is %d bytes; this registry accepts at most %d", len(req.Schema), maxSchemaBytes))
	}
	if len(req.References) > maxReferences {
		return nil, errInvalidSchema(fmt.Errorf("the schema has %d references; this registry accepts at most %d", len(req.References), maxReferences))
	}
	deps, e := s.deps(st, req.References, 0, false)
	if e != nil {
		return nil, e
	}
	p, err := parseSchema(t, req.Schema, deps)
	if err != nil {
		return nil, errInvalidSchema(err)
	}
	return p, nil
}

// deps resolves references to the schemas they name, recursively. New
// schemas may reference live versions only; stored ones (allowDeleted) keep
// resolving after the versions they reference are soft-deleted.
func (s *Server) deps(st *state, refs []Reference, depth int, allowDeleted bool) ([]dep, *APIError) {
	r := depResolver{st: st, memo: map[subjectVersion]*resolvedDep{}}
	return r.resolve(refs, depth, allowDeleted)
}

// depResolver resolves one schema's references, each (subject, version)
// once, and counts what they reach against maxReferences and
// maxRefExpansion.
type depResolver struct {
	st       *state
	memo     map[subjectVersion]*resolvedDep
	expanded int
}

type resolvedDep struct {
	deps []dep
	size int // nodes of the reference tree below, itself excluded
}

func (r *depResolver) resolve(refs []Reference, depth int, allowDeleted bool) ([]dep, *APIError) {
	if len(refs) == 0 {
		return nil, nil
	}
	if depth > maxRefDepth {
		return nil, errInvalidSchema(fmt.Errorf("references nest deeper than %d", maxRefDepth))
	}
	names := map[string]bool{}
	out := make([]dep, 0, len(refs))
	for _, ref := range refs {
		if ref.Name == "" || ref.Subject == "" || ref.Version < 1 {
			return nil, errInvalidSchema(fmt.Errorf("reference %+v needs a name, a subject and a version >= 1", ref))
		}
		if names[ref.Name] {
			return nil, errInvalidSchema(fmt.Errorf("duplicate reference name %q", ref.Name))
		}
		names[ref.Name] = true
		v, e := r.st.resolveVersion(ref.Subject, ref.Version, allowDeleted)
		if e != nil {
			return nil, errInvalidSchema(fmt.Errorf("reference %q: subject %q version %d not found", ref.Name, ref.Subject, ref.Version))
		}
		rec := r.st.Schemas[v.ID]
		key := subjectVersion{ref.Subject, v.Version}
		rd, ok := r.memo[key]
		if !ok {
			if len(r.memo) >= maxReferences {
				return nil, errInvalidSchema(fmt.Errorf("references reach more than %d schemas", maxReferences))
			}
			rd = &resolvedDep{}
			r.memo[key] = rd
			sub, e := r.resolve(rec.References, depth+1, true)
			if e != nil {
				return nil, e
			}
			rd.deps = sub
			for _, d := range sub {
				rd.size += 1 + r.memo[subjectVersion{d.subject, d.version}].size
			}
		}
		r.expanded += 1 + rd.size
		if r.expanded > maxRefExpansion {
			return nil, errInvalidSchema(fmt.Errorf("references unfold to more than %d schemas", maxRefExpansion))
		}
		out = append(out, dep{name: ref.Name, typ: rec.Type, text: rec.Schema, deps: rd.deps, subject: ref.Subject, version: v.Version})
	}
	return out, nil
}

// parsedID returns the parsed form of a stored schema. The caller holds mu.
func (s *Server) parsedID(st *state, id int) (*parsed, error) {
	s.parsedMu.Lock()
	p := s.parsed[id]
	s.parsedMu.Unlock()
	if p != nil {
		return p, nil
	}
	rec := st.Schemas[id]
	if rec == nil {
		return nil, fmt.Errorf("schema %d not found", id)
	}
	deps, e := s.deps(st, rec.References, 0, true)
	if e != nil {
		return nil, fmt.Errorf("schema %d: %s", id, e.Message)
	}
	p, err := parseSchema(rec.Type, rec.Schema, deps)
	if err != nil {
		return nil, fmt.Errorf("schema %d: %w", id, err)
	}
	s.parsedMu.Lock()
	s.parsed[id] = p
	s.parsedMu.Unlock()
	return p, nil
}

func (st *state) subjectMode(subject string) Mode {
	if sub := st.Subjects[subject]; sub != nil && sub.Mode != "" {
		return sub.Mode
	}
	return st.Mode
}

func (st *state) subjectLevel(subject string) Level {
	if sub := st.Subjects[subject]; sub != nil && sub.Compatibility != "" {
		return sub.Compatibility
	}
	return st.Compatibility
}

// previous returns the live versions of subject, oldest first, parsed.
func (s *Server) previous(st *state, subject string) ([]versioned, *APIError) {
	var out []versioned
	for _, v := range st.Subjects[subject].live(false) {
		p, err := s.parsedID(st, v.ID)
		if err != nil {
			return nil, apiErr(500, CodeStoreError, "Error reading stored schema: %v", err)
		}
		out = append(out, versioned{version: v.Version, p: p})
	}
	return out, nil
}

// POST /subjects/{subject}/versions
func (s *Server) register(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	var req registerRequest
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	mode := st.subjectMode(subject)
	if mode == ReadOnly {
		return nil, errNotPermitted("Subject %s is in read-only mode", subject)
	}
	cand, e := s.candidate(st, &req)
	if e != nil {
		return nil, e
	}
	key := schemaKey(cand.typ, cand.canonical, req.References)
	sub := st.Subjects[subject]

	if req.ID > math.MaxInt32 || req.Version > math.MaxInt32 {
		// The wire format has 4 bytes for the id; Confluent's ids and
		// versions are Java ints.
		return nil, errBadRequest(fmt.Errorf("id %d or version %d out of range: both end at 2^31-1", req.ID, req.Version))
	}
	importing := mode == Import && (req.ID > 0 || req.Version > 0)
	if !importing {
		// Re-registering a schema a live version already has is idempotent.
		for _, v := range sub.live(false) {
			if st.Schemas[v.ID].key == key {
				rec := st.Schemas[v.ID]
				return map[string]any{"id": rec.ID, "version": v.Version, "guid": rec.GUID}, nil
			}
		}
		if req.ID > 0 && st.byKey[key] != req.ID {
			return nil, errNotPermitted("Subject %s is not in import mode; a schema id may only be given in IMPORT mode", subject)
		}
		if req.Version > 0 && req.Version != sub.maxVersion()+1 {
			return nil, errNotPermitted("Subject %s is not in import mode; version %d may only be given in IMPORT mode", subject, req.Version)
		}
	}

	next := st.clone()
	nsub := next.Subjects[subject]
	if nsub == nil {
		nsub = &subjectRec{}
		next.Subjects[subject] = nsub
	}
	version := nsub.maxVersion() + 1
	id, known := next.byKey[key]
	if importing {
		if req.ID > 0 {
			if rec := next.Schemas[req.ID]; rec != nil && rec.key != key {
				return nil, errNotPermitted("Overwrite new schema with id %d is not permitted: the id holds a different schema", req.ID)
			}
			id, known = req.ID, next.Schemas[req.ID] != nil
		}
		if req.Version > 0 {
			version = req.Version
		} else if known {
			for _, v := range nsub.live(false) {
				if v.ID == id {
					return map[string]any{"id": id, "version": v.Version, "guid": next.Schemas[id].GUID}, nil
				}
			}
		}
		if v := nsub.find(version); v != nil {
			if v.ID == id && known {
				return map[string]any{"id": id, "version": version, "guid": next.Schemas[id].GUID}, nil
			}
			return nil, errNotPermitted("Version %d of subject %s already exists with a different schema", version, subject)
		}
	} else if mode != Import {
		prev, e := s.previous(st, subject)
		if e != nil {
			return nil, e
		}
		if msgs := compatMessages(st.subjectLevel(subject), cand, prev); len(msgs) > 0 {
			return nil, apiErr(409, CodeIncompatibleSchema,
				"Schema being registered is incompatible with an earlier schema for subject \"%s\", details: [%s]",
				subject, strings.Join(msgs, ", "))
		}
	}
	if !known {
		if id == 0 {
			id = next.NextID
		}
		if id > math.MaxInt32 {
			return nil, errNotPermitted("No schema id left: id %d does not fit the wire format's 4 bytes (an import took id 2^31-1)", id)
		}
		guid, err := newGUID()
		if err != nil {
			return nil, errStore(err)
		}
		rec := &schemaRec{ID: id, GUID: guid, Type: cand.typ, Schema: cand.text, References: req.References, key: key}
		next.addSchema(rec)
	}
	nsub.insert(&versionRec{Version: version, ID: id})
	if e := s.commit(next); e != nil {
		return nil, e
	}
	if !known {
		// Only now: a failed commit may hand this id to another schema.
		s.parsedMu.Lock()
		s.parsed[id] = cand
		s.parsedMu.Unlock()
	}
	s.warnLenient(subject, id, version, cand)
	return map[string]any{"id": id, "version": version, "guid": next.Schemas[id].GUID}, nil
}

// POST /subjects/{subject}[?deleted=true]
func (s *Server) lookup(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	var req registerRequest
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	deleted := boolParam(r, "deleted")
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.st
	live := st.Subjects[subject].live(deleted)
	if len(live) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	cand, e := s.candidate(st, &req)
	if e != nil {
		return nil, e
	}
	key := schemaKey(cand.typ, cand.canonical, req.References)
	for _, v := range live {
		if rec := st.Schemas[v.ID]; rec.key == key {
			return versionJSON(subject, v, rec), nil
		}
	}
	return nil, errSchemaNotFound("")
}

// DELETE /subjects/{subject}[?permanent=true]
func (s *Server) deleteSubject(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	permanent := boolParam(r, "permanent")
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if st.subjectMode(subject) == ReadOnly {
		return nil, errNotPermitted("Subject %s is in read-only mode", subject)
	}
	sub := st.Subjects[subject]
	if sub == nil || len(sub.Versions) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	live := sub.live(false)
	if !permanent && len(live) == 0 {
		return nil, apiErr(404, CodeSubjectSoftDeleted, "Subject '%s' was soft deleted.Set permanent=true to delete permanently", subject)
	}
	if permanent && len(live) > 0 {
		return nil, apiErr(404, CodeSubjectNotSoftDeleted, "Subject '%s' was not deleted first before being permanently deleted", subject)
	}
	for _, v := range sub.Versions {
		if ids := st.referencedBy(subject, v.Version, permanent); len(ids) > 0 {
			return nil, apiErr(422, CodeReferenceExists, "One or more references exist to the schema {subject=%s, version=%d}: schema ids %v", subject, v.Version, ids)
		}
	}
	next := st.clone()
	nsub := next.Subjects[subject]
	deleted := []int{}
	if permanent {
		for _, v := range nsub.Versions {
			deleted = append(deleted, v.Version)
		}
		nsub.Versions = nil
		if nsub.Compatibility == "" && nsub.Mode == "" {
			delete(next.Subjects, subject)
		}
	} else {
		for _, v := range nsub.Versions {
			if !v.Deleted {
				v.Deleted = true
				deleted = append(deleted, v.Version)
			}
		}
	}
	if e := s.commit(next); e != nil {
		return nil, e
	}
	return deleted, nil
}

// DELETE /subjects/{subject}/versions/{version}[?permanent=true]
func (s *Server) deleteVersion(r *http.Request) (any, *APIError) {
	version, e := versionParam(r)
	if e != nil {
		return nil, e
	}
	subject := r.PathValue("subject")
	permanent := boolParam(r, "permanent")
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	if st.subjectMode(subject) == ReadOnly {
		return nil, errNotPermitted("Subject %s is in read-only mode", subject)
	}
	sub := st.Subjects[subject]
	if sub == nil || len(sub.Versions) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	if version == 0 {
		if permanent {
			version = sub.maxVersion()
		} else if live := sub.live(false); len(live) > 0 {
			version = live[len(live)-1].Version
		} else {
			return nil, errSubjectNotFound(subject)
		}
	}
	v := sub.find(version)
	switch {
	case v == nil:
		return nil, errVersionNotFound(version)
	case !permanent && v.Deleted:
		return nil, apiErr(404, CodeVersionSoftDeleted, "Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", subject, version)
	case permanent && !v.Deleted:
		return nil, apiErr(404, CodeVersionNotSoftDeleted, "Subject '%s' Version %d was not deleted first before being permanently deleted", subject, version)
	}
	if ids := st.referencedBy(subject, version, permanent); len(ids) > 0 {
		return nil, apiErr(422, CodeReferenceExists, "One or more references exist to the schema {subject=%s, version=%d}: schema ids %v", subject, version, ids)
	}
	next := st.clone()
	nsub := next.Subjects[subject]
	if permanent {
		for i, nv := range nsub.Versions {
			if nv.Version == version {
				nsub.Versions = append(nsub.Versions[:i], nsub.Versions[i+1:]...)
				break
			}
		}
		if len(nsub.Versions) == 0 && nsub.Compatibility == "" && nsub.Mode == "" {
			delete(next.Subjects, subject)
		}
	} else {
		nsub.find(version).Deleted = true
	}
	if e := s.commit(next); e != nil {
		return nil, e
	}
	return version, nil
}

// schemaForID finds a schema id that some version (soft-deleted included)
// still uses: ids are kept for data written while they were live. The caller
// holds mu.
func (s *Server) schemaForID(r *http.Request) (*schemaRec, *APIError) {
	raw := r.PathValue("id")
	id, err := strconv.Atoi(raw)
	if err != nil {
		return nil, errSchemaNotFound(raw)
	}
	rec := s.st.Schemas[id]
	if rec == nil || !s.st.idInUse(id) {
		return nil, errSchemaNotFound(raw)
	}
	return rec, nil
}

func idJSON(rec *schemaRec) schemaJSON {
	out := schemaJSON{GUID: rec.GUID, References: rec.References, Schema: rec.Schema}
	if rec.Type != Avro {
		out.SchemaType = rec.Type
	}
	return out
}

// GET /schemas/ids/{id}
func (s *Server) schemaByID(r *http.Request) (any, *APIError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, e := s.schemaForID(r)
	if e != nil {
		return nil, e
	}
	out := idJSON(rec)
	if out.Schema, e = s.schemaText(s.st, rec, r); e != nil {
		return nil, e
	}
	return out, nil
}

// GET /schemas/guids/{guid}
func (s *Server) schemaByGUID(r *http.Request) (any, *APIError) {
	guid := strings.ToLower(r.PathValue("guid"))
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.st.byGUID[guid]
	if !ok || !s.st.idInUse(id) {
		return nil, errSchemaNotFound(guid)
	}
	out := idJSON(s.st.Schemas[id])
	out.ID = id
	var e *APIError
	if out.Schema, e = s.schemaText(s.st, s.st.Schemas[id], r); e != nil {
		return nil, e
	}
	return out, nil
}

// GET /schemas/ids/{id}/schema
func (s *Server) rawSchemaByID(r *http.Request) (string, *APIError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, e := s.schemaForID(r)
	if e != nil {
		return "", e
	}
	return s.schemaText(s.st, rec, r)
}

// schemaText is a stored schema as the request's ?format= asks for it.
// "serialized" gives a Protobuf schema as a base64 serialized
// FileDescriptorProto, which Confluent's Python deserializer fetches (a
// schema registered in that form comes back as registered; one registered as
// .proto text is encoded from its model, type names resolved through its
// references). Other formats, and other schema types, give the schema as
// stored: Confluent ignores formats it does not know. The caller holds mu.
func (s *Server) schemaText(st *state, rec *schemaRec, r *http.Request) (string, *APIError) {
	if rec.Type != Protobuf || r.URL.Query().Get("format") != "serialized" {
		return rec.Schema, nil
	}
	if b, err := protoschema.SerializedBytes(rec.Schema); err == nil {
		return base64.StdEncoding.EncodeToString(b), nil
	}
	p, err := s.parsedID(st, rec.ID)
	if err != nil {
		return "", apiErr(500, CodeStoreError, "Error reading stored schema: %v", err)
	}
	return p.proto.DescriptorBase64("default"), nil
}

type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

func (s *Server) usesOf(id int, deleted bool) []subjectVersion {
	out := []subjectVersion{}
	for name, sub := range s.st.Subjects {
		for _, v := range sub.live(deleted) {
			if v.ID == id {
				out = append(out, subjectVersion{name, v.Version})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Subject != out[j].Subject {
			return out[i].Subject < out[j].Subject
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// GET /schemas/ids/{id}/versions[?deleted=true]
func (s *Server) versionsByID(r *http.Request) (any, *APIError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, e := s.schemaForID(r)
	if e != nil {
		return nil, e
	}
	return s.usesOf(rec.ID, boolParam(r, "deleted")), nil
}

// GET /schemas/ids/{id}/subjects[?deleted=true]
func (s *Server) subjectsByID(r *http.Request) (any, *APIError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, e := s.schemaForID(r)
	if e != nil {
		return nil, e
	}
	out := []string{}
	for _, sv := range s.usesOf(rec.ID, boolParam(r, "deleted")) {
		if len(out) == 0 || out[len(out)-1] != sv.Subject {
			out = append(out, sv.Subject)
		}
	}
	return out, nil
}

// GET /config and GET /config/{subject}[?defaultToGlobal=true]
func (s *Server) getConfig(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	if subject == "" {
		return map[string]Level{"compatibilityLevel": s.st.Compatibility}, nil
	}
	if sub := s.st.Subjects[subject]; sub != nil && sub.Compatibility != "" {
		return map[string]Level{"compatibilityLevel": sub.Compatibility}, nil
	}
	if boolParam(r, "defaultToGlobal") {
		return map[string]Level{"compatibilityLevel": s.st.Compatibility}, nil
	}
	return nil, apiErr(404, CodeSubjectCompatNotConfigured, "Subject '%s' does not have subject-level compatibility configured", subject)
}

// PUT /config and PUT /config/{subject}
func (s *Server) putConfig(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	var req struct {
		Compatibility string `json:"compatibility"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	level, err := ParseLevel(req.Compatibility)
	if err != nil {
		return nil, apiErr(422, CodeInvalidCompatibility, "Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.st.clone()
	if subject == "" {
		next.Compatibility = level
	} else {
		sub := next.Subjects[subject]
		if sub == nil {
			sub = &subjectRec{}
			next.Subjects[subject] = sub
		}
		sub.Compatibility = level
	}
	if e := s.commit(next); e != nil {
		return nil, e
	}
	return map[string]Level{"compatibility": level}, nil
}

// DELETE /config resets the global level to the server default; DELETE
// /config/{subject} removes the subject's level. Both return the previous one.
func (s *Server) deleteConfig(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.st.clone()
	var prev Level
	if subject == "" {
		prev = next.Compatibility
		next.Compatibility = s.opts.Compatibility
	} else {
		sub := next.Subjects[subject]
		if sub == nil {
			return nil, errSubjectNotFound(subject)
		}
		if sub.Compatibility == "" {
			return nil, apiErr(404, CodeSubjectCompatNotConfigured, "Subject '%s' does not have subject-level compatibility configured", subject)
		}
		prev = sub.Compatibility
		sub.Compatibility = ""
		if len(sub.Versions) == 0 && sub.Mode == "" {
			delete(next.Subjects, subject)
		}
	}
	if e := s.commit(next); e != nil {
		return nil, e
	}
	return map[string]Level{"compatibilityLevel": prev}, nil
}

// GET /mode and GET /mode/{subject}[?defaultToGlobal=true]
func (s *Server) getMode(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	if subject == "" {
		return map[string]Mode{"mode": s.st.Mode}, nil
	}
	if sub := s.st.Subjects[subject]; sub != nil && sub.Mode != "" {
		return map[string]Mode{"mode": sub.Mode}, nil
	}
	if boolParam(r, "defaultToGlobal") {
		return map[string]Mode{"mode": s.st.Mode}, nil
	}
	return nil, apiErr(404, CodeSubjectModeNotConfigured, "Subject '%s' does not have subject-level mode configured", subject)
}

// PUT /mode and PUT /mode/{subject}[?force=true]. Switching to IMPORT needs
// an empty registry (or subject) unless force is set, as in Confluent.
func (s *Server) putMode(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	var req struct {
		Mode string `json:"mode"`
	}
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	mode, err := ParseMode(req.Mode)
	if err != nil {
		return nil, apiErr(422, CodeInvalidMode, "Invalid mode. Valid values are READWRITE, READONLY, IMPORT")
	}
	force := boolParam(r, "force")
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.st.clone()
	if subject == "" {
		if mode == Import && !force {
			for _, sub := range next.Subjects {
				if len(sub.Versions) > 0 {
					return nil, errNotPermitted("Cannot import since found existing subjects")
				}
			}
		}
		next.Mode = mode
	} else {
		sub := next.Subjects[subject]
		if sub == nil {
			sub = &subjectRec{}
			next.Subjects[subject] = sub
		}
		if mode == Import && !force && len(sub.Versions) > 0 {
			return nil, errNotPermitted("Cannot import since found existing subjects")
		}
		sub.Mode = mode
	}
	if e := s.commit(next); e != nil {
		return nil, e
	}
	return map[string]Mode{"mode": mode}, nil
}

// DELETE /mode/{subject} returns the previous mode.
func (s *Server) deleteMode(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.st.clone()
	sub := next.Subjects[subject]
	if sub == nil || sub.Mode == "" {
		return nil, apiErr(404, CodeSubjectModeNotConfigured, "Subject '%s' does not have subject-level mode configured", subject)
	}
	prev := sub.Mode
	sub.Mode = ""
	if len(sub.Versions) == 0 && sub.Compatibility == "" {
		delete(next.Subjects, subject)
	}
	if e := s.commit(next); e != nil {
		return nil, e
	}
	return map[string]Mode{"mode": prev}, nil
}

type compatResponse struct {
	IsCompatible bool     `json:"is_compatible"`
	Messages     []string `json:"messages,omitzero"`
}

func compatResult(msgs []string, verbose bool) compatResponse {
	out := compatResponse{IsCompatible: len(msgs) == 0}
	if verbose {
		out.Messages = msgs
		if out.Messages == nil {
			out.Messages = []string{}
		}
	}
	return out
}

// POST /compatibility/subjects/{subject}/versions/{version}[?verbose=true]
// checks against that one version under the subject's level (a transitive
// level adds nothing for a single version).
func (s *Server) compatOne(r *http.Request) (any, *APIError) {
	version, e := versionParam(r)
	if e != nil {
		return nil, e
	}
	subject := r.PathValue("subject")
	var req registerRequest
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.st
	cand, e := s.candidate(st, &req)
	if e != nil {
		return nil, e
	}
	verbose := boolParam(r, "verbose")
	if version == 0 && len(st.Subjects[subject].live(false)) == 0 {
		return compatResult(nil, verbose), nil
	}
	v, e := st.resolveVersion(subject, version, false)
	if e != nil {
		return nil, e
	}
	p, err := s.parsedID(st, v.ID)
	if err != nil {
		return nil, apiErr(500, CodeStoreError, "Error reading stored schema: %v", err)
	}
	msgs := compatMessages(st.subjectLevel(subject), cand, []versioned{{version: v.Version, p: p}})
	return compatResult(msgs, verbose), nil
}

// POST /compatibility/subjects/{subject}/versions[?verbose=true] checks
// against every live version the subject's level requires, as registration
// does.
func (s *Server) compatAll(r *http.Request) (any, *APIError) {
	subject := r.PathValue("subject")
	var req registerRequest
	if e := decodeBody(r, &req); e != nil {
		return nil, e
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.st
	cand, e := s.candidate(st, &req)
	if e != nil {
		return nil, e
	}
	prev, e := s.previous(st, subject)
	if e != nil {
		return nil, e
	}
	return compatResult(compatMessages(st.subjectLevel(subject), cand, prev), boolParam(r, "verbose")), nil
}
