package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/coord"
)

// HeaderPolicy names the policies that masked a record: "<policy>@<version>,...".
const HeaderPolicy = "tributary-policy"

// policyEngine masks records with the cluster-wide active policy bundle. The
// bundle changes only when the Raft log applies a new one, so every node
// switches at the same log index; each record is masked by exactly one bundle.
type policyEngine struct {
	cfg     *config.Config
	log     *slog.Logger
	active  atomic.Pointer[activeBundle]
	cache   *policy.Cache
	schemas *registry.Client // the target's registry: records are masked after translation

	masked       *prometheus.CounterVec // pipeline, policy, action
	versions     *prometheus.GaugeVec   // policy
	reloadErrors prometheus.Counter

	reload  chan struct{}
	mu      sync.Mutex
	lastErr string
	errAt   time.Time
}

type activeBundle struct {
	set    *policy.Set
	bundle coord.PolicyBundle
}

func newPolicyEngine(cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (*policyEngine, error) {
	var opts []policy.Option
	key, err := policy.LoadHashKey(cfg.HashKeyFile, os.Getenv)
	switch {
	case err == nil:
		opts = append(opts, policy.WithHashKey(key))
		log.Info("hash key loaded", "key_id", policy.KeyID(key))
	case errors.Is(err, policy.ErrNoHashKey):
		if cfg.Policies != "" {
			log.Warn("no hash key (hash_key_file or TRIBUTARY_HASH_KEY): records that hash rules apply to are quarantined")
		}
	default:
		return nil, fmt.Errorf("hash_key_file: %w", err)
	}
	e := &policyEngine{
		cfg: cfg, log: log, cache: policy.NewCache(opts...), reload: make(chan struct{}, 1),
		masked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_masked_fields_total",
			Help: "Field values masked before landing, by pipeline, policy and action.",
		}, []string{"pipeline", "policy", "action"}),
		versions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_policy_version",
			Help: "Version of each policy in the active bundle (applied through the Raft log).",
		}, []string{"policy"}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_policy_reload_errors_total",
			Help: "Policy folder changes rejected (invalid files, version not increased); the previous bundle stays active.",
		}),
	}
	reg.MustRegister(e.masked, e.versions, e.reloadErrors)
	if t := cfg.Kafka[cfg.Target]; t != nil && t.SchemaRegistry != nil {
		e.schemas, err = registry.NewClient(t.SchemaRegistry, registry.ClientOptions{})
		if err != nil {
			return nil, fmt.Errorf("kafka.%s.schema_registry: %w", cfg.Target, err)
		}
	}
	return e, nil
}

func (e *policyEngine) Close() {
	if e.schemas != nil {
		e.schemas.Close()
	}
}

// transformers returns the masking step of each Kafka pipeline whose records
// carry an Avro or JSON schema.
func (e *policyEngine) transformers() map[string]replicator.Transformer {
	out := map[string]replicator.Transformer{}
	if e.schemas == nil {
		return out
	}
	for _, p := range e.cfg.Pipelines {
		if p.Source.Kafka == "" {
			continue
		}
		switch p.Format {
		case "avro":
			out[p.Name] = &maskTransformer{e: e, pipeline: p.Name, typ: registry.Avro, ptype: policy.Avro}
		case "json":
			out[p.Name] = &maskTransformer{e: e, pipeline: p.Name, typ: registry.JSON, ptype: policy.JSON}
		case "protobuf":
			if e.cfg.Policies != "" {
				e.log.Warn("policies do not apply to protobuf pipelines yet; its records are not masked", "pipeline", p.Name)
			}
		}
	}
	return out
}

// maskTransformer masks one pipeline's records after schema-id translation.
type maskTransformer struct {
	e        *policyEngine
	pipeline string
	typ      registry.SchemaType
	ptype    policy.SchemaType
}

func (m *maskTransformer) Transform(ctx context.Context, rec *replicator.Record) error {
	e := m.e
	var set *policy.Set
	if b := e.active.Load(); b != nil {
		set = b.set
	} else if e.cfg.Policies != "" {
		// Not a rejection: the bundle arrives with the Raft log shortly.
		return errors.New("waiting for the cluster's policy bundle")
	}
	if rec.Value == nil {
		return nil // a tombstone has nothing to mask
	}
	ref, n, err := registry.ReadRef(rec.Value, m.typ)
	if err != nil {
		return replicator.Reject(policy.ReasonUndecodable, "value: %v", err)
	}
	schema, err := e.schema(ctx, int(ref.ID), m.ptype)
	if err != nil {
		if errors.Is(err, registry.ErrSchemaNotFound) {
			return replicator.Reject(policy.ReasonUndecodable, "schema id %d not in the target registry", ref.ID)
		}
		return err
	}
	plan, err := e.cache.Plan(set, m.pipeline, rec.SourceTopic, schema)
	if err != nil {
		return replicator.Reject("policy-error", "compiling policies for schema %d: %v", ref.ID, err)
	}
	if !plan.Touches() {
		return nil
	}
	out, res, err := plan.Apply(rec.Value[n:])
	if err != nil {
		var v *policy.Violation
		if errors.As(err, &v) {
			return replicator.Reject(v.Reason, "%s", v.Error())
		}
		return replicator.Reject(policy.ReasonUndecodable, "%v", err)
	}
	rec.Value = append(rec.Value[:n:n], out...)
	if h := res.Header(); h != "" {
		rec.Headers = append(rec.Headers, kafka.Header{Key: HeaderPolicy, Value: []byte(h)})
		for _, t := range res.Touches {
			e.masked.WithLabelValues(m.pipeline, t.Policy, string(t.Action)).Add(float64(max(t.Count, 1)))
		}
	}
	return nil
}

// schema fetches a writer schema and the schemas it references.
func (e *policyEngine) schema(ctx context.Context, id int, typ policy.SchemaType) (policy.Schema, error) {
	s, err := e.schemas.SchemaByID(ctx, id)
	if err != nil {
		return policy.Schema{}, err
	}
	ps := policy.Schema{Type: typ, Text: s.Text, ID: id, Name: s.Subject}
	var refs func(rs []registry.Reference, depth int) error
	refs = func(rs []registry.Reference, depth int) error {
		if depth > 16 {
			return fmt.Errorf("schema %d: references nested too deep", id)
		}
		for _, r := range rs {
			rs, err := e.schemas.SchemaByVersion(ctx, r.Subject, r.Version)
			if err != nil {
				return err
			}
			if err := refs(rs.References, depth+1); err != nil {
				return err
			}
			ps.References = append(ps.References, rs.Text)
		}
		return nil
	}
	if err := refs(s.References, 0); err != nil {
		return policy.Schema{}, err
	}
	return ps, nil
}

// follow applies each bundle the Raft log delivers.
func (e *policyEngine) follow(ctx context.Context, bundles <-chan coord.PolicyBundle) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-bundles:
			set, err := policy.Decode(b.Data)
			if err != nil {
				// Every node applies the same bytes; a bundle this node cannot read
				// (an older binary) keeps the previous one active, loudly.
				e.log.Error("cannot apply the cluster's policy bundle; keeping the previous one", "bundle", b.Version, "index", b.AppliedIndex, "err", err)
				continue
			}
			e.active.Store(&activeBundle{set: set, bundle: b})
			e.versions.Reset()
			for _, p := range set.Policies {
				e.versions.WithLabelValues(p.Name).Set(float64(p.Version))
			}
			e.log.Info("policy bundle applied", "bundle", b.Version, "index", b.AppliedIndex, "hash", b.Hash, "policies", set.Versions())
		}
	}
}

// watch proposes valid changes of the policy folder through the Raft log;
// invalid ones are rejected with their errors and the active bundle stays.
func (e *policyEngine) watch(ctx context.Context, cn *coord.Node) {
	if e.cfg.Policies == "" {
		return
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	seen := ""
	for {
		fp, err := folderFingerprint(e.cfg.Policies)
		if err != nil {
			e.reject(fmt.Errorf("reading policy folder: %w", err))
		} else if fp != seen {
			if e.propose(ctx, cn) {
				seen = fp
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-e.reload:
			seen = ""
		}
	}
}

// propose loads, checks and proposes the folder; it reports whether the folder
// was dealt with (proposed, rejected, or already active).
func (e *policyEngine) propose(ctx context.Context, cn *coord.Node) bool {
	set, err := policy.LoadDir(e.cfg.Policies)
	if err != nil {
		e.reject(err)
		return true
	}
	var active *policy.Set
	var version int64
	if b := e.active.Load(); b != nil {
		if b.bundle.Hash == set.Hash() {
			e.clearError()
			return true
		}
		active, version = b.set, b.bundle.Version
	}
	if err := set.CheckAgainst(active); err != nil {
		e.reject(err)
		return true
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	idx, err := cn.ProposePolicy(pctx, version+1, set.Encode(), set.Hash(), e.cfg.Policies)
	switch {
	case err == nil:
		e.clearError()
		e.log.Info("policy change proposed", "bundle", version+1, "index", idx, "policies", set.Versions())
		return true
	case errors.Is(err, coord.ErrStalePolicy):
		// Another node proposed the same change first; its bundle arrives.
		return true
	default:
		e.log.Warn("proposing the policy change failed; retrying", "err", err)
		return false
	}
}

func (e *policyEngine) reject(err error) {
	e.reloadErrors.Inc()
	e.log.Error("policy change rejected; the active bundle stays", "err", err)
	e.mu.Lock()
	e.lastErr, e.errAt = err.Error(), time.Now()
	e.mu.Unlock()
}

func (e *policyEngine) clearError() {
	e.mu.Lock()
	e.lastErr = ""
	e.mu.Unlock()
}

// PolicyStatus is the policy part of /v1/status: the audit trail of the active
// bundle and the last rejected change.
type PolicyStatus struct {
	Bundle      int64             `json:"bundle"`
	Hash        string            `json:"hash,omitempty"`
	Source      string            `json:"source,omitempty"`
	AppliedAt   time.Time         `json:"applied_at,omitzero"`
	AppliedIdx  uint64            `json:"applied_index,omitempty"`
	Policies    map[string]int64  `json:"policies,omitempty"`
	Files       map[string]string `json:"files,omitempty"`
	LastError   string            `json:"last_error,omitempty"`
	LastErrorAt time.Time         `json:"last_error_at,omitzero"`
}

func (e *policyEngine) status() PolicyStatus {
	var st PolicyStatus
	if b := e.active.Load(); b != nil {
		st.Bundle, st.Hash, st.Source, st.AppliedAt, st.AppliedIdx = b.bundle.Version, b.bundle.Hash, b.bundle.Source, b.bundle.AppliedAt, b.bundle.AppliedIndex
		st.Policies = map[string]int64{}
		for _, p := range b.set.Policies {
			st.Policies[p.Name] = p.Version
		}
		st.Files = map[string]string{}
		for _, f := range b.set.Files {
			st.Files[f.Name] = f.SHA256
		}
	}
	e.mu.Lock()
	st.LastError, st.LastErrorAt = e.lastErr, e.errAt
	e.mu.Unlock()
	return st
}

// reloadHandler serves POST /v1/policies/reload: check the folder now.
func (e *policyEngine) reloadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.cfg.Policies == "" {
			replicator.WriteJSON(w, http.StatusConflict, map[string]string{"error": "no policies folder configured"})
			return
		}
		select {
		case e.reload <- struct{}{}:
		default:
		}
		replicator.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "reload requested"})
	})
}

// folderFingerprint changes when a policy file is added, removed or edited.
func folderFingerprint(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var names []string
	for _, en := range entries {
		if en.IsDir() {
			continue
		}
		names = append(names, en.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(b)
		h.Write([]byte(n + "\x00" + hex.EncodeToString(sum[:]) + "\x00" + strconv.Itoa(len(b)) + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
