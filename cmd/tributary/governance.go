package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/registry"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/metrics"
)

// schemaTransformers builds the schema-id translation of every Kafka pipeline
// whose format carries a schema: one registry client per cluster, one
// translator per pipeline. target is the target registry's client, shared
// with the policy engine (which masks with the schemas translation registers),
// so a new schema is fetched once; the caller closes it.
func schemaTransformers(cfg *config.Config, m *metrics.Set, target *registry.Client) (map[string]replicator.Transformer, func(), error) {
	clients := map[string]*registry.Client{}
	closeAll := func() {
		for _, c := range clients {
			c.Close()
		}
	}
	client := func(cluster string) (*registry.Client, error) {
		if cluster == cfg.Target && target != nil {
			return target, nil
		}
		if c, ok := clients[cluster]; ok {
			return c, nil
		}
		c, err := registry.NewClient(cfg.Kafka[cluster].SchemaRegistry, registry.ClientOptions{})
		if err != nil {
			return nil, fmt.Errorf("kafka.%s.schema_registry: %w", cluster, err)
		}
		clients[cluster] = c
		return c, nil
	}
	out := map[string]replicator.Transformer{}
	for _, p := range cfg.Pipelines {
		if p.Source.Kafka == "" || p.Format == "bytes" {
			continue
		}
		src, err := client(p.Source.Kafka)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		dst, err := client(cfg.Target)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		typ, err := registry.ParseSchemaType(p.Format)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("pipeline %s: %w", p.Name, err)
		}
		out[p.Name] = &schemaTransformer{
			tr: registry.NewTranslator(src, dst, registry.TranslatorOptions{Type: typ, Keys: registry.KeyDetect}),
			m:  m.SchemaTranslations.MustCurryWith(map[string]string{"pipeline": p.Name}),
		}
	}
	return out, closeAll, nil
}

// schemaTransformer adapts a registry.Translator to the replicator: record
// errors become quarantine rejections, registry outages pause the task.
type schemaTransformer struct {
	tr *registry.Translator
	m  *prometheus.CounterVec // result
}

func (s *schemaTransformer) Transform(ctx context.Context, rec *replicator.Record) error {
	hs := make([]registry.Header, len(rec.Headers))
	for i, h := range rec.Headers {
		hs[i] = registry.Header{Key: h.Key, Value: h.Value}
	}
	res, err := s.tr.Translate(ctx, rec.TargetTopic, rec.Key, rec.Value, hs)
	if err != nil {
		var re *registry.RecordError
		if errors.As(err, &re) {
			s.m.WithLabelValues(re.Reason).Inc()
			return &replicator.RejectError{Reason: re.Reason, Msg: re.Msg}
		}
		s.m.WithLabelValues("registry-unavailable").Inc()
		return err
	}
	s.m.WithLabelValues("translated").Inc()
	rec.Key, rec.Value = res.Key, res.Value
	if len(res.Headers) > 0 || len(rec.Headers) > 0 {
		out := make([]kafka.Header, len(res.Headers))
		for i, h := range res.Headers {
			out[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
		rec.Headers = out
	}
	return nil
}
