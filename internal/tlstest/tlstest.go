// Package tlstest makes certificates at test time: a cluster CA and node
// certificates carrying tributary://<region>/<node-id> URIs, written as PEM
// files with the modes a node accepts. Tests only.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/nodecert"
)

// CA is a certificate authority made for one test.
type CA struct {
	t    testing.TB
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// File is the CA certificate as a PEM file.
	File string
}

// NewCA makes a CA named name and writes its certificate under t.TempDir().
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := &CA{t: t, dir: dir, cert: cert, key: key, File: filepath.Join(dir, name+"-ca.pem")}
	writePEM(t, ca.File, "CERTIFICATE", der, 0o644)
	return ca
}

// Cert is a certificate the CA issued, with its files.
type Cert struct {
	// Files are the CA, certificate and key files (the key with mode 0600).
	Files nodecert.Files
	// TLS is the certificate and key, for a client or server made in the test.
	TLS tls.Certificate
}

// Bundle loads c as a node would.
func (c *Cert) Bundle(t testing.TB) *nodecert.Bundle {
	t.Helper()
	b, err := nodecert.Load(c.Files)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Node issues a node certificate naming tributary://<region>/<id>, valid for
// both client and server use and for 127.0.0.1 and localhost.
func (ca *CA) Node(region, id string) *Cert {
	return ca.Issue(id+"."+region, nodecert.URI(region, id))
}

// Issue issues a certificate with the given common name and URIs (none: a
// certificate that names no node).
func (ca *CA) Issue(name string, uris ...*url.URL) *Cert {
	t := ca.t
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         uris,
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cert{Files: nodecert.Files{
		CA:   ca.File,
		Cert: filepath.Join(ca.dir, name+".pem"),
		Key:  filepath.Join(ca.dir, name+"-key.pem"),
	}}
	writePEM(t, c.Files.Cert, "CERTIFICATE", der, 0o644)
	writePEM(t, c.Files.Key, "PRIVATE KEY", kder, 0o600)
	if c.TLS, err = tls.LoadX509KeyPair(c.Files.Cert, c.Files.Key); err != nil {
		t.Fatal(err)
	}
	return c
}

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}
