package registry

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tributary-dev/tributary/config"
)

// serverCert makes a CA and a certificate it signed for 127.0.0.1, and writes
// the CA, certificate and key files (the key with keyMode).
func serverCert(t *testing.T, dir string, keyMode os.FileMode) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test registry CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "registry"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile = writePEM(t, dir, "registry-key.pem", "PRIVATE KEY", keyDER)
	if err := os.Chmod(keyFile, keyMode); err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER), writePEM(t, dir, "registry.pem", "CERTIFICATE", der), keyFile
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeHTTPSWithBasicAuth runs the registry as `tributary registry serve
// --tls-cert --tls-key --basic-auth-file` does and talks to it with the
// registry client over HTTPS with basic auth.
func TestServeHTTPSWithBasicAuth(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := serverCert(t, dir, 0o600)
	const bcryptPass, shaPass = "Bcrypt-Pa55-q7", "Sha-Pa55-z9-long-and-random"
	bh, err := bcrypt.GenerateFromPassword([]byte(bcryptPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(shaPass))
	authFile := filepath.Join(dir, "users")
	if err := os.WriteFile(authFile, []byte("# registry users\nalice:"+string(bh)+"\n\nbob:sha256:"+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := LoadBasicAuth(authFile)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuf
	srv, err := NewServer(ServerOptions{BasicAuth: auth, TLSCertFile: certFile, TLSKeyFile: keyFile, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	url := "https://" + ln.Addr().String()
	client := func(t *testing.T, user, pass string) *Client {
		c, err := NewClient(&config.SchemaRegistry{URL: url, CAFile: caFile, Username: user, Password: config.Secret(pass)}, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}

	var id int
	t.Run("a bcrypt user registers and reads a schema", func(t *testing.T) {
		c := client(t, "alice", bcryptPass)
		if id, err = c.Register(ctx, "orders-value", &Schema{Type: Avro, Text: v1}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.SchemaByID(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a sha256 user reads it", func(t *testing.T) {
		if _, err := client(t, "bob", shaPass).SchemaByID(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct{ name, user, pass string }{
		{"a wrong password", "alice", "guess-" + bcryptPass},
		{"an unknown user", "mallory", bcryptPass},
		{"another user's password", "bob", bcryptPass},
		{"no credentials", "", ""},
	} {
		t.Run(tc.name+" is 401", func(t *testing.T) {
			_, err := client(t, tc.user, tc.pass).SchemaByID(ctx, id+1000)
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
				t.Fatalf("got %v, want 401", err)
			}
			if tc.pass != "" && strings.Contains(err.Error(), tc.pass) {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
	t.Run("plain HTTP is not served", func(t *testing.T) {
		resp, err := http.Get("http://" + ln.Addr().String() + "/subjects")
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatal("plain HTTP answered 200")
			}
		}
	})
	if s := logs.String(); strings.Contains(s, bcryptPass) || strings.Contains(s, shaPass) || !strings.Contains(s, "registry request denied") {
		t.Errorf("logs show a password or no denial:\n%s", s)
	}
}

func TestServeRefusesUnsafeSecretFiles(t *testing.T) {
	dir := t.TempDir()
	_, certFile, keyFile := serverCert(t, dir, 0o644)
	_, err := NewServer(ServerOptions{TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err == nil || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "0644") {
		t.Errorf("a key file readable by others: %v, want an error naming the file and its mode", err)
	}
	_, err = NewClient(&config.SchemaRegistry{URL: "https://127.0.0.1:1", CertFile: certFile, KeyFile: keyFile}, ClientOptions{})
	if err == nil || !strings.Contains(err.Error(), "schema_registry.key_file "+keyFile+" has mode 0644") {
		t.Errorf("a client key file readable by others: %v, want an error naming the file and its mode", err)
	}
	if _, err := NewServer(ServerOptions{TLSCertFile: certFile}); err == nil {
		t.Error("a certificate without a key was accepted")
	}
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"readable by others", "alice:sha256:" + strings.Repeat("ab", 32) + "\n", 0o644, "mode 0644"},
		{"a plain password", "alice:Plain-Pa55word\n", 0o600, "not plain text"},
		{"a malformed bcrypt hash", "alice:$2a$10$short\n", 0o600, "not a valid bcrypt hash"},
		{"a short sha256", "alice:sha256:abcd\n", 0o600, "64 hex digits"},
		{"no user", "# nobody\n", 0o600, "lists no user"},
		{"a line without a colon", "alice\n", 0o600, "users:1: want user:hash"},
	} {
		t.Run("a basic-auth file with "+tc.name+" is refused", func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "users")
			if err := os.WriteFile(p, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadBasicAuth(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadBasicAuth = %v, want %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "Plain-Pa55word") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}
