package config

import (
	"strings"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7400": true, "127.8.9.10:1": true, "[::1]:7480": true, "localhost:7480": true, "LocalHost:0": true,
		":7480": false, "0.0.0.0:7480": false, "[::]:7480": false, "10.0.0.5:7400": false,
		"node-1.internal:7400": false, "127.0.0.1": false, "": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestSecurityByAddress(t *testing.T) {
	tests := []struct {
		name       string
		http, raft string
		sec        Security
		want       string // substring of the only error; "" for none
	}{
		{"a node on loopback needs nothing", "127.0.0.1:0", "127.0.0.1:7400", Security{}, ""},
		{"a node on loopback may use tokens without TLS", "localhost:7480", "[::1]:7400", Security{TokensFile: "tokens.yaml"}, ""},
		{"an HTTP API on all interfaces is refused", ":7480", "127.0.0.1:7400", Security{}, `node.http_addr: node.http_addr (":7480") or node.raft_addr ("127.0.0.1:7400") is not a loopback address`},
		{"a Raft address on the network is refused", "127.0.0.1:7480", "10.0.0.5:7400", Security{}, "set security.insecure: true"},
		{"insecure: true accepts the network without TLS", "0.0.0.0:7480", "10.0.0.5:7400", Security{Insecure: true}, ""},
		{"tokens on the network without TLS are refused, insecure or not", "0.0.0.0:7480", "10.0.0.5:7400", Security{TokensFile: "tokens.yaml", Insecure: true}, "security.tokens_file: bearer tokens need security.tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Node: Node{HTTPAddr: tt.http, RaftAddr: tt.raft}, Security: tt.sec}
			v := &validator{c: c}
			v.security()
			switch {
			case tt.want == "" && len(v.errs) > 0:
				t.Errorf("errors %v, want none", v.errs)
			case tt.want != "" && (len(v.errs) != 1 || !strings.Contains(v.errs[0].Error(), tt.want)):
				t.Errorf("errors %v, want one containing %q", v.errs, tt.want)
			}
		})
	}
}
