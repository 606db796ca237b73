package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/auth"
	"github.com/tributary-dev/tributary/internal/nodecert"
	"github.com/tributary-dev/tributary/replicator/coord"
)

// Values of Status.Security.
const (
	// securityOff: security.insecure is set, and nothing protects the node.
	securityOff = "off"
	// securityLoopback: no TLS, but the node listens on loopback only.
	securityLoopback = "loopback"
	// securityTLS: Raft and the HTTP API over TLS with node certificates.
	securityTLS = "tls"
)

// Who may call what (issue 13, DESIGN invariant 6):
//
//	/healthz, /readyz, /metrics, the status page's files   anyone
//	GET /v1/status, GET /v1/cluster, GET /v1/offsets/translate   read (and nodes, for /v1/status)
//	POST /v1/policies/reload                                   operate
//	POST /v1/cluster/join, DELETE /v1/cluster/members/{id}     admin, or a node (joining, leaving)
//	POST /v1/cluster/policy, POST /v1/cluster/load             nodes only: a token is never enough
//
// The status page's files (/, /ui/...) hold no data, and a browser cannot
// send a bearer token when it loads a page: the page asks for the token and
// sends it on the /v1/status requests, which carry the data.
//
// Nodes prove who they are with their certificate (security.tls): the
// node-only routes then need one, tokens or not. Without TLS, config allows
// tokens only on loopback, and auth.Loopback believes a node's claim from
// this machine only. Without tokens and TLS nothing is checked, as before:
// config allows that only on loopback or with security.insecure.

// newGuard loads the tokens file, if any, and returns the Guard of the
// node's HTTP API.
func newGuard(cfg *config.Config, certs *nodecert.Bundle, log *slog.Logger, reg prometheus.Registerer) (*auth.Guard, error) {
	var toks *auth.Tokens
	var nodes auth.NodeCheck
	if certs != nil {
		// A node is a peer whose verified certificate names a node of the
		// cluster CA; the TLS server verified it against the CA.
		nodes = certNode
	}
	if f := cfg.Security.TokensFile; f != "" {
		var err error
		if toks, err = auth.Load(f); err != nil {
			return nil, fmt.Errorf("security.tokens_file: %w", err)
		}
		log.Info("bearer tokens required on the HTTP API", "tokens", toks.Len(), "file", f)
		// Without TLS only loopback peers can be nodes; config allows tokens
		// without TLS on loopback addresses only, so every member qualifies.
		// Without tokens no node check runs either: an insecure cluster across
		// machines keeps working as before. The TLS work sets its certificate
		// check here whenever security.tls is set.
		if certs == nil {
			nodes = auth.Loopback
		}
	}
	return auth.New(toks, nodes, auth.Deps{Logger: log.With("component", "auth"), Registerer: reg})
}

// securityMode is Status.Security, and warns at start when the node runs
// without protection.
func securityMode(cfg *config.Config, certs *nodecert.Bundle, log *slog.Logger) string {
	if certs != nil {
		return securityTLS
	}
	if cfg.Security.Insecure {
		log.Warn("security.insecure is set: the node runs without TLS, and anyone who reaches its addresses can control it",
			"http_addr", cfg.Node.HTTPAddr, "raft_addr", cfg.Node.RaftAddr, "tokens", cfg.Security.TokensFile != "")
		return securityOff
	}
	return securityLoopback
}

// nodeClient is the HTTP client of this node's requests to the other
// members: it names the node (auth.NodeHeader), which the members believe
// when the request comes from loopback (or, with TLS, from a node
// certificate).
func nodeClient(cfg *config.Config, certs *nodecert.Bundle, timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: auth.NodeTransport(nodeTransport(certs, cfg.Node.RaftAddr), cfg.Node.ID)}
}

// nodeTransport is the base transport of this node's requests to the other
// members: with TLS it presents the node certificate and trusts only node
// certificates of the cluster CA. Its connections originate from the IP of
// node.raft_addr when that is a specific address (coord.SourceIP), as Raft's.
func nodeTransport(certs *nodecert.Bundle, raftAddr string) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = coord.SourceDialer(raftAddr).DialContext
	if certs != nil {
		t.TLSClientConfig = certs.ClientConfig()
	}
	return t
}

// certNode is the NodeCheck with TLS: the request's client presented a
// certificate of the cluster CA that names a node.
func certNode(r *http.Request) (bool, error) {
	if _, _, ok := coord.PeerIdentity(r); ok {
		return true, nil
	}
	if r.Header.Get(auth.NodeHeader) != "" {
		return false, errors.New("a node's request without a node certificate")
	}
	return false, nil
}

// clusterGuard maps the routes of the cluster API to what they need.
func clusterGuard(g *auth.Guard) coord.Guard {
	return func(route string, h http.Handler) http.Handler {
		switch route {
		case coord.RouteJoin:
			return g.RequireOrNode(auth.Admin, auth.EndpointClusterJoin, h)
		case coord.RouteRemoveMember:
			return g.RequireOrNode(auth.Admin, auth.EndpointClusterMembers, h)
		case coord.RouteLoad:
			return g.RequireNode(auth.EndpointClusterLoad, h)
		case coord.RoutePolicy:
			return g.RequireNode(auth.EndpointClusterPolicy, h)
		case coord.RouteStatus:
			return g.Require(auth.Read, auth.EndpointCluster, h)
		}
		// A route added to coord without a line here would be open: fail at
		// start-up instead.
		panic(fmt.Sprintf("daemon: no access rule for cluster route %q", route))
	}
}
