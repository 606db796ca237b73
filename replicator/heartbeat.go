package replicator

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/kafkaclient"
)

// HeartbeatTopic is the topic in each writable source cluster that the tasks of
// pipelines with heartbeats write to every heartbeat_interval. It is mirrored
// like data (to the pipeline's rename of it, "eu-west._tributary.heartbeat" by
// default), so that the age of the newest heartbeat that reached the target
// (tributary_heartbeat_age_seconds) shows a stalled pipeline even when no data
// flows.
//
// The name is singular on purpose: MirrorMaker 2 copies every topic whose
// name, stripped of "<alias>." prefixes, is "heartbeats", whatever its topic
// filters say, so an MM2 mirroring the central cluster onward would drag the
// mirrored copies along. Versions before it used "_tributary.heartbeats";
// nothing reads or mirrors that topic any more (see the README, "Heartbeats").
const HeartbeatTopic = "_tributary.heartbeat"

const (
	// heartbeatRetention is the heartbeat topic's retention.ms: only the newest
	// heartbeats matter, and an hour covers any restart.
	heartbeatRetention = time.Hour
	// heartbeatLogEvery bounds warnings about failed heartbeat writes.
	heartbeatLogEvery = 10 * time.Second
)

// heartbeat is the value of a heartbeat record; JSON so that operators can
// read it with any console consumer. The key is "<pipeline>/<task index>" and
// the record timestamp is Time.
type heartbeat struct {
	V        int       `json:"v"`
	Source   string    `json:"source"`   // source cluster name
	Pipeline string    `json:"pipeline"` // pipeline name
	Task     int       `json:"task"`     // task index
	Time     time.Time `json:"time"`     // when it was written
}

func heartbeatKey(pipeline string, task int) []byte {
	return []byte(pipeline + "/" + strconv.Itoa(task))
}

// heartbeatPartitions is the partition count the heartbeat topic of a source
// cluster needs: the largest task count of the pipelines writing heartbeats
// there, so that every task owns at least one partition ((h + p) mod tasks
// takes every value for p in 0..tasks-1).
func heartbeatPartitions(cfg *config.Config, source string) int {
	n := 1
	for _, pc := range cfg.Pipelines {
		if pc.Source.Kafka == source && pc.HasHeartbeats() && pc.Tasks > n {
			n = pc.Tasks
		}
	}
	return n
}

// heartbeatTopicSpec is how the pipelines create the heartbeat topic.
func heartbeatTopicSpec(partitions int) kafka.TopicSpecification {
	return kafka.TopicSpecification{
		Topic: HeartbeatTopic, NumPartitions: partitions, ReplicationFactor: -1,
		Config: map[string]string{
			"cleanup.policy": "delete",
			"retention.ms":   strconv.FormatInt(heartbeatRetention.Milliseconds(), 10),
		},
	}
}

// heartbeatPartition returns the first partition of the heartbeat topic that
// task i owns; ok is false when the topic is not ready or too small.
func (p *Pipeline) heartbeatPartition(i int) (part int32, n int, ok bool) {
	p.mu.Lock()
	n = p.topics[HeartbeatTopic]
	p.mu.Unlock()
	for part := int32(0); part < int32(n); part++ {
		if Owner(HeartbeatTopic, part, p.cfg.Tasks) == i {
			return part, n, true
		}
	}
	return 0, n, false
}

// heartbeatInterval is heartbeat_interval, 1s when unset (a config built in code).
func (p *Pipeline) heartbeatInterval() time.Duration {
	if d := p.cfg.HeartbeatInterval.D(); d > 0 {
		return d
	}
	return time.Second
}

// writeHeartbeats writes one heartbeat of the task every heartbeat_interval to
// the first heartbeat partition it owns, with a plain producer on the source,
// until ctx ends. Failures are logged (at most every 10 s) and never fail the
// task: the growing heartbeat age is what reports them.
func (t *Task) writeHeartbeats(ctx context.Context, logs *kafkaclient.Logs) {
	p := t.p
	every := p.heartbeatInterval()
	// The Producer role pins acks=all.
	cm, over := kafkaclient.Config(p.source, kafkaclient.Producer, kafkaclient.Required{
		"go.delivery.report.fields": "none",
		// The client's Go channels default to 1M entries (24 MB per producer)
		// for a producer that sends one record a second.
		"go.events.channel.size":  100,
		"go.produce.channel.size": 100,
	}, kafkaclient.Tuning{
		"client.id":                txnID(p.cfg.Name, t.id.Index) + "-heartbeats",
		"linger.ms":                5,
		"message.timeout.ms":       int(max(10*time.Second, 2*every) / time.Millisecond),
		"reconnect.backoff.max.ms": 5000,
	})
	logs.WarnOverridden(p.sourceName, kafkaclient.Producer, over)
	prod, err := kafka.NewProducer(logs.Attach(cm))
	if err != nil {
		t.log.Warn("heartbeats off for this session: creating the heartbeat producer failed", "err", err)
		return
	}
	var logMu sync.Mutex
	var logAt time.Time
	warn := func(msg string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		if time.Since(logAt) < heartbeatLogEvery {
			return
		}
		logAt = time.Now()
		t.log.Warn(msg, args...)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range prod.Events() {
			switch e := ev.(type) {
			case *kafka.Message:
				if e.TopicPartition.Error != nil {
					warn("writing a heartbeat to the source failed", "topic", HeartbeatTopic, "partition", e.TopicPartition.Partition, "err", e.TopicPartition.Error)
				}
			case kafka.Error:
				warn("heartbeat producer error", "err", e)
			}
		}
	}()
	defer func() {
		prod.Flush(500)
		prod.Close()
		<-done
	}()

	topic := HeartbeatTopic
	key := heartbeatKey(p.cfg.Name, t.id.Index)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		part, n, ok := p.heartbeatPartition(t.id.Index)
		switch {
		case ok:
			now := p.deps.Now()
			v, _ := json.Marshal(heartbeat{V: 1, Source: p.sourceName, Pipeline: p.cfg.Name, Task: t.id.Index, Time: now.UTC()})
			err := prod.Produce(&kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: part},
				Key:            key, Value: v, Timestamp: now,
			}, nil)
			if err != nil {
				warn("writing a heartbeat to the source failed", "topic", HeartbeatTopic, "partition", part, "err", err)
			}
		case n > 0:
			warn("task owns no partition of the heartbeat topic: grow it to the pipeline's task count", "topic", HeartbeatTopic, "partitions", n, "tasks", p.cfg.Tasks)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// isHeartbeatOf reports whether a heartbeat record's key names the pipeline.
func isHeartbeatOf(pipeline string, key []byte) bool {
	return len(key) > len(pipeline) && key[len(pipeline)] == '/' && strings.HasPrefix(string(key), pipeline)
}

// track adds a running task to the pipeline's set (lag, heartbeat age); the
// heartbeat age series exists while at least one task is tracked. untrack
// undoes it.
func (p *Pipeline) track(t *Task) (untrack func()) {
	r := &p.running
	r.mu.Lock()
	if r.tasks == nil {
		r.tasks = map[*Task]struct{}{}
	}
	r.tasks[t] = struct{}{}
	if len(r.tasks) == 1 && p.heartbeats {
		p.deps.Metrics.HeartbeatAge.Set(p.cfg.Name, p.heartbeatAge)
	}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.tasks, t)
		if len(r.tasks) == 0 && p.heartbeats {
			p.deps.Metrics.HeartbeatAge.Delete(p.cfg.Name)
		}
	}
}

// heartbeatAge is the age in seconds of the oldest "newest committed
// heartbeat" among the pipeline's tasks on this node: a single stalled task
// shows, even when the node runs others of the pipeline that are fine.
func (p *Pipeline) heartbeatAge() float64 {
	now := p.deps.Now().UnixMilli()
	r := &p.running
	r.mu.Lock()
	defer r.mu.Unlock()
	age := 0.0
	for t := range r.tasks {
		if a := float64(now-t.heartbeatAt.Load()) / 1000; a > age {
			age = a
		}
	}
	return age
}
