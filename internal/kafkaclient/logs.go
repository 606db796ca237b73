package kafkaclient

import (
	"context"
	"log/slog"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Logs drains librdkafka's log events of the clients attached to it into a
// slog.Logger, so a node's log is one structured stream. A nil *Logs attaches
// nothing: librdkafka then writes its own lines to stderr, which suits one-shot
// command-line work that has no logger.
//
// Close it after the clients attached to it are closed. Attach and
// WarnOverridden are safe for concurrent use.
type Logs struct {
	log  *slog.Logger
	ch   chan kafka.LogEvent
	done chan struct{}
	exit chan struct{}
	once sync.Once
}

// NewLogs starts forwarding to log.
func NewLogs(log *slog.Logger) *Logs {
	l := &Logs{log: log, ch: make(chan kafka.LogEvent, 256), done: make(chan struct{}), exit: make(chan struct{})}
	go func() {
		defer close(l.exit)
		for {
			select {
			case ev := <-l.ch:
				log.Log(context.Background(), level(ev.Level), "librdkafka: "+ev.Message, "client", ev.Name, "tag", ev.Tag)
			case <-l.done:
				return
			}
		}
	}()
	return l
}

// level maps a syslog level, as librdkafka logs (log_level), to slog's.
func level(syslog int) slog.Level {
	switch {
	case syslog <= 3: // emerg, alert, crit, err
		return slog.LevelError
	case syslog == 4: // warning
		return slog.LevelWarn
	case syslog <= 6: // notice, info
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// Attach adds the log channel to the configuration of a producer or consumer
// and returns cm. Admin clients get theirs through NewAdmin.
func (l *Logs) Attach(cm *kafka.ConfigMap) *kafka.ConfigMap {
	if l == nil {
		return cm
	}
	(*cm)["go.logs.channel.enable"] = true
	(*cm)["go.logs.channel"] = l.ch
	return cm
}

// WarnOverridden logs one warning naming the cluster and the user's
// properties that Config replaced for a client of role, if there are any. It
// names keys only: values may be secrets.
func (l *Logs) WarnOverridden(cluster string, role Role, keys []string) {
	if l == nil || len(keys) == 0 {
		return
	}
	l.log.Warn("kafka properties overridden: this client needs tributary's values for correctness",
		"cluster", cluster, "client", role.String(), "keys", keys)
}

// Close stops forwarding. It is idempotent.
func (l *Logs) Close() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		close(l.done)
		<-l.exit
	})
}
