package config

import (
	"strconv"
	"time"
)

// Default returns a new config holding the defaults of the node and cluster
// sections; Load decodes the file onto it. Per-pipeline and per-project defaults
// are applied after decoding, as the entries only exist then.
func Default() *Config {
	return &Config{
		Node: Node{
			DataDir:  "data",
			RaftAddr: "127.0.0.1:7400",
			HTTPAddr: "127.0.0.1:7480",
		},
		Cluster: Cluster{
			HeartbeatTimeout: Duration(time.Second),
			ElectionTimeout:  Duration(time.Second),
			FailureTimeout:   Duration(10 * time.Second),
			RebalanceMargin:  0.2,
		},
	}
}

// setDefaults fills in the defaults of pipelines and Pub/Sub projects. A field
// gets its default when it is zero and was not written in the file, so that an
// explicit "tasks: 0" is reported by Validate instead of silently becoming 1.
func (c *Config) setDefaults() {
	for name, ps := range c.PubSub {
		if ps != nil && ps.Region == "" && c.unset("pubsub."+name+".region") {
			ps.Region = "cloud"
		}
	}
	yes := func() *bool { b := true; return &b }
	for i, p := range c.Pipelines {
		if p == nil {
			continue
		}
		at := func(key string) bool { return c.unset("pipelines[" + strconv.Itoa(i) + "]." + key) }
		if p.Rename == "" && p.Source.Kafka != "" && at("rename") {
			p.Rename = "{source}.{topic}"
		}
		if p.Format == "" && at("format") {
			p.Format = "bytes"
		}
		if p.Governance == "" && at("governance") {
			p.Governance = GovernanceEnforced
		}
		if p.Tasks == 0 && at("tasks") {
			p.Tasks = 1
		}
		if p.Start == "" && at("start") {
			p.Start = "earliest"
		}
		if p.RefreshInterval == 0 && at("refresh_interval") {
			p.RefreshInterval = Duration(30 * time.Second)
		}
		if p.CommitInterval == 0 && at("commit_interval") {
			p.CommitInterval = Duration(100 * time.Millisecond)
		}
		if p.Source.Kafka != "" {
			if p.HeartbeatInterval == 0 && at("heartbeat_interval") {
				p.HeartbeatInterval = Duration(time.Second)
			}
			if p.OffsetSyncInterval == 0 && at("offset_sync_interval") {
				p.OffsetSyncInterval = Duration(time.Second)
			}
			if g := p.Groups; g != nil && g.Interval == 0 && at("groups.interval") {
				g.Interval = Duration(DefaultGroupSyncInterval)
			}
			if p.Heartbeats == nil {
				on := true
				if k := c.Kafka[p.Source.Kafka]; k != nil && k.ReadOnly {
					on = false
				}
				p.Heartbeats = &on
			}
		}
		// Spelled out, so that Redacted shows the effective value.
		if p.ExactlyOnce == nil {
			p.ExactlyOnce = yes()
		}
		if p.LineageHeaders == nil {
			p.LineageHeaders = yes()
		}
	}
}

// unset reports whether path was not written in the file.
func (c *Config) unset(path string) bool {
	_, ok := c.pos[path]
	return !ok
}
