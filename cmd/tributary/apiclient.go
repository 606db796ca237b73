package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/tributary-dev/tributary/internal/auth"
)

// apiFlags are the flags of the commands that call a node's HTTP API.
type apiFlags struct {
	tokenFile, caFile string
}

func (f *apiFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token to send (readable by its owner only); needed when the node has security.tokens_file")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM file of the CA that signed the node's certificate, for https:// addresses")
}

// client returns an HTTP client for the node at base (a URL): it sends the
// token of --token-file on every request and trusts the CA of --ca-file. A
// token never leaves the machine in clear text: with one, base must be
// https:// or a loopback address.
func (f *apiFlags) client(base string, timeout time.Duration) (*http.Client, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, usageErr("bad address %q: want a URL such as http://127.0.0.1:7480", base)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if f.caFile != "" {
		if u.Scheme != "https" {
			return nil, usageErr("--ca-file is for https:// addresses, got %s", base)
		}
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, usageErr("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErr("--ca-file %s: no PEM certificate in it", f.caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = tr
	if f.tokenFile != "" {
		tok, err := auth.ReadTokenFile(f.tokenFile)
		if err != nil {
			return nil, usageErr("--token-file: %w", err)
		}
		if u.Scheme != "https" && !loopbackHost(u.Hostname()) {
			return nil, usageErr("refusing to send the token of --token-file in clear text to %s: use an https:// address", base)
		}
		rt = &bearerTransport{base: tr, token: tok}
	}
	return &http.Client{Timeout: timeout, Transport: rt}, nil
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// bearerTransport sends a bearer token on every request.
type bearerTransport struct {
	base  http.RoundTripper
	token string
}

func (t *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+t.token)
	return t.base.RoundTrip(r)
}

// String keeps the token out of any %v of the transport.
func (t *bearerTransport) String() string { return fmt.Sprintf("bearer token for %T", t.base) }

// baseURL turns --addr into a URL without a final slash.
func baseURL(addr string) string {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}
