package coord

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hashicorp/raft"
)

// hdrForwardedBy marks a request a member forwarded to the leader; a node that
// receives one and is not the leader answers 503 instead of forwarding again.
const hdrForwardedBy = "Tributary-Forwarded-By"

// hdrForwardedFor carries, on a request a member forwards to the leader with
// TLS on, the node ("<region>/<id>") that the forwarding member verified as
// the original sender, or "-" when that sender presented no node
// certificate. The leader believes it only from a peer with a node
// certificate: every node is trusted to vouch for what it verified.
const hdrForwardedFor = "Tributary-Forwarded-For"

// maxBody bounds the other requests (join, load, member removal): small JSON.
const maxBody = 64 << 10

// Handler serves the cluster API; cmd mounts it on the node's HTTP server:
//
//	POST   /v1/cluster/join          {id, region, raft_addr, http_addr}: admit a member
//	DELETE /v1/cluster/members/{id}  remove a member
//	POST   /v1/cluster/load          internal: a node's task load {node, load}
//	POST   /v1/cluster/policy        internal: propose a policy bundle
//	GET    /v1/cluster               Status as JSON
//
// Any member accepts the POST and DELETE requests: a follower forwards them to
// the leader's HTTP address. Success is 200 {"index": N} (the log index of the
// change); errors are {"error": "..."} with 400 (bad request), 404 (unknown
// member), 409 (stale policy bundle), 413 (body too large: 1 MiB for a policy
// bundle, 64 KiB otherwise), 422 (policy bundle refused by the leader's
// checks), 503 (no leader, retry) or 500.
//
// Each route goes through Deps.Guard, which decides who may call it.
func (n *Node) Handler() http.Handler {
	g := n.deps.Guard
	mux := http.NewServeMux()
	mux.Handle("POST /v1/cluster/join", g(RouteJoin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req joinRequest
		n.leaderOnly(w, r, maxBody, &req, func(ctx context.Context, from sender) (uint64, error) {
			if err := from.is(req.Region, req.ID); err != nil {
				return 0, err
			}
			return n.join(ctx, req)
		})
	})))
	mux.Handle("DELETE /v1/cluster/members/{id}", g(RouteRemoveMember, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		// The guard admits an admin token or a node; a node may remove only
		// itself (leaving), never another member.
		n.leaderOnly(w, r, maxBody, nil, func(ctx context.Context, from sender) (uint64, error) {
			if err := from.leaving(id); err != nil {
				return 0, err
			}
			return n.removeMember(ctx, id)
		})
	})))
	mux.Handle("POST /v1/cluster/load", g(RouteLoad, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req loadRequest
		n.leaderOnly(w, r, maxBody, &req, func(ctx context.Context, from sender) (uint64, error) {
			if req.Node == "" {
				return 0, &badRequestError{errors.New("load report: node missing")}
			}
			if err := from.isNode(req.Node); err != nil {
				return 0, err
			}
			return n.propose(ctx, command{Op: opReportLoad, Node: req.Node, Load: req.Load})
		})
	})))
	mux.Handle("POST /v1/cluster/policy", g(RoutePolicy, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req policyCmd
		n.leaderOnly(w, r, MaxPolicyBody, &req, func(ctx context.Context, from sender) (uint64, error) {
			if err := from.anyNode(); err != nil {
				return 0, err
			}
			return n.proposePolicy(ctx, &req, proposer(r))
		})
	})))
	mux.Handle("GET /v1/cluster", g(RouteStatus, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Status())
	})))
	return mux
}

type indexResponse struct {
	Index uint64 `json:"index"`
}

type errorResponse struct {
	Error string `json:"error"`
	// Reason: with 422 for a refused policy bundle, one of the Refused*
	// constants, so that the proposer gets a *BundleRefusedError back.
	Reason string `json:"reason,omitempty"`
}

type badRequestError struct{ err error }

// forbiddenError: the sender's certificate does not allow the request (403).
type forbiddenError struct{ err error }

func (e *forbiddenError) Error() string { return e.err.Error() }
func (e *forbiddenError) Unwrap() error { return e.err }

// sender is who sent a cluster API request, as far as the leader can tell.
type sender struct {
	tls        bool // TLS is configured: requests are checked
	region, id string
	ok         bool // a node certificate named region/id
}

func (s sender) String() string {
	if !s.ok {
		return "a sender without a node certificate"
	}
	return "node " + s.id + " of region " + s.region
}

// anyNode refuses a sender that is not a node of the cluster.
func (s sender) anyNode() error {
	if s.tls && !s.ok {
		return &forbiddenError{fmt.Errorf("%w: %s may not do this, only a node may", errIdentity, s)}
	}
	return nil
}

// isNode refuses a sender that is not node id.
func (s sender) isNode(id string) error {
	if err := s.anyNode(); err != nil || !s.tls {
		return err
	}
	if s.id != id {
		return &forbiddenError{fmt.Errorf("%w: %s may not speak for node %s", errIdentity, s, id)}
	}
	return nil
}

// leaving refuses a node that asks to remove a member other than itself. A
// sender without a node certificate came past the guard with a token (an
// admin's), which may remove any member.
func (s sender) leaving(id string) error {
	if !s.tls || !s.ok || s.id == id {
		return nil
	}
	return &forbiddenError{fmt.Errorf("%w: %s may remove itself only, not member %s", errIdentity, s, id)}
}

// is refuses a sender that is not node id of region.
func (s sender) is(region, id string) error {
	if err := s.anyNode(); err != nil || !s.tls {
		return err
	}
	if s.id != id || s.region != region {
		return &forbiddenError{fmt.Errorf("%w: %s may not join as node %s of region %s", errIdentity, s, id, region)}
	}
	return nil
}

// senderOf tells who sent r: the node its verified certificate names or, on
// a request another node forwarded, the node that one vouches for.
func (n *Node) senderOf(r *http.Request) sender {
	s := sender{tls: n.cfg.TLS != nil}
	if !s.tls {
		return s
	}
	s.region, s.id, s.ok = PeerIdentity(r)
	fwd := r.Header.Get(hdrForwardedFor)
	if !s.ok || fwd == "" || r.Header.Get(hdrForwardedBy) != s.id {
		return s
	}
	region, id, found := strings.Cut(fwd, "/")
	if !found || region == "" || id == "" {
		return sender{tls: true}
	}
	return sender{tls: true, region: region, id: id, ok: true}
}

func (e *badRequestError) Error() string { return e.err.Error() }
func (e *badRequestError) Unwrap() error { return e.err }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func statusOf(err error) int {
	var bad *badRequestError
	var refused *BundleRefusedError
	switch {
	case errors.As(err, &bad):
		return http.StatusBadRequest
	case errors.Is(err, errIdentity):
		return http.StatusForbidden
	case errors.Is(err, ErrUnknownMember):
		return http.StatusNotFound
	case errors.Is(err, ErrStalePolicy):
		return http.StatusConflict
	case errors.As(err, &refused):
		return http.StatusUnprocessableEntity
	case errors.Is(err, ErrUnknownMember):
		return http.StatusNotFound
	case IsRetryable(err), errors.Is(err, raft.ErrRaftShutdown):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// leaderOnly decodes the body into dst (when not nil) and runs op on the
// leader, or forwards the request there.
func (n *Node) leaderOnly(w http.ResponseWriter, r *http.Request, limit int64, dst any, op func(context.Context, sender) (uint64, error)) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if !errors.As(err, &tooLarge) {
			writeJSON(w, http.StatusBadRequest, errorResponse{Error: fmt.Sprintf("reading request: %v", err)})
			return
		}
		er := errorResponse{Error: fmt.Sprintf("reading request: body over %d bytes", limit)}
		if limit == MaxPolicyBody {
			n.refused(proposer(r), 0, &BundleRefusedError{Reason: RefusedTooLarge, Err: err})
			er.Reason = RefusedTooLarge
		}
		writeJSON(w, http.StatusRequestEntityTooLarge, er)
		return
	}
	if n.raft.State() != raft.Leader {
		n.forward(w, r, raw)
		return
	}
	if dst != nil {
		if err := json.Unmarshal(raw, dst); err != nil {
			writeJSON(w, http.StatusBadRequest, errorResponse{Error: fmt.Sprintf("decoding request: %v", err)})
			return
		}
	}
	from := n.senderOf(r)
	idx, err := op(r.Context(), from)
	if err != nil {
		if errors.Is(err, errIdentity) {
			n.log.Warn("refused a cluster request: the certificate does not allow it", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		}
		er := errorResponse{Error: err.Error()}
		var refused *BundleRefusedError
		if errors.As(err, &refused) {
			er.Reason = refused.Reason
		}
		writeJSON(w, statusOf(err), er)
		return
	}
	writeJSON(w, http.StatusOK, indexResponse{idx})
}

// proposer names who sent a request: the node that forwarded it, else the
// remote address.
func proposer(r *http.Request) string {
	if by := r.Header.Get(hdrForwardedBy); by != "" {
		return by
	}
	return r.RemoteAddr
}

// forward relays a request to the leader and its answer back.
func (n *Node) forward(w http.ResponseWriter, r *http.Request, raw []byte) {
	if by := r.Header.Get(hdrForwardedBy); by != "" {
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: fmt.Sprintf("%s forwarded the request to %s, which is not the leader (%v)", by, n.cfg.NodeID, ErrNotLeader)})
		return
	}
	id, addr := n.leaderHTTP()
	if addr == "" {
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: fmt.Sprintf("%s knows no leader: %v", n.cfg.NodeID, ErrNotLeader)})
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, n.cfg.baseURL(addr)+r.URL.Path, bytes.NewReader(raw))
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, errorResponse{Error: err.Error()})
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hdrForwardedBy, n.cfg.NodeID)
	if n.cfg.TLS != nil {
		fwd := "-"
		if region, id, ok := PeerIdentity(r); ok {
			fwd = region + "/" + id
		}
		req.Header.Set(hdrForwardedFor, fwd)
	}
	// Whatever the sender's credentials are, the leader sees them too.
	if a := r.Header.Get("Authorization"); a != "" {
		req.Header.Set("Authorization", a)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: fmt.Sprintf("forwarding to leader %s at %s: %v", id, addr, err)})
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// callLeader runs local when this node leads, else sends the request to the
// leader's HTTP API. out, when not nil, receives the index.
func (n *Node) callLeader(ctx context.Context, method, path string, body any, out *indexResponse, local func(context.Context) (uint64, error)) error {
	if n.raft.State() == raft.Leader {
		idx, err := local(ctx)
		if out != nil {
			out.Index = idx
		}
		return err
	}
	id, addr := n.leaderHTTP()
	if addr == "" {
		if id == "" {
			return fmt.Errorf("no leader known: %w", ErrNotLeader)
		}
		return fmt.Errorf("leader %s has not registered its address yet: %w", id, ErrNotLeader)
	}
	return n.call(ctx, addr, method, path, body, out, true)
}

// call sends one request to a member's cluster API and maps its error answers
// back to this package's errors.
func (n *Node) call(ctx context.Context, addr, method, path string, body any, out *indexResponse, toLeader bool) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	url := n.cfg.baseURL(addr) + path
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if toLeader {
		// Sent to the node we believe leads: it must not forward again.
		req.Header.Set(hdrForwardedBy, n.cfg.NodeID)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode == http.StatusOK {
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("%s %s: decoding answer: %w", method, url, err)
			}
		}
		return nil
	}
	var er errorResponse
	if json.Unmarshal(b, &er) != nil || er.Error == "" {
		er.Error = http.StatusText(resp.StatusCode)
	}
	msg := fmt.Sprintf("%s %s: %s", method, url, er.Error)
	switch resp.StatusCode {
	case http.StatusServiceUnavailable:
		return &wrapErr{msg: msg, err: ErrNotLeader}
	case http.StatusNotFound:
		return &wrapErr{msg: msg, err: ErrUnknownMember}
	case http.StatusConflict:
		return &wrapErr{msg: msg, err: ErrStalePolicy}
	case http.StatusForbidden:
		return &wrapErr{msg: msg, err: errIdentity}
	case http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		if er.Reason != "" {
			return &BundleRefusedError{Reason: er.Reason, Err: errors.New(msg)}
		}
	}
	return errors.New(msg)
}
