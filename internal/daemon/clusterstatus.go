package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tributary-dev/tributary/internal/auth"
	"github.com/tributary-dev/tributary/internal/nodecert"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/coord"
)

// The cluster view of /v1/status (?scope=cluster) is what the status page
// polls: lag and throughput are measured by the node that runs a task, so the
// node asked fills in the figures of the tasks other members run from their
// plain /v1/status. It asks them in parallel and waits at most
// memberStatusTimeout in all: a member that does not answer by then is listed
// as unreachable and its tasks keep their assignment without figures. Members
// are asked for the plain view only, so a request never fans out further.
const (
	// memberStatusTimeout bounds the whole cluster view; the page polls every
	// 2 s and gives up after 5 s.
	memberStatusTimeout = 800 * time.Millisecond
	// maxMemberStatusBytes bounds one member's answer (a few KB per task).
	maxMemberStatusBytes = 8 << 20
)

// Scopes of GET /v1/status?scope=.
const (
	scopeNode    = "node" // the default: this node's view and figures
	scopeCluster = "cluster"
)

// Sources of TaskView.Source.
const (
	sourceKafka  = "kafka"
	sourcePubSub = "pubsub"
)

// peerClient calls other members' HTTP APIs. Members advertise host:port;
// the scheme follows the cluster's TLS setting, and with TLS the client
// presents this node's certificate and trusts only node certificates of the
// cluster CA.
type peerClient struct {
	*http.Client
	scheme string
}

func newPeerClient(b *nodecert.Bundle, nodeID, raftAddr string, timeout time.Duration) peerClient {
	c := peerClient{Client: &http.Client{Timeout: timeout, Transport: auth.NodeTransport(nodeTransport(b, raftAddr), nodeID)}, scheme: "http"}
	if b != nil {
		c.scheme = "https"
	}
	return c
}

// UnreachableMember is an alive member that did not answer for the cluster
// view, and why.
type UnreachableMember struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// memberStatus is the part of a member's plain /v1/status the cluster view
// reads.
type memberStatus struct {
	Node  NodeInfo                `json:"node"`
	Local []replicator.TaskStatus `json:"local_tasks"`
}

// statusHandler serves GET /v1/status: the plain view, or the cluster view with
// ?scope=cluster.
func (n *node) statusHandler() http.Handler {
	return statusHandler(n.localStatus, n.peers, n.pipelineSources())
}

// statusHandler answers GET /v1/status from local, this node's plain status;
// with ?scope=cluster it asks the other members through client.
func statusHandler(local func() Status, client peerClient, sources map[string]string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch scope := r.URL.Query().Get("scope"); scope {
		case "", scopeNode:
			replicator.WriteJSON(w, http.StatusOK, local())
		case scopeCluster:
			replicator.WriteJSON(w, http.StatusOK, clusterStatus(r.Context(), client, local(), sources))
		default:
			http.Error(w, fmt.Sprintf("scope %q: want %s or %s", scope, scopeNode, scopeCluster), http.StatusBadRequest)
		}
	})
}

// pipelineSources maps each configured pipeline to the kind of its source.
func (n *node) pipelineSources() map[string]string {
	out := map[string]string{}
	for _, p := range n.cfg.Pipelines {
		if p.Source.PubSub != "" {
			out[p.Name] = sourcePubSub
		} else {
			out[p.Name] = sourceKafka
		}
	}
	return out
}

// measurement is a task's figures as one node reported them.
type measurement struct {
	node string
	task replicator.TaskStatus
}

// clusterStatus turns st, this node's plain status, into the cluster view: it
// asks every other alive member of st.Cluster for its plain status (in
// parallel, within memberStatusTimeout) and fills each task's figures from the
// node that runs it. sources maps pipelines to the kind of their source.
func clusterStatus(ctx context.Context, client peerClient, st Status, sources map[string]string) Status {
	self := st.Node.ID
	byTask := map[string][]measurement{}
	for _, t := range st.Local {
		byTask[t.ID] = append(byTask[t.ID], measurement{self, t})
	}

	ctx, cancel := context.WithTimeout(ctx, memberStatusTimeout)
	defer cancel()
	type answer struct {
		id  string
		st  memberStatus
		err error
	}
	var asked []coord.MemberStatus
	for _, m := range st.Cluster.Members {
		// A member that is not alive runs nothing: the leader has moved its
		// tasks or marked them unassigned.
		if m.ID != self && m.Alive {
			asked = append(asked, m)
		}
	}
	answers := make([]answer, len(asked))
	var wg sync.WaitGroup
	for i, m := range asked {
		wg.Go(func() {
			ms, err := askMember(ctx, client, m)
			answers[i] = answer{m.ID, ms, err}
		})
	}
	wg.Wait()

	st.Scope = scopeCluster
	st.Unreachable = nil
	for _, a := range answers {
		if a.err != nil {
			st.Unreachable = append(st.Unreachable, UnreachableMember{ID: a.id, Error: a.err.Error()})
			continue
		}
		for _, t := range a.st.Local {
			byTask[t.ID] = append(byTask[t.ID], measurement{a.id, t})
		}
	}
	slices.SortFunc(st.Unreachable, func(a, b UnreachableMember) int { return strings.Compare(a.ID, b.ID) })

	tasks := make([]TaskView, 0, len(st.Tasks))
	for _, v := range st.Tasks {
		// Reset this node's figures: they are filled again below from the
		// node that runs the task.
		v = TaskView{TaskStatus: v.TaskStatus, Source: sources[v.Pipeline]}
		if m, ok := pickMeasurement(byTask[v.ID], v.Node, self); ok {
			v.MeasuredBy = m.node
			v.Running, v.Partitions, v.Replicated, v.Quarantined, v.Error =
				m.task.State, m.task.Partitions, m.task.Replicated, m.task.Quarantined, m.task.Error
			// A Pub/Sub receiver's lag is the messages it holds, not yet in
			// Kafka (bridges.Status).
			lag := m.task.Lag
			v.Lag = &lag
		}
		tasks = append(tasks, v)
	}
	st.Tasks = tasks
	return st
}

// pickMeasurement chooses the figures of a task: those of the node Raft
// assigns it to, else (while a task moves, the old node may still drain it)
// this node's, else those of the first other node by id.
func pickMeasurement(ms []measurement, assigned, self string) (measurement, bool) {
	if len(ms) == 0 {
		return measurement{}, false
	}
	for _, want := range []string{assigned, self} {
		for _, m := range ms {
			if m.node == want {
				return m, true
			}
		}
	}
	return slices.MinFunc(ms, func(a, b measurement) int { return strings.Compare(a.node, b.node) }), true
}

// askMember gets a member's plain /v1/status.
func askMember(ctx context.Context, client peerClient, m coord.MemberStatus) (memberStatus, error) {
	var ms memberStatus
	if m.HTTPAddr == "" {
		return ms, errors.New("no HTTP address registered")
	}
	url := client.scheme + "://" + m.HTTPAddr + "/v1/status"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ms, fmt.Errorf("bad HTTP address %q: %w", m.HTTPAddr, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var ue *neturl.Error
		if ctx.Err() != nil || (errors.As(err, &ue) && ue.Timeout()) {
			return ms, fmt.Errorf("GET %s: no answer within %v", url, memberStatusTimeout)
		}
		if ue != nil {
			err = ue.Err // the URL is in the message already
		}
		return ms, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ms, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMemberStatusBytes)).Decode(&ms); err != nil {
		if ctx.Err() != nil {
			return ms, fmt.Errorf("GET %s: no answer within %v", url, memberStatusTimeout)
		}
		return ms, fmt.Errorf("decoding %s: %w", url, err)
	}
	// The address may have been taken over by another process or node.
	if ms.Node.ID != m.ID {
		return ms, fmt.Errorf("GET %s: answered as node %q", url, ms.Node.ID)
	}
	return ms, nil
}
