package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
	"github.com/tributary-dev/tributary/replicator/metrics"
)

// pipelines is the governance step of every configured pipeline, wired from the
// config: one registry client per cluster (the target's shared by translation
// and masking, so a new schema is fetched once), one translator per Kafka
// pipeline whose format carries a schema, then masking with the active bundle.
type pipelines struct {
	masking *governance.Masking
	kafka   map[string]governance.Transformer // Kafka pipelines by name
	pubsub  map[string]*governance.PubSubJSON // format json Pub/Sub pipelines by name
	clients map[string]*registry.Client       // by cluster name
}

// newPipelines builds the governance of cfg's pipelines.
func newPipelines(cfg *config.Config, m *metrics.Set, reg prometheus.Registerer, log *slog.Logger) (*pipelines, error) {
	var hashKey []byte
	key, err := policy.LoadHashKey(cfg.HashKeyFile, os.Getenv)
	switch {
	case err == nil:
		hashKey = key
		log.Info("hash key loaded", "key_id", policy.KeyID(key))
	case errors.Is(err, policy.ErrNoHashKey):
		if cfg.Policies != "" {
			log.Warn("no hash key (hash_key_file or TRIBUTARY_HASH_KEY): records that hash rules apply to are quarantined")
		}
	default:
		return nil, fmt.Errorf("hash_key_file: %w", err)
	}
	p := &pipelines{kafka: map[string]governance.Transformer{}, pubsub: map[string]*governance.PubSubJSON{}, clients: map[string]*registry.Client{}}
	target, err := p.client(cfg, cfg.Target)
	if err != nil {
		return nil, err
	}
	p.masking = governance.NewMasking(governance.MaskingOptions{
		Schemas: target, WaitForBundle: cfg.Policies != "", HashKey: hashKey, Registerer: reg,
	})
	for _, pc := range cfg.Pipelines {
		switch {
		case pc.Source.Kafka != "":
			if err := p.addKafka(cfg, pc, m, log); err != nil {
				p.Close()
				return nil, err
			}
		case pc.Source.PubSub != "" && pc.Format == "json":
			var schema *config.PubSubSchema
			if pc.PubSub != nil {
				schema = pc.PubSub.Schema
			}
			g, err := p.masking.PubSubJSON(pc.Name, pc.Source.Subscription, schema)
			if err != nil {
				p.Close()
				return nil, err
			}
			p.pubsub[pc.Name] = g
		}
	}
	return p, nil
}

// addKafka wires a Kafka pipeline: schema-id translation first, then masking
// with the target's schema.
func (p *pipelines) addKafka(cfg *config.Config, pc *config.Pipeline, m *metrics.Set, log *slog.Logger) error {
	if pc.Format == "bytes" {
		return nil
	}
	typ, err := registry.ParseSchemaType(pc.Format)
	if err != nil {
		return fmt.Errorf("pipeline %s: %w", pc.Name, err)
	}
	var chain governance.Chain
	src, err := p.client(cfg, pc.Source.Kafka)
	if err != nil {
		return err
	}
	dst, err := p.client(cfg, cfg.Target)
	if err != nil {
		return err
	}
	if src != nil && dst != nil {
		tr := registry.NewTranslator(src, dst, registry.TranslatorOptions{Type: typ, Keys: registry.KeyDetect})
		chain = append(chain, governance.NewTranslation(tr, m.SchemaTranslations.MustCurryWith(prometheus.Labels{"pipeline": pc.Name})))
	}
	if mask, ok := p.masking.Kafka(pc.Name, typ); ok {
		chain = append(chain, mask)
	} else if typ == registry.Protobuf && cfg.Policies != "" {
		log.Warn("policies do not apply to protobuf pipelines yet; its records are not masked", "pipeline", pc.Name)
	}
	switch len(chain) {
	case 0:
	case 1:
		p.kafka[pc.Name] = chain[0]
	default:
		p.kafka[pc.Name] = chain
	}
	return nil
}

// client returns the registry client of a cluster, nil when it has no
// registry.
func (p *pipelines) client(cfg *config.Config, cluster string) (*registry.Client, error) {
	if c, ok := p.clients[cluster]; ok {
		return c, nil
	}
	k := cfg.Kafka[cluster]
	if k == nil || k.SchemaRegistry == nil {
		p.clients[cluster] = nil
		return nil, nil
	}
	c, err := registry.NewClient(k.SchemaRegistry, registry.ClientOptions{})
	if err != nil {
		return nil, fmt.Errorf("kafka.%s.schema_registry: %w", cluster, err)
	}
	p.clients[cluster] = c
	return c, nil
}

// Close closes the registry clients.
func (p *pipelines) Close() {
	for _, c := range p.clients {
		if c != nil {
			c.Close()
		}
	}
}
