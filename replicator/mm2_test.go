package replicator

import (
	"strings"
	"testing"
)

// MirrorMaker 2's naming rules, as its ReplicationPolicy and
// DefaultReplicationPolicy (separator ".") define them, written out here so
// that tributary's internal topic names can be checked against them.

// mm2TopicSource is DefaultReplicationPolicy.topicSource: the text before the
// first separator, nil (ok false) for a name without one. Java's split drops
// trailing empty strings, so "heartbeats." is no remote topic.
func mm2TopicSource(topic string) (string, bool) {
	parts := strings.Split(topic, ".")
	for len(parts) > 0 && parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	if len(parts) < 2 {
		return "", false
	}
	return parts[0], true
}

// mm2OriginalTopic is ReplicationPolicy.originalTopic: upstreamTopic applied
// until the name has no source prefix left.
func mm2OriginalTopic(topic string) string {
	src, ok := mm2TopicSource(topic)
	if !ok {
		return topic
	}
	up := topic[len(src)+1:]
	if up == topic {
		return topic
	}
	return mm2OriginalTopic(up)
}

// mm2IsHeartbeatsTopic is ReplicationPolicy.isHeartbeatsTopic, which
// MirrorSourceConnector.shouldReplicateTopic ORs with its topic filter:
// such a topic is mirrored whatever topics and topics.exclude say.
func mm2IsHeartbeatsTopic(topic string) bool { return mm2OriginalTopic(topic) == "heartbeats" }

// mm2IsInternalTopic is ReplicationPolicy.isInternalTopic (the union of the
// 2.x and 3.x rules): never mirrored by MM2.
func mm2IsInternalTopic(topic string) bool {
	return strings.HasPrefix(topic, "__") || strings.HasPrefix(topic, ".") ||
		strings.HasSuffix(topic, ".internal") || strings.HasSuffix(topic, "-internal")
}

func TestMM2Rules(t *testing.T) {
	for topic, want := range map[string]bool{
		"heartbeats": true, "us-west.heartbeats": true, "a.b.heartbeats": true,
		"heartbeats.": false, "myheartbeats": false, "heartbeat": false, "heartbeats.x": false,
	} {
		if got := mm2IsHeartbeatsTopic(topic); got != want {
			t.Errorf("mm2IsHeartbeatsTopic(%q) = %v, want %v", topic, got, want)
		}
	}
}

// The heartbeat topic and its mirrored copies are no heartbeats topics under
// MirrorMaker 2's rule, so an MM2 mirroring the central cluster onward copies
// them only if its filters say so; the name of earlier versions was one.
// tributary's internal topics are no MM2 internal topics either (one
// underscore): an MM2 with topics ".*" copies them unless its topics.exclude
// names them, as the README tells.
func TestInternalTopicsEscapeMM2HeartbeatRule(t *testing.T) {
	cfg := mirrorConfig(t, "127.0.0.1:1", "127.0.0.1:2", "")
	pc := cfg.Pipeline("eu")
	for _, topic := range []string{HeartbeatTopic, pc.TargetTopic(HeartbeatTopic), "us-east." + pc.TargetTopic(HeartbeatTopic),
		CheckpointTopic, OffsetSyncTopic, QuarantineTopic} {
		if mm2IsHeartbeatsTopic(topic) {
			t.Errorf("%s is a heartbeats topic for MirrorMaker 2: it would be mirrored whatever MM2's filters say", topic)
		}
		if mm2IsInternalTopic(topic) {
			t.Errorf("%s is internal for MirrorMaker 2: the README says MM2 copies it unless excluded", topic)
		}
	}
	for _, legacy := range []string{"_tributary.heartbeats", srcCluster + "._tributary.heartbeats"} {
		if !mm2IsHeartbeatsTopic(legacy) {
			t.Errorf("%s: the reason for the rename no longer holds under this rule", legacy)
		}
	}
}
