// Package auth decides who may call a node's HTTP API: people and tools with
// bearer tokens, each with a role (read < operate < admin), and the other
// nodes of the cluster.
//
// The tokens file lists tokens by their SHA-256 only, so the file never holds
// a usable secret; Load refuses a file that group or others can read. A Guard
// wraps each route with the role it needs (Require), or marks it as one only
// nodes call (RequireNode), where a token is never enough. Every refusal is
// logged with the token's name (never the token) and counted in
// tributary_http_denied_total{endpoint,reason}; endpoint comes from the fixed
// set of Endpoint constants, never from the request.
//
// Nodes are recognised by a NodeCheck. Without TLS the only check there is,
// Loopback, accepts a request that names itself a node (NodeHeader) when it
// comes from this machine; the TLS work replaces it with a check of the peer's
// node certificate. Nodes name themselves on their own requests through
// NodeTransport.
//
// Without tokens the routes that need a role stay open; without tokens and
// without a NodeCheck every route does (a node on loopback, or one the
// operator marked insecure).
package auth
