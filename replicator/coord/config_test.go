package coord

import (
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/nodecert"
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
		{"with an advertised address the bound one may be a wildcard", func(c *Config) {
			c.RaftAddr, c.RaftAdvertise = "0.0.0.0:7400", "eu-1.svc:7400"
			c.Bootstrap[0].Addr = "eu-1.svc:7400"
		}, nil},
		{"the bootstrap entry names the advertised address", func(c *Config) { c.RaftAdvertise = "127.0.0.1:8400" },
			[]string{"cluster.bootstrap[0]: lists eu-1 at 127.0.0.1:7400 but node.raft_advertise_addr is 127.0.0.1:8400"}},
		{"a wildcard advertised address is refused", func(c *Config) { c.RaftAdvertise = "0.0.0.0:7400"; c.Bootstrap[0].Addr = c.RaftAdvertise },
			[]string{`node.raft_advertise_addr ("0.0.0.0:7400"): must be an address other nodes can reach`}},
		{"with an advertised address the bound one needs a fixed port", func(c *Config) {
			c.RaftAddr, c.RaftAdvertise = "0.0.0.0:0", "127.0.0.1:7400"
		}, []string{`node.raft_addr ("0.0.0.0:0"): want host:port with a fixed port`}},
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
		{"a certificate naming another node is refused naming both", func(c *Config) {
			c.TLS = &nodecert.Bundle{Region: "us", ID: "us-1"}
		}, []string{`security.tls: the certificate names node "us-1" in region "us", but node.id is "eu-1" and node.region is "eu"`}},
		{"with TLS, a join address must not say http", func(c *Config) {
			c.TLS = &nodecert.Bundle{Region: "eu", ID: "eu-1"}
			c.Join = []string{"http://10.0.0.1:7480", "10.0.0.2:7480", "https://10.0.0.3:7480"}
		}, []string{`cluster.join[0] ("http://10.0.0.1:7480"): members serve https when security.tls is set`}},
		{"an even voter count is refused", func(c *Config) { c.Voters = 4 },
			[]string{"cluster.voters (4): want an odd number"}},
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

func TestVoterTarget(t *testing.T) {
	for _, tc := range []struct {
		voters, members, want int
	}{
		{0, 1, 3}, {0, 4, 3}, {0, 5, 5}, {0, 9, 5}, {1, 4, 1}, {7, 3, 7},
	} {
		if got := (Config{Voters: tc.voters}).voterTarget(tc.members); got != tc.want {
			t.Errorf("cluster.voters %d with %d members: target %d, want %d", tc.voters, tc.members, got, tc.want)
		}
	}
}
