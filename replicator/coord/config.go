package coord

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/internal/nodecert"
)

// Config holds what the Raft node needs; cmd builds it from config.Config (the
// node and cluster sections). Every field needs a restart to change.
type Config struct {
	// NodeID: node.id. The Raft server id; unique and stable across restarts.
	NodeID string
	// Region: node.region. Tasks of a source in region R run only on nodes of R.
	Region string
	// RaftAddr: node.raft_addr. Bound for Raft traffic, and advertised unless
	// RaftAdvertise is set, in which case it may be a wildcard (0.0.0.0:7400).
	// When its host is a specific IP, the node's outgoing Raft and node-to-node
	// HTTP connections originate from that IP (multi-homed hosts).
	RaftAddr string
	// RaftAdvertise: node.raft_advertise_addr, optional. The address the other
	// nodes dial for Raft when it differs from the bound one (NAT, a Kubernetes
	// Service, a proxy); it is the member's address in the Raft configuration
	// and in cluster.bootstrap.
	RaftAdvertise string
	// HTTPAddr: node.http_addr as the other nodes reach it. Joins, removals and
	// load reports are forwarded to the leader's HTTPAddr.
	HTTPAddr string
	// HasPolicies: the node has a policies folder. Registered with the member,
	// so that every node knows the cluster uses policies (PolicyState).
	HasPolicies bool
	// DataDir: node.data_dir. Raft keeps its log in DataDir/raft and its
	// snapshots in DataDir/raft/snapshots.
	DataDir string
	// Bootstrap: cluster.bootstrap, the initial voters. A node whose id is listed
	// and whose data dir is empty bootstraps the cluster with all of them.
	Bootstrap []Peer
	// Join: cluster.join, HTTP addresses ("host:port" or URLs) of members a node
	// asks for admission when it is not in Bootstrap (any member forwards to the
	// leader).
	Join []string
	// HeartbeatTimeout: cluster.heartbeat_timeout, default 1s.
	HeartbeatTimeout time.Duration
	// ElectionTimeout: cluster.election_timeout, default 1s.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout: how long a leader stays leader without hearing from a
	// quorum; default HeartbeatTimeout/2, at most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// FailureTimeout: cluster.failure_timeout, default 10s. A member the leader
	// has not reached for this long is marked dead and loses its tasks; a node
	// that has not heard from a leader for this long stops its tasks.
	FailureTimeout time.Duration
	// RebalanceMargin: cluster.rebalance_margin, default 0.2. Tasks move between
	// live nodes of a region only when the most and least loaded differ by more
	// than this fraction of their mean load.
	RebalanceMargin float64
	// SnapshotThreshold: log entries between snapshots, default 8192.
	SnapshotThreshold uint64
	// SnapshotInterval: how often raft checks whether to snapshot, default 2m.
	SnapshotInterval time.Duration
	// LoadInterval: how often task load is reported to the leader, default 5s.
	LoadInterval time.Duration
	// Voters: cluster.voters, the Raft voters the leader keeps; 0 means 3
	// while the cluster has fewer than 5 members, else 5. Joining nodes enter
	// as non-voters and are promoted up to this count.
	Voters int
	// TLS: security.tls, loaded. When set, Raft runs over mutual TLS, calls
	// to other members use HTTPS with this certificate, and the cluster API
	// accepts a join, load report or policy proposal only from the node its
	// certificate names. Its identity must be NodeID in Region.
	TLS *nodecert.Bundle
	// CheckBundle, when set, checks the content of a proposed policy bundle on
	// the leader before it goes to Raft; active is nil when the cluster has no
	// bundle yet. This package keeps bundles opaque, so the daemon supplies it
	// (decode, validate, hash, compare with active). Return RefuseBundle(reason,
	// err) to name the reason; any other error counts as RefusedInvalid. The
	// version step (active+1) is checked before it is called. Called from HTTP
	// handlers, possibly concurrently.
	CheckBundle func(active *PolicyBundle, proposed PolicyBundle) error

	// versions overrides the newest command and snapshot versions the node
	// understands (zero: this build's); tests play nodes of other versions.
	versions versions
	// segmentSize overrides raft-wal's segment size (0: its 64 MiB default,
	// preallocated); the stored-log fixtures in testdata use small ones.
	segmentSize int
}

// Peer is one initial voter: its node id and Raft address.
type Peer struct {
	ID   string
	Addr string
}

// ParsePeers parses cluster.bootstrap entries written as "id@host:port".
func ParsePeers(list []string) ([]Peer, error) {
	var peers []Peer
	var errs []error
	for i, s := range list {
		id, addr, ok := strings.Cut(s, "@")
		if !ok || id == "" || addr == "" {
			errs = append(errs, fmt.Errorf("cluster.bootstrap[%d]: %q: want id@host:port", i, s))
			continue
		}
		peers = append(peers, Peer{ID: id, Addr: addr})
	}
	return peers, errors.Join(errs...)
}

// Deps are the node's collaborators; nil fields get safe defaults (a discarding
// logger, no metric registration, time.Now, a plain HTTP client, open routes).
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// Client sends this node's requests to the other members (joins, load
	// reports, policy proposals, leaving, forwarded requests): the caller
	// gives it the node's credentials (with Config.TLS, a transport that
	// presents the node certificate). Default: with Config.TLS, a client that
	// presents the node certificate; else a plain one; 10 s timeout.
	Client *http.Client
	// Guard, when set, wraps each route of Handler with its access check.
	Guard Guard
	// DiskFull, when set, is called (from Raft's goroutines; it must not
	// block) with each write error of the Raft log or stable store that says
	// the file system is full (IsDiskFull).
	DiskFull func(error)
}

// Routes of the cluster API, as Handler names them to its Guard.
const (
	RouteJoin         = "join"          // POST /v1/cluster/join: people and nodes (a node registers itself)
	RouteRemoveMember = "remove_member" // DELETE /v1/cluster/members/{id}: people and nodes (a node leaves)
	RouteLoad         = "load"          // POST /v1/cluster/load: nodes only
	RoutePolicy       = "policy"        // POST /v1/cluster/policy: nodes only
	RouteStatus       = "status"        // GET /v1/cluster: people
)

// Guard wraps the handler of one route of the cluster API (a Route constant)
// with its access check. Handler calls it once per route, when it is built.
type Guard func(route string, h http.Handler) http.Handler

func (d Deps) withDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Client == nil {
		d.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if d.Guard == nil {
		d.Guard = func(_ string, h http.Handler) http.Handler { return h }
	}
	return d
}

// Defaults of the optional fields.
const (
	DefaultHeartbeatTimeout  = time.Second
	DefaultElectionTimeout   = time.Second
	DefaultFailureTimeout    = 10 * time.Second
	DefaultRebalanceMargin   = 0.2
	DefaultSnapshotThreshold = 8192
	DefaultSnapshotInterval  = 2 * time.Minute
	DefaultLoadInterval      = 5 * time.Second
)

// withDefaults fills the zero optional fields.
func (c Config) withDefaults() Config {
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = c.HeartbeatTimeout / 2
	}
	if c.FailureTimeout == 0 {
		c.FailureTimeout = DefaultFailureTimeout
	}
	if c.RebalanceMargin == 0 {
		c.RebalanceMargin = DefaultRebalanceMargin
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = DefaultSnapshotInterval
	}
	if c.LoadInterval == 0 {
		c.LoadInterval = DefaultLoadInterval
	}
	return c
}

// validate reports every problem of a defaulted config, each naming its field.
func (c Config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeID == "" {
		bad("node.id: required")
	}
	if c.Region == "" {
		bad("node.region: required")
	}
	if c.DataDir == "" {
		bad("node.data_dir: required")
	}
	if c.TLS != nil && (c.TLS.ID != c.NodeID || c.TLS.Region != c.Region) {
		bad("security.tls: the certificate names node %q in region %q, but node.id is %q and node.region is %q", c.TLS.ID, c.TLS.Region, c.NodeID, c.Region)
	}
	if c.Voters < 0 || c.Voters > 0 && c.Voters%2 == 0 {
		bad("cluster.voters (%d): want an odd number, or 0 for 3 or 5 by member count", c.Voters)
	}
	if c.RaftAdvertise == "" {
		if err := advertisable(c.RaftAddr); err != nil {
			bad("node.raft_addr (%q): %v", c.RaftAddr, err)
		}
	} else {
		if err := advertisable(c.RaftAdvertise); err != nil {
			bad("node.raft_advertise_addr (%q): %v", c.RaftAdvertise, err)
		}
		if _, port, err := net.SplitHostPort(c.RaftAddr); err != nil || port == "" || port == "0" {
			bad("node.raft_addr (%q): want host:port with a fixed port", c.RaftAddr)
		}
	}
	if _, _, err := net.SplitHostPort(trimScheme(c.HTTPAddr)); err != nil {
		bad("node.http_addr (%q): want host:port", c.HTTPAddr)
	}
	seen := map[string]bool{}
	for i, p := range c.Bootstrap {
		switch {
		case p.ID == "" || p.Addr == "":
			bad("cluster.bootstrap[%d]: id and address are required", i)
		case seen[p.ID]:
			bad("cluster.bootstrap[%d]: duplicate id %q", i, p.ID)
		case p.ID == c.NodeID && p.Addr != c.raftAdvertised():
			bad("cluster.bootstrap[%d]: lists %s at %s but %s is %s", i, p.ID, p.Addr, c.raftAdvertisedKey(), c.raftAdvertised())
		}
		seen[p.ID] = true
	}
	for i, a := range c.Join {
		if _, _, err := net.SplitHostPort(trimScheme(a)); err != nil {
			bad("cluster.join[%d] (%q): want host:port or http(s)://host:port", i, a)
		} else if c.TLS != nil && strings.HasPrefix(a, "http://") {
			bad("cluster.join[%d] (%q): members serve https when security.tls is set; write host:port", i, a)
		}
	}
	if c.HeartbeatTimeout < 5*time.Millisecond {
		bad("cluster.heartbeat_timeout (%v): must be at least 5ms", c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		bad("cluster.election_timeout (%v) must be >= cluster.heartbeat_timeout (%v)", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.LeaderLeaseTimeout < 5*time.Millisecond || c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("cluster.leader_lease_timeout (%v) must be between 5ms and cluster.heartbeat_timeout (%v)", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if minFail := 2 * max(c.HeartbeatTimeout, c.ElectionTimeout); c.FailureTimeout < minFail {
		// Below this, an ordinary election would make every follower drop its tasks.
		bad("cluster.failure_timeout (%v) must be >= twice the heartbeat and election timeouts (%v)", c.FailureTimeout, minFail)
	}
	if c.RebalanceMargin < 0 || c.RebalanceMargin > 10 {
		bad("cluster.rebalance_margin (%v): must be between 0 and 10", c.RebalanceMargin)
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		bad("cluster.snapshot_interval (%v): must be at least 5ms", c.SnapshotInterval)
	}
	if c.LoadInterval < 10*time.Millisecond {
		bad("cluster.load_interval (%v): must be at least 10ms", c.LoadInterval)
	}
	return errors.Join(errs...)
}

func (c Config) inBootstrap() bool {
	for _, p := range c.Bootstrap {
		if p.ID == c.NodeID {
			return true
		}
	}
	return false
}

// transportTimeout bounds one Raft RPC. A peer that stops answering (SIGSTOP,
// a black-holed link) is only reported as failing when an RPC times out, so it
// must be well below FailureTimeout; WAN links want it long.
func (c Config) transportTimeout() time.Duration {
	return min(max(c.FailureTimeout/2, 500*time.Millisecond), 10*time.Second)
}

// tick is how often the node re-evaluates isolation and the leader liveness.
func (c Config) tick() time.Duration {
	return min(max(c.FailureTimeout/10, 20*time.Millisecond), time.Second)
}

func advertisable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return errors.New("want host:port with a fixed port")
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return errors.New("must be an address other nodes can reach, not a wildcard")
	}
	return nil
}

// raftAdvertised is the Raft address other nodes dial: RaftAdvertise when
// set, else RaftAddr.
func (c Config) raftAdvertised() string {
	if c.RaftAdvertise != "" {
		return c.RaftAdvertise
	}
	return c.RaftAddr
}

func (c Config) raftAdvertisedKey() string {
	if c.RaftAdvertise != "" {
		return "node.raft_advertise_addr"
	}
	return "node.raft_addr"
}

// SourceIP is the IP a node's outgoing node-to-node connections (Raft, HTTP)
// originate from: the host of node.raft_addr when it is a specific IP
// address, nil (the kernel's choice) for a hostname or a wildcard.
func SourceIP(raftAddr string) net.IP {
	host, _, err := net.SplitHostPort(raftAddr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return nil
	}
	return ip
}

// SourceDialer dials from SourceIP(raftAddr) when there is one, with
// http.DefaultTransport's timeouts.
func SourceDialer(raftAddr string) *net.Dialer {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if ip := SourceIP(raftAddr); ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	return d
}

func trimScheme(addr string) string {
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
	return strings.TrimSuffix(addr, "/")
}

// baseURL turns "host:port" or a URL into a URL without a trailing slash:
// members advertise host:port, and the scheme follows the cluster's TLS
// setting (https with certificates, http without).
func (c Config) baseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	if c.TLS != nil {
		return "https://" + addr
	}
	return "http://" + addr
}

// voterTarget is how many voters the leader keeps when members servers could
// vote (voters and caught-up non-voters).
func (c Config) voterTarget(members int) int {
	switch {
	case c.Voters > 0:
		return c.Voters
	case members < 5:
		return 3
	}
	return 5
}
