package governance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
)

// ErrNoBundle is returned (not a rejection: the caller retries) while a node
// that must mask waits for the cluster's policy bundle from the Raft log.
var ErrNoBundle = errors.New("governance: waiting for the cluster's policy bundle")

// maxReferenceDepth bounds how deep schema references are followed.
const maxReferenceDepth = 16

// Masking masks records with the cluster-wide active policy bundle. The bundle
// changes only when the Raft log applies a new one (Activate), so every node
// switches at the same log index and each record is masked by exactly one
// bundle. Its methods are safe for concurrent use.
type Masking struct {
	active        atomic.Pointer[policy.Set]
	waitForBundle bool
	cache         *policy.Cache
	schemas       *registry.Client // the target's registry: records are masked after translation
	m             *metrics

	valOnce sync.Once
	val     *registry.JSONValidator // Pub/Sub JSON Schema validation, made on first use
}

// MaskingOptions configure a Masking.
type MaskingOptions struct {
	// Schemas is the target cluster's registry client (shared with schema
	// translation, which registers the schemas masking reads). Nil when the
	// target has no registry: Kafka pipelines are then not masked.
	Schemas *registry.Client
	// WaitForBundle makes records wait (ErrNoBundle) until Activate was called:
	// set on nodes that have a policy folder, whose bundle is on its way.
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
	return &Masking{
		waitForBundle: opts.WaitForBundle,
		cache:         policy.NewCache(popts...),
		schemas:       opts.Schemas,
		m:             newMetrics(opts.Registerer),
	}
}

// Activate makes set the bundle every following record is masked with.
func (g *Masking) Activate(set *policy.Set) { g.active.Store(set) }

// Active returns the active bundle, nil before the first Activate.
func (g *Masking) Active() *policy.Set { return g.active.Load() }

// Schemas returns the target registry client, nil when there is none.
func (g *Masking) Schemas() *registry.Client { return g.schemas }

// set returns the bundle to mask with: nil (no policies) on nodes that do not
// wait for one, ErrNoBundle on those that do.
func (g *Masking) set() (*policy.Set, error) {
	if s := g.active.Load(); s != nil {
		return s, nil
	}
	if g.waitForBundle {
		return nil, ErrNoBundle
	}
	return nil, nil
}

// Kafka returns the masking step of a Kafka pipeline whose records carry a
// schema of type typ (Avro or JSON) in the target registry, after translation;
// ok is false when records of that type cannot be masked here.
func (g *Masking) Kafka(pipeline string, typ registry.SchemaType) (t Transformer, ok bool) {
	if g.schemas == nil {
		return nil, false
	}
	switch typ {
	case registry.Avro:
		return &kafkaMask{g: g, pipeline: pipeline, typ: typ, ptype: policy.Avro}, true
	case registry.JSON:
		return &kafkaMask{g: g, pipeline: pipeline, typ: typ, ptype: policy.JSON}, true
	}
	return nil, false
}

// kafkaMask masks one Kafka pipeline's record values after schema-id
// translation, with the writer schema from the target registry.
type kafkaMask struct {
	g        *Masking
	pipeline string
	typ      registry.SchemaType
	ptype    policy.SchemaType
}

func (m *kafkaMask) Transform(ctx context.Context, rec *Record) error {
	set, err := m.g.set()
	if err != nil {
		return err
	}
	if rec.Value == nil {
		return nil // a tombstone has nothing to mask
	}
	ref, n, err := registry.ReadRef(rec.Value, m.typ)
	if err != nil {
		return Reject(policy.ReasonUndecodable, "value: %v", err)
	}
	schema, err := m.g.schema(ctx, int(ref.ID), m.ptype)
	if err != nil {
		if errors.Is(err, registry.ErrSchemaNotFound) {
			return Reject(policy.ReasonUndecodable, "schema id %d not in the target registry", ref.ID)
		}
		return err
	}
	plan, err := m.g.cache.Plan(set, m.pipeline, rec.SourceTopic, schema)
	if err != nil {
		return Reject("policy-error", "compiling policies for schema %d: %v", ref.ID, err)
	}
	if !plan.Touches() {
		return nil
	}
	out, res, err := plan.Apply(rec.Value[n:])
	if err != nil {
		return rejectMasking(err)
	}
	rec.Value = append(rec.Value[:n:n], out...)
	m.g.stamp(m.pipeline, rec, res)
	return nil
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

// schema fetches a writer schema and the schemas it references.
func (g *Masking) schema(ctx context.Context, id int, typ policy.SchemaType) (policy.Schema, error) {
	s, err := g.schemas.SchemaByID(ctx, id)
	if err != nil {
		return policy.Schema{}, err
	}
	ps := policy.Schema{Type: typ, Text: s.Text, ID: id, Name: s.Subject}
	var refs func(rs []registry.Reference, depth int) error
	refs = func(rs []registry.Reference, depth int) error {
		if depth > maxReferenceDepth {
			return fmt.Errorf("schema %d: references nested too deep", id)
		}
		for _, r := range rs {
			rs, err := g.schemas.SchemaByVersion(ctx, r.Subject, r.Version)
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
