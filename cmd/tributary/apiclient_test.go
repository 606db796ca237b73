package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-dev/tributary/internal/auth"
	"github.com/tributary-dev/tributary/internal/daemon"
	"github.com/tributary-dev/tributary/replicator"
)

const cliToken = "cli-token-5e4d3c2b1a09"

// guardedAPI serves /v1/status and /v1/offsets/translate behind a Guard that
// knows cliToken (role read), as a node with security.tokens_file does.
func guardedAPI(t *testing.T) http.Handler {
	t.Helper()
	sum := sha256.Sum256([]byte(cliToken))
	toks, err := auth.Parse("tokens.yaml", []byte("- {name: cli, role: read, sha256: "+hex.EncodeToString(sum[:])+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := auth.New(toks, auth.Loopback, auth.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/status", g.Require(auth.Read, auth.EndpointStatus, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := daemon.Status{Node: daemon.NodeInfo{ID: "eu-1", Region: "eu"}, Security: "loopback"}
		replicator.WriteJSON(w, http.StatusOK, st)
	})))
	mux.Handle("GET /v1/offsets/translate", g.Require(auth.Read, auth.EndpointOffsetsTranslate, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		replicator.WriteJSON(w, http.StatusOK, replicator.GroupOffsets{Group: r.URL.Query().Get("group"), Offsets: []replicator.TranslatedOffset{
			{Pipeline: "orders", SourceTopic: "orders", Partition: 0, SourceOffset: 41, TargetTopic: "eu.orders", TargetOffset: 40, Exact: true},
		}})
	})))
	return mux
}

func writeSecret(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLITokens(t *testing.T) {
	plain := httptest.NewServer(guardedAPI(t))
	defer plain.Close()
	secure := httptest.NewUnstartedServer(guardedAPI(t))
	// The handshake the untrusting client breaks off is expected.
	secure.Config.ErrorLog = log.New(io.Discard, "", 0)
	secure.StartTLS()
	defer secure.Close()
	ca := writeSecret(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw})), 0o644)
	tokFile := writeSecret(t, "token", cliToken+"\n", 0o600)
	openTokFile := writeSecret(t, "token-open", cliToken+"\n", 0o644)

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"status without a token says to pass one", []string{"status", "--json", "--addr", plain.URL}, 1, "",
			"401 Unauthorized: the node wants a token: pass --token-file"},
		{"status with --token-file works", []string{"status", "--json", "--addr", plain.URL, "--token-file", tokFile}, 0, `"security": "loopback"`, ""},
		{"a token file others can read is refused", []string{"status", "--addr", plain.URL, "--token-file", openTokFile}, 2, "",
			"group or others may access it (mode 0644)"},
		{"a token is never sent in clear text off loopback", []string{"status", "--addr", "http://192.0.2.10:7480", "--token-file", tokFile}, 2, "",
			"refusing to send the token of --token-file in clear text to http://192.0.2.10:7480: use an https:// address"},
		{"https with --ca-file and a token works", []string{"status", "--json", "--addr", secure.URL, "--ca-file", ca, "--token-file", tokFile}, 0, `"id": "eu-1"`, ""},
		{"https without --ca-file does not trust the node", []string{"status", "--addr", secure.URL, "--token-file", tokFile}, 1, "",
			"certificate signed by unknown authority"},
		{"--ca-file is for https", []string{"status", "--addr", plain.URL, "--ca-file", ca}, 2, "", "--ca-file is for https:// addresses"},
		{"offsets translate --addr with a token prints the node's answer",
			[]string{"offsets", "translate", "--addr", plain.URL, "--group", "billing", "--token-file", tokFile}, 0, "billing  orders", ""},
		{"offsets translate --addr without a token says to pass one",
			[]string{"offsets", "translate", "--addr", plain.URL, "--group", "billing"}, 1, "", "pass --token-file"},
		{"offsets translate --addr does not --apply",
			[]string{"offsets", "translate", "--addr", plain.URL, "--group", "billing", "--apply"}, 2, "", "--apply needs --config"},
		{"offsets translate --config takes no token",
			[]string{"offsets", "translate", "--config", "testdata/good.yaml", "--group", "billing", "--token-file", tokFile}, 2, "", "--token-file and --ca-file go with --addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tt.args...)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("tributary %s: exit %d, want %d\nstdout (want %q): %s\nstderr (want %q): %s",
					strings.Join(tt.args, " "), code, tt.code, tt.stdout, stdout, tt.stderr, stderr)
			}
			if strings.Contains(stdout+stderr, cliToken) {
				t.Errorf("the output shows the token")
			}
			if tt.code == 0 && strings.HasPrefix(tt.stdout, `"`) {
				var st daemon.Status
				if err := json.Unmarshal([]byte(stdout), &st); err != nil {
					t.Errorf("stdout is not the status JSON: %v", err)
				}
			}
		})
	}
}

func TestConfigCheckSecurity(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(cliToken))
	entry := "- {name: cli, role: read, sha256: " + hex.EncodeToString(sum[:]) + "}\n"
	open := writeSecret(t, "tokens-open.yaml", entry, 0o644)
	private := writeSecret(t, "tokens.yaml", entry, 0o600)
	broken := writeSecret(t, "tokens-broken.yaml", "- {name: cli, role: root, sha256: "+hex.EncodeToString(sum[:])+"}\n", 0o600)
	tests := []struct {
		name, extra string
		code        int
		out         string
	}{
		{"tokens on loopback are fine", "security: {tokens_file: " + private + "}\n", 0, ": ok (1 pipelines, target central)"},
		{"a tokens file others can read is refused", "security: {tokens_file: " + open + "}\n", 2, "security.tokens_file: tokens file " + open + ": group or others may access it (mode 0644)"},
		{"a broken tokens file names its line", "security: {tokens_file: " + broken + "}\n", 2, broken + `:1:21: [0].role: "root" is not one of read, operate, admin`},
		{"a node on the network without TLS is refused, naming both keys and both ways out",
			"node: {id: eu-1, region: eu, http_addr: '0.0.0.0:7480', raft_addr: '10.0.0.5:7400'}\n", 2,
			`node.http_addr ("0.0.0.0:7480") or node.raft_addr ("10.0.0.5:7400") is not a loopback address and security.tls is not set: configure security.tls (and security.tokens_file), or set security.insecure: true`},
		{"insecure: true accepts it", "node: {id: eu-1, region: eu, http_addr: '0.0.0.0:7480', raft_addr: '10.0.0.5:7400'}\nsecurity: {insecure: true}\n", 0, ": ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := string(good)
			if strings.HasPrefix(tt.extra, "node:") {
				text = strings.Replace(text, "node:\n  id: eu-1\n  region: eu\n", "", 1)
			}
			path := writeSecret(t, "tributary.yaml", text+tt.extra, 0o600)
			code, stdout, stderr := runCLI("config", "check", path)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.out) {
				t.Errorf("exit %d, want %d; output lacks %q:\n%s%s", code, tt.code, tt.out, stdout, stderr)
			}
		})
	}
}
