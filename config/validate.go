package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// maxTasks bounds pipelines[].tasks: each task holds a transactional producer and
// a consumer, and a partition count is the useful maximum anyway.
const maxTasks = 1024

// maxNameLen bounds pipeline names, which end up in transactional ids and
// checkpoint keys.
const maxNameLen = 100

// maxCommitInterval bounds pipelines[].commit_interval: a transaction stays open
// that long, and read_committed consumers of the target wait for it.
const maxCommitInterval = 10 * time.Second

// minGroupSyncInterval bounds pipelines[].groups.interval from below: each
// round lists and describes consumer groups in both clusters.
const minGroupSyncInterval = time.Second

// minBufferBytes and maxBufferBytes bound pipelines[].buffer_bytes: below 4
// MiB a fetch of one partition (1 MiB) no longer fits the consumer's share;
// above 4 GiB the consumer's quarter shares approach librdkafka's limits on
// queued.max.messages.kbytes and fetch.max.bytes (2 GiB).
const (
	minBufferBytes = 4 << 20
	maxBufferBytes = 4 << 30
)

// defaultMaxExtension is pubsubbridge.DefaultMaxExtension (which imports this
// package), for checking pipelines[].pubsub.retry_timeout against it.
const defaultMaxExtension = 60 * time.Minute

// namePattern is what node ids, pipeline and cluster names may contain: the
// characters Kafka allows in topic names, as the names end up in them.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

var placeholder = regexp.MustCompile(`\{[^{}]*\}`)

// pubsubTopicID is what Pub/Sub allows in a topic id: a letter, then 2 to 254
// letters, digits or "-_.~+%" (and not starting with "goog", checked apart).
var pubsubTopicID = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`)

// Validate checks the whole config and reports every problem found as a
// *ErrorList, each with the line and column of its key when the config came from
// a file. It
// also compiles the topic regexes that Pipeline.Selects uses, so a config built in
// code must be validated before use.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.node()
	v.cluster()
	v.kafka()
	v.pubsub()
	v.pipelines()
	v.security()
	return yamlerr.Join(v.errs...)
}

type validator struct {
	c    *Config
	errs []*Error
	// regexps caches compiled filters: pipelines often share them.
	regexps map[string]*regexp.Regexp
}

func (v *validator) errorf(path, format string, args ...any) {
	pos := v.c.pos.Nearest(path)
	v.errs = append(v.errs, &Error{File: v.c.File, Line: pos.Line, Col: pos.Col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) node() {
	n := &v.c.Node
	switch {
	case n.ID == "":
		v.errorf("node.id", "required")
	case !namePattern.MatchString(n.ID):
		v.errorf("node.id", "%q must match [A-Za-z0-9._-]+", n.ID)
	}
	if n.Region == "" {
		v.errorf("node.region", "required")
	}
	if n.DataDir == "" {
		v.errorf("node.data_dir", "required")
	}
	if n.MinFreeBytes < 0 || n.MinFreeBytes == 0 && !v.c.unset("node.min_free_bytes") {
		v.errorf("node.min_free_bytes", "must be >= 1, got %d", n.MinFreeBytes)
	}
	if !validHostPort(n.RaftAddr) {
		v.errorf("node.raft_addr", "want host:port, got %q", n.RaftAddr)
	}
	// The HTTP address is only listened on, so ":7480" (all interfaces) and port 0
	// (any free port, logged at start-up) will do; the Raft address is also given
	// to peers and needs a host and a fixed port.
	if addr := n.HTTPAddr; !validListenAddr(addr) {
		v.errorf("node.http_addr", "want host:port or :port, got %q", n.HTTPAddr)
	}
	// Advertised addresses are what peers dial: a reachable host, a fixed port.
	for _, a := range []struct{ key, addr string }{{"node.raft_advertise_addr", n.RaftAdvertiseAddr}, {"node.http_advertise_addr", n.HTTPAdvertiseAddr}} {
		if a.addr == "" {
			continue
		}
		host, _, _ := net.SplitHostPort(a.addr)
		if ip := net.ParseIP(host); !validHostPort(a.addr) || ip != nil && ip.IsUnspecified() {
			v.errorf(a.key, "want host:port with a host the other nodes can reach and a fixed port, got %q", a.addr)
		}
	}
}

func (v *validator) cluster() {
	cl := &v.c.Cluster
	ids, addrs := map[string]int{}, map[string]int{}
	for i, e := range cl.Bootstrap {
		path := "cluster.bootstrap[" + strconv.Itoa(i) + "]"
		id, addr, ok := strings.Cut(e, "@")
		if !ok || !namePattern.MatchString(id) || !validHostPort(addr) {
			v.errorf(path, "want id@host:port, got %q", e)
			continue
		}
		if j, dup := ids[id]; dup {
			v.errorf(path, "duplicate id %q (also cluster.bootstrap[%d])", id, j)
		} else {
			ids[id] = i
		}
		if j, dup := addrs[addr]; dup {
			v.errorf(path, "duplicate address %q (also cluster.bootstrap[%d])", addr, j)
		} else {
			addrs[addr] = i
		}
	}
	hb, el, fail := cl.HeartbeatTimeout, cl.ElectionTimeout, cl.FailureTimeout
	v.positive("cluster.heartbeat_timeout", hb)
	v.positive("cluster.election_timeout", el)
	v.positive("cluster.failure_timeout", fail)
	if hb > 0 && el > 0 && el < hb {
		v.errorf("cluster.election_timeout", "%s must be >= cluster.heartbeat_timeout (%s)", el, hb)
	}
	if hb > 0 && fail > 0 && fail <= hb {
		v.errorf("cluster.failure_timeout", "%s must be > cluster.heartbeat_timeout (%s)", fail, hb)
	}
	if m := cl.RebalanceMargin; !(m >= 0 && m <= 1) {
		v.errorf("cluster.rebalance_margin", "%v is not in [0, 1]", m)
	}
	if n := cl.Voters; n < 0 || n > 9 || n > 0 && n%2 == 0 {
		// An even count adds a voter without adding failure tolerance.
		v.errorf("cluster.voters", "%d: want an odd number from 1 to 9, or 0 for 3 or 5 by member count", n)
	}
}

func (v *validator) positive(path string, d Duration) {
	if d <= 0 {
		v.errorf(path, "must be > 0, got %s", d)
	}
}

func (v *validator) kafka() {
	c := v.c
	if len(c.Kafka) == 0 {
		v.errorf("kafka", "must define at least one cluster")
	}
	for _, name := range sortedKeys(c.Kafka) {
		path := "kafka." + name
		k := c.Kafka[name]
		if k == nil {
			k = &Kafka{}
		}
		if !namePattern.MatchString(name) {
			v.errorf(path, "cluster name %q must match [A-Za-z0-9._-]+", name)
		}
		if k.Region == "" {
			v.errorf(path+".region", "required")
		}
		switch {
		case k.Bootstrap == "":
			v.errorf(path+".bootstrap", "required")
		case !validBootstrap(k.Bootstrap):
			v.errorf(path+".bootstrap", "want host:port[,host:port], got %q", k.Bootstrap)
		}
		if sr := k.SchemaRegistry; sr != nil {
			if sr.URL == "" {
				v.errorf(path+".schema_registry.url", "required")
			} else if u, err := url.Parse(sr.URL); err != nil {
				v.errorf(path+".schema_registry.url", "not a valid URL") // the text may hold credentials
			} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.errorf(path+".schema_registry.url", "want an http:// or https:// URL, got %q", u.Redacted())
			}
		}
	}
	switch {
	case c.Target == "":
		v.errorf("target", "required")
	case !has(c.Kafka, c.Target) && len(c.Kafka) > 0:
		v.errorf("target", "%q is not a kafka cluster (known: %s)", c.Target, known(c.Kafka))
	}
}

func (v *validator) pubsub() {
	for _, name := range sortedKeys(v.c.PubSub) {
		path := "pubsub." + name
		ps := v.c.PubSub[name]
		if ps == nil {
			ps = &PubSub{}
		}
		if !namePattern.MatchString(name) {
			v.errorf(path, "project name %q must match [A-Za-z0-9._-]+", name)
		}
		if ps.Project == "" {
			v.errorf(path+".project", "required")
		}
		if ps.Region == "" {
			v.errorf(path+".region", "required (leave it out for the default, cloud)")
		}
	}
}

func (v *validator) pipelines() {
	c := v.c
	if len(c.Pipelines) == 0 {
		v.errorf("pipelines", "must define at least one pipeline")
	}
	names := map[string]int{}
	for i, p := range c.Pipelines {
		path := "pipelines[" + strconv.Itoa(i) + "]"
		if p == nil {
			v.errorf(path, "empty pipeline")
			continue
		}
		p.include, p.exclude = nil, nil
		switch {
		case p.Name == "":
			v.errorf(path+".name", "required")
		case !namePattern.MatchString(p.Name):
			v.errorf(path+".name", "%q must match [A-Za-z0-9._-]+", p.Name)
		case len(p.Name) > maxNameLen:
			v.errorf(path+".name", "longer than %d characters", maxNameLen)
		}
		if j, dup := names[p.Name]; dup && p.Name != "" {
			first := "pipelines[" + strconv.Itoa(j) + "].name"
			v.errorf(path+".name", "duplicate name %q, first used by %s%s", p.Name, first, atLine(c.Line(first)))
		} else if !dup {
			names[p.Name] = i
		}

		switch {
		case (p.Source.Kafka == "") == (p.Source.PubSub == ""):
			v.errorf(path+".source", "must set exactly one of kafka or pubsub")
		case p.Source.Kafka != "":
			v.kafkaSource(path, p)
		default:
			v.pubsubSource(path, p)
		}

		if !slices.Contains(Formats, p.Format) {
			v.errorf(path+".format", "%q is not one of %s", p.Format, strings.Join(Formats, ", "))
		} else if p.Format != "bytes" && p.Source.Kafka != "" {
			// Schema-id translation needs both registries.
			for _, cl := range []string{p.Source.Kafka, c.Target} {
				if k := c.Kafka[cl]; k != nil && k.SchemaRegistry == nil {
					v.errorf(path+".format", "format %s needs kafka.%s.schema_registry", p.Format, cl)
				}
			}
		}
		// A config built in code may leave governance empty (enforced); an
		// empty value written in the file is an error.
		if g := p.Governance; (g != "" || !c.unset(path+".governance")) && !slices.Contains(governanceModes, g) {
			v.errorf(path+".governance", "%q is not one of %s%s", g, strings.Join(governanceModes, ", "), yamlerr.DidYouMean(g, governanceModes))
		}
		if p.Tasks < 1 || p.Tasks > maxTasks {
			v.errorf(path+".tasks", "%d is not in 1..%d", p.Tasks, maxTasks)
		}
		if p.Start != "earliest" && p.Start != "latest" {
			v.errorf(path+".start", "%q is not earliest or latest", p.Start)
		}
		v.positive(path+".refresh_interval", p.RefreshInterval)
		v.positive(path+".commit_interval", p.CommitInterval)
		if p.CommitInterval.D() > maxCommitInterval {
			v.errorf(path+".commit_interval", "%s is more than %s (a transaction stays open that long)", p.CommitInterval, maxCommitInterval)
		}
		if b := p.BufferBytes; (b != 0 || !c.unset(path+".buffer_bytes")) && (b < minBufferBytes || b > maxBufferBytes) {
			v.errorf(path+".buffer_bytes", "%d is not in %d..%d (4 MiB..4 GiB)", b, minBufferBytes, maxBufferBytes)
		} else if b != 0 && p.Source.Kafka == "" {
			v.errorf(path+".buffer_bytes", "only for kafka sources (pubsub sources use pubsub.max_outstanding_bytes)")
		}
	}
}

func (v *validator) kafkaSource(path string, p *Pipeline) {
	c := v.c
	if !has(c.Kafka, p.Source.Kafka) {
		v.errorf(path+".source.kafka", "%q is not a kafka cluster (known: %s)", p.Source.Kafka, known(c.Kafka))
	}
	if p.Source.Subscription != "" {
		v.errorf(path+".source.subscription", "only for pubsub sources")
	}
	if p.Topic != "" {
		v.errorf(path+".topic", "only for pubsub sources (kafka sources use rename)")
	}
	if p.KeyAttribute != "" {
		v.errorf(path+".key_attribute", "only for pubsub sources")
	}
	if len(p.Topics.Include) == 0 {
		v.errorf(path+".topics.include", "must list at least one regex for a kafka source")
	}
	if p.PubSub != nil {
		v.errorf(path+".pubsub", "only for pubsub sources")
	}
	if k := c.Kafka[p.Source.Kafka]; k != nil && k.ReadOnly && p.HasHeartbeats() {
		v.errorf(path+".heartbeats", "kafka.%s is read_only: heartbeats need writes to the source", p.Source.Kafka)
	}
	// A config built in code may leave these zero (the replicator then uses
	// the defaults); a zero written in the file is an error.
	for _, f := range []struct {
		key string
		d   Duration
	}{{"heartbeat_interval", p.HeartbeatInterval}, {"offset_sync_interval", p.OffsetSyncInterval}} {
		if f.d != 0 || !c.unset(path+"."+f.key) {
			v.positive(path+"."+f.key, f.d)
		}
	}
	v.topicConfigs(path+".topic_configs.exclude", p.TopicConfigs.Exclude)
	p.include = v.regexes(path+".topics.include", p.Topics.Include)
	p.exclude = v.regexes(path+".topics.exclude", p.Topics.Exclude)
	if g := p.Groups; g != nil {
		g.include = v.regexes(path+".groups.include", g.Include)
		g.exclude = v.regexes(path+".groups.exclude", g.Exclude)
		if g.Interval != 0 || !c.unset(path+".groups.interval") {
			if d := g.Interval.D(); d < minGroupSyncInterval {
				v.errorf(path+".groups.interval", "%s is less than %s", g.Interval, Duration(minGroupSyncInterval))
			}
		}
		if len(g.Include) == 0 && (len(g.Exclude) > 0 || !c.unset(path+".groups.interval")) {
			v.errorf(path+".groups.include", "must list at least one regex when groups sets exclude or interval (no include: no group is synced)")
		}
	}
	v.rename(path+".rename", p.Rename)
	if p.Rename == "{topic}" && p.Source.Kafka == c.Target {
		v.errorf(path+".rename", "%q with source.kafka %q, the target, would mirror every topic onto itself", p.Rename, p.Source.Kafka)
	}
}

// topicConfigs checks topic_configs.exclude: names of mirrored topic
// settings, each once. Another name would be a silent no-op (a typo leaves
// the setting mirrored), so it is an error.
func (v *validator) topicConfigs(path string, exclude []string) {
	mirrored := MirroredTopicConfigs()
	seen := map[string]int{}
	for i, k := range exclude {
		ip := yamlerr.Index(path, i)
		if !slices.Contains(mirrored, k) {
			v.errorf(ip, "%q is not a mirrored topic setting (one of %s)%s", k, strings.Join(mirrored, ", "), yamlerr.DidYouMean(k, mirrored))
			continue
		}
		if j, dup := seen[k]; dup {
			first := yamlerr.Index(path, j)
			v.errorf(ip, "%q listed twice, first at %s%s", k, first, atLine(v.c.Line(first)))
			continue
		}
		seen[k] = i
	}
}

func (v *validator) pubsubSource(path string, p *Pipeline) {
	c := v.c
	if !has(c.PubSub, p.Source.PubSub) {
		v.errorf(path+".source.pubsub", "%q is not a pubsub project (known: %s)", p.Source.PubSub, known(c.PubSub))
	}
	if p.Source.Subscription == "" {
		v.errorf(path+".source.subscription", "required for a pubsub source")
	}
	switch {
	case p.Topic == "":
		v.errorf(path+".topic", "required for a pubsub source")
	case !namePattern.MatchString(p.Topic) || len(p.Topic) > 249:
		v.errorf(path+".topic", "%q is not a valid Kafka topic name", p.Topic)
	}
	if len(p.Topics.Include) > 0 || len(p.Topics.Exclude) > 0 {
		v.errorf(path+".topics", "only for kafka sources (a pubsub source has one topic)")
	}
	if p.Rename != "" {
		v.errorf(path+".rename", "only for kafka sources (use topic)")
	}
	for _, f := range []struct {
		key string
		set bool
	}{
		{"heartbeats", p.Heartbeats != nil},
		{"heartbeat_interval", p.HeartbeatInterval != 0},
		{"offset_sync_interval", p.OffsetSyncInterval != 0},
		{"groups", p.Groups != nil},
		{"topic_configs", len(p.TopicConfigs.Exclude) > 0},
	} {
		if f.set {
			v.errorf(path+"."+f.key, "only for kafka sources")
		}
	}
	if r := p.PubSub; r != nil {
		v.pubsubReceive(path+".pubsub", p, r)
	}
	v.pubsubQuarantine(path, p)
}

// pubsubQuarantine checks where a Pub/Sub pipeline quarantines (see
// Config.PubSubQuarantine): raw messages must stay in the Pub/Sub project's
// region, so the target's _tributary.quarantine will do only when the target
// is in that region; otherwise the pipeline names a dead-letter topic of its
// own project or a Kafka cluster of its region.
func (v *validator) pubsubQuarantine(path string, p *Pipeline) {
	c := v.c
	name := p.Source.PubSub
	ps := c.PubSub[name]
	if ps == nil {
		return // reported by pubsubSource or pubsub
	}
	var dlt, qk string
	if r := p.PubSub; r != nil {
		dlt, qk = r.DeadLetterTopic, r.QuarantineKafka
	}
	if dlt != "" {
		v.deadLetterTopic(path+".pubsub.dead_letter_topic", name, ps.Project, dlt)
	}
	if qk != "" {
		qp := path + ".pubsub.quarantine_kafka"
		k, ok := c.Kafka[qk]
		switch {
		case dlt != "":
			v.errorf(qp, "set dead_letter_topic or quarantine_kafka, not both")
		case !ok:
			if hint := yamlerr.DidYouMean(qk, sortedKeys(c.Kafka)); hint != "" {
				v.errorf(qp, "%q is not a kafka cluster%s", qk, hint)
			} else {
				v.errorf(qp, "%q is not a kafka cluster (known: %s)", qk, known(c.Kafka))
			}
		case k == nil || k.Region == "" || ps.Region == "":
			// reported by kafka or pubsub
		case k.Region != ps.Region:
			v.errorf(qp, "kafka.%s is in region %q but pubsub.%s is in region %q: quarantined (raw) messages must stay in %q",
				qk, k.Region, name, ps.Region, ps.Region)
		case k.ReadOnly:
			v.errorf(qp, "kafka.%s is read_only: quarantine needs writes to it", qk)
		}
	}
	if dlt != "" || qk != "" {
		return
	}
	t := c.Kafka[c.Target]
	if t == nil || t.Region == "" || ps.Region == "" || t.Region == ps.Region {
		return
	}
	v.errorf(path+".source.pubsub", "pipeline %q reads pubsub.%s in region %q, but the target kafka.%s is in region %q: "+
		"quarantined (raw) messages must stay in %q; set pubsub.dead_letter_topic (a Pub/Sub topic of project %q) "+
		"or pubsub.quarantine_kafka (a kafka cluster in region %q)",
		p.Name, name, ps.Region, c.Target, t.Region, ps.Region, ps.Project, ps.Region)
}

// deadLetterTopic checks pipelines[].pubsub.dead_letter_topic: a topic id, or
// a full topic name in the source's project (another project may be in
// another region, which the config does not know).
func (v *validator) deadLetterTopic(path, source, project, topic string) {
	id := topic
	if rest, ok := strings.CutPrefix(topic, "projects/"); ok {
		proj, tid, ok := strings.Cut(rest, "/topics/")
		if !ok || proj == "" || strings.Contains(proj, "/") {
			v.errorf(path, "%q is neither a topic id nor projects/<project>/topics/<id>", topic)
			return
		}
		if project != "" && proj != project {
			v.errorf(path, "%q is in project %q, not in pubsub.%s's project %q (quarantined messages stay in the source's project)",
				topic, proj, source, project)
			return
		}
		id = tid
	}
	if !pubsubTopicID.MatchString(id) || strings.HasPrefix(id, "goog") {
		v.errorf(path, "%q is not a Pub/Sub topic id (a letter, then 2 to 254 of A-Z a-z 0-9 - _ . ~ + %%; not starting with goog)", id)
	}
}

// pubsubReceive checks pipelines[].pubsub. Zeros written in the file are errors
// (an unset field takes its default), except dedup_window: 0s turns dedup off.
func (v *validator) pubsubReceive(path string, p *Pipeline, r *PubSubReceive) {
	c := v.c
	for _, f := range []struct {
		key string
		n   int
	}{
		{"streams", r.Streams},
		{"max_outstanding_messages", r.MaxOutstandingMessages},
		{"max_outstanding_bytes", r.MaxOutstandingBytes},
		{"dedup_max_ids", r.DedupMaxIDs},
		{"max_message_bytes", r.MaxMessageBytes},
	} {
		if f.n < 1 && !c.unset(path+"."+f.key) {
			v.errorf(path+"."+f.key, "must be >= 1, got %d", f.n)
		}
	}
	if r.Streams > 256 {
		v.errorf(path+".streams", "%d is more than 256", r.Streams)
	}
	for _, f := range []struct {
		key string
		d   Duration
	}{{"max_extension", r.MaxExtension}, {"retry_timeout", r.RetryTimeout}} {
		if f.d <= 0 && !c.unset(path+"."+f.key) {
			v.errorf(path+"."+f.key, "must be > 0, got %s", f.d)
		}
	}
	if r.DedupWindow != nil && *r.DedupWindow < 0 {
		v.errorf(path+".dedup_window", "must be >= 0 (0s: off), got %s", *r.DedupWindow)
	}
	maxExt := r.MaxExtension
	if maxExt == 0 {
		maxExt = Duration(defaultMaxExtension)
	}
	if r.RetryTimeout > 0 && maxExt > 0 && r.RetryTimeout >= maxExt {
		v.errorf(path+".retry_timeout", "%s must be < max_extension %s (Pub/Sub would redeliver a message still being retried)", r.RetryTimeout, maxExt)
	}
	if s := r.Schema; s != nil {
		sp := path + ".schema"
		if p.Format != "json" {
			v.errorf(sp, "JSON Schema validation needs format json, not %q", p.Format)
		}
		if t := c.Kafka[c.Target]; t != nil && t.SchemaRegistry == nil {
			v.errorf(sp, "needs kafka.%s.schema_registry (the target's registry holds the subject)", c.Target)
		}
		if s.Subject == "" {
			v.errorf(sp+".subject", "required")
		}
		if s.Version < 1 && !c.unset(sp+".version") {
			v.errorf(sp+".version", "must be >= 1 (leave it out for the latest), got %d", s.Version)
		}
		for _, rev := range sortedKeys(s.Revisions) {
			if s.Revisions[rev] < 1 {
				v.errorf(sp+".revisions."+rev, "version must be >= 1, got %d", s.Revisions[rev])
			}
		}
	}
}

// regexes compiles topic filters anchored at both ends, as MirrorMaker 2 does.
func (v *validator) regexes(path string, res []string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for i, re := range res {
		compiled, ok := v.regexps[re]
		if !ok {
			var err error
			if compiled, err = compileFilter(re); err != nil {
				v.errorf(path+"["+strconv.Itoa(i)+"]", "%v", err)
				continue
			}
			if v.regexps == nil {
				v.regexps = map[string]*regexp.Regexp{}
			}
			v.regexps[re] = compiled
		}
		out = append(out, compiled)
	}
	return out
}

// compileFilter compiles "^(?:re)$", describing errors in terms of re.
func compileFilter(re string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(re); err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, fmt.Errorf("invalid regex %q: %s: `%s`", re, se.Code, se.Expr)
		}
		return nil, fmt.Errorf("invalid regex %q: %w", re, err)
	}
	compiled, err := regexp.Compile("^(?:" + re + ")$")
	if err != nil {
		return nil, fmt.Errorf("invalid regex %q: %w", re, err)
	}
	return compiled, nil
}

func (v *validator) rename(path, tmpl string) {
	if !strings.Contains(tmpl, "{topic}") {
		v.errorf(path, "%q must contain {topic}", tmpl)
	}
	for _, ph := range placeholder.FindAllString(tmpl, -1) {
		if ph != "{source}" && ph != "{topic}" && ph != "{pipeline}" {
			v.errorf(path, "unknown placeholder %q in %q (want {source}, {topic} or {pipeline})", ph, tmpl)
		}
	}
	if rest := placeholder.ReplaceAllString(tmpl, ""); rest != "" && !namePattern.MatchString(rest) {
		v.errorf(path, "%q has characters Kafka does not allow in topic names (want [A-Za-z0-9._-] around the placeholders)", tmpl)
	}
}

func atLine(line int) string {
	if line == 0 {
		return ""
	}
	return " at line " + strconv.Itoa(line)
}

// validHostPort reports whether s is host:port with a port number.
func validListenAddr(s string) bool {
	if strings.HasPrefix(s, ":") {
		s = "0.0.0.0" + s
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n < 65536
}

func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}

// validBootstrap accepts librdkafka's bootstrap.servers: host:port entries,
// separated by commas, each optionally prefixed with a protocol ("SSL://").
func validBootstrap(s string) bool {
	for e := range strings.SplitSeq(s, ",") {
		e = strings.TrimSpace(e)
		if _, after, ok := strings.Cut(e, "://"); ok {
			e = after
		}
		if !validHostPort(e) {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func known[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none"
	}
	return strings.Join(sortedKeys(m), ", ")
}

func has[V any](m map[string]V, key string) bool {
	_, ok := m[key]
	return ok
}
