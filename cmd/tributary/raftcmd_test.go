package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-dev/tributary/replicator/coord"
)

// raftDataDir makes the data dir of a one-node cluster (bootstrapped, then
// closed) and returns it with the node's Raft address.
func raftDataDir(t *testing.T) (dir, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	dir = t.TempDir()
	n, err := coord.New(coord.Config{NodeID: "eu-1", Region: "eu", RaftAddr: addr, HTTPAddr: "127.0.0.1:1", DataDir: dir,
		Bootstrap: []coord.Peer{{ID: "eu-1", Addr: addr}}}, coord.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, addr
}

// tributary raft recover: flags, exit codes and what it prints. The
// recovery itself is tested in replicator/coord (TestQuorumRecovery).
func TestRaftRecoverCommand(t *testing.T) {
	dir, addr := raftDataDir(t)
	tmp := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("peers.json", `[{"id":"eu-1","address":"`+addr+`","non_voter":false}]`)
	dup := file("dup.json", `[{"id":"eu-1","address":"`+addr+`"},{"id":"eu-1","address":"10.0.0.9:7400"}]`)
	bad := file("bad.json", `[{"id":"eu-1",}]`)
	other := file("other.json", `[{"id":"us-1","address":"10.0.0.9:7400"}]`)
	cfg := file("node.yaml", strings.Replace(readFile(t, "testdata/good.yaml"), "  region: eu\n", "  region: eu\n  data_dir: "+dir+"\n", 1))

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"no subcommand", []string{"raft"}, 2, nil, []string{"tributary raft recover", "raft: no subcommand"}},
		{"no peers", []string{"raft", "recover", "--data-dir", dir}, 2, nil, []string{"usage: tributary raft recover"}},
		{"both data dir and config", []string{"raft", "recover", "--data-dir", dir, "--config", cfg, "--peers", good}, 2, nil, []string{"usage: tributary raft recover"}},
		{"bad JSON names the file and position", []string{"raft", "recover", "--data-dir", dir, "--peers", bad}, 2, nil, []string{"bad.json:1:15: invalid character"}},
		{"duplicate ids name the entry", []string{"raft", "recover", "--data-dir", dir, "--peers", dup}, 2, nil, []string{`dup.json: entry 1 (id "eu-1"): duplicate id`}},
		{"a config whose node is not listed", []string{"raft", "recover", "--config", cfg, "--peers", other}, 2, nil, []string{"other.json: lists no entry for this node (node.id eu-1"}},
		{"a data dir without raft state", []string{"raft", "recover", "--data-dir", filepath.Join(tmp, "none"), "--peers", good}, 1, nil, []string{"holds no raft state"}},
		{"recovery with --data-dir", []string{"raft", "recover", "--data-dir", dir, "--peers", good}, 0,
			[]string{"recovered the raft state of " + dir, "new snapshot", "eu-1 " + addr + " (voter)"}, nil},
		{"recovery with --config", []string{"raft", "recover", "--config", cfg, "--peers", good}, 0, []string{"recovered the raft state of " + dir}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
		})
	}

	t.Run("a data dir in use exits 1", func(t *testing.T) {
		n, err := coord.New(coord.Config{NodeID: "eu-1", Region: "eu", RaftAddr: addr, HTTPAddr: "127.0.0.1:1", DataDir: dir}, coord.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		code, _, stderr := runCLI("raft", "recover", "--data-dir", dir, "--peers", good)
		if code != 1 || !strings.Contains(stderr, "data dir in use") {
			t.Errorf("exit %d, stderr %s", code, stderr)
		}
	})
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
