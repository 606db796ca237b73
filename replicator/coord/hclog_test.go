package coord

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newHCLogAdapter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), func() time.Time { return now })
	l.Info("entering follower state", "term", 3)
	if buf.Len() != 0 {
		t.Errorf("raft Info lines should be Debug, got %q", buf.String())
	}
	w := l.Named("transport").With("peer", "eu-2")
	for range 5 {
		w.Error("failed to heartbeat to", "error", "connection refused")
	}
	if n := strings.Count(buf.String(), "failed to heartbeat"); n != 1 {
		t.Errorf("repeated error logged %d times within %v, want once:\n%s", n, repeatEvery, buf.String())
	}
	if !strings.Contains(buf.String(), "raft_component=transport peer=eu-2 error=\"connection refused\"") {
		t.Errorf("attributes lost: %q", buf.String())
	}
	now = now.Add(repeatEvery)
	buf.Reset()
	w.Error("failed to heartbeat to", "error", "connection refused")
	if !strings.Contains(buf.String(), "repeated=4") {
		t.Errorf("next line should count the 4 suppressed ones: %q", buf.String())
	}
	buf.Reset()
	l.Named("transport").Error("failed to decode incoming command", "error", raft.ErrTransportShutdown)
	if buf.Len() != 0 {
		t.Errorf("errors of this node's own shutdown should be Debug, got %q", buf.String())
	}
}
