package nodecert_test

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/tributary-dev/tributary/internal/nodecert"
	"github.com/tributary-dev/tributary/internal/tlstest"
)

func TestLoad(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster")
	other := tlstest.NewCA(t, "other")

	t.Run("a node certificate of the CA gives its region and id", func(t *testing.T) {
		b, err := nodecert.Load(ca.Node("eu", "eu-1").Files)
		if err != nil {
			t.Fatal(err)
		}
		if b.Region != "eu" || b.ID != "eu-1" {
			t.Errorf("identity = %s/%s, want eu/eu-1", b.Region, b.ID)
		}
	})

	loose := ca.Node("eu", "eu-2")
	if err := os.Chmod(loose.Files.Key, 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := other.Node("eu", "eu-3")
	foreign.Files.CA = ca.File
	twoURIs := ca.Issue("two", nodecert.URI("eu", "a"), nodecert.URI("us", "b"))
	badURI := ca.Issue("bad", &url.URL{Scheme: "tributary", Host: "eu"})
	for _, tc := range []struct {
		name  string
		files nodecert.Files
		want  string
	}{
		{"a key file readable by others is refused naming its mode", loose.Files, "has mode 0644"},
		{"a certificate of another CA is refused", foreign.Files, "is not issued by the CA"},
		{"a certificate without a node URI is refused", ca.Issue("plain").Files, "no tributary://<region>/<node-id> URI"},
		{"a certificate with two node URIs is refused", twoURIs.Files, "2 tributary:// URIs"},
		{"a node URI without an id is refused", badURI.Files, "want tributary://<region>/<node-id>"},
		{"a missing CA file is refused", nodecert.Files{CA: ca.File + ".nope", Cert: loose.Files.Cert, Key: ca.Node("eu", "x").Files.Key}, "reading CA file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := nodecert.Load(tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error shows key material: %v", err)
			}
		})
	}
}
