package coord

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/hashicorp/raft"
)

// v1FSM returns an FSM restored from the v1 snapshot in testdata, the state
// the fuzzers start from (members, tasks, assignments, load and a bundle).
func v1FSM(t testing.TB) *fsm {
	t.Helper()
	b, err := os.ReadFile("testdata/v1/snapshot.json")
	if err != nil {
		t.Fatal(err)
	}
	f := newFSM(nil)
	if err := f.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
		t.Fatalf("restoring the v1 snapshot: %v", err)
	}
	return f
}

// stateJSON is the state as a snapshot holds it, for comparisons.
func stateJSON(t testing.TB, f *fsm) []byte {
	t.Helper()
	var b []byte
	f.view(func(s *state) {
		var err error
		if b, err = json.Marshal(s); err != nil {
			t.Fatalf("encoding the state: %v", err)
		}
	})
	return b
}

// checkFSM fails the test unless the FSM's state is consistent and survives
// Snapshot, Persist and Restore unchanged.
func checkFSM(t *testing.T, f *fsm, after string) {
	t.Helper()
	f.view(func(s *state) {
		if err := s.check(); err != nil {
			t.Fatalf("after %s the state is inconsistent: %v", after, err)
		}
	})
	snap := persist(t, f)
	g := newFSM(nil)
	if err := g.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatalf("after %s the snapshot does not restore: %v\n%s", after, err, snap)
	}
	if a, b := stateJSON(t, f), stateJSON(t, g); !bytes.Equal(a, b) {
		t.Fatalf("after %s the snapshot restores another state:\n%s\n%s", after, a, b)
	}
}

// FuzzApply applies arbitrary log entries (the input's lines, up to 8) to the
// v1 state, and to a second FSM in the same order. No entry may panic; an
// entry that returns an error leaves the state as it was; the state stays
// consistent, snapshots restore it exactly, and two FSMs that apply the same
// entries agree (Apply is deterministic). Seeds: the v1 commands and
// testdata/fuzz/FuzzApply.
func FuzzApply(f *testing.F) {
	cmds, err := os.ReadFile("testdata/v1/commands.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(cmds), []byte("\n"))
	for _, l := range lines {
		f.Add(l)
	}
	f.Add(bytes.Join(lines[:6], []byte("\n")))
	f.Add([]byte(`{"v":1,"op":"policy","policy":{"version":0}}`))
	f.Add([]byte(`{"v":1,"op":"report_load","node":"eu-1","load":{"eu-payments/0":1e308,"eu-payments/9":1}}`))
	f.Add([]byte(`{"v":1,"op":"set_tasks","tasks":[{"id":"a"},{"id":""}]}` + "\n" + `{"v":2,"op":"leave","id":"eu-1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b := v1FSM(t), v1FSM(t)
		entries := bytes.SplitN(data, []byte("\n"), 8)
		for i, e := range entries {
			before := stateJSON(t, a)
			l := &raft.Log{Index: uint64(100 + i), Type: raft.LogCommand, Data: e}
			ra, rb := a.Apply(l), b.Apply(l)
			if ra != nil {
				if _, ok := ra.(error); !ok {
					t.Fatalf("entry %d: response %T %v is neither nil nor an error", i, ra, ra)
				}
				if after := stateJSON(t, a); !bytes.Equal(before, after) {
					t.Fatalf("entry %d %q failed (%v) but changed the state:\n%s\n%s", i, e, ra, before, after)
				}
			}
			if (ra == nil) != (rb == nil) {
				t.Fatalf("entry %d: two FSMs answered %v and %v", i, ra, rb)
			}
			if h := a.haltErr(); h != nil {
				// Halted (an entry of a newer version): it takes no snapshot
				// and every later entry returns the same error.
				if _, err := a.Snapshot(); err != h || ra == nil {
					t.Fatalf("entry %d: halted FSM answered %v, snapshot %v", i, ra, err)
				}
				continue
			}
			checkFSM(t, a, fmt.Sprintf("entry %d", i))
		}
		if sa, sb := stateJSON(t, a), stateJSON(t, b); !bytes.Equal(sa, sb) {
			t.Fatalf("two FSMs applying the same entries disagree:\n%s\n%s", sa, sb)
		}
	})
}

// FuzzRestore restores arbitrary bytes over the v1 state. A restore that
// fails must leave the state as it was; one that succeeds must give a
// consistent state that a snapshot restores exactly. Seeds: the v1 snapshot
// and testdata/fuzz/FuzzRestore.
func FuzzRestore(f *testing.F) {
	good, err := os.ReadFile("testdata/v1/snapshot.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"version":1,"state":{}}`))
	f.Add([]byte(`{"version":2,"state":{}}`))
	f.Add([]byte(`{"version":1,"state":{"members":{"a":{"id":"b"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := v1FSM(t)
		before := stateJSON(t, fs)
		if err := fs.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			if after := stateJSON(t, fs); !bytes.Equal(before, after) {
				t.Fatalf("a failed restore (%v) changed the state", err)
			}
			return
		}
		checkFSM(t, fs, "restore")
	})
}

// TestRestoreRefusesWhatPersistCannotWrite: found by FuzzRestore. A snapshot
// with data after its object, without a state or with a state no commands
// build (a member or task under another id, an assignment to a stranger,
// load of an unknown task, bundle version 0) replaced the whole state.
func TestRestoreRefusesWhatPersistCannotWrite(t *testing.T) {
	for _, tc := range []struct{ name, snap, want string }{
		{"trailing", `{"version":1,"state":{}} {"version":1}`, "data after the snapshot's JSON object at byte 24"},
		{"no state", `{"version":1}`, "no state"},
		{"member id", `{"version":1,"state":{"members":{"a":{"id":"b"}}}}`, `member "a" has id "b"`},
		{"task id", `{"version":1,"state":{"tasks":{"t":{"id":""}}}}`, `task "t" has id ""`},
		{"assignment task", `{"version":1,"state":{"assignments":{"t":{"node":""}}}}`, `assignment of task "t": no such task`},
		{"assignment node", `{"version":1,"state":{"tasks":{"t":{"id":"t"}},"assignments":{"t":{"node":"x"}}}}`, `node "x" is not a member`},
		{"load task", `{"version":1,"state":{"load":{"t":1}}}`, `load of task "t": no such task`},
		{"load value", `{"version":1,"state":{"tasks":{"t":{"id":"t"}},"load":{"t":-1}}}`, `load of task "t": -1 records/s`},
		{"policy version", `{"version":1,"state":{"policy":{"version":0}}}`, "policy bundle version 0: versions start at 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := v1FSM(t)
			before := stateJSON(t, fs)
			err := fs.Restore(io.NopCloser(bytes.NewReader([]byte(tc.snap))))
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("restore: %v, want an error with %q", err, tc.want)
			}
			if !bytes.Equal(before, stateJSON(t, fs)) {
				t.Fatal("the failed restore changed the state")
			}
		})
	}
}

// TestApplyRefusesBundleVersionZero: found by FuzzApply. A policy command
// with version 0 (the leader refuses those, a forged or damaged entry does
// not) was applied, and the snapshot that held it could not be restored.
func TestApplyRefusesBundleVersionZero(t *testing.T) {
	fs := newFSM(nil)
	resp := fs.Apply(&raft.Log{Index: 1, Data: []byte(`{"v":1,"op":"policy","policy":{"version":0}}`)})
	err, _ := resp.(error)
	if err == nil || errors.Is(err, ErrStalePolicy) {
		t.Fatalf("apply: %v, want a refusal of version 0", resp)
	}
	fs.view(func(s *state) {
		if s.Policy != nil {
			t.Fatalf("bundle %+v applied", s.Policy)
		}
	})
}
