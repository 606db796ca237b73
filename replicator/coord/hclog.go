package coord

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// hclogAdapter sends the logs of hashicorp/raft and raft-wal (which use hclog)
// to the node's slog logger. raft's Info lines (state changes, every
// configuration entry) go out at Debug: the node logs the events an operator
// needs itself. Warn and Error lines keep their level, but one message repeats
// at most once per repeatEvery (raft logs a failed heartbeat to a dead peer
// several times a second); the next one carries the count it stands for.
type hclogAdapter struct {
	l       *slog.Logger
	name    string
	implied []any
	limit   *repeatLimiter
}

const repeatEvery = 10 * time.Second

type repeatLimiter struct {
	now  func() time.Time
	mu   sync.Mutex
	last map[string]time.Time
	n    map[string]int
}

// allow reports whether msg may be logged now and how many were suppressed
// since the last time it was.
func (r *repeatLimiter) allow(msg string) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if t, ok := r.last[msg]; ok && now.Sub(t) < repeatEvery {
		r.n[msg]++
		return false, 0
	}
	r.last[msg] = now
	n := r.n[msg]
	delete(r.n, msg)
	return true, n
}

func newHCLogAdapter(l *slog.Logger, now func() time.Time) hclog.Logger {
	return &hclogAdapter{l: l, limit: &repeatLimiter{now: now, last: map[string]time.Time{}, n: map[string]int{}}}
}

func (a *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	var lvl slog.Level
	switch {
	case level <= hclog.Info: // NoLevel, Trace, Debug, Info
		lvl = slog.LevelDebug
	case level == hclog.Warn:
		lvl = slog.LevelWarn
	default:
		lvl = slog.LevelError
	}
	if lvl > slog.LevelDebug && duringShutdown(args) {
		// "failed to decode incoming command: transport shutdown" and the
		// like: the node is stopping, nothing is wrong.
		lvl = slog.LevelDebug
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, lvl) {
		return
	}
	attrs := make([]any, 0, len(a.implied)+len(args)+4)
	if a.name != "" {
		attrs = append(attrs, "raft_component", a.name)
	}
	attrs = append(attrs, a.implied...)
	attrs = append(attrs, args...)
	if lvl >= slog.LevelWarn {
		ok, suppressed := a.limit.allow(msg)
		if !ok {
			return
		}
		if suppressed > 0 {
			attrs = append(attrs, "repeated", suppressed)
		}
	}
	a.l.Log(ctx, lvl, msg, attrs...)
}

// duringShutdown reports whether a raft log line's error is the transport
// being closed by this node's shutdown.
func duringShutdown(args []any) bool {
	for _, v := range args {
		if err, ok := v.(error); ok && (errors.Is(err, raft.ErrTransportShutdown) || err.Error() == raft.ErrTransportShutdown.Error()) {
			return true
		}
	}
	return false
}

func (a *hclogAdapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *hclogAdapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *hclogAdapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *hclogAdapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *hclogAdapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *hclogAdapter) IsTrace() bool { return false }
func (a *hclogAdapter) IsDebug() bool { return a.l.Enabled(context.Background(), slog.LevelDebug) }
func (a *hclogAdapter) IsInfo() bool  { return a.IsDebug() }
func (a *hclogAdapter) IsWarn() bool  { return a.l.Enabled(context.Background(), slog.LevelWarn) }
func (a *hclogAdapter) IsError() bool { return a.l.Enabled(context.Background(), slog.LevelError) }

func (a *hclogAdapter) ImpliedArgs() []any { return a.implied }

func (a *hclogAdapter) With(args ...any) hclog.Logger {
	c := *a
	c.implied = append(append([]any(nil), a.implied...), args...)
	return &c
}

func (a *hclogAdapter) Name() string { return a.name }

func (a *hclogAdapter) Named(name string) hclog.Logger {
	c := *a
	if c.name != "" {
		name = c.name + "." + name
	}
	c.name = name
	return &c
}

func (a *hclogAdapter) ResetNamed(name string) hclog.Logger {
	c := *a
	c.name = name
	return &c
}

// SetLevel is ignored: the slog handler decides.
func (a *hclogAdapter) SetLevel(hclog.Level) {}

func (a *hclogAdapter) GetLevel() hclog.Level {
	if a.IsDebug() {
		return hclog.Debug
	}
	return hclog.Warn
}

func (a *hclogAdapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		msg := strings.TrimSpace(string(p))
		level := hclog.Info
		switch {
		case strings.HasPrefix(msg, "[ERR"):
			level = hclog.Error
		case strings.HasPrefix(msg, "[WARN"):
			level = hclog.Warn
		}
		a.Log(level, msg)
		return len(p), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
