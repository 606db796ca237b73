package governance

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
)

// ErrNoBundle is returned (not a rejection: the caller retries) while a node
// waits for the cluster's policy bundle from the Raft log: no record is masked
// before this node knows which bundle is active.
var ErrNoBundle = errors.New("governance: waiting for the cluster's policy bundle")

// Limits of the writer schemas masking reads.
const (
	// maxReferenceDepth bounds how deep schema references are followed.
	maxReferenceDepth = 16
	// maxReferences bounds the distinct schemas one writer schema references.
	maxReferences = 256
	// maxCachedSchemas bounds the schema cache; past it the cache starts over.
	maxCachedSchemas = 4096
)

// Masking holds the cluster-wide active policy bundle and what masking needs
// to read records: the target registry, the compiled-plan cache and a cache of
// writer schemas with their references. The bundle changes only when the Raft
// log applies a new one (Activate), so every node switches at the same log
// index and each record is masked by exactly one bundle. Its methods are safe
// for concurrent use; Step makes the per-pipeline governance step.
type Masking struct {
	state   atomic.Pointer[bundleState]
	cache   *policy.Cache
	schemas *registry.Client // the target's registry: records are masked after translation
	m       *metrics

	valOnce sync.Once
	val     *registry.JSONValidator // Pub/Sub JSON Schema validation, made on first use

	mu      sync.Mutex // guards written
	written map[schemaKey]policy.Schema
	flight  singleflight.Group
}

// schemaKey names a cached writer schema.
type schemaKey struct {
	magic byte
	id    int32
	guid  [16]byte
	typ   policy.SchemaType
}

// bundleState is what this node knows of the cluster's bundle.
type bundleState struct {
	set *policy.Set // nil: the cluster has no bundle
	err error       // non-nil: records wait (ErrNoBundle, or a bundle this node cannot apply)
}

// MaskingOptions configure a Masking.
type MaskingOptions struct {
	// Schemas is the target cluster's registry client (shared with schema
	// translation, which registers the schemas masking reads). Nil when the
	// target has no registry: records with a schema cannot be masked then.
	Schemas *registry.Client
	// WaitForBundle makes records wait (ErrNoBundle) until Activate or
	// NoBundle was called: the daemon sets it, so that no node masks before
	// it knows the cluster's bundle. Without it a Masking starts with no
	// policies (tools and tests).
	WaitForBundle bool
	// HashKey is the HMAC key of hash actions; nil quarantines records that
	// hash rules apply to.
	HashKey []byte
	// Registerer takes tributary_masked_fields_total and
	// tributary_pubsub_schema_validations_total; nil registers nothing.
	Registerer prometheus.Registerer
}

// NewMasking returns a Masking with no active bundle.
func NewMasking(opts MaskingOptions) *Masking {
	var popts []policy.Option
	if opts.HashKey != nil {
		popts = append(popts, policy.WithHashKey(opts.HashKey))
	}
	g := &Masking{
		cache:   policy.NewCache(popts...),
		schemas: opts.Schemas,
		m:       newMetrics(opts.Registerer),
		written: map[schemaKey]policy.Schema{},
	}
	st := &bundleState{}
	if opts.WaitForBundle {
		st.err = ErrNoBundle
	}
	g.state.Store(st)
	return g
}

// Activate makes set the bundle every following record is masked with.
func (g *Masking) Activate(set *policy.Set) { g.state.Store(&bundleState{set: set}) }

// NoBundle says the cluster has no policy bundle (this node has caught up with
// the Raft log and found none): records are governed with no policies, so
// PII-tagged fields are quarantined as uncovered.
func (g *Masking) NoBundle() { g.state.Store(&bundleState{}) }

// Unusable stops masking: the cluster's bundle cannot be applied on this node
// (err says why), so records wait instead of being masked with an older one.
func (g *Masking) Unusable(err error) { g.state.Store(&bundleState{err: err}) }

// Active returns the active bundle, nil when there is none.
func (g *Masking) Active() *policy.Set { return g.state.Load().set }

// Ready reports whether records can be governed now, and why not.
func (g *Masking) Ready() error { return g.state.Load().err }

// Schemas returns the target registry client, nil when there is none.
func (g *Masking) Schemas() *registry.Client { return g.schemas }

// set returns the bundle to mask with, or why records must wait.
func (g *Masking) set() (*policy.Set, error) {
	st := g.state.Load()
	return st.set, st.err
}

// Kafka returns the masking step of a Kafka pipeline whose records carry a
// schema of type typ (Avro or JSON) in the target registry; ok is false when
// records of that type cannot be masked here.
func (g *Masking) Kafka(pipeline string, typ registry.SchemaType) (t Transformer, ok bool) {
	s, err := g.Step(StepConfig{Pipeline: pipeline, Format: strings.ToLower(string(typ))})
	if err != nil || !s.Maskable() {
		return nil, false
	}
	return s, true
}

// PubSubJSON returns the governance step of a format json Pub/Sub pipeline;
// schema (may be nil) is its pipelines[].pubsub.schema.
func (g *Masking) PubSubJSON(pipeline string, schema *config.PubSubSchema) (*Step, error) {
	return g.Step(StepConfig{Pipeline: pipeline, Format: "json", PubSub: true, PubSubSchema: schema})
}

// validator returns the Masking's one JSON Schema validator.
func (g *Masking) validator() *registry.JSONValidator {
	g.valOnce.Do(func() { g.val = registry.NewJSONValidator(g.schemas) })
	return g.val
}

// rejectMasking turns a plan's error into the record's rejection.
func rejectMasking(err error) error {
	var v *policy.Violation
	if errors.As(err, &v) {
		return Reject(v.Reason, "%s", v.Error())
	}
	return Reject(policy.ReasonUndecodable, "%v", err)
}

// stamp adds the tributary-policy header of a masking result and counts the
// masked fields.
func (g *Masking) stamp(pipeline string, rec *Record, res policy.Result) {
	h := res.Header()
	if h == "" {
		return
	}
	rec.Headers = append(rec.Headers, kafka.Header{Key: HeaderPolicy, Value: []byte(h)})
	for _, t := range res.Touches {
		g.m.masked.WithLabelValues(pipeline, t.Policy, string(t.Action)).Add(float64(max(t.Count, 1)))
	}
}

// schema returns the writer schema a reference names in the target registry,
// with the schemas it references (each once, dependencies first), from the
// cache after the first read: one registry read per schema.
func (g *Masking) schema(ctx context.Context, ref registry.SchemaRef, typ policy.SchemaType) (policy.Schema, error) {
	// Protobuf message indexes select a message of the schema, not a schema.
	key := schemaKey{magic: ref.Magic, id: ref.ID, guid: ref.GUID, typ: typ}
	ref = registry.SchemaRef{Magic: ref.Magic, ID: ref.ID, GUID: ref.GUID}
	g.mu.Lock()
	s, ok := g.written[key]
	g.mu.Unlock()
	if ok {
		return s, nil
	}
	v, err, _ := g.flight.Do(ref.String()+"/"+string(typ), func() (any, error) {
		// A call that missed the cache just before an earlier flight stored
		// the schema starts a flight of its own: look again before reading.
		g.mu.Lock()
		s, ok := g.written[key]
		g.mu.Unlock()
		if ok {
			return s, nil
		}
		s, err := g.readSchema(ctx, ref, typ)
		if err != nil {
			return nil, err
		}
		g.mu.Lock()
		if len(g.written) >= maxCachedSchemas {
			clear(g.written)
		}
		g.written[key] = s
		g.mu.Unlock()
		return s, nil
	})
	if err != nil {
		return policy.Schema{}, err
	}
	return v.(policy.Schema), nil
}

// readSchema reads a writer schema and its references from the registry. A
// schema past the bounds on references is a rejection: asking again gives the
// same answer, so retrying would stall the record's partition for ever.
func (g *Masking) readSchema(ctx context.Context, ref registry.SchemaRef, typ policy.SchemaType) (policy.Schema, error) {
	var s *registry.Schema
	var err error
	if ref.Magic == registry.MagicGUID {
		s, err = g.schemas.SchemaByGUID(ctx, ref.GUID)
	} else {
		s, err = g.schemas.SchemaByID(ctx, int(ref.ID))
	}
	if err != nil {
		return policy.Schema{}, err
	}
	ps := policy.Schema{Type: typ, Text: s.Text, ID: s.ID, Name: s.Subject}
	if ps.Name == "" {
		ps.Name = ref.String()
	}
	seen := map[registry.Reference]bool{}
	var refs func(rs []registry.Reference, depth int) error
	refs = func(rs []registry.Reference, depth int) error {
		if depth > maxReferenceDepth {
			return Reject(policy.ReasonUndecodable, "schema %v: references nested deeper than %d", ref, maxReferenceDepth)
		}
		for _, r := range rs {
			key := registry.Reference{Subject: r.Subject, Version: r.Version}
			if seen[key] {
				continue
			}
			seen[key] = true
			if len(seen) > maxReferences {
				return Reject(policy.ReasonUndecodable, "schema %v: more than %d referenced schemas", ref, maxReferences)
			}
			rs, err := g.schemas.SchemaByVersion(ctx, r.Subject, r.Version)
			if err != nil {
				return err
			}
			if err := refs(rs.References, depth+1); err != nil {
				return err
			}
			ps.References = append(ps.References, rs.Text)
			ps.ReferenceNames = append(ps.ReferenceNames, r.Name)
		}
		return nil
	}
	if err := refs(s.References, 0); err != nil {
		return policy.Schema{}, err
	}
	return ps, nil
}
