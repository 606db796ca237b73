package coord

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

type bufSink struct{ bytes.Buffer }

func (s *bufSink) ID() string    { return "test" }
func (s *bufSink) Cancel() error { return nil }
func (s *bufSink) Close() error  { return nil }

func persist(t *testing.T, f *fsm) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

// replayV1 restores the v1 snapshot and applies the v1 commands after it.
func replayV1(t *testing.T) (*fsm, []PolicyBundle) {
	t.Helper()
	var policies []PolicyBundle
	f := newFSM(func(p PolicyBundle) { policies = append(policies, p) })
	snap, err := os.Open("testdata/v1/snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Restore(snap); err != nil {
		t.Fatalf("restoring v1 snapshot: %v", err)
	}
	cmds, err := os.Open("testdata/v1/commands.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer cmds.Close()
	sc := bufio.NewScanner(cmds)
	index := uint64(41)
	for sc.Scan() {
		if resp := f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: sc.Bytes()}); resp != nil {
			t.Fatalf("applying v1 command %d %s: %v", index, sc.Text(), resp)
		}
		index++
	}
	return f, policies
}

func TestFSMRestoresV1SnapshotAndReplaysV1Commands(t *testing.T) {
	f, policies := replayV1(t)
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, persist(t, f), "", "  "); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "v1", "state.golden.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("state after replay differs from %s (run with -update and review the diff):\n%s", golden, pretty.String())
	}
	// The restored bundle, then the one applied at index 50.
	if len(policies) != 2 || policies[0].Version != 6 || policies[1].Version != 7 || policies[1].AppliedIndex != 50 {
		t.Errorf("policy deliveries = %+v, want version 6 then version 7 at index 50", policies)
	}
}

func TestFSMSnapshotRoundTrip(t *testing.T) {
	f, _ := replayV1(t)
	b := persist(t, f)
	g := newFSM(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.st, g.st) {
		t.Errorf("restored state differs:\n got %+v\nwant %+v", g.st, f.st)
	}
	if c := persist(t, g); !bytes.Equal(b, c) {
		t.Errorf("snapshot of the restored state differs:\n%s\n%s", b, c)
	}
}

func TestFSMApplyIsDeterministic(t *testing.T) {
	a, _ := replayV1(t)
	b, _ := replayV1(t)
	if !bytes.Equal(persist(t, a), persist(t, b)) {
		t.Error("two replicas applying the same log disagree")
	}
}

func TestFSMRefusesBadCommands(t *testing.T) {
	for _, tc := range []struct {
		name, cmd string
		is        error
	}{
		{"garbage is refused", `{"v":1,"op":`, nil},
		{"a command of version 0 is refused", `{"v":0,"op":"join","member":{"id":"x"}}`, nil},
		{"an unknown op is refused", `{"v":1,"op":"explode"}`, nil},
		{"a join without id is refused", `{"v":1,"op":"join","member":{}}`, nil},
		{"liveness of an unknown member is refused", `{"v":1,"op":"set_alive","id":"nope","alive":false}`, ErrUnknownMember},
		{"leaving as an unknown member is refused", `{"v":1,"op":"leave","id":"nope"}`, ErrUnknownMember},
		{"an older policy bundle is refused", `{"v":1,"op":"policy","policy":{"version":7,"data":"","hash":"h","source":"s"}}`, ErrStalePolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _ := replayV1(t)
			before := persist(t, f)
			resp := f.Apply(&raft.Log{Index: 100, Type: raft.LogCommand, Data: []byte(tc.cmd)})
			err, ok := resp.(error)
			if !ok || err == nil {
				t.Fatalf("Apply(%s) = %v, want an error", tc.cmd, resp)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Apply(%s) = %v, want %v", tc.cmd, err, tc.is)
			}
			if after := persist(t, f); !bytes.Equal(before, after) {
				t.Errorf("a refused command changed the state")
			}
		})
	}
}

// An entry of a command version the node does not understand halts the FSM:
// that entry and every later one (even of a known version) return the same
// error naming the index, the entry's version and the node's, and the state
// stays as it was; no snapshot is taken of the frozen state.
func TestFSMHaltsOnACommandOfANewerVersion(t *testing.T) {
	f, _ := replayV1(t)
	var halts []*HaltedError
	f.onHalt = func(h *HaltedError) { halts = append(halts, h) }
	before := persist(t, f)
	// A newer command may change its fields' types: it still halts as such.
	resp := f.Apply(&raft.Log{Index: 100, Type: raft.LogCommand, Data: []byte(`{"v":2,"op":"join","member":"x","extra":[1]}`)})
	h, ok := resp.(*HaltedError)
	if !ok {
		t.Fatalf("Apply of a v2 entry = %v, want a *HaltedError", resp)
	}
	for _, want := range []string{"log index 100", "command version 2", "understands versions up to 1", "frozen at log index 51", "upgrade this node"} {
		if !strings.Contains(h.Error(), want) {
			t.Errorf("halt error %q lacks %q", h, want)
		}
	}
	if resp := f.Apply(&raft.Log{Index: 101, Type: raft.LogCommand, Data: []byte(`{"v":1,"op":"leave","id":"eu-1"}`)}); resp != h {
		t.Errorf("Apply of a v1 entry after the halt = %v, want the same halt", resp)
	}
	if _, err := f.Snapshot(); err != h {
		t.Errorf("Snapshot of a halted FSM = %v, want the halt", err)
	}
	if err := f.Restore(io.NopCloser(bytes.NewReader(before))); err != h {
		t.Errorf("Restore on a halted FSM = %v, want the halt", err)
	}
	if len(halts) != 1 || halts[0] != h {
		t.Errorf("onHalt called with %v, want once", halts)
	}
	g, _ := replayV1(t)
	if !bytes.Equal(before, persist(t, g)) || !bytes.Equal(stateJSON(t, f), stateJSON(t, g)) {
		t.Error("the halted FSM's state changed")
	}
}

// A node that understands version 2 applies a version 2 command.
func TestFSMOfANewerVersionAppliesIt(t *testing.T) {
	f := newFSM(nil)
	f.v = versions{command: 2, snapshot: 2}
	if resp := f.Apply(&raft.Log{Index: 1, Data: []byte(`{"v":2,"op":"join","member":{"id":"x","command_version":2,"snapshot_version":2}}`)}); resp != nil {
		t.Fatalf("Apply: %v", resp)
	}
	// Every member reads snapshot version 2, so the snapshot is written at 2.
	if b := persist(t, f); !bytes.HasPrefix(b, []byte(`{"version":2,`)) {
		t.Errorf("snapshot = %s, want version 2", b)
	}
}

// A snapshot of a version the node does not read halts the FSM too.
func TestFSMHaltsOnASnapshotOfNewerVersion(t *testing.T) {
	f := newFSM(nil)
	err := f.Restore(io.NopCloser(bytes.NewReader([]byte(`{"version":2,"state":{"members":"changed"}}`))))
	var h *HaltedError
	if !errors.As(err, &h) || h.Version != 2 || h.Newest != 1 || !strings.Contains(err.Error(), "snapshot has version 2") {
		t.Fatalf("restoring a version 2 snapshot: %v, want a halt", err)
	}
	if resp := f.Apply(&raft.Log{Index: 1, Data: []byte(`{"v":1,"op":"join","member":{"id":"x"}}`)}); resp != h {
		t.Errorf("Apply after the halt = %v", resp)
	}
}

// writeVersions: the newest versions every member understands (absent
// fields mean 1), capped at the node's own.
func TestWriteVersions(t *testing.T) {
	s := newState()
	own := versions{command: 3, snapshot: 2}
	if v := s.writeVersions(own); v != own {
		t.Errorf("no members: %+v, want %+v", v, own)
	}
	s.Members["a"] = Member{ID: "a", CommandVersion: 3, SnapshotVersion: 3}
	s.Members["b"] = Member{ID: "b", CommandVersion: 2, SnapshotVersion: 2}
	if v := s.writeVersions(own); v != (versions{command: 2, snapshot: 2}) {
		t.Errorf("members at 3 and 2: %+v", v)
	}
	s.Members["old"] = Member{ID: "old"}
	if v := s.writeVersions(own); v != (versions{command: 1, snapshot: 1}) {
		t.Errorf("with a member that predates the fields: %+v", v)
	}
}
