package replicator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
)

// Target topics follow the mirrored settings (config.MirroredTopicConfigs) of
// their source topics, at creation and on every topic refresh after it, except
// those a pipeline's topic_configs.exclude leaves to the target cluster.
//
// What a source topic says about a setting is one of two things:
//   - a value of its own or of its cluster: a topic override, or a setting of
//     the source's brokers (server.properties or a dynamic broker config). The
//     target topic carries the same value as an override of its own;
//   - nothing: the setting is at Kafka's built-in default in the source
//     (DescribeConfigs source DEFAULT_CONFIG). The target topic has no
//     override, so the target cluster's own default applies; an override it
//     has is deleted (IncrementalAlterConfigs DELETE).
//
// This is MirrorMaker 2's rule (MirrorSourceConnector with its default
// use.defaults.from=target) but for the source's broker settings: MM2 skips
// those from server.properties, while tributary copies them, because a
// regional cluster that raises message.max.bytes for all its topics holds
// records that the central cluster's default would refuse.

// topicConfigRecheck is how long a change sent to the target is not sent
// again when the target still describes the old value: brokers apply a
// config change shortly after acknowledging it, and a describe in between
// must not count the change twice.
const topicConfigRecheck = 10 * time.Second

// configSync is what a pipeline remembers between topic refreshes about the
// settings it changed. Only Run's goroutine touches it.
type configSync struct {
	// sent holds the changes sent recently, by target topic and key.
	sent map[topicKey]sentChange
	// logged is the newest error logged per target topic: a target that keeps
	// refusing a change is logged once (and counted at every refresh).
	logged map[string]string
}

type topicKey struct{ topic, key string }

type sentChange struct {
	value string // "" with del
	del   bool
	at    time.Time
}

// sourceValue interprets a source topic's entry for a mirrored setting: set
// is false when the setting is at Kafka's built-in default; ok is false when
// the source gives nothing usable (no entry, or a sensitive value).
func sourceValue(e kafka.ConfigEntryResult, found bool) (value string, set, ok bool) {
	if !found || e.IsSensitive {
		return "", false, false
	}
	if e.Source == kafka.ConfigSourceDefault || e.Source == kafka.ConfigSourceUnknown && e.IsDefault {
		return "", false, true
	}
	return e.Value, true, true
}

// mirroredConfigs returns the settings a target topic takes from its source
// topic: those the pipeline mirrors and the source sets (see sourceValue).
func (p *Pipeline) mirroredConfigs(src kafka.ConfigResourceResult) map[string]string {
	out := map[string]string{}
	for _, k := range config.MirroredTopicConfigs() {
		if !p.cfg.MirrorsTopicConfig(k) {
			continue
		}
		e, found := src.Config[k]
		if v, set, ok := sourceValue(e, found); ok && set {
			out[k] = v
		}
	}
	return out
}

// configChanges returns what makes the mirrored settings of a target topic
// (dst, described) equal to its source topic's (src): a SET for a value the
// source sets and the target topic does not carry as its own, a DELETE for
// an override of the target topic where the source is at its default.
func (p *Pipeline) configChanges(src, dst kafka.ConfigResourceResult) []kafka.ConfigEntry {
	var out []kafka.ConfigEntry
	for _, k := range config.MirroredTopicConfigs() {
		if !p.cfg.MirrorsTopicConfig(k) {
			continue
		}
		se, found := src.Config[k]
		v, set, ok := sourceValue(se, found)
		if !ok {
			continue
		}
		de, dfound := dst.Config[k]
		if dfound && (de.IsSensitive || de.IsReadOnly) {
			continue
		}
		own := dfound && de.Source == kafka.ConfigSourceDynamicTopic
		switch {
		case set && !(own && de.Value == v):
			out = append(out, kafka.ConfigEntry{Name: k, Value: v, IncrementalOperation: kafka.AlterConfigOpTypeSet})
		case !set && own:
			out = append(out, kafka.ConfigEntry{Name: k, IncrementalOperation: kafka.AlterConfigOpTypeDelete})
		}
	}
	return out
}

// syncTopicConfigs makes the mirrored settings of the target topics of
// sources (source topics) follow their source topics, from one description
// of each cluster (src and dst, by topic name). Failures are logged and
// counted, never fatal: mirroring goes on with the settings as they are. It
// reports whether a setting the tasks size their batches by changed.
func (p *Pipeline) syncTopicConfigs(ctx context.Context, tgtAdmin *kafka.AdminClient, sources []string, src, dst map[string]kafka.ConfigResourceResult) (limitsChanged bool) {
	m := p.deps.Metrics
	changes, errs := m.TopicConfigChanges.WithLabelValues(p.cfg.Name), m.TopicConfigErrors.WithLabelValues(p.cfg.Name)
	cs := &p.cfgSync
	if cs.sent == nil {
		cs.sent, cs.logged = map[topicKey]sentChange{}, map[string]string{}
	}
	now := time.Now()
	for tk, c := range cs.sent {
		if now.Sub(c.at) >= topicConfigRecheck {
			delete(cs.sent, tk)
		}
	}
	var resources []kafka.ConfigResource
	sourceOf := map[string]string{}
	slices.Sort(sources)
	for _, s := range sources {
		sr, ok := src[s]
		if !ok || sr.Error.Code() != kafka.ErrNoError {
			continue
		}
		t := p.cfg.TargetTopic(s)
		dr, ok := dst[t]
		if !ok || dr.Error.Code() != kafka.ErrNoError {
			continue
		}
		var send []kafka.ConfigEntry
		for _, c := range p.configChanges(sr, dr) {
			tk := topicKey{t, c.Name}
			del := c.IncrementalOperation == kafka.AlterConfigOpTypeDelete
			if was, ok := cs.sent[tk]; ok && was.value == c.Value && was.del == del {
				continue // sent moments ago; the target has not applied it yet
			}
			send = append(send, c)
		}
		if len(send) > 0 {
			resources = append(resources, kafka.ConfigResource{Type: kafka.ResourceTopic, Name: t, Config: send})
			sourceOf[t] = s
		}
	}
	if len(resources) == 0 {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	results, err := tgtAdmin.IncrementalAlterConfigs(cctx, resources)
	if err != nil {
		n := 0
		for _, r := range resources {
			n += len(r.Config)
		}
		errs.Add(float64(n))
		p.log.Warn("changing target topic settings to follow their source topics failed; retrying at the next refresh",
			"target", p.targetName, "topics", len(resources), "settings", n, "err", err)
		return false
	}
	byName := map[string]kafka.ConfigResource{}
	for _, r := range resources {
		byName[r.Name] = r
	}
	for _, r := range results {
		req := byName[r.Name]
		keys := make([]string, len(req.Config))
		for i, c := range req.Config {
			keys[i] = c.Name
		}
		if r.Error.Code() != kafka.ErrNoError {
			errs.Add(float64(len(req.Config)))
			msg := r.Error.Error()
			if cs.logged[r.Name] != msg {
				cs.logged[r.Name] = msg
				p.log.Warn("the target refused to change topic settings to follow the source topic; retrying at every refresh (exclude them with topic_configs.exclude if the central cluster owns them)",
					"topic", r.Name, "source_topic", sourceOf[r.Name], "keys", keys, "err", fmt.Errorf("%s: %w", strings.Join(keys, ", "), r.Error))
			} else {
				p.log.Debug("the target still refuses to change topic settings", "topic", r.Name, "keys", keys, "err", r.Error)
			}
			continue
		}
		delete(cs.logged, r.Name)
		changes.Add(float64(len(req.Config)))
		prev := dst[r.Name].Config
		for _, c := range req.Config {
			del := c.IncrementalOperation == kafka.AlterConfigOpTypeDelete
			cs.sent[topicKey{r.Name, c.Name}] = sentChange{value: c.Value, del: del, at: now}
			if c.Name == "max.message.bytes" || c.Name == "cleanup.policy" {
				limitsChanged = true
			}
			if del {
				p.log.Info("target topic setting back to the target's default, as its source topic's is at the default",
					"topic", r.Name, "source_topic", sourceOf[r.Name], "key", c.Name, "previous", prev[c.Name].Value)
				continue
			}
			p.log.Info("target topic setting changed to follow its source topic",
				"topic", r.Name, "source_topic", sourceOf[r.Name], "key", c.Name, "value", c.Value, "previous", prev[c.Name].Value)
		}
	}
	return limitsChanged
}

// describeByName describes topics' configs and returns the results by topic
// name.
func describeByName(ctx context.Context, admin *kafka.AdminClient, topics []string) (map[string]kafka.ConfigResourceResult, error) {
	out := map[string]kafka.ConfigResourceResult{}
	if len(topics) == 0 {
		return out, nil
	}
	res, err := describeTopicConfigs(ctx, admin, topics)
	if err != nil {
		return nil, err
	}
	for _, r := range res {
		out[r.Name] = r
	}
	return out, nil
}
