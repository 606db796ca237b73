package governance

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
)

// hashKey is the HMAC key of the tests' hash rules.
var hashKey = []byte("governance-test-key-not-for-production")

// pseudonym is what a hash rule makes of a string: the hex HMAC-SHA256 of it.
func pseudonym(s string) string {
	m := hmac.New(sha256.New, hashKey)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// testRegistry is the embedded schema registry, reached over HTTP through a
// registry.Client as a node reaches its target's registry.
type testRegistry struct {
	srv    *httptest.Server
	client *registry.Client
}

func newTestRegistry(t testing.TB, opts registry.ServerOptions) *testRegistry {
	t.Helper()
	s, err := registry.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, err := registry.NewClient(&config.SchemaRegistry{URL: srv.URL}, registry.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &testRegistry{srv: srv, client: c}
}

// register registers the schema in testdata/file under subject and returns its id.
func (r *testRegistry) register(t testing.TB, subject string, typ registry.SchemaType, file string) int {
	t.Helper()
	id, err := r.client.Register(context.Background(), subject, &registry.Schema{Type: typ, Text: readTestdata(t, file)})
	if err != nil {
		t.Fatalf("registering %s under %s: %v", file, subject, err)
	}
	return id
}

// down returns a client of a registry that no longer answers: its calls fail
// as in an outage.
func down(t testing.TB) *registry.Client {
	t.Helper()
	r := newTestRegistry(t, registry.ServerOptions{})
	r.srv.Close()
	return r.client
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// policies is the bundle of testdata/policies.
func policies(t testing.TB) *policy.Set {
	t.Helper()
	set, err := policy.LoadDir(filepath.Join("testdata", "policies"))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// newMasking returns a Masking with the bundle of testdata/policies active and
// a fresh metrics registry.
func newMasking(t testing.TB, schemas *registry.Client) (*Masking, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := NewMasking(MaskingOptions{Schemas: schemas, WaitForBundle: true, HashKey: hashKey, Registerer: reg})
	g.Activate(policies(t))
	return g, reg
}

// wantReject fails the test unless err is a *RejectError with reason, and
// returns it.
func wantReject(t *testing.T, err error, reason string) *RejectError {
	t.Helper()
	re, ok := AsReject(err)
	if !ok || re.Reason != reason {
		t.Fatalf("err = %v, want a rejection %q", err, reason)
	}
	return re
}

// wantOutage fails the test unless err is an error that is not a rejection:
// the caller retries the record and quarantines nothing.
func wantOutage(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("no error, want a registry outage")
	}
	if re, ok := AsReject(err); ok {
		t.Fatalf("err = %v: a rejection, want an outage the caller retries", re)
	}
	if errors.Is(err, ErrNoBundle) {
		t.Fatalf("err = %v, want a registry outage", err)
	}
}

// header returns the value of a record's header, and whether it has it.
func header(rec *Record, key string) (string, bool) {
	for _, h := range rec.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}
