package config

import (
	"strings"
	"testing"
)

func TestAdvertisedAddresses(t *testing.T) {
	tests := []struct {
		name             string
		raftAdv, httpAdv string
		want             string // substring of the only error; "" for none
	}{
		{"none", "", "", ""},
		{"host names and IPs", "eu-1.tributary.svc:7400", "10.0.0.5:7480", ""},
		{"a wildcard Raft address is refused", "0.0.0.0:7400", "", `node.raft_advertise_addr: want host:port with a host the other nodes can reach and a fixed port, got "0.0.0.0:7400"`},
		{"port 0 is refused", "", "node-1:0", `node.http_advertise_addr: want host:port`},
		{"a missing host is refused", "", ":7480", `node.http_advertise_addr: want host:port`},
		{"an IPv6 wildcard is refused", "[::]:7400", "", `node.raft_advertise_addr`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{Node: Node{ID: "n1", Region: "eu", DataDir: "d", HTTPAddr: "127.0.0.1:7480", RaftAddr: "127.0.0.1:7400",
				RaftAdvertiseAddr: tt.raftAdv, HTTPAdvertiseAddr: tt.httpAdv}}
			v := &validator{c: c}
			v.node()
			switch {
			case tt.want == "" && len(v.errs) > 0:
				t.Errorf("errors %v, want none", v.errs)
			case tt.want != "" && (len(v.errs) != 1 || !strings.Contains(v.errs[0].Error(), tt.want)):
				t.Errorf("errors %v, want one containing %q", v.errs, tt.want)
			}
		})
	}
}
