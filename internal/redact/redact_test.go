package redact

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	r := New("principal=tributary extension_x=S3CRET-TOKEN-9", "hunter2-password", "abc", "")
	for _, tc := range []struct{ name, in, want string }{
		{"a whole secret", "login with hunter2-password failed", "login with <secret> failed"},
		{"the end of a secret, as librdkafka quotes it", "Unrecognized sasl.oauthbearer.config beginning at: extension_x=S3CRET-TOKEN-9",
			"Unrecognized sasl.oauthbearer.config beginning at:<secret>"}, // the space agrees with the secret too
		{"the start of a secret", "config principal=tributary, more", "config <secret>, more"},
		{"words that merely occur inside a secret stay", "tributary node starting", "tributary node starting"},
		{"a secret twice", "hunter2-password/hunter2-password", "<secret>/<secret>"},
		{"short secrets are not looked for", "abc def", "abc def"},
		{"nothing to redact", "all fine", "all fine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.String(tc.in); got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if got := (*Redactor)(nil).String("hunter2-password"); got != "hunter2-password" {
		t.Errorf("a nil Redactor changed %q", got)
	}
}

func TestErrorAndHandler(t *testing.T) {
	r := New("hunter2-password")
	base := fmt.Errorf("dialing with hunter2-password: %w", fs.ErrPermission)
	err := r.Error(base)
	if strings.Contains(err.Error(), "hunter2") || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Error = %v, want redacted and still fs.ErrPermission", err)
	}
	if clean := errors.New("clean"); r.Error(clean) != clean {
		t.Error("a clean error was replaced")
	}
	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		log := slog.New(r.Handler(h(&b))).With("dsn", "u:hunter2-password@h")
		log.WithGroup("g").Info("connect hunter2-password", "err", base, "s", "x hunter2-password", "n", 3,
			slog.Group("inner", "v", "hunter2-password"), "any", struct{ P string }{"hunter2-password"})
		if out := b.String(); strings.Contains(out, "hunter2") || !strings.Contains(out, "<secret>") || !strings.Contains(out, "3") {
			t.Errorf("log line %s", out)
		}
	}
}
