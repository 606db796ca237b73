package config

import (
	"net"
	"strconv"
	"strings"

	"github.com/tributary-dev/tributary/internal/nodecert"
)

// Security is the security section: how nodes prove who they are to each other
// (TLS), who may call the node's HTTP API (tokens), and whether the operator
// accepts running without protection off loopback.
type Security struct {
	// TLS: security.tls, the cluster's certificates; none by default. When
	// set, Raft runs over mutual TLS, the HTTP API over TLS, and a node's id
	// and region must match its certificate. Restart required.
	TLS *TLS `yaml:"tls,omitempty"`
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
// with certificates (security.tls).
func (s *Security) hasTLS() bool { return s.TLS != nil }

// TLSFiles returns the files of security.tls, ok false when TLS is not
// configured.
func (c *Config) TLSFiles() (f nodecert.Files, ok bool) {
	t := c.Security.TLS
	if t == nil {
		return nodecert.Files{}, false
	}
	return nodecert.Files{CA: t.CAFile, Cert: t.CertFile, Key: t.KeyFile}, true
}

// security checks the security section: TLS files and the node identity their
// certificate names, and that a node reachable from the network is protected
// (TLS) or explicitly marked insecure, with bearer tokens never crossing the
// network in clear text.
func (v *validator) security() {
	n, s := &v.c.Node, &v.c.Security
	if s.hasTLS() {
		v.tls()
	}
	// An address already reported as malformed is not judged again.
	if !validHostPort(n.RaftAddr) || !validListenAddr(n.HTTPAddr) {
		return
	}
	if IsLoopback(n.HTTPAddr) && IsLoopback(n.RaftAddr) {
		return
	}
	if s.hasTLS() {
		// Certificates authenticate nodes, not people: without tokens the
		// people's endpoints (reload, joins by an operator, member removal)
		// would be open to anyone who reaches the address.
		if s.TokensFile == "" && !s.Insecure {
			v.errorf("security.tokens_file", "required with security.tls when node.http_addr (%q) or node.raft_addr (%q) is not a loopback address: without tokens anyone who reaches the HTTP API can reload policies or remove members; set security.tokens_file, or security.insecure: true to accept that", n.HTTPAddr, n.RaftAddr)
		}
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

// tls checks security.tls: all three files or none; they must exist and
// parse, the key must be private to its owner, and the certificate must name
// this node (node.id and node.region), since a node's identity comes from its
// certificate. Reading the files here lets `config check` catch a wrong
// certificate before a node starts with it.
func (v *validator) tls() {
	t := v.c.Security.TLS
	missing := false
	for _, f := range []struct{ key, val string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.val == "" {
			v.errorf("security.tls."+f.key, "required: security.tls needs ca_file, cert_file and key_file")
			missing = true
		}
	}
	if missing {
		return
	}
	for i, j := range v.c.Cluster.Join {
		if strings.HasPrefix(j, "http://") {
			v.errorf("cluster.join["+strconv.Itoa(i)+"]", "%q: members serve https when security.tls is set; write host:port", j)
		}
	}
	b, err := nodecert.Load(nodecert.Files{CA: t.CAFile, Cert: t.CertFile, Key: t.KeyFile})
	if err != nil {
		v.errorf("security.tls", "%v", err)
		return
	}
	n := v.c.Node
	if b.ID != n.ID || b.Region != n.Region {
		v.errorf("security.tls.cert_file", "certificate %s names node %q in region %q (%s), but node.id is %q and node.region is %q",
			t.CertFile, b.ID, b.Region, nodecert.URI(b.Region, b.ID), n.ID, n.Region)
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
