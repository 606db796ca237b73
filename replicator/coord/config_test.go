package coord

import (
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		NodeID: "eu-1", Region: "eu", RaftAddr: "127.0.0.1:7400", HTTPAddr: "127.0.0.1:7480", DataDir: "/tmp/x",
		Bootstrap: []Peer{{ID: "eu-1", Addr: "127.0.0.1:7400"}, {ID: "us-1", Addr: "10.1.0.5:7400"}},
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		want   []string // substrings of the error; none means valid
	}{
		{"a complete config is valid", func(*Config) {}, nil},
		{"defaults are filled in", func(c *Config) { c.HeartbeatTimeout, c.FailureTimeout = 0, 0 }, nil},
		{"WAN timeouts are valid", func(c *Config) {
			c.HeartbeatTimeout, c.ElectionTimeout, c.FailureTimeout = 3*time.Second, 5*time.Second, 30*time.Second
		}, nil},
		{"required fields are named", func(c *Config) { c.NodeID, c.Region, c.DataDir = "", "", "" },
			[]string{"node.id: required", "node.region: required", "node.data_dir: required"}},
		{"a wildcard raft address is refused", func(c *Config) { c.RaftAddr = "0.0.0.0:7400" },
			[]string{`node.raft_addr ("0.0.0.0:7400"): must be an address other nodes can reach`}},
		{"a raft address without port is refused", func(c *Config) { c.RaftAddr = "10.0.0.5" },
			[]string{`node.raft_addr ("10.0.0.5"): want host:port`}},
		{"a bad http address is refused", func(c *Config) { c.HTTPAddr = "nope" },
			[]string{`node.http_addr ("nope")`}},
		{"a bootstrap entry must match this node's raft address", func(c *Config) { c.Bootstrap[0].Addr = "127.0.0.1:9999" },
			[]string{"cluster.bootstrap[0]: lists eu-1 at 127.0.0.1:9999 but node.raft_addr is 127.0.0.1:7400"}},
		{"duplicate bootstrap ids are refused", func(c *Config) { c.Bootstrap[1].ID = "eu-1" },
			[]string{`cluster.bootstrap[1]: duplicate id "eu-1"`}},
		{"a bad join address is refused", func(c *Config) { c.Join = []string{"http://10.0.0.1:7480", "::"} },
			[]string{`cluster.join[1] ("::")`}},
		{"the election timeout must not be below the heartbeat timeout", func(c *Config) {
			c.HeartbeatTimeout, c.ElectionTimeout = 500*time.Millisecond, 200*time.Millisecond
		}, []string{"cluster.election_timeout (200ms) must be >= cluster.heartbeat_timeout (500ms)"}},
		{"the lease must fit in the heartbeat timeout", func(c *Config) { c.LeaderLeaseTimeout = 2 * time.Second },
			[]string{"cluster.leader_lease_timeout (2s) must be between 5ms and cluster.heartbeat_timeout (1s)"}},
		{"the failure timeout must outlast an election", func(c *Config) { c.FailureTimeout = time.Second },
			[]string{"cluster.failure_timeout (1s) must be >= twice the heartbeat and election timeouts (2s)"}},
		{"a negative margin is refused", func(c *Config) { c.RebalanceMargin = -1 },
			[]string{"cluster.rebalance_margin (-1)"}},
		{"every problem is reported at once", func(c *Config) { c.NodeID, c.RebalanceMargin = "", -1 },
			[]string{"node.id", "cluster.rebalance_margin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.modify(&c)
			err := c.withDefaults().validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("validate() = nil, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("validate() = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.HeartbeatTimeout != time.Second || c.ElectionTimeout != time.Second || c.LeaderLeaseTimeout != 500*time.Millisecond ||
		c.FailureTimeout != 10*time.Second || c.RebalanceMargin != 0.2 || c.SnapshotThreshold != 8192 ||
		c.SnapshotInterval != 2*time.Minute || c.LoadInterval != 5*time.Second {
		t.Errorf("defaults = %+v", c)
	}
}

func TestParsePeers(t *testing.T) {
	peers, err := ParsePeers([]string{"eu-1@10.0.0.5:7400", "us-1@10.1.0.5:7400"})
	if err != nil || len(peers) != 2 || peers[1] != (Peer{ID: "us-1", Addr: "10.1.0.5:7400"}) {
		t.Errorf("ParsePeers = %v, %v", peers, err)
	}
	if _, err := ParsePeers([]string{"ok@1.2.3.4:1", "@x", "noat"}); err == nil ||
		!strings.Contains(err.Error(), "cluster.bootstrap[1]") || !strings.Contains(err.Error(), "cluster.bootstrap[2]") {
		t.Errorf("ParsePeers of bad entries = %v", err)
	}
}
