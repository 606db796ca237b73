package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/tributary-dev/tributary/replicator/coord"
)

// appendEntry appends a command entry to the Raft log of a stopped node's
// data dir, as a newer leader would have replicated it.
func appendEntry(t *testing.T, dataDir string, data []byte) uint64 {
	t.Helper()
	meta := &metadb.BoltMetaDB{}
	defer meta.Close()
	wal, err := raftwal.Open(filepath.Join(dataDir, "raft"), raftwal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	defer wal.Close()
	last, err := wal.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := wal.GetLog(last, &l); err != nil {
		t.Fatal(err)
	}
	if err := wal.StoreLog(&raft.Log{Index: last + 1, Term: l.Term, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return last + 1
}

// clusterOf returns the cluster part of the node's /v1/status.
func clusterOf(t *testing.T, n *runningNode) coord.Status {
	t.Helper()
	code, body := call(t, "GET", "http://"+n.http+"/v1/status", "", "")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/v1/status: %d %v %s", code, err, body)
	}
	return st.Cluster
}

// A node whose log holds an entry of a newer command version (from a newer
// leader during a rolling upgrade) stops applying it: /readyz answers 503
// with the reason, tributary_raft_apply_halted is 1, and /v1/status says so.
func TestANodeMeetingANewerEntryIsNotReady(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	node := fmt.Sprintf("{id: a, region: eu, http_addr: '127.0.0.1:0', raft_addr: %q}", loopbackAddr(t))
	n := startNodeIn(t, node, "", dataDir)
	eventually(t, 15*time.Second, "the node registered", func() error {
		st := clusterOf(t, n)
		if st.Leader.ID != "a" || len(st.Members) != 1 || st.Members[0].CommandVersion != 1 || len(st.Tasks) != 1 || st.Tasks[0].Node != "a" {
			return fmt.Errorf("cluster %+v", st)
		}
		return nil
	})
	n.stop()
	idx := appendEntry(t, dataDir, []byte(`{"v":2,"op":"set_tasks","tasks":[{"id":"x/0","region":"eu","new_field":true}]}`))

	n = startNodeIn(t, node, "", dataDir)
	want := fmt.Sprintf("raft apply halted at log index %d", idx)
	eventually(t, 15*time.Second, "/readyz 503 naming the halt", func() error {
		code, body := call(t, "GET", "http://"+n.http+"/readyz", "", "")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, want) || !strings.Contains(body, "upgrade this node") {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	resp, err := http.Get("http://" + n.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "\ntributary_raft_apply_halted 1\n") {
		t.Errorf("/metrics lacks tributary_raft_apply_halted 1")
	}
	// Its own replica is frozen (and, alone, it cannot tell a leader), so
	// the halt shows as the node's apply_halted.
	if st := clusterOf(t, n); !strings.HasPrefix(st.ApplyHalted, want) {
		t.Errorf("/v1/status: apply_halted %q", st.ApplyHalted)
	}
	if !strings.Contains(n.logs.String(), "stopped applying the raft log: upgrade this node") {
		t.Error("no error logged")
	}
}
