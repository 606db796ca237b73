package replicator

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
)

// clientConfig builds a librdkafka configuration for a cluster: the cluster's own
// properties (security settings) first, then ours, which win where they overlap
// because correctness depends on them.
func clientConfig(k *config.Kafka, ours kafka.ConfigMap) *kafka.ConfigMap {
	cm := kafka.ConfigMap{
		"bootstrap.servers": k.Bootstrap,
		// KIP-714 client telemetry pushes to brokers that ask; not ours to send.
		"enable.metrics.push": false,
	}
	for key, v := range k.Properties {
		cm[key] = v
	}
	for key, v := range ours {
		cm[key] = v
	}
	return &cm
}

// logForwarder drains librdkafka's log events into slog, so a node's log is one
// structured stream. Close stops it after the clients that write to it are closed.
type logForwarder struct {
	ch   chan kafka.LogEvent
	done chan struct{}
	exit chan struct{}
}

func newLogForwarder(log *slog.Logger) *logForwarder {
	f := &logForwarder{ch: make(chan kafka.LogEvent, 256), done: make(chan struct{}), exit: make(chan struct{})}
	go func() {
		defer close(f.exit)
		for {
			select {
			case ev := <-f.ch:
				level := slog.LevelDebug
				switch {
				case ev.Level <= 3:
					level = slog.LevelError
				case ev.Level == 4:
					level = slog.LevelWarn
				case ev.Level <= 6:
					level = slog.LevelInfo
				}
				log.Log(context.Background(), level, "librdkafka: "+ev.Message, "client", ev.Name, "tag", ev.Tag)
			case <-f.done:
				return
			}
		}
	}()
	return f
}

// attach adds the log channel to a client configuration.
func (f *logForwarder) attach(cm *kafka.ConfigMap) *kafka.ConfigMap {
	(*cm)["go.logs.channel.enable"] = true
	(*cm)["go.logs.channel"] = f.ch
	return cm
}

func (f *logForwarder) Close() {
	select {
	case <-f.done:
	default:
		close(f.done)
		<-f.exit
	}
}

// kafkaCode returns the librdkafka error code of err, or ErrNoError.
func kafkaCode(err error) kafka.ErrorCode {
	var ke kafka.Error
	if err != nil && asKafkaError(err, &ke) {
		return ke.Code()
	}
	return kafka.ErrNoError
}

// txnID is the transactional.id of a task: stable across nodes so that a task
// moved to another node fences its previous owner.
func txnID(pipeline string, task int) string {
	return fmt.Sprintf("tributary-%s-%d", pipeline, task)
}

// redactedBootstrap is for log lines: bootstrap strings may hold credentials in
// exotic setups (sasl in URLs); keep only host:port lists.
func redactedBootstrap(s string) string {
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return s[i+1:]
	}
	return s
}
