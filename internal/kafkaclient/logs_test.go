package kafkaclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/test/harness"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// syncBuffer is a bytes.Buffer for a logger written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLevel(t *testing.T) {
	for _, tt := range []struct {
		syslog int
		want   slog.Level
	}{
		{0, slog.LevelError}, {3, slog.LevelError}, {4, slog.LevelWarn},
		{5, slog.LevelInfo}, {6, slog.LevelInfo}, {7, slog.LevelDebug},
	} {
		if got := level(tt.syslog); got != tt.want {
			t.Errorf("level(%d) = %v, want %v", tt.syslog, got, tt.want)
		}
	}
}

func TestWarnOverriddenNamesKeysAndClusterOnly(t *testing.T) {
	var buf syncBuffer
	logs := NewLogs(slog.New(slog.NewTextHandler(&buf, nil)))
	defer logs.Close()
	k := &config.Kafka{Bootstrap: "b:9092", Properties: map[string]string{
		"acks": "s3cret-acks", "transactional.id": "s3cret-txn", "sasl.password": "s3cret-pass",
	}}
	_, over := Config(k, IdempotentProducer, nil, nil)
	logs.WarnOverridden("eu-west", IdempotentProducer, over)
	out := buf.String()
	for _, want := range []string{"level=WARN", "cluster=eu-west", "acks", "transactional.id"} {
		if !strings.Contains(out, want) {
			t.Errorf("warning %q lacks %q", out, want)
		}
	}
	if strings.Contains(out, "s3cret") || strings.Contains(out, "sasl.password") {
		t.Errorf("warning %q shows a value or a key that was not overridden", out)
	}

	buf.b.Reset()
	logs.WarnOverridden("eu-west", Consumer, nil)
	if buf.String() != "" {
		t.Errorf("warned with nothing overridden: %q", buf.String())
	}
}

func TestNilLogsAttachesNothing(t *testing.T) {
	var logs *Logs
	cm, _ := Config(&config.Kafka{Bootstrap: "b:9092"}, Producer, nil, nil)
	n := len(*cm)
	logs.Attach(cm)
	logs.WarnOverridden("c", Producer, []string{"acks"})
	logs.Close()
	if len(*cm) != n {
		t.Fatalf("nil Logs changed the configuration: %v", *cm)
	}
}

// An admin client made by NewAdmin logs through Logs, which a plain
// kafka.NewAdminClient cannot.
func TestAdminLogsAreForwarded(t *testing.T) {
	var buf syncBuffer
	logs := NewLogs(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer logs.Close()
	cm, _ := Config(&config.Kafka{Bootstrap: "127.0.0.1:1"}, Admin, nil, Tuning{"client.id": "admin-logs-test", "debug": "broker"})
	a, err := NewAdmin(cm, logs)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, _ = a.GetMetadata(nil, false, 200) // nothing listens: only makes it try
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "librdkafka: ") || !strings.Contains(buf.String(), "admin-logs-test") {
		if time.Now().After(deadline) {
			t.Fatalf("no librdkafka log line from the admin client; log:\n%s", buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The harness's SASL_SSL listener refuses the admin client's password: the
// request only fails with "broker transport failure", AccessError says why,
// and the password is in neither. (kfake cannot stand in: it drops a
// connection with bad credentials without the SASL error a broker sends.)
func TestAdminAccessError(t *testing.T) {
	s := harness.SourceSASL(t)
	logs := NewLogs(discard())
	defer logs.Close()
	admin := func(pw string) *AdminClient {
		t.Helper()
		props := s.Properties()
		props["sasl.password"] = pw
		cm, _ := Config(&config.Kafka{Bootstrap: s.Bootstrap, Properties: props}, Admin, nil, nil)
		a, err := NewAdmin(cm, logs)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(a.Close)
		return a
	}

	good := admin(s.Password)
	if _, err := good.GetMetadata(nil, true, 10000); err != nil {
		t.Fatalf("metadata with the right password: %v", err)
	}
	if err := good.AccessError(); err != nil {
		t.Fatalf("AccessError with the right password = %v, want nil", err)
	}

	const wrong = "wrong-Pw-5519q-x8"
	bad := admin(wrong)
	if _, err := bad.GetMetadata(nil, true, 2000); err == nil {
		t.Fatal("metadata answered with a wrong password")
	} else if strings.Contains(err.Error(), wrong) {
		t.Fatalf("the request's error quotes the password: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for bad.AccessError() == nil {
		if time.Now().After(deadline) {
			t.Fatal("AccessError stays nil after a refused SASL authentication")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ke kafka.Error
	if err := bad.AccessError(); !errors.As(err, &ke) || !IsAccessError(ke) ||
		!strings.Contains(err.Error(), "SASL authentication error") || strings.Contains(err.Error(), wrong) {
		t.Fatalf("AccessError = %v, want the SASL refusal without the password", err)
	}

	// Not trusting the broker's certificate is a refusal too.
	props := s.Properties()
	props["ssl.ca.location"] = "probe" // the system's CAs, without the harness CA
	cm, _ := Config(&config.Kafka{Bootstrap: s.Bootstrap, Properties: props}, Admin, nil, nil)
	untrusting, err := NewAdmin(cm, logs)
	if err != nil {
		t.Fatal(err)
	}
	defer untrusting.Close()
	_, _ = untrusting.GetMetadata(nil, true, 2000)
	harness.Eventually(t, 10*time.Second, "a TLS refusal in AccessError", func() error {
		if err := untrusting.AccessError(); err == nil || !strings.Contains(err.Error(), "SSL handshake failed") {
			return fmt.Errorf("AccessError = %v", err)
		}
		return nil
	})
}
