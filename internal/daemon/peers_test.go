package daemon

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/tlstest"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/coord"
)

// tlsMember plays a member whose HTTP API is served with its node
// certificate and requires a client certificate of the CA; it records who
// asked.
func tlsMember(t *testing.T, cert *tlstest.Cert, st Status) (addr string, askedBy func() []string) {
	t.Helper()
	var mu sync.Mutex
	var who []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		region, id, ok := coord.PeerIdentity(r)
		mu.Lock()
		who = append(who, region+"/"+id)
		mu.Unlock()
		if !ok {
			http.Error(w, "node certificate required", http.StatusForbidden)
			return
		}
		replicator.WriteJSON(w, http.StatusOK, st)
	}))
	srv.TLS = cert.Bundle(t).ServerConfig(true)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), who...)
	}
}

func TestClusterStatusOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster")
	other := tlstest.NewCA(t, "other")
	usAddr, askedBy := tlsMember(t, ca.Node("us", "us-1"), memberPlain("us-1",
		replicator.TaskStatus{ID: "us-payments/0", Pipeline: "us-payments", State: "running", Lag: 42}))
	cloudAddr, _ := tlsMember(t, other.Node("cloud", "cloud-1"), memberPlain("cloud-1"))

	peers := newPeerClient(ca.Node("eu", "eu-1").Bundle(t), "eu-1", "127.0.0.1:7400", memberStatusTimeout)
	st := clusterStatus(context.Background(), peers, selfStatus(usAddr, cloudAddr), demoSources)

	t.Run("the fan-out presents this node's certificate over https", func(t *testing.T) {
		if got := askedBy(); len(got) != 1 || got[0] != "eu/eu-1" {
			t.Errorf("us-1 was asked by %v, want eu/eu-1", got)
		}
		if v := viewOf(t, st, "us-payments/0"); v.MeasuredBy != "us-1" || v.Lag == nil || *v.Lag != 42 {
			t.Errorf("us-payments/0 = %+v", v)
		}
	})
	t.Run("a member whose certificate is of another CA is unreachable, not trusted", func(t *testing.T) {
		if len(st.Unreachable) != 1 || st.Unreachable[0].ID != "cloud-1" || !strings.Contains(st.Unreachable[0].Error, "certificate") {
			t.Errorf("unreachable = %+v, want cloud-1 refused for its certificate", st.Unreachable)
		}
	})
}

// TestCoordConfigCarriesTheCertificate checks the wiring from security.tls
// and cluster.voters to the Raft node: the bundle loaded at start-up names
// this node, and a certificate replaced since `config check` by one naming
// another node stops the start.
func TestCoordConfigCarriesTheCertificate(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster")
	cert := ca.Node("eu", "eu-1")
	cfg := &config.Config{
		Node:     config.Node{ID: "eu-1", Region: "eu", RaftAddr: "127.0.0.1:7400", HTTPAddr: "127.0.0.1:7480", DataDir: t.TempDir()},
		Cluster:  config.Cluster{Voters: 5},
		Security: config.Security{TLS: &config.TLS{CAFile: cert.Files.CA, CertFile: cert.Files.Cert, KeyFile: cert.Files.Key}},
	}
	certs, err := loadCerts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := coordConfig(cfg, "127.0.0.1:7480", certs)
	if err != nil {
		t.Fatal(err)
	}
	if cc.TLS == nil || cc.TLS.ID != "eu-1" || cc.TLS.Region != "eu" || cc.Voters != 5 {
		t.Errorf("coord config TLS %+v, voters %d", cc.TLS, cc.Voters)
	}
	us := ca.Node("us", "eu-1")
	cfg.Security.TLS.CertFile, cfg.Security.TLS.KeyFile = us.Files.Cert, us.Files.Key
	if _, err := loadCerts(cfg); err == nil || !strings.Contains(err.Error(), `names node "eu-1" in region "us", but node.id is "eu-1" and node.region is "eu"`) {
		t.Errorf("loadCerts with another region's certificate = %v", err)
	}
	cfg.Security.TLS = nil
	if certs, err := loadCerts(cfg); certs != nil || err != nil {
		t.Errorf("loadCerts without security.tls = %v, %v; want nil, nil", certs, err)
	}
}
