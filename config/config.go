package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// Config is one node's configuration file, fully defaulted and validated by Load.
type Config struct {
	// Node: node, restart required.
	Node Node `yaml:"node"`
	// Cluster: cluster, restart required.
	Cluster Cluster `yaml:"cluster"`
	// Kafka: kafka, the Kafka clusters this node talks to, by name.
	Kafka map[string]*Kafka `yaml:"kafka"`
	// PubSub: pubsub, the Pub/Sub projects this node reads, by name.
	PubSub map[string]*PubSub `yaml:"pubsub"`
	// Target: target, the name of the central cluster in Kafka. Required.
	Target string `yaml:"target"`
	// Policies: policies, the folder of policy files owned by compliance. Optional.
	// A valid change is proposed through the Raft log; every node applies it at
	// the same log index.
	Policies string `yaml:"policies"`
	// HashKeyFile: hash_key_file, the HMAC key of hash rules; else the
	// TRIBUTARY_HASH_KEY environment variable. Every node must use the same key.
	HashKeyFile string `yaml:"hash_key_file"`
	// Pipelines: pipelines, what to mirror.
	Pipelines []*Pipeline `yaml:"pipelines"`
	// Security: security, how nodes, people and tools prove who they are
	// (see Security); restart required.
	Security Security `yaml:"security"`

	// File is the path the config was loaded from ("" when built in code).
	File string `yaml:"-"`
	// pos maps a key path ("pipelines[1].topics.include[0]") to where its key
	// (or list item) is in File.
	pos yamlerr.Positions
}

// Node describes this process.
type Node struct {
	// ID: node.id, required, restart required. Unique and stable across restarts.
	ID string `yaml:"id"`
	// Region: node.region, required, restart required. Data-residency label.
	Region string `yaml:"region"`
	// DataDir: node.data_dir, default "data", restart required.
	DataDir string `yaml:"data_dir"`
	// RaftAddr: node.raft_addr, default "127.0.0.1:7400", restart required.
	RaftAddr string `yaml:"raft_addr"`
	// HTTPAddr: node.http_addr, default "127.0.0.1:7480", restart required.
	HTTPAddr string `yaml:"http_addr"`
	// RaftAdvertiseAddr: node.raft_advertise_addr, optional, restart required.
	// The Raft address the other nodes dial when it is not node.raft_addr
	// (NAT, a Kubernetes Service, a proxy); node.raft_addr is then only bound
	// and may be a wildcard.
	RaftAdvertiseAddr string `yaml:"raft_advertise_addr,omitempty"`
	// HTTPAdvertiseAddr: node.http_advertise_addr, optional, restart required.
	// The HTTP address the other nodes use when it is not node.http_addr.
	HTTPAdvertiseAddr string `yaml:"http_advertise_addr,omitempty"`
	// MinFreeBytes: node.min_free_bytes, default 0 = DefaultMinFreeBytes
	// (256 MiB). While the file system of data_dir has less free space than
	// this (or a write to it failed with ENOSPC), the node reports itself
	// unhealthy: it gives up its tasks and /readyz fails, until space returns.
	MinFreeBytes int `yaml:"min_free_bytes,omitempty"`
}

// DefaultMinFreeBytes is node.min_free_bytes when unset: room for Raft log
// growth and a snapshot (data_dir holds only the Raft log, stable store and
// snapshots; checkpoints live in the target cluster).
const DefaultMinFreeBytes = 256 << 20

// MinFree returns node.min_free_bytes with its default applied.
func (n *Node) MinFree() int64 {
	if n.MinFreeBytes == 0 {
		return DefaultMinFreeBytes
	}
	return int64(n.MinFreeBytes)
}

// Cluster holds the Raft settings shared by all nodes.
type Cluster struct {
	// Bootstrap: cluster.bootstrap, initial voters as "id@host:port".
	Bootstrap []string `yaml:"bootstrap"`
	// Join: cluster.join, HTTP addresses of members to ask for admission.
	Join []string `yaml:"join"`
	// HeartbeatTimeout: cluster.heartbeat_timeout, default 1s, restart required.
	HeartbeatTimeout Duration `yaml:"heartbeat_timeout"`
	// ElectionTimeout: cluster.election_timeout, default 1s, restart required.
	ElectionTimeout Duration `yaml:"election_timeout"`
	// FailureTimeout: cluster.failure_timeout, default 10s. A node not heard from
	// for this long is considered dead and loses its tasks.
	FailureTimeout Duration `yaml:"failure_timeout"`
	// RebalanceMargin: cluster.rebalance_margin, default 0.2. Tasks move between live
	// nodes only when the load is off balance by more than this fraction.
	RebalanceMargin float64 `yaml:"rebalance_margin"`
	// Voters: cluster.voters, how many members the leader makes Raft voters;
	// default 0: 3 while the cluster has fewer than 5 members, else 5. Joining
	// nodes enter as non-voters and are promoted up to this count once the
	// leader reaches them. Restart required.
	Voters int `yaml:"voters,omitempty"`
}

// TLS names the PEM files of the cluster CA, this node's certificate (with
// the SAN URI tributary://<region>/<node-id>) and its key. All three or none.
type TLS struct {
	// CAFile: security.tls.ca_file, the CA that issues every node certificate.
	CAFile string `yaml:"ca_file"`
	// CertFile: security.tls.cert_file, this node's certificate.
	CertFile string `yaml:"cert_file"`
	// KeyFile: security.tls.key_file, its key; must not be readable by group or others.
	KeyFile string `yaml:"key_file"`
}

// Kafka is one Kafka cluster.
type Kafka struct {
	// Region: kafka.<name>.region, required. Raw data of this cluster stays in it.
	Region string `yaml:"region"`
	// Bootstrap: kafka.<name>.bootstrap, required, "host:port[,host:port]".
	Bootstrap string `yaml:"bootstrap"`
	// Properties: kafka.<name>.properties, librdkafka properties for every client of
	// the cluster (security.protocol, sasl.*, ssl.*, tuning). They override
	// tributary's tuning, not what correctness needs (internal/kafkaclient). Values
	// of keys naming a password or secret print as <secret>.
	Properties map[string]string `yaml:"properties"`
	// SchemaRegistry: kafka.<name>.schema_registry, optional.
	SchemaRegistry *SchemaRegistry `yaml:"schema_registry"`
	// ReadOnly: kafka.<name>.read_only, default false. tributary writes nothing
	// (heartbeats, quarantine) to a read-only source.
	ReadOnly bool `yaml:"read_only"`
}

// SchemaRegistry is a Confluent-compatible schema registry.
type SchemaRegistry struct {
	// URL: schema_registry.url, required.
	URL string `yaml:"url"`
	// Username: schema_registry.username, basic auth.
	Username string `yaml:"username"`
	// Password: schema_registry.password, basic auth.
	Password Secret `yaml:"password"`
	// CAFile: schema_registry.ca_file, PEM bundle to verify the server.
	CAFile string `yaml:"ca_file"`
	// CertFile, KeyFile: schema_registry.cert_file/key_file, client certificate.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// PubSub is one Google Cloud Pub/Sub project.
type PubSub struct {
	// Region: pubsub.<name>.region, default "cloud".
	Region string `yaml:"region"`
	// Project: pubsub.<name>.project, required.
	Project string `yaml:"project"`
	// EmulatorHost: pubsub.<name>.emulator_host, the address of a Pub/Sub
	// emulator (plaintext, no authentication); for tests and demos.
	EmulatorHost string `yaml:"emulator_host"`
	// UseEmulatorEnv: pubsub.<name>.use_emulator_env, default false. Take the
	// emulator's address from PUBSUB_EMULATOR_HOST. Without it (or
	// emulator_host) a node refuses to start its Pub/Sub pipelines while that
	// variable is set, since the client library would otherwise silently send
	// them to it, unauthenticated.
	UseEmulatorEnv bool `yaml:"use_emulator_env"`
	// CredentialsFile: pubsub.<name>.credentials_file; else application default credentials.
	CredentialsFile string `yaml:"credentials_file"`
}

// Formats are the values pipelines[].format accepts.
var Formats = []string{"avro", "json", "protobuf", "bytes"}

// Governance modes, the values pipelines[].governance accepts.
const (
	// GovernanceEnforced masks records by the policies and quarantines what
	// cannot be masked; the default.
	GovernanceEnforced = "enforced"
	// GovernanceNone says the operator deliberately runs the pipeline without
	// masking.
	GovernanceNone = "none"
)

// governanceModes lists the Governance values, for errors and hints.
var governanceModes = []string{GovernanceEnforced, GovernanceNone}

// Pipeline is one source mirrored into the target.
type Pipeline struct {
	// Name: pipelines[].name, required, unique, [A-Za-z0-9._-]+. Part of
	// transactional ids and checkpoint keys: renaming a pipeline restarts it from Start.
	Name string `yaml:"name"`
	// Source: pipelines[].source, exactly one of kafka or pubsub.
	Source Source `yaml:"source"`
	// Topics: pipelines[].topics, for Kafka sources.
	Topics Topics `yaml:"topics"`
	// Rename: pipelines[].rename, default "{source}.{topic}". Placeholders {source},
	// {topic} and {pipeline}; must contain {topic}.
	Rename string `yaml:"rename"`
	// Topic: pipelines[].topic, the target topic of a Pub/Sub source.
	Topic string `yaml:"topic"`
	// KeyAttribute: pipelines[].key_attribute, Pub/Sub attribute used as the Kafka key.
	KeyAttribute string `yaml:"key_attribute"`
	// Format: pipelines[].format, default "bytes"; one of Formats.
	Format string `yaml:"format"`
	// Governance: pipelines[].governance, default "enforced"; "enforced" or
	// "none". "none" says the operator deliberately runs this pipeline without
	// masking (e.g. a bytes pipeline of non-personal data): a policy that
	// applies to it but cannot mask its format does not stop it from starting,
	// and the daemon shows it as ungoverned in /v1/status and on the status
	// page. With "enforced", such a pipeline refuses to start. See Ungoverned.
	Governance string `yaml:"governance"`
	// Tasks: pipelines[].tasks, default 1, 1..1024. Units of work a pipeline is split into.
	Tasks int `yaml:"tasks"`
	// ExactlyOnce: pipelines[].exactly_once, default true.
	ExactlyOnce *bool `yaml:"exactly_once"`
	// Start: pipelines[].start, default "earliest"; where a partition without a
	// checkpoint starts: earliest or latest.
	Start string `yaml:"start"`
	// LineageHeaders: pipelines[].lineage_headers, default true.
	LineageHeaders *bool `yaml:"lineage_headers"`
	// RefreshInterval: pipelines[].refresh_interval, default 30s. How often source
	// topics and partition counts are re-read.
	RefreshInterval Duration `yaml:"refresh_interval"`
	// CommitInterval: pipelines[].commit_interval, default 100ms. How long one
	// transaction (or checkpoint batch) collects records at most; exactly
	// once, a task that has caught up with its source commits after a
	// quarter of it.
	CommitInterval Duration `yaml:"commit_interval"`
	// BufferBytes: pipelines[].buffer_bytes, Kafka sources, default 0 =
	// DefaultBufferBytes (16 MiB), 4 MiB..4 GiB, restart of the tasks required.
	// What the Kafka clients of one task may hold in memory: half for the
	// target producer's queue, a quarter for the source consumer's prefetch
	// queue and a quarter for its fetches in flight (replicator/clients.go).
	// It bounds a node's memory while the target is down (README, "Sizing").
	BufferBytes int `yaml:"buffer_bytes,omitempty"`
	// Heartbeats: pipelines[].heartbeats, Kafka sources, default true unless the
	// source is read_only. Each task writes a heartbeat record to the source's
	// _tributary.heartbeat every HeartbeatInterval and mirrors it like data, so
	// tributary_heartbeat_age_seconds shows a stalled pipeline without traffic.
	Heartbeats *bool `yaml:"heartbeats,omitempty"`
	// HeartbeatInterval: pipelines[].heartbeat_interval, default 1s.
	HeartbeatInterval Duration `yaml:"heartbeat_interval,omitempty"`
	// OffsetSyncInterval: pipelines[].offset_sync_interval, Kafka sources, default
	// 1s. How often each partition's (source offset, target offset) pair is
	// written to the target's _tributary.offset-syncs for consumer failover.
	OffsetSyncInterval Duration `yaml:"offset_sync_interval,omitempty"`
	// Groups: pipelines[].groups, Kafka sources, default off (no include).
	// Consumer groups of the source whose committed offsets are translated
	// and committed in the target every Groups.Interval (consumer failover,
	// MirrorMaker 2's sync.group.offsets.enabled). Reloaded with the tasks.
	Groups *Groups `yaml:"groups,omitempty"`
	// TopicConfigs: pipelines[].topic_configs, Kafka sources: which of the
	// mirrored topic settings (MirroredTopicConfigs) the target cluster owns.
	TopicConfigs TopicConfigs `yaml:"topic_configs,omitempty"`
	// PubSub: pipelines[].pubsub, receiver settings of a Pub/Sub source.
	PubSub *PubSubReceive `yaml:"pubsub,omitempty"`

	include, exclude []*regexp.Regexp
}

// Groups selects the source consumer groups whose offsets are synced to the
// target, by regular expressions (RE2, anchored at both ends like Topics).
type Groups struct {
	// Include: pipelines[].groups.include; no include means no group is synced.
	Include []string `yaml:"include"`
	// Exclude: pipelines[].groups.exclude.
	Exclude []string `yaml:"exclude,omitempty"`
	// Interval: pipelines[].groups.interval, default 30s, at least 1s. How
	// often the groups' offsets are synced.
	Interval Duration `yaml:"interval,omitempty"`

	include, exclude []*regexp.Regexp
}

// DefaultGroupSyncInterval is pipelines[].groups.interval when unset.
const DefaultGroupSyncInterval = 30 * time.Second

// SyncsGroups reports whether the pipeline syncs consumer group offsets.
func (p *Pipeline) SyncsGroups() bool {
	return p.Source.Kafka != "" && p.Groups != nil && len(p.Groups.Include) > 0
}

// GroupInterval returns pipelines[].groups.interval with its default applied.
func (p *Pipeline) GroupInterval() time.Duration {
	if p.Groups == nil || p.Groups.Interval == 0 {
		return DefaultGroupSyncInterval
	}
	return p.Groups.Interval.D()
}

// SelectsGroup reports whether the pipeline syncs the offsets of a consumer
// group: it matches an include and no exclude. Valid after Validate.
func (p *Pipeline) SelectsGroup(group string) bool {
	if !p.SyncsGroups() {
		return false
	}
	in := false
	for _, re := range p.Groups.include {
		if re.MatchString(group) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, re := range p.Groups.exclude {
		if re.MatchString(group) {
			return false
		}
	}
	return true
}

// MirroredTopicConfigs returns the topic settings a pipeline copies from a
// source topic to its target topic, at creation and on every topic refresh
// after it: the ones that decide what a topic keeps and takes.
func MirroredTopicConfigs() []string {
	return []string{"cleanup.policy", "retention.ms", "retention.bytes", "max.message.bytes", "compression.type"}
}

// TopicConfigs says which mirrored topic settings a pipeline leaves alone.
type TopicConfigs struct {
	// Exclude: topic_configs.exclude, names from MirroredTopicConfigs that the
	// target cluster owns: never copied, neither when a target topic is
	// created (it takes the target's default) nor later (a value set on the
	// target topic by hand stays).
	Exclude []string `yaml:"exclude"`
}

// MirrorsTopicConfig reports whether the pipeline copies the topic setting
// key from its source topics to their target topics.
func (p *Pipeline) MirrorsTopicConfig(key string) bool {
	return slices.Contains(MirroredTopicConfigs(), key) && !slices.Contains(p.TopicConfigs.Exclude, key)
}

// DefaultBufferBytes is pipelines[].buffer_bytes when unset.
const DefaultBufferBytes = 16 << 20

// Buffer returns pipelines[].buffer_bytes with its default applied.
func (p *Pipeline) Buffer() int64 {
	if p.BufferBytes == 0 {
		return DefaultBufferBytes
	}
	return int64(p.BufferBytes)
}

// PubSubReceive tunes how a Pub/Sub pipeline receives. Unset fields take the
// defaults listed in package pubsubbridge.
type PubSubReceive struct {
	// Streams: pubsub.streams, StreamingPull streams per task, default 4.
	Streams int `yaml:"streams,omitempty"`
	// MaxOutstandingMessages, MaxOutstandingBytes: pubsub.max_outstanding_messages
	// (default 1000) and pubsub.max_outstanding_bytes (default 256 MiB), flow
	// control per task: messages received and not yet acked.
	MaxOutstandingMessages int `yaml:"max_outstanding_messages,omitempty"`
	MaxOutstandingBytes    int `yaml:"max_outstanding_bytes,omitempty"`
	// MaxExtension: pubsub.max_extension, default 60m. How long ack deadlines of
	// held messages are extended (slow deliveries, a Kafka outage).
	MaxExtension Duration `yaml:"max_extension,omitempty"`
	// RetryTimeout: pubsub.retry_timeout, default 5m. How long a message is
	// retried in place before it is nacked for redelivery; < max_extension.
	RetryTimeout Duration `yaml:"retry_timeout,omitempty"`
	// DedupWindow: pubsub.dedup_window, default 10m; 0s turns suppression of
	// redeliveries off. DedupMaxIDs: pubsub.dedup_max_ids, default 200000.
	DedupWindow *Duration `yaml:"dedup_window,omitempty"`
	DedupMaxIDs int       `yaml:"dedup_max_ids,omitempty"`
	// MaxMessageBytes: pubsub.max_message_bytes, default 1048588 (the target
	// topic's max.message.bytes): larger records are quarantined.
	MaxMessageBytes int `yaml:"max_message_bytes,omitempty"`
	// DeadLetterTopic: pubsub.dead_letter_topic, a Pub/Sub topic for quarantined
	// messages: a topic id, or "projects/<project>/topics/<id>" of the source's
	// own project (another project is an error). Unset: quarantine_kafka, else
	// _tributary.quarantine in the target cluster, which is allowed only when
	// the target is in the Pub/Sub project's region (raw messages stay in their
	// region). See Config.PubSubQuarantine.
	DeadLetterTopic string `yaml:"dead_letter_topic,omitempty"`
	// QuarantineKafka: pubsub.quarantine_kafka, the name of a kafka cluster in
	// the Pub/Sub project's region whose _tributary.quarantine receives
	// quarantined messages; not with dead_letter_topic, not a read_only
	// cluster. See Config.PubSubQuarantine.
	QuarantineKafka string `yaml:"quarantine_kafka,omitempty"`
	// Schema: pubsub.schema, JSON Schema validation against the target registry.
	Schema *PubSubSchema `yaml:"schema,omitempty"`
}

// PubSubSchema validates a format json Pub/Sub pipeline's messages against a
// JSON Schema subject of the target's schema registry.
type PubSubSchema struct {
	// Subject: pubsub.schema.subject, required.
	Subject string `yaml:"subject"`
	// Version: pubsub.schema.version, the subject version used for messages
	// without a mapped Pub/Sub schema revision; default (unset) the latest.
	Version int `yaml:"version,omitempty"`
	// Revisions: pubsub.schema.revisions, Pub/Sub schema revision id
	// (googclient_schemarevisionid) → subject version.
	Revisions map[string]int `yaml:"revisions,omitempty"`
}

// Source names where a pipeline reads.
type Source struct {
	// Kafka: source.kafka, a name under kafka.
	Kafka string `yaml:"kafka"`
	// PubSub: source.pubsub, a name under pubsub.
	PubSub string `yaml:"pubsub"`
	// Subscription: source.subscription, with pubsub.
	Subscription string `yaml:"subscription"`
}

// Topics selects source topics by regular expressions (RE2, anchored at both ends
// as in MirrorMaker 2's topic filters).
type Topics struct {
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// IsExactlyOnce reports whether the pipeline uses transactions.
func (p *Pipeline) IsExactlyOnce() bool { return p.ExactlyOnce == nil || *p.ExactlyOnce }

// HasHeartbeats reports whether the pipeline's tasks write heartbeats.
func (p *Pipeline) HasHeartbeats() bool { return p.Heartbeats != nil && *p.Heartbeats }

// Ungoverned reports whether the operator turned masking off for the pipeline
// (governance: none). The daemon then starts it even where a policy applies to
// it but cannot mask its format, and shows it as ungoverned.
func (p *Pipeline) Ungoverned() bool { return p.Governance == GovernanceNone }

// HasLineage reports whether lineage headers are added.
func (p *Pipeline) HasLineage() bool { return p.LineageHeaders == nil || *p.LineageHeaders }

// IsInternal reports whether a topic is internal and never mirrored: names
// starting with "_" (which covers "__") or ending in ".internal".
func IsInternal(topic string) bool {
	return strings.HasPrefix(topic, "_") || strings.HasSuffix(topic, ".internal")
}

// Selects reports whether the pipeline mirrors the source topic.
func (p *Pipeline) Selects(topic string) bool {
	if IsInternal(topic) {
		return false
	}
	in := false
	for _, re := range p.include {
		if re.MatchString(topic) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, re := range p.exclude {
		if re.MatchString(topic) {
			return false
		}
	}
	return true
}

// TargetTopic applies the rename template to a source topic.
func (p *Pipeline) TargetTopic(topic string) string {
	if p.Source.PubSub != "" {
		return p.Topic
	}
	return strings.NewReplacer("{source}", p.Source.Kafka, "{topic}", topic, "{pipeline}", p.Name).Replace(p.Rename)
}

// Duration is a time.Duration written as "500ms", "30s", "1m".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// Secret is a string that never prints.
type Secret string

// String hides the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// MarshalYAML hides the value.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// GoString hides the value from %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// MarshalJSON hides the value from encoding/json (and slog's JSON handler).
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText hides the value from encoders that use encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue hides the value from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Line returns the line in File of a key path such as "pipelines[1].topics.include[0]"
// or, when the path was not written there (a default), of its nearest written
// parent; 0 for a config built in code.
func (c *Config) Line(path string) int {
	return c.pos.Nearest(path).Line
}

// PubSubQuarantine returns where a validated Pub/Sub pipeline's quarantined
// (raw) messages go: either a Kafka cluster name, whose _tributary.quarantine
// receives them, or a Pub/Sub dead-letter topic as a full resource name
// ("projects/<project>/topics/<id>", in the source's project); exactly one of
// the two is set. It is the dead_letter_topic when set, else the
// quarantine_kafka cluster when set, else the target. Validate makes sure the
// answer keeps raw messages in the Pub/Sub project's region. For a pipeline
// that does not read Pub/Sub it returns "", "".
func (c *Config) PubSubQuarantine(p *Pipeline) (kafkaCluster string, deadLetter string) {
	if p == nil || p.Source.PubSub == "" {
		return "", ""
	}
	if r := p.PubSub; r != nil {
		if r.DeadLetterTopic != "" {
			project := ""
			if ps := c.PubSub[p.Source.PubSub]; ps != nil {
				project = ps.Project
			}
			return "", topicName(project, r.DeadLetterTopic)
		}
		if r.QuarantineKafka != "" {
			return r.QuarantineKafka, ""
		}
	}
	return c.Target, ""
}

// topicName returns a Pub/Sub topic as a full resource name: a topic id
// becomes "projects/<project>/topics/<id>", a full name stays as it is.
func topicName(project, topic string) string {
	if strings.HasPrefix(topic, "projects/") {
		return topic
	}
	return "projects/" + project + "/topics/" + topic
}

// Pipeline returns the pipeline with the given name, or nil.
func (c *Config) Pipeline(name string) *Pipeline {
	for _, p := range c.Pipelines {
		if p != nil && p.Name == name {
			return p
		}
	}
	return nil
}
