package daemon

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The guard declines tasks below min_free_bytes, names data_dir and the free
// space in its reason and its log line, resumes only above the limit plus a
// tenth, and treats a Raft write that failed with ENOSPC as full until a
// check interval has passed with space.
func TestDiskGuardDeclinesTasksWhileDataDirIsShortOfSpace(t *testing.T) {
	dir := t.TempDir()
	free, _, err := freeSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	g := newDiskGuard(dir, free*2, slog.New(slog.NewTextHandler(&logs, nil)))
	var set []string
	g.set = func(reason string) { set = append(set, reason) }
	now := time.Now()
	const interval = 2 * time.Second

	g.check(now, interval)
	want := fmt.Sprintf("data_dir %s has ", dir)
	if r := g.unhealthy(); !strings.HasPrefix(r, want) || !strings.Contains(r, "free, below node.min_free_bytes") {
		t.Fatalf("reason %q, want it to start %q and name the limit", r, want)
	}
	if len(set) != 1 || set[0] != g.unhealthy() {
		t.Fatalf("set calls %q", set)
	}
	if l := logs.String(); !strings.Contains(l, "data_dir="+dir) || !strings.Contains(l, "free_bytes=") || !strings.Contains(l, "level=WARN") {
		t.Errorf("log line lacks data_dir or free_bytes: %s", l)
	}
	if st := g.status(); st.DataDir != dir || st.FreeBytes <= 0 || st.MinFreeBytes != free*2 || st.Unhealthy == "" {
		t.Errorf("status %+v", st)
	}

	// Just above the limit is not enough to resume: a tenth more is.
	g.min = free - free/20 // free is 5% above it
	g.check(now, interval)
	if g.unhealthy() == "" {
		t.Error("resumed at 5% above the limit, want 10%")
	}
	g.min = free / 2
	g.check(now, interval)
	if g.unhealthy() != "" || len(set) != 2 || set[1] != "" {
		t.Fatalf("still unhealthy (%q) with twice the free space needed; set calls %q", g.unhealthy(), set)
	}

	// A write that failed for want of space declines tasks at once, and for
	// at least one interval even though statfs shows space.
	g.writeFailed(fmt.Errorf("writing segment: %w", syscall.ENOSPC))
	now = time.Now()
	g.check(now, interval)
	if r := g.unhealthy(); !strings.Contains(r, "a Raft write failed") || !strings.Contains(r, "no space left on device") {
		t.Fatalf("reason %q after ENOSPC", r)
	}
	g.check(now.Add(interval), interval)
	if g.unhealthy() != "" {
		t.Errorf("still unhealthy one interval after the failed write, with space: %q", g.unhealthy())
	}
	if len(set) != 4 {
		t.Errorf("set calls %q, want 4 changes", set)
	}
}

func TestBytesText(t *testing.T) {
	for b, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 32 << 20: "32.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := bytesText(b); got != want {
			t.Errorf("bytesText(%d) = %q, want %q", b, got, want)
		}
	}
}
