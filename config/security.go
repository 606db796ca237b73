package config

import (
	"net"
	"strings"
)

// Security is the security section: who may call the node's HTTP API, and
// whether the operator accepts running without protection off loopback.
// The TLS settings (security.tls) live here too.
type Security struct {
	// TokensFile: security.tokens_file, the bearer tokens (by SHA-256, with a
	// name and a role) people and tools use on the HTTP API; the auth package
	// parses it. Optional; without it the API asks for no token. Restart
	// required.
	TokensFile string `yaml:"tokens_file"`
	// Insecure: security.insecure, default false. Without TLS a node refuses
	// to listen on an address other than loopback unless this is true; the
	// node then logs a warning at every start and /v1/status shows
	// "security": "off". Restart required.
	Insecure bool `yaml:"insecure"`
}

// hasTLS reports whether node-to-node traffic is encrypted and authenticated
// with certificates (security.tls). Until that lands, no config has TLS.
func (s *Security) hasTLS() bool { return false }

// security checks the security section against the node's addresses: a node
// reachable from the network must be protected (TLS) or explicitly marked
// insecure, and bearer tokens must never cross the network in clear text.
func (v *validator) security() {
	n, s := &v.c.Node, &v.c.Security
	if s.hasTLS() {
		return
	}
	// An address already reported as malformed is not judged again.
	if !validHostPort(n.RaftAddr) || !validListenAddr(n.HTTPAddr) {
		return
	}
	if IsLoopback(n.HTTPAddr) && IsLoopback(n.RaftAddr) {
		return
	}
	switch {
	case s.TokensFile != "":
		// Without certificates nodes cannot prove who they are to each other
		// (node-only endpoints accept loopback peers only), and the tokens
		// would travel in clear text.
		v.errorf("security.tokens_file", "bearer tokens need security.tls when node.http_addr (%q) or node.raft_addr (%q) is not a loopback address: without TLS the tokens cross the network in clear text and nodes cannot authenticate each other", n.HTTPAddr, n.RaftAddr)
	case !s.Insecure:
		v.errorf("node.http_addr", "node.http_addr (%q) or node.raft_addr (%q) is not a loopback address and security.tls is not set: configure security.tls (and security.tokens_file), or set security.insecure: true to accept that anyone on the network can control this node", n.HTTPAddr, n.RaftAddr)
	}
}

// IsLoopback reports whether addr (host:port, or :port for all interfaces)
// names only this machine: a loopback IP or "localhost". An empty or
// unspecified host (all interfaces) and other names are not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
