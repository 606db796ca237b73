package governance

import (
	"context"
	"errors"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/registry"
)

// Translation is the schema step of a Kafka pipeline whose format carries a
// schema: it checks each record's writer schema against the target subject,
// registers it in the target registry and rewrites the schema id (payload or
// header). Record errors (garbage, unknown ids, incompatible schemas) become
// rejections; a registry outage is returned as is, so the task pauses.
type Translation struct {
	tr      *registry.Translator
	results *prometheus.CounterVec // result
}

// NewTranslation adapts tr. results counts translations by result
// ("translated", a registry.RecordError reason, "registry-unavailable"); it is
// the pipeline's curried tributary_schema_translations_total.
func NewTranslation(tr *registry.Translator, results *prometheus.CounterVec) *Translation {
	return &Translation{tr: tr, results: results}
}

// Transform translates rec's key and value schema ids into the target registry.
func (s *Translation) Transform(ctx context.Context, rec *Record) error {
	hs := make([]registry.Header, len(rec.Headers))
	for i, h := range rec.Headers {
		hs[i] = registry.Header{Key: h.Key, Value: h.Value}
	}
	res, err := s.tr.Translate(ctx, rec.TargetTopic, rec.Key, rec.Value, hs)
	if err != nil {
		var re *registry.RecordError
		if errors.As(err, &re) {
			s.results.WithLabelValues(re.Reason).Inc()
			return &RejectError{Reason: re.Reason, Msg: re.Msg}
		}
		s.results.WithLabelValues("registry-unavailable").Inc()
		return err
	}
	s.results.WithLabelValues("translated").Inc()
	rec.Key, rec.Value = res.Key, res.Value
	if len(hs) > 0 && len(res.Headers) == len(hs) && &res.Headers[0] == &hs[0] {
		// No schema-id header was rewritten (the translator copies the
		// headers before it changes one): the record keeps its own.
		return nil
	}
	if len(res.Headers) > 0 || len(rec.Headers) > 0 {
		out := make([]kafka.Header, len(res.Headers))
		for i, h := range res.Headers {
			out[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
		rec.Headers = out
	}
	return nil
}
