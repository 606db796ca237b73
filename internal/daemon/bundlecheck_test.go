package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/replicator/coord"
	"github.com/tributary-dev/tributary/test/harness"
)

// TestTheLeaderChecksProposedBundles runs a one-node cluster with the daemon's
// bundle check over real TCP and posts hostile bundles to its cluster API, as
// anyone on the network could: each is refused and the active bundle stays; a
// good bundle is applied.
func TestTheLeaderChecksProposedBundles(t *testing.T) {
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	var logs syncLog
	raftAddr := free()
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := coord.New(coord.Config{
		NodeID: "solo", Region: "eu", RaftAddr: raftAddr, HTTPAddr: hl.Addr().String(),
		DataDir: filepath.Join(t.TempDir(), "solo"), Bootstrap: []coord.Peer{{ID: "solo", Addr: raftAddr}},
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, FailureTimeout: time.Second,
		CheckBundle: checkBundle,
	}, coord.Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: n.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(hl) }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = srv.Close()
		_ = n.Close()
	})
	harness.Eventually(t, 10*time.Second, "solo leads", func() error {
		if l := n.Status().Leader.ID; l != "solo" {
			return fmt.Errorf("leader %q", l)
		}
		return nil
	})

	url := "http://" + hl.Addr().String() + "/v1/cluster/policy"
	post := func(t *testing.T, version int64, data []byte, hash string) (int, string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"version": version, "data": data, "hash": hash, "source": "attacker"})
		resp, err := http.Post(url, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	parse := func(content string) *policy.Set {
		set, err := policy.Parse("payments.yaml", []byte(content))
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	v1 := parse(paymentsPolicy(1, 4))
	if code, body := post(t, 1, v1.Encode(), v1.Hash()); code != http.StatusOK {
		t.Fatalf("the first good bundle: %d %s", code, body)
	}
	v2 := parse(paymentsPolicy(2, 2))
	empty := &policy.Set{}
	lower := parse(strings.Replace(paymentsPolicy(1, 4), "  - match: {field: customer.email}\n    action: redact\n", "", 1))

	for _, tc := range []struct {
		name    string
		version int64
		data    []byte
		hash    string
		code    int
		reason  string
	}{
		{"a forged hash", 2, v2.Encode(), strings.Repeat("0", 64), http.StatusUnprocessableEntity, "hash"},
		{"an empty bundle removing every policy", 2, empty.Encode(), empty.Hash(), http.StatusUnprocessableEntity, "unsafe"},
		{"a bundle dropping a rule without retiring it", 2, lower.Encode(), lower.Hash(), http.StatusUnprocessableEntity, "unsafe"},
		{"a version of MaxInt64", math.MaxInt64, v2.Encode(), v2.Hash(), http.StatusUnprocessableEntity, "version"},
		{"a version jump", 7, v2.Encode(), v2.Hash(), http.StatusUnprocessableEntity, "version"},
		{"garbage data", 2, []byte("\x00garbage{"), "abc", http.StatusUnprocessableEntity, "invalid"},
		{"a bundle of a format nobody writes", 2, []byte(`{"format": 99}`), "abc", http.StatusUnprocessableEntity, "invalid"},
		{"the active version again", 1, v2.Encode(), v2.Hash(), http.StatusConflict, "stale"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			code, body := post(t, tc.version, tc.data, tc.hash)
			if code != tc.code || !strings.Contains(body, "refused ("+tc.reason+")") {
				t.Errorf("answer %d %s, want %d with reason %s", code, body, tc.code, tc.reason)
			}
			if st := n.PolicyState(); st.Bundle.Version != 1 || st.Bundle.Hash != v1.Hash() {
				t.Errorf("active bundle now %d %s, want 1 %s", st.Bundle.Version, st.Bundle.Hash, v1.Hash())
			}
		})
	}
	t.Run("a good next bundle is applied", func(t *testing.T) {
		if code, body := post(t, 2, v2.Encode(), v2.Hash()); code != http.StatusOK {
			t.Fatalf("answer %d %s", code, body)
		}
		if st := n.PolicyState(); st.Bundle.Version != 2 || st.Bundle.Hash != v2.Hash() {
			t.Errorf("active bundle %d %s, want 2 %s", st.Bundle.Version, st.Bundle.Hash, v2.Hash())
		}
	})
	if s := logs.String(); strings.Count(s, "policy bundle refused") < 8 || !strings.Contains(s, "from=127.0.0.1:") {
		t.Errorf("refusals not all logged with their proposer:\n%s", s)
	}
}

// syncLog is a log sink that goroutines write to at once.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
