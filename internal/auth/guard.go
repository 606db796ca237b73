package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Endpoint labels of tributary_http_denied_total: one per guarded route. They
// are constants so that the label's values stay a small fixed set whatever
// paths clients ask for.
const (
	EndpointStatus           = "status"            // GET /v1/status
	EndpointCluster          = "cluster"           // GET /v1/cluster
	EndpointOffsetsTranslate = "offsets_translate" // GET /v1/offsets/translate
	EndpointPoliciesReload   = "policies_reload"   // POST /v1/policies/reload
	EndpointClusterJoin      = "cluster_join"      // POST /v1/cluster/join
	EndpointClusterMembers   = "cluster_members"   // DELETE /v1/cluster/members/{id}
	EndpointClusterPolicy    = "cluster_policy"    // POST /v1/cluster/policy (nodes only)
	EndpointClusterLoad      = "cluster_load"      // POST /v1/cluster/load (nodes only)
)

var endpoints = []string{
	EndpointStatus, EndpointCluster, EndpointOffsetsTranslate, EndpointPoliciesReload,
	EndpointClusterJoin, EndpointClusterMembers, EndpointClusterPolicy, EndpointClusterLoad,
}

// Reasons of tributary_http_denied_total.
const (
	ReasonMissing   = "missing"   // no credential: 401
	ReasonInvalid   = "invalid"   // a token that is in no entry, or a malformed Authorization header: 401
	ReasonForbidden = "forbidden" // a weaker role, a token on a node-only route, or a failed node claim: 403
)

// NodeHeader names the sending node's id on node-to-node requests. Without
// TLS it is only a claim, which Loopback accepts from this machine alone.
const NodeHeader = "Tributary-Node"

// maxClaimedNode bounds the NodeHeader value a refusal logs: node ids are
// short, and the header comes from whoever sends the request.
const maxClaimedNode = 128

// NodeCheck tells whether a request comes from a node of the cluster. It
// returns (false, nil) when r does not present itself as a node (then a
// token decides), (true, nil) when it is a node, and an error when r
// presents itself as a node and is not one (the error is logged, never sent
// back). Guard calls it for every request, concurrently.
//
// The TLS work provides the check of a node certificate here (a verified
// client certificate with a tributary://<region>/<node-id> SAN); Loopback is
// the check for clusters without TLS.
type NodeCheck func(r *http.Request) (bool, error)

// Loopback is the NodeCheck without TLS: a request carrying NodeHeader is a
// node's when it comes from a loopback address. Nothing better is possible
// without certificates, which is why config refuses bearer tokens on
// addresses other than loopback unless TLS is set: every process on the
// machine can act as a node, and nothing from elsewhere can.
//
// A reverse proxy on the machine makes outside requests come from loopback
// too: a claim that passed through one (Forwarded, X-Forwarded-For, which
// nodes never send) is refused, and such a proxy must drop NodeHeader.
func Loopback(r *http.Request) (bool, error) {
	if r.Header.Get(NodeHeader) == "" {
		return false, nil
	}
	if r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" {
		return true, errors.New("a request naming itself a node came through a proxy")
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return true, fmt.Errorf("a request naming itself a node came from %s, not from loopback, and there is no TLS to prove it", r.RemoteAddr)
	}
	return true, nil
}

// Deps are what a Guard needs besides its tokens. Nil fields get defaults.
type Deps struct {
	// Logger receives one line per refused request, and one per granted
	// request of the operate or admin role (the audit trail); default discard.
	Logger *slog.Logger
	// Registerer gets tributary_http_denied_total; default: a fresh registry.
	Registerer prometheus.Registerer
}

// Guard checks the credentials of requests before the routes it wraps.
type Guard struct {
	tokens *Tokens
	node   NodeCheck
	open   bool // neither tokens nor a node check: nothing is checked
	log    *slog.Logger
	denied *prometheus.CounterVec
}

// New returns a Guard that admits people and tools by tokens and nodes by
// node. With tokens nil (no tokens file configured) Require and
// RequireOrNode return their routes as they are: those stay open, which
// config allows only on loopback or with security.insecure. RequireNode's
// routes stay open only when neither tokens nor node is given (nothing is
// configured); with tokens and no node check no request is a node's, so they
// refuse everything. The TLS work passes its certificate check as node even
// without tokens, which closes the node-only routes to everyone else.
func New(tokens *Tokens, node NodeCheck, deps Deps) (*Guard, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	// Nothing to check at all: the routes stay as they are.
	open := tokens == nil && node == nil
	if node == nil {
		node = func(*http.Request) (bool, error) { return false, nil }
	}
	denied := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_http_denied_total",
		Help: "Requests to the HTTP API refused for their credentials, by endpoint and reason (missing, invalid, forbidden).",
	}, []string{"endpoint", "reason"})
	if err := deps.Registerer.Register(denied); err != nil {
		return nil, fmt.Errorf("registering tributary_http_denied_total: %w", err)
	}
	g := &Guard{tokens: tokens, node: node, open: open, log: deps.Logger, denied: denied}
	if !open {
		// Every series exists from the start, so a rate() sees the first refusal.
		for _, ep := range endpoints {
			for _, reason := range []string{ReasonMissing, ReasonInvalid, ReasonForbidden} {
				denied.WithLabelValues(ep, reason)
			}
		}
	}
	return g, nil
}

// Require returns next guarded so that only a token of role (or a stronger
// one) reaches it. endpoint must be one of the Endpoint constants.
func (g *Guard) Require(role Role, endpoint string, next http.Handler) http.Handler {
	return g.guard(role, false, endpoint, next)
}

// RequireOrNode is Require that also admits the nodes of the cluster: for
// routes that people call and nodes call too (a node asks to join, leaves, or
// asks a member for its status).
func (g *Guard) RequireOrNode(role Role, endpoint string, next http.Handler) http.Handler {
	return g.guard(role, true, endpoint, next)
}

// RequireNode returns next guarded so that only the nodes of the cluster
// reach it; no token is ever enough, an admin's neither.
func (g *Guard) RequireNode(endpoint string, next http.Handler) http.Handler {
	return g.guard(0, true, endpoint, next)
}

// guard admits a node when nodes is set, else a token of role (none when role
// is 0).
func (g *Guard) guard(role Role, nodes bool, endpoint string, next http.Handler) http.Handler {
	if !knownEndpoint(endpoint) {
		// A label outside the fixed set is a wiring bug, found at start-up.
		panic(fmt.Sprintf("auth: unknown endpoint label %q", endpoint))
	}
	if g.open || (role != 0 && g.tokens == nil) {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isNode, err := g.node(r)
		switch {
		case err != nil:
			g.deny(w, r, endpoint, ReasonForbidden, "", err.Error())
			return
		case isNode && nodes:
			next.ServeHTTP(w, r)
			return
		case isNode:
			g.deny(w, r, endpoint, ReasonForbidden, "", "nodes may not call this endpoint")
			return
		}
		secret, ok, malformed := bearer(r)
		if role == 0 {
			// No token opens a node-only route; the name, when the token is
			// known, tells whose token was tried.
			var name string
			if tok, found := g.lookup(secret, ok); found {
				name = tok.Name
			}
			g.deny(w, r, endpoint, ReasonForbidden, name, "only nodes may call this endpoint, with a node certificate; a token is never enough")
			return
		}
		switch {
		case malformed:
			g.deny(w, r, endpoint, ReasonInvalid, "", "the Authorization header is not \"Bearer <token>\"")
			return
		case !ok:
			g.deny(w, r, endpoint, ReasonMissing, "", "no token")
			return
		}
		tok, found := g.tokens.Lookup(secret)
		switch {
		case !found:
			g.deny(w, r, endpoint, ReasonInvalid, "", "unknown token")
		case tok.Role < role:
			g.deny(w, r, endpoint, ReasonForbidden, tok.Name, fmt.Sprintf("role %s may not call this endpoint, it needs %s", tok.Role, role))
		default:
			if role >= Operate {
				g.log.Info("http request granted", "endpoint", endpoint, "method", r.Method, "token", tok.Name, "role", tok.Role.String(), "remote", r.RemoteAddr)
			}
			next.ServeHTTP(w, r)
		}
	})
}

func (g *Guard) lookup(secret string, ok bool) (Token, bool) {
	if !ok || g.tokens == nil {
		return Token{}, false
	}
	return g.tokens.Lookup(secret)
}

// bearer returns the token of r's Authorization header: ok is false when
// there is none, malformed true when the header is there but not
// "Bearer <token>".
func bearer(r *http.Request) (secret string, ok, malformed bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false, false
	}
	scheme, tok, found := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false, true
	}
	return tok, true, false
}

// deny answers 401 (missing or invalid) or 403 (forbidden), logs the refusal
// with the token's name when known, and counts it. The answer says only what
// to do next; why is in the log.
func (g *Guard) deny(w http.ResponseWriter, r *http.Request, endpoint, reason, name, why string) {
	g.denied.WithLabelValues(endpoint, reason).Inc()
	attrs := []any{"endpoint", endpoint, "method", r.Method, "reason", reason, "why", why, "remote", r.RemoteAddr}
	if name != "" {
		attrs = append(attrs, "token", name)
	}
	if node := r.Header.Get(NodeHeader); node != "" {
		// The sender chose it: bound what it puts in the log.
		if len(node) > maxClaimedNode {
			node = node[:maxClaimedNode] + "…"
		}
		attrs = append(attrs, "claimed_node", node)
	}
	g.log.Warn("http request denied", attrs...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	code, msg := http.StatusForbidden, "forbidden: your credentials do not allow this request"
	switch reason {
	case ReasonMissing:
		code, msg = http.StatusUnauthorized, "unauthorized: send a token as Authorization: Bearer <token>"
		w.Header().Set("WWW-Authenticate", `Bearer realm="tributary"`)
	case ReasonInvalid:
		code, msg = http.StatusUnauthorized, "unauthorized: the token is not valid"
		w.Header().Set("WWW-Authenticate", `Bearer realm="tributary", error="invalid_token"`)
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"error\": %q}\n", msg)
}

func knownEndpoint(ep string) bool {
	for _, e := range endpoints {
		if e == ep {
			return true
		}
	}
	return false
}
