package governance

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
)

// StepConfig describes the governance of one pipeline.
type StepConfig struct {
	// Pipeline is the pipeline's name: policies are scoped by it.
	Pipeline string
	// Format is the pipeline's format: avro, json, protobuf or bytes.
	Format string
	// PubSub marks a Pub/Sub pipeline: its records carry plain JSON (validated
	// against PubSubSchema when set), not Confluent's wire format.
	PubSub bool
	// PubSubSchema is pipelines[].pubsub.schema; nil: no validation.
	PubSubSchema *config.PubSubSchema
	// Translation translates schema ids into the target registry first (Kafka
	// pipelines whose format carries a schema); nil: none.
	Translation *Translation
	// Ungoverned is governance: none: the pipeline's records are translated but
	// never masked, and no policy may apply to it.
	Ungoverned bool
}

// Step is the governance of one pipeline's records, the same code on the Kafka
// and the Pub/Sub path: translate the schema ids (Kafka), validate (Pub/Sub
// JSON Schema), locate each part's writer schema — in the payload or in a
// __key/__value_schema_id header, by id or GUID — mask the value with the
// active bundle, and stamp tributary-policy. It fails closed: a record it
// cannot decode, whose schema it cannot read, or that a policy applies to but
// that it cannot mask never lands.
type Step struct {
	g           *Masking
	cfg         StepConfig
	typ         registry.SchemaType // the wire format's schema type; "" for bytes
	ptype       policy.SchemaType   // how policy reads the value; "" when it cannot
	validations *prometheus.CounterVec
}

var _ Transformer = (*Step)(nil)

// Step returns the governance step of a pipeline.
func (g *Masking) Step(c StepConfig) (*Step, error) {
	s := &Step{g: g, cfg: c}
	switch c.Format {
	case "avro":
		s.typ, s.ptype = registry.Avro, policy.Avro
	case "json":
		s.typ, s.ptype = registry.JSON, policy.JSON
	case "protobuf":
		s.typ = registry.Protobuf // masked once policy reads Protobuf; until then fail closed
	case "bytes", "":
	default:
		return nil, fmt.Errorf("pipeline %s: format %q has no governance", c.Pipeline, c.Format)
	}
	if c.PubSub && c.Format != "json" {
		s.typ, s.ptype = "", ""
	}
	if s.typ != "" && !c.PubSub && g.schemas == nil {
		// Without the target's registry no writer schema can be read.
		s.ptype = ""
	}
	if c.PubSubSchema != nil {
		if g.schemas == nil { // config validation requires the target registry
			return nil, fmt.Errorf("pipeline %s: pubsub.schema needs the target's schema_registry", c.Pipeline)
		}
		s.validations = g.m.validations.MustCurryWith(prometheus.Labels{"pipeline": c.Pipeline})
		s.validations.WithLabelValues("valid")
		s.validations.WithLabelValues("invalid")
	}
	return s, nil
}

// Maskable reports whether the step can mask the pipeline's records. A policy
// that applies to a pipeline whose records cannot be masked stops it.
func (s *Step) Maskable() bool { return s.ptype != "" }

// Validates reports whether the step validates Pub/Sub messages against a
// schema, so the bridge must map their schema revisions (MapSchema).
func (s *Step) Validates() bool { return s.cfg.PubSubSchema != nil }

// MapSchema maps a message's Pub/Sub schema revision to the configured subject
// and the version pipelines[].pubsub.schema.revisions gives it (else the
// configured version, else the latest).
func (s *Step) MapSchema(_ context.Context, ps PubSubSchema) (PubSubSchema, error) {
	ps.Subject, ps.Version = s.cfg.PubSubSchema.Subject, s.cfg.PubSubSchema.Version
	if v, ok := s.cfg.PubSubSchema.Revisions[ps.RevisionID]; ok {
		ps.Version = v
	}
	return ps, nil
}

// Transform governs one record.
func (s *Step) Transform(ctx context.Context, rec *Record) error {
	set, err := s.g.set()
	if err != nil {
		return err
	}
	if s.cfg.Translation != nil {
		if err := s.cfg.Translation.Transform(ctx, rec); err != nil {
			return err
		}
	}
	if s.cfg.Ungoverned {
		return nil
	}
	scope := rec.SourceTopic
	if !s.Maskable() {
		if p := applying(set, s.cfg.Pipeline, scope); p != nil {
			// Not a rejection: no record of this pipeline may land while a
			// policy applies to it, so the pipeline stops (and says why).
			return &UnmaskableError{Pipeline: s.cfg.Pipeline, Format: s.cfg.Format, Policy: p.Ref()}
		}
		return nil
	}
	var res policy.Result
	if s.cfg.PubSub {
		err = s.pubsubValue(ctx, set, rec, &res)
	} else {
		err = s.kafkaValue(ctx, set, rec, &res)
	}
	if err != nil {
		return err
	}
	s.g.stamp(s.cfg.Pipeline, rec, res)
	return nil
}

// kafkaValue masks a Kafka record's value with its writer schema from the
// target registry, wherever the record carries the schema reference.
func (s *Step) kafkaValue(ctx context.Context, set *policy.Set, rec *Record, res *policy.Result) error {
	if rec.Value == nil {
		return nil // a tombstone has nothing to mask
	}
	_, vl, err := registry.Locate(nil, rec.Value, registryHeaders(rec), s.typ, registry.KeyPlain)
	if err != nil {
		return Reject(policy.ReasonUndecodable, "value: %v", err)
	}
	if vl.Place == registry.Absent {
		return Reject(policy.ReasonUndecodable, "value: no schema reference in the payload or in the %s header", registry.ValueSchemaIDHeader)
	}
	schema, err := s.g.schema(ctx, vl.Ref, s.ptype)
	if err != nil {
		if errors.Is(err, registry.ErrSchemaNotFound) {
			return Reject(policy.ReasonUndecodable, "schema %v not in the target registry", vl.Ref)
		}
		return err
	}
	plan, err := s.g.cache.Plan(set, s.cfg.Pipeline, rec.SourceTopic, schema)
	if err != nil {
		return Reject("policy-error", "compiling policies for schema %v: %v", vl.Ref, err)
	}
	if !plan.Touches() {
		return nil
	}
	body := rec.Value[vl.Len:]
	out, r, err := plan.Apply(body)
	if err != nil {
		return rejectMasking(err)
	}
	rec.Value = append(rec.Value[:vl.Len:vl.Len], out...)
	res.Touches = append(res.Touches, r.Touches...)
	if r.KeyID != "" {
		res.KeyID = r.KeyID
	}
	return nil
}

// pubsubValue validates a Pub/Sub message's JSON against its schema subject
// (when the pipeline has one) and masks it.
func (s *Step) pubsubValue(ctx context.Context, set *policy.Set, rec *Record, res *policy.Result) error {
	ps := policy.Schema{Type: policy.JSON}
	if c := s.cfg.PubSubSchema; c != nil {
		subject, version := rec.Schema.Subject, rec.Schema.Version
		if subject == "" { // no googclient_schema* attributes
			subject, version = c.Subject, c.Version
		}
		v, err := s.g.validator().Schema(ctx, subject, version)
		if err == nil {
			err = v.Validate(rec.Value)
		}
		var re *registry.RecordError
		switch {
		case errors.As(err, &re):
			s.validations.WithLabelValues("invalid").Inc()
			return Reject(re.Reason, "%s", re.Msg)
		case err != nil:
			return fmt.Errorf("JSON Schema of subject %q: %w", subject, err) // registry outage: retried
		}
		s.validations.WithLabelValues("valid").Inc()
		ps, err = s.g.schema(ctx, registry.SchemaRef{Magic: registry.MagicID, ID: int32(v.ID)}, policy.JSON)
		if err != nil {
			return fmt.Errorf("JSON Schema of subject %q: %w", subject, err)
		}
		ps.Name = fmt.Sprintf("%s version %d", v.Subject, v.Version)
	}
	plan, err := s.g.cache.Plan(set, s.cfg.Pipeline, rec.SourceTopic, ps)
	if err != nil {
		return Reject("policy-error", "compiling policies: %v", err)
	}
	if !plan.Touches() {
		return nil
	}
	out, r, err := plan.Apply(rec.Value)
	if err != nil {
		return rejectMasking(err)
	}
	rec.Value = out
	res.Touches = append(res.Touches, r.Touches...)
	if r.KeyID != "" {
		res.KeyID = r.KeyID
	}
	return nil
}

// applying returns the first policy of set that applies to the pipeline's
// records from source topic (or subscription) scope, nil when none does.
func applying(set *policy.Set, pipeline, scope string) *policy.Policy {
	if set == nil {
		return nil
	}
	for _, p := range set.Policies {
		if p.Applies(pipeline, scope) {
			return p
		}
	}
	return nil
}

// registryHeaders is rec's headers as registry.Locate reads them.
func registryHeaders(rec *Record) []registry.Header {
	if len(rec.Headers) == 0 {
		return nil
	}
	hs := make([]registry.Header, len(rec.Headers))
	for i, h := range rec.Headers {
		hs[i] = registry.Header{Key: h.Key, Value: h.Value}
	}
	return hs
}

// UnmaskableError stops a pipeline that a policy applies to but whose records
// cannot be masked (format bytes, or a format the masker does not read). It is
// not a rejection: nothing of the pipeline lands until the policy no longer
// applies or the pipeline says governance: none.
type UnmaskableError struct {
	Pipeline, Format, Policy string
}

func (e *UnmaskableError) Error() string {
	return fmt.Sprintf("pipeline %s: policy %s applies to it but its records (format %s) cannot be masked; "+
		"the pipeline stays stopped until the policy no longer applies or the pipeline says governance: none",
		e.Pipeline, e.Policy, e.Format)
}
