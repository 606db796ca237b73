package daemon

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/coord"
)

// memberServer plays a member answering its plain /v1/status with st.
func memberServer(t *testing.T, st Status) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/status" || r.URL.RawQuery != "" {
			t.Errorf("member asked for %s: want the plain /v1/status", r.URL)
			http.NotFound(w, r)
			return
		}
		replicator.WriteJSON(w, http.StatusOK, st)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// hangingServer plays a member that accepts the request and never answers.
func hangingServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// closedAddr is an address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func lagOf(n int64) *int64 { return &n }

func task(id, node string) coord.TaskStatus {
	p, _, _ := strings.Cut(id, "/")
	return coord.TaskStatus{ID: id, Pipeline: p, Node: node, State: coord.TaskAssigned}
}

// selfStatus is eu-1's plain status: it runs eu-payments/0; us-payments/0 runs
// on us-1 and fleet-telemetry/0 (Pub/Sub) on cloud-1, whose addresses are given.
func selfStatus(usAddr, cloudAddr string, extra ...coord.MemberStatus) Status {
	local := []replicator.TaskStatus{{ID: "eu-payments/0", Pipeline: "eu-payments", State: "running", Partitions: 3, Lag: 7, Replicated: 100, Quarantined: 1}}
	st := Status{
		Node: NodeInfo{ID: "eu-1", Region: "eu"},
		Cluster: coord.Status{
			NodeID: "eu-1",
			Members: append([]coord.MemberStatus{
				{ID: "eu-1", Region: "eu", HTTPAddr: "127.0.0.1:1", Alive: true},
				{ID: "us-1", Region: "us", HTTPAddr: usAddr, Alive: true},
				{ID: "cloud-1", Region: "cloud", HTTPAddr: cloudAddr, Alive: true},
			}, extra...),
			Tasks: []coord.TaskStatus{task("eu-payments/0", "eu-1"), task("us-payments/0", "us-1"), task("fleet-telemetry/0", "cloud-1")},
		},
		Local: local,
	}
	for _, ct := range st.Cluster.Tasks {
		v := TaskView{TaskStatus: ct}
		if ct.ID == "eu-payments/0" {
			v.Running, v.Partitions, v.Lag, v.Replicated = "running", 3, lagOf(7), 100
		}
		st.Tasks = append(st.Tasks, v)
	}
	return st
}

var demoSources = map[string]string{"eu-payments": sourceKafka, "us-payments": sourceKafka, "fleet-telemetry": sourcePubSub}

func memberPlain(id string, local ...replicator.TaskStatus) Status {
	return Status{Node: NodeInfo{ID: id}, Local: local}
}

func viewOf(t *testing.T, st Status, id string) TaskView {
	t.Helper()
	for _, v := range st.Tasks {
		if v.ID == id {
			return v
		}
	}
	t.Fatalf("task %s missing from %+v", id, st.Tasks)
	return TaskView{}
}

func TestClusterStatus(t *testing.T) {
	us := memberServer(t, memberPlain("us-1",
		replicator.TaskStatus{ID: "us-payments/0", Pipeline: "us-payments", State: "running", Partitions: 6, Lag: 42, Replicated: 5000, Quarantined: 3, Error: "last: broker hiccup"}))
	cloud := memberServer(t, memberPlain("cloud-1",
		replicator.TaskStatus{ID: "fleet-telemetry/0", Pipeline: "fleet-telemetry", State: "running"}))

	t.Run("a member's figures fill in the tasks it runs, marked with its id", func(t *testing.T) {
		st := clusterStatus(context.Background(), plainPeers, selfStatus(us, cloud), demoSources)
		if st.Scope != scopeCluster || len(st.Unreachable) != 0 {
			t.Fatalf("scope %q, unreachable %+v", st.Scope, st.Unreachable)
		}
		v := viewOf(t, st, "us-payments/0")
		if v.MeasuredBy != "us-1" || v.Running != "running" || v.Partitions != 6 || v.Lag == nil || *v.Lag != 42 ||
			v.Replicated != 5000 || v.Quarantined != 3 || v.Error != "last: broker hiccup" || v.Source != sourceKafka {
			t.Errorf("us-payments/0 = %+v (lag %v)", v, v.Lag)
		}
		v = viewOf(t, st, "eu-payments/0")
		if v.MeasuredBy != "eu-1" || v.Lag == nil || *v.Lag != 7 || v.Replicated != 100 || v.Quarantined != 1 {
			t.Errorf("eu-payments/0, run here, = %+v", v)
		}
	})

	t.Run("a Pub/Sub task gets its receiver's figures: held messages as lag", func(t *testing.T) {
		st := clusterStatus(context.Background(), plainPeers, selfStatus(us, cloud), demoSources)
		v := viewOf(t, st, "fleet-telemetry/0")
		if v.MeasuredBy != "cloud-1" || v.Running != "running" || v.Lag == nil || v.Source != sourcePubSub {
			t.Errorf("fleet-telemetry/0 = %+v", v)
		}
	})

	t.Run("a member that refuses connections is unreachable and its tasks keep their assignment without figures", func(t *testing.T) {
		st := clusterStatus(context.Background(), plainPeers, selfStatus(closedAddr(t), cloud), demoSources)
		if len(st.Unreachable) != 1 || st.Unreachable[0].ID != "us-1" || st.Unreachable[0].Error == "" {
			t.Fatalf("unreachable = %+v, want us-1 with its error", st.Unreachable)
		}
		v := viewOf(t, st, "us-payments/0")
		if v.State != coord.TaskAssigned || v.Node != "us-1" || v.MeasuredBy != "" || v.Running != "" || v.Lag != nil {
			t.Errorf("us-payments/0 of an unreachable member = %+v", v)
		}
		if v := viewOf(t, st, "fleet-telemetry/0"); v.MeasuredBy != "cloud-1" {
			t.Errorf("the other members still count: fleet-telemetry/0 = %+v", v)
		}
	})

	t.Run("a member that does not answer is given up within the timeout", func(t *testing.T) {
		start := time.Now()
		st := clusterStatus(context.Background(), plainPeers, selfStatus(hangingServer(t), hangingServer(t)), demoSources)
		took := time.Since(start)
		if took > memberStatusTimeout+500*time.Millisecond {
			t.Errorf("took %v, want about %v (members are asked in parallel)", took, memberStatusTimeout)
		}
		if len(st.Unreachable) != 2 || st.Unreachable[0].ID != "cloud-1" || st.Unreachable[1].ID != "us-1" {
			t.Fatalf("unreachable = %+v, want cloud-1 and us-1 in order", st.Unreachable)
		}
		if e := st.Unreachable[0].Error; !strings.Contains(e, "no answer within") {
			t.Errorf("error %q does not say it timed out", e)
		}
	})

	t.Run("a member answering as another node is unreachable, not trusted", func(t *testing.T) {
		impostor := memberServer(t, memberPlain("us-2",
			replicator.TaskStatus{ID: "us-payments/0", Pipeline: "us-payments", State: "running", Lag: 1}))
		st := clusterStatus(context.Background(), plainPeers, selfStatus(impostor, cloud), demoSources)
		if len(st.Unreachable) != 1 || !strings.Contains(st.Unreachable[0].Error, `answered as node "us-2"`) {
			t.Fatalf("unreachable = %+v", st.Unreachable)
		}
		if v := viewOf(t, st, "us-payments/0"); v.MeasuredBy != "" {
			t.Errorf("us-payments/0 took the impostor's figures: %+v", v)
		}
	})

	t.Run("a member that is not alive is not asked", func(t *testing.T) {
		var asked atomic.Bool
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { asked.Store(true) }))
		defer down.Close()
		st := clusterStatus(context.Background(), plainPeers,
			selfStatus(us, cloud, coord.MemberStatus{ID: "eu-2", Region: "eu", HTTPAddr: down.Listener.Addr().String()}), demoSources)
		if asked.Load() || len(st.Unreachable) != 0 {
			t.Errorf("asked a dead member (%v), unreachable %+v", asked.Load(), st.Unreachable)
		}
	})

	t.Run("an alive member without an HTTP address is unreachable", func(t *testing.T) {
		st := clusterStatus(context.Background(), plainPeers, selfStatus("", cloud), demoSources)
		if len(st.Unreachable) != 1 || st.Unreachable[0].ID != "us-1" {
			t.Fatalf("unreachable = %+v", st.Unreachable)
		}
	})

	t.Run("while a task moves, the node Raft assigns it to wins over the one draining it", func(t *testing.T) {
		// us-1 reports us-payments/0, and so does cloud-1 (say, still draining).
		cloud2 := memberServer(t, memberPlain("cloud-1",
			replicator.TaskStatus{ID: "us-payments/0", Pipeline: "us-payments", State: "running", Lag: 999}))
		st := clusterStatus(context.Background(), plainPeers, selfStatus(us, cloud2), demoSources)
		if v := viewOf(t, st, "us-payments/0"); v.MeasuredBy != "us-1" || *v.Lag != 42 {
			t.Errorf("us-payments/0 = %+v", v)
		}
		// The assigned node does not run it (yet): the other node's figures, marked.
		st = clusterStatus(context.Background(), plainPeers, selfStatus(memberServer(t, memberPlain("us-1")), cloud2), demoSources)
		if v := viewOf(t, st, "us-payments/0"); v.MeasuredBy != "cloud-1" || v.Node != "us-1" || *v.Lag != 999 {
			t.Errorf("us-payments/0 = %+v", v)
		}
	})
}

func TestStatusHandler(t *testing.T) {
	us := memberServer(t, memberPlain("us-1", replicator.TaskStatus{ID: "us-payments/0", Pipeline: "us-payments", State: "running", Lag: 42}))
	cloud := memberServer(t, memberPlain("cloud-1"))
	local := func() Status { return selfStatus(us, cloud) }
	h := statusHandler(local, plainPeers, demoSources)
	get := func(target string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		return rec.Code, rec.Body.String()
	}

	t.Run("the plain status is this node's view, without the cluster fields", func(t *testing.T) {
		code, body := get("/v1/status")
		if code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
		want, _ := json.MarshalIndent(local(), "", "  ")
		if strings.TrimSpace(body) != string(want) {
			t.Errorf("plain status differs from the node's own:\n%s\nwant\n%s", body, want)
		}
		for _, key := range []string{`"scope"`, `"unreachable"`, `"measured_by"`, `"source": "kafka"`, `"source": "pubsub"`} {
			if strings.Contains(body, key) {
				t.Errorf("plain status has the cluster view's %s", key)
			}
		}
		if code2, body2 := get("/v1/status?scope=node"); code2 != code || body2 != body {
			t.Errorf("?scope=node differs from the plain status")
		}
	})

	t.Run("scope=cluster has the figures of the other members' tasks", func(t *testing.T) {
		code, body := get("/v1/status?scope=cluster")
		var st Status
		if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
			t.Fatalf("%d %v %s", code, err, body)
		}
		if v := viewOf(t, st, "us-payments/0"); st.Scope != scopeCluster || v.MeasuredBy != "us-1" || v.Lag == nil || *v.Lag != 42 {
			t.Errorf("us-payments/0 = %+v", v)
		}
	})

	t.Run("an unknown scope is refused", func(t *testing.T) {
		if code, body := get("/v1/status?scope=galaxy"); code != http.StatusBadRequest || !strings.Contains(body, `scope "galaxy"`) {
			t.Errorf("%d %s", code, body)
		}
	})
}

// plainPeers asks members over plain HTTP, as nodes without TLS do.
var plainPeers = peerClient{Client: http.DefaultClient, scheme: "http"}
