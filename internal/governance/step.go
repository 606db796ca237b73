package governance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
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
	// KeyHeaders name the headers a Pub/Sub record's key is copied from (its
	// key_attribute, the ordering-key header): when a header rule masks the
	// header the key came from and no key rule touched the key, the key takes
	// the header's masked value, so the raw value does not land as the key.
	KeyHeaders []string
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
		s.typ, s.ptype = registry.Protobuf, policy.Protobuf
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
	origKey := rec.Key
	if s.cfg.PubSub {
		err = s.pubsubValue(ctx, set, rec, &res)
		if err == nil {
			err = s.rawKey(set, rec, &res)
		}
	} else {
		err = s.kafkaParts(ctx, set, rec, &res)
	}
	if err != nil {
		return err
	}
	if err := s.headers(set, rec, origKey, &res); err != nil {
		return err
	}
	s.g.stamp(s.cfg.Pipeline, rec, res)
	return nil
}

// kafkaParts masks a Kafka record's key and value, each with its writer
// schema from the target registry wherever the record carries the reference
// (payload or header); a key without a reference is masked as a plain key.
func (s *Step) kafkaParts(ctx context.Context, set *policy.Set, rec *Record, res *policy.Result) error {
	kl, vl, err := registry.Locate(rec.Key, rec.Value, registryHeaders(rec), s.typ, registry.KeyDetect)
	if err != nil {
		return Reject(policy.ReasonUndecodable, "%v", err)
	}
	if err := s.kafkaValue(ctx, set, rec, vl, res); err != nil {
		return err
	}
	if rec.Key == nil {
		return nil
	}
	if kl.Place == registry.Absent {
		return s.rawKey(set, rec, res)
	}
	out, err := s.maskFramed(ctx, set, policy.Key, "key", rec.SourceTopic, rec.Key, kl, res)
	if err != nil {
		return err
	}
	rec.Key = out
	return nil
}

// rawKey masks a key without a schema (a plain string such as a VIN) with the
// rules that match the whole key. A nil result is a null key (drop).
func (s *Step) rawKey(set *policy.Set, rec *Record, res *policy.Result) error {
	if rec.Key == nil {
		return nil
	}
	plan, err := s.g.cache.PlanPart(set, s.cfg.Pipeline, rec.SourceTopic, policy.Key, policy.Schema{Type: policy.Raw})
	if err != nil {
		return Reject("policy-error", "compiling key policies: %v", err)
	}
	if !plan.Touches() {
		return nil
	}
	out, r, err := plan.Apply(rec.Key)
	if err != nil {
		return rejectMasking(err)
	}
	rec.Key = out
	res.Merge(r)
	return nil
}

// headers masks the record's headers (Pub/Sub attributes included) with the
// header rules. The schema-id headers and tributary's own provenance headers
// are not the record's data and are left alone. A Pub/Sub key and the header
// it was copied from (KeyHeaders) never disagree: when a key rule changed the
// key, the header takes the masked key; when a header rule changed the header,
// the key takes the masked header. origKey is the key before key rules ran.
func (s *Step) headers(set *policy.Set, rec *Record, origKey []byte, res *policy.Result) error {
	if len(rec.Headers) == 0 {
		return nil
	}
	hp, err := s.g.cache.Headers(set, s.cfg.Pipeline, rec.SourceTopic)
	if err != nil {
		return Reject("policy-error", "compiling header policies: %v", err)
	}
	keyTouched := !bytes.Equal(origKey, rec.Key) || (origKey == nil) != (rec.Key == nil)
	if !hp.Touches() && !keyTouched {
		return nil
	}
	out := make([]kafka.Header, 0, len(rec.Headers))
	changed := false
	newKey, keyFromHeader := rec.Key, false
	for _, h := range rec.Headers {
		if isMetadataHeader(h.Key) {
			out = append(out, h)
			continue
		}
		keySource := origKey != nil && slices.Contains(s.cfg.KeyHeaders, h.Key) && bytes.Equal(origKey, h.Value)
		if keySource && keyTouched {
			changed = true
			if rec.Key != nil {
				out = append(out, kafka.Header{Key: h.Key, Value: rec.Key})
			}
			continue
		}
		v, keep := h.Value, true
		if hp.Touches() {
			if v, keep, err = hp.Apply(h.Key, h.Value, res); err != nil {
				return rejectMasking(err)
			}
		}
		if keep && bytes.Equal(v, h.Value) && (v == nil) == (h.Value == nil) {
			out = append(out, h)
			continue
		}
		changed = true
		if keySource && !keyFromHeader {
			// The key is a copy of this header: it must not keep the raw value.
			newKey, keyFromHeader = v, true
			if !keep {
				newKey = nil
			}
		}
		if keep {
			out = append(out, kafka.Header{Key: h.Key, Value: v})
		}
	}
	if changed {
		rec.Headers = out
		rec.Key = newKey
	}
	return nil
}

// isMetadataHeader reports whether a header is schema or provenance metadata
// that header rules never touch: the schema-id headers and the headers
// tributary writes, by exact name (a producer's "tributary-ssn" is data).
func isMetadataHeader(name string) bool {
	switch name {
	case registry.KeySchemaIDHeader, registry.ValueSchemaIDHeader,
		HeaderPolicy, HeaderOrigin, HeaderOriginTopic, HeaderOriginPartition, HeaderOriginOffset:
		return true
	}
	return false
}

// kafkaValue masks a Kafka record's value with its writer schema, located at
// vl (payload or header). A tombstone has nothing to mask.
func (s *Step) kafkaValue(ctx context.Context, set *policy.Set, rec *Record, vl registry.Location, res *policy.Result) error {
	if rec.Value == nil {
		return nil
	}
	if vl.Place == registry.Absent {
		return Reject(policy.ReasonUndecodable, "value: no schema reference in the payload or in the %s header", registry.ValueSchemaIDHeader)
	}
	out, err := s.maskFramed(ctx, set, policy.Value, "value", rec.SourceTopic, rec.Value, vl, res)
	if err != nil {
		return err
	}
	rec.Value = out
	return nil
}

// maskFramed masks one part (key or value) whose writer schema l locates: the
// body after the payload's reference, or the whole payload when the
// reference is in a header.
func (s *Step) maskFramed(ctx context.Context, set *policy.Set, part policy.Part, name, topic string, payload []byte, l registry.Location, res *policy.Result) ([]byte, error) {
	schema, err := s.g.schema(ctx, l.Ref, s.ptype)
	if err == nil && s.ptype == policy.Protobuf {
		// The indexes select the record's message in the schema's file.
		schema.ProtoIndexes = l.Ref.Indexes
	}
	if err != nil {
		if errors.Is(err, registry.ErrSchemaNotFound) {
			return nil, Reject(policy.ReasonUndecodable, "%s: schema %v not in the target registry", name, l.Ref)
		}
		if errors.Is(err, registry.ErrGUIDUnsupported) {
			// Not an outage: this registry will never resolve the GUID.
			return nil, Reject(policy.ReasonUndecodable, "%s: schema %v: the target registry does not serve schemas by GUID", name, l.Ref)
		}
		return nil, err
	}
	plan, err := s.g.cache.PlanPart(set, s.cfg.Pipeline, topic, part, schema)
	if err != nil {
		return nil, Reject("policy-error", "compiling %s policies for schema %v: %v", name, l.Ref, err)
	}
	if !plan.Touches() {
		return payload, nil
	}
	n := 0
	if l.Place == registry.InPayload {
		n = l.Len
	}
	out, r, err := plan.Apply(payload[n:])
	if err != nil {
		return nil, rejectMasking(err)
	}
	res.Merge(r)
	return append(payload[:n:n], out...), nil
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
	res.Merge(r)
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
