package nodecert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Scheme is the URI scheme of a node identity in a certificate's SANs.
const Scheme = "tributary"

// URI returns the identity URI of a node: tributary://<region>/<id>.
func URI(region, id string) *url.URL {
	return &url.URL{Scheme: Scheme, Host: region, Path: "/" + id}
}

// Identity returns the region and node id named by the one tributary:// URI
// among c's SANs. A certificate with none, or with more than one, names no node.
func Identity(c *x509.Certificate) (region, id string, err error) {
	var found []*url.URL
	for _, u := range c.URIs {
		if u.Scheme == Scheme {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return "", "", errors.New("the certificate has no tributary://<region>/<node-id> URI")
	case 1:
	default:
		return "", "", fmt.Errorf("the certificate has %d tributary:// URIs, want one", len(found))
	}
	u := found[0]
	region, id = u.Host, strings.TrimPrefix(u.Path, "/")
	if region == "" || id == "" || strings.Contains(id, "/") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("certificate URI %q: want tributary://<region>/<node-id>", u.String())
	}
	return region, id, nil
}

// Files names the cluster CA, the node certificate and its key (PEM files).
type Files struct {
	CA, Cert, Key string
}

// Bundle is a loaded node certificate with the cluster CA and the identity
// the certificate names.
type Bundle struct {
	// Pool holds the cluster CA: the only issuer of node certificates.
	Pool *x509.CertPool
	// Cert is the node's certificate chain and key, for TLS.
	Cert tls.Certificate
	// Region and ID come from the certificate's tributary:// URI.
	Region, ID string
}

// Load reads and checks f: the key file must not be readable by group or
// others, the CA file must hold at least one certificate, the certificate must
// match the key, chain to the CA and name a node with a tributary:// URI.
// Errors name the file; they never include key material.
func Load(f Files) (*Bundle, error) {
	if err := checkKeyMode(f.Key); err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if n := addPEM(pool, caPEM); n == 0 {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", f.CA)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		// crypto/tls names neither file nor key contents.
		return nil, fmt.Errorf("loading certificate %s with key %s: %w", f.Cert, f.Key, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parsing certificate %s: %w", f.Cert, err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("certificate %s is not issued by the CA in %s: %w", f.Cert, f.CA, err)
	}
	region, id, err := Identity(leaf)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", f.Cert, err)
	}
	return &Bundle{Pool: pool, Cert: cert, Region: region, ID: id}, nil
}

func addPEM(pool *x509.CertPool, b []byte) int {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return n
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			continue
		}
		pool.AddCert(c)
		n++
	}
}

// checkKeyMode refuses a key file that group or others may read or write.
func checkKeyMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("key file %s has mode %#o: it must not be accessible to group or others (chmod 600)", path, perm)
	}
	return nil
}

// ServerConfig is the TLS configuration of a node's listener. With
// requireClient, the peer must present a certificate of the cluster CA (Raft);
// without, one is verified when given (the HTTP API, which people with tokens
// reach too).
func (b *Bundle) ServerConfig(requireClient bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClient {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{b.Cert},
		ClientCAs:    b.Pool,
		ClientAuth:   auth,
	}
}

// ClientConfig is the TLS configuration of a node calling another: it
// presents the node certificate and accepts a server whose certificate chains
// to the cluster CA and names a node. Host names are not checked: nodes are
// reached at the addresses they advertise, which their certificates need not
// list; the tributary:// URI is the identity.
func (b *Bundle) ClientConfig() *tls.Config {
	pool := b.Pool
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{b.Cert},
		InsecureSkipVerify: true, // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, _, err := VerifyPeer(cs, pool, x509.ExtKeyUsageServerAuth)
			return err
		},
	}
}

// VerifyPeer checks the peer certificates of cs against pool for usage and
// returns the node they name.
func VerifyPeer(cs tls.ConnectionState, pool *x509.CertPool, usage x509.ExtKeyUsage) (region, id string, err error) {
	if len(cs.PeerCertificates) == 0 {
		return "", "", errors.New("the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", "", fmt.Errorf("peer certificate: %w", err)
	}
	region, id, err = Identity(leaf)
	if err != nil {
		return "", "", fmt.Errorf("peer certificate: %w", err)
	}
	return region, id, nil
}

// PeerIdentity returns the node named by the verified client certificate of a
// server-side connection, ok false when the peer presented none (or it did
// not verify, which the handshake already refused).
func PeerIdentity(cs *tls.ConnectionState) (region, id string, ok bool) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", "", false
	}
	region, id, err := Identity(cs.VerifiedChains[0][0])
	return region, id, err == nil
}
