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

// PubSubJSON is the governance of a format json Pub/Sub pipeline: JSON Schema
// validation against the target registry when pipelines[].pubsub.schema is
// set, then the active policy bundle (by field path, and by the schema's PII
// tags when there is a schema).
type PubSubJSON struct {
	g                      *Masking
	pipeline, subscription string
	schema                 *config.PubSubSchema // nil: no validation
	val                    *registry.JSONValidator
	validations            *prometheus.CounterVec // result
}

var _ Transformer = (*PubSubJSON)(nil)

// PubSubJSON returns the governance step of a JSON Pub/Sub pipeline reading
// subscription; schema (may be nil) is its pipelines[].pubsub.schema.
func (g *Masking) PubSubJSON(pipeline, subscription string, schema *config.PubSubSchema) (*PubSubJSON, error) {
	p := &PubSubJSON{g: g, pipeline: pipeline, subscription: subscription}
	if schema != nil {
		if g.schemas == nil { // config validation requires the target registry
			return nil, fmt.Errorf("pipeline %s: pubsub.schema needs the target's schema_registry", pipeline)
		}
		p.schema, p.val = schema, g.validator()
		p.validations = g.m.validations.MustCurryWith(prometheus.Labels{"pipeline": pipeline})
		p.validations.WithLabelValues("valid")
		p.validations.WithLabelValues("invalid")
	}
	return p, nil
}

// validator returns the Masking's one JSON Schema validator.
func (g *Masking) validator() *registry.JSONValidator {
	g.valOnce.Do(func() { g.val = registry.NewJSONValidator(g.schemas) })
	return g.val
}

// Validates reports whether the pipeline validates messages against a schema,
// so its messages need MapSchema.
func (p *PubSubJSON) Validates() bool { return p.schema != nil }

// MapSchema maps a message's Pub/Sub schema revision to the configured subject
// and the version pipelines[].pubsub.schema.revisions gives it (else the
// configured version, else the latest).
func (p *PubSubJSON) MapSchema(_ context.Context, s PubSubSchema) (PubSubSchema, error) {
	s.Subject, s.Version = p.schema.Subject, p.schema.Version
	if v, ok := p.schema.Revisions[s.RevisionID]; ok {
		s.Version = v
	}
	return s, nil
}

// Transform validates and masks one message's JSON value.
func (p *PubSubJSON) Transform(ctx context.Context, rec *Record) error {
	set, err := p.g.set()
	if err != nil {
		return err
	}
	ps := policy.Schema{Type: policy.JSON}
	if p.schema != nil {
		subject, version := rec.Schema.Subject, rec.Schema.Version
		if subject == "" { // no googclient_schema* attributes
			subject, version = p.schema.Subject, p.schema.Version
		}
		s, err := p.val.Schema(ctx, subject, version)
		if err == nil {
			err = s.Validate(rec.Value)
		}
		var re *registry.RecordError
		switch {
		case errors.As(err, &re):
			p.validations.WithLabelValues("invalid").Inc()
			return Reject(re.Reason, "%s", re.Msg)
		case err != nil:
			return fmt.Errorf("JSON Schema of subject %q: %w", subject, err) // registry outage: retried
		}
		p.validations.WithLabelValues("valid").Inc()
		ps = policy.Schema{Type: policy.JSON, Text: s.Text, ID: s.ID, Name: fmt.Sprintf("%s version %d", s.Subject, s.Version)}
	}
	plan, err := p.g.cache.Plan(set, p.pipeline, p.subscription, ps)
	if err != nil {
		return Reject("policy-error", "compiling policies: %v", err)
	}
	if !plan.Touches() {
		return nil // the bridge checked the JSON syntax before
	}
	out, res, err := plan.Apply(rec.Value)
	if err != nil {
		return rejectMasking(err)
	}
	rec.Value = out
	p.g.stamp(p.pipeline, rec, res)
	return nil
}
