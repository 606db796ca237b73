package auth

import "net/http"

// NodeTransport returns a RoundTripper that sends every request through base
// (http.DefaultTransport when nil) with NodeHeader set to nodeID: the
// transport of a node's requests to the other members. The header only says
// which node claims to call; the receiving NodeCheck decides whether to
// believe it (Loopback: when the request comes from this machine; with TLS:
// the client certificate).
func NodeTransport(base http.RoundTripper, nodeID string) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &nodeTransport{base: base, id: nodeID}
}

type nodeTransport struct {
	base http.RoundTripper
	id   string
}

func (t *nodeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	// A RoundTripper must not change the request it is given.
	r = r.Clone(r.Context())
	r.Header.Set(NodeHeader, t.id)
	return t.base.RoundTrip(r)
}
