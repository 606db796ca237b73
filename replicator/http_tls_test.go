package replicator

import (
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/nodecert"
	"github.com/tributary-dev/tributary/internal/tlstest"
)

// TestServerOverTLS serves the API with a node certificate: clients without a
// certificate (people with tokens) get in, a client certificate of the CA is
// verified and names its node, one of another CA fails the handshake.
func TestServerOverTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster")
	other := tlstest.NewCA(t, "other")
	srv, _ := startServer(t, func() any { return map[string]string{} }, func() error { return nil }, func(s *Server) {
		s.UseTLS(ca.Node("eu", "eu-1").Bundle(t).ServerConfig(false))
		s.Handle("GET /whoami", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			region, id, ok := nodecert.PeerIdentity(r.TLS)
			if !ok {
				io.WriteString(w, "nobody")
				return
			}
			io.WriteString(w, region+"/"+id)
		}))
	})
	get := func(cert *tlstest.Cert) (string, error) {
		cfg := &tls.Config{RootCAs: ca.Pool()}
		if cert != nil {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.TLS, nil }
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get("https://" + srv.Addr() + "/whoami")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for _, tc := range []struct {
		name string
		cert *tlstest.Cert
		want string // "": the handshake fails
	}{
		{"a client without a certificate is served", nil, "nobody"},
		{"a node certificate of the CA names its node", ca.Node("us", "us-1"), "us/us-1"},
		{"a certificate of another CA fails the handshake", other.Node("us", "us-1"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := get(tc.cert)
			switch {
			case tc.want == "" && err == nil:
				t.Errorf("served %q, want a failed handshake", got)
			case tc.want != "" && (err != nil || got != tc.want):
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("plain HTTP is not served", func(t *testing.T) {
		resp, err := http.Get("http://" + srv.Addr() + "/healthz")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Errorf("plain HTTP answered 200")
			}
		}
	})
}
