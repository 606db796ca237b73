// Package redact removes known secret values from text on its way out of the
// daemon: log lines, errors and HTTP answers. Secrets are kept out of these at
// their source (config.Secret, redacted URLs); this is the net under that,
// for text the daemon does not write itself, such as librdkafka's messages,
// which quote property values ("Unrecognized sasl.oauthbearer.config
// beginning at: ...").
package redact

import (
	"context"
	"log/slog"
	"strings"
)

// Mark replaces a secret in redacted text.
const Mark = "<secret>"

// edge is how much of a secret's start or end must appear for the piece to be
// redacted: a message that quotes only the end of a secret (librdkafka's
// "beginning at: ...") or its start still loses it, while ordinary words that
// happen to occur inside a secret do not. Secrets shorter than minLen are not
// looked for: they would match ordinary words.
const (
	edge   = 8
	minLen = 4
)

// Redactor removes a fixed set of secrets. nil removes nothing. Safe for
// concurrent use.
type Redactor struct {
	secrets []string
}

// New returns a Redactor of the given secrets; empty and short ones are
// ignored.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if len(s) >= minLen {
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

// String returns s with every secret replaced by <secret>, and every piece of
// one that holds its first or last 8 bytes.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	for _, x := range r.secrets {
		s = strings.ReplaceAll(s, x, Mark)
		if len(x) <= edge {
			continue
		}
		s = cutPieces(s, x[len(x)-edge:], func(s string, at int) (int, int) {
			// Extend backwards while s and x agree: a suffix of x.
			i, j := at, len(x)-edge
			for i > 0 && j > 0 && s[i-1] == x[j-1] {
				i, j = i-1, j-1
			}
			return i, at + edge
		})
		s = cutPieces(s, x[:edge], func(s string, at int) (int, int) {
			// Extend forwards while s and x agree: a prefix of x.
			i, j := at+edge, edge
			for i < len(s) && j < len(x) && s[i] == x[j] {
				i, j = i+1, j+1
			}
			return at, i
		})
	}
	return s
}

// cutPieces replaces, for every occurrence of anchor in s, the span that
// extend returns by <secret>.
func cutPieces(s, anchor string, extend func(s string, at int) (int, int)) string {
	for from := 0; ; {
		k := strings.Index(s[from:], anchor)
		if k < 0 {
			return s
		}
		i, j := extend(s, from+k)
		s = s[:i] + Mark + s[j:]
		from = i + len(Mark)
	}
}

// Error returns err unchanged when its text holds no secret, else an error
// with the redacted text that still matches err's chain with errors.Is and
// errors.As.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := r.String(msg); red != msg {
		return &redacted{msg: red, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }
func (e *redacted) Unwrap() error { return e.err }

// Handler returns a slog.Handler that redacts the message and every attribute
// value (strings, errors, anything printed) before h sees them.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	if r == nil || len(r.secrets) == 0 {
		return h
	}
	return &handler{r: r, h: h}
}

type handler struct {
	r *Redactor
	h slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		as := v.Group()
		out := make([]any, len(as))
		for i, g := range as {
			out[i] = h.attr(g)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		var s string
		if err, ok := v.Any().(error); ok {
			s = err.Error()
		} else {
			s = v.String()
		}
		if red := h.r.String(s); red != s {
			return slog.String(a.Key, red)
		}
		return slog.Attr{Key: a.Key, Value: v}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.attr(a)
	}
	return &handler{r: h.r, h: h.h.WithAttrs(out)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{r: h.r, h: h.h.WithGroup(name)}
}
