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
	"github.com/tributary-dev/tributary/pubsubbridge"
	"github.com/tributary-dev/tributary/registry"
	"github.com/tributary-dev/tributary/replicator/metrics"
)

// pipelines is the governance step of every configured pipeline, wired from the
// config: one registry client per cluster (the target's shared by translation
// and masking, so a new schema is fetched once), and one governance.Step per
// pipeline, Kafka and Pub/Sub alike.
type pipelines struct {
	masking *governance.Masking
	steps   map[string]*governance.Step // by pipeline name
	clients map[string]*registry.Client // by cluster name
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
	p := &pipelines{steps: map[string]*governance.Step{}, clients: map[string]*registry.Client{}}
	target, err := p.client(cfg, cfg.Target)
	if err != nil {
		return nil, err
	}
	// Every node waits for the cluster's bundle, with or without a policy
	// folder of its own: no record is governed by a bundle this node merely
	// has not received yet.
	p.masking = governance.NewMasking(governance.MaskingOptions{
		Schemas: target, WaitForBundle: true, HashKey: hashKey, Registerer: reg,
	})
	for _, pc := range cfg.Pipelines {
		sc := governance.StepConfig{Pipeline: pc.Name, Format: pc.Format, Ungoverned: pc.Ungoverned()}
		switch {
		case pc.Source.Kafka != "":
			if sc.Translation, err = p.translation(cfg, pc, m); err != nil {
				p.Close()
				return nil, err
			}
		case pc.Source.PubSub != "":
			sc.PubSub = true
			sc.KeyHeaders = []string{pubsubbridge.HeaderOrderingKey}
			if pc.KeyAttribute != "" {
				sc.KeyHeaders = append(sc.KeyHeaders, pc.KeyAttribute)
			}
			if pc.PubSub != nil {
				sc.PubSubSchema = pc.PubSub.Schema
			}
		default:
			continue
		}
		step, err := p.masking.Step(sc)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.steps[pc.Name] = step
	}
	return p, nil
}

// transformers returns the steps of the Kafka pipelines, for the replicator.
func (p *pipelines) transformers(cfg *config.Config) map[string]governance.Transformer {
	out := map[string]governance.Transformer{}
	for _, pc := range cfg.Pipelines {
		if s := p.steps[pc.Name]; s != nil && pc.Source.Kafka != "" {
			out[pc.Name] = s
		}
	}
	return out
}

// checkMaskable refuses a policy bundle that applies to a pipeline whose
// records cannot be masked (format bytes, or a format the masker does not
// read), naming the pipeline and the policy.
func (p *pipelines) checkMaskable(cfg *config.Config, set *policy.Set) error {
	var errs []error
	for _, pc := range cfg.Pipelines {
		s := p.steps[pc.Name]
		if s == nil || s.Maskable() || pc.Ungoverned() {
			continue
		}
		for _, pol := range set.Policies {
			if pol.Applies(pc.Name, "") {
				errs = append(errs, fmt.Errorf("pipeline %s (format %s) cannot be masked, but policy %s (%s) applies to it: "+
					"scope the policy away from it, or set governance: none on the pipeline to run it ungoverned deliberately", pc.Name, pc.Format, pol.Ref(), pol.File))
				break
			}
		}
	}
	return errors.Join(errs...)
}

// translation makes the schema-id translation of a Kafka pipeline whose
// format carries a schema; nil for bytes pipelines.
func (p *pipelines) translation(cfg *config.Config, pc *config.Pipeline, m *metrics.Set) (*governance.Translation, error) {
	if pc.Format == "bytes" {
		return nil, nil
	}
	typ, err := registry.ParseSchemaType(pc.Format)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: %w", pc.Name, err)
	}
	src, err := p.client(cfg, pc.Source.Kafka)
	if err != nil {
		return nil, err
	}
	dst, err := p.client(cfg, cfg.Target)
	if err != nil {
		return nil, err
	}
	if src == nil || dst == nil {
		return nil, nil
	}
	tr := registry.NewTranslator(src, dst, registry.TranslatorOptions{Type: typ, Keys: registry.KeyDetect})
	return governance.NewTranslation(tr, m.SchemaTranslations.MustCurryWith(prometheus.Labels{"pipeline": pc.Name})), nil
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
