package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/internal/tlstest"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
	"github.com/tributary-dev/tributary/test/harness"
)

// secrets are the recognisable secret values of TestSecurity's node configs.
type secrets struct {
	sasl, registry, hashKey string
	tokens                  map[string]string // role → token
}

// all lists every secret value, each with what it is.
func (s secrets) all() map[string]string {
	m := map[string]string{s.sasl: "the SASL password", s.registry: "the registry password", s.hashKey: "the hash key"}
	for role, tok := range s.tokens {
		m[tok] = "the " + role + " token"
	}
	return m
}

// leaked returns what of s appears in text.
func (s secrets) leaked(text string) []string {
	var out []string
	for v, what := range s.all() {
		if strings.Contains(text, v) {
			out = append(out, what)
		}
	}
	slices.Sort(out)
	return out
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// secClient is an HTTPS client trusting ca that presents cert (none: nil).
func secClient(ca *tlstest.CA, cert *tlstest.Cert) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(ca, cert), DisableKeepAlives: true}}
}

// clientTLS trusts ca and presents cert whatever CAs the server asks for, as
// an attacker would (crypto/tls keeps a certificate of another CA to itself).
func clientTLS(ca *tlstest.CA, cert *tlstest.Cert) *tls.Config {
	cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert.TLS, nil }
	}
	return cfg
}

// call sends one request and returns the status code and body; err is a
// transport error (a failed TLS handshake, say).
func call(client *http.Client, method, url, token string, body any) (int, string, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, "", err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestSecurity runs three nodes with security.tls and security.tokens_file,
// as their binary, and attacks them from the network: rogue joins, calls
// without or with too weak tokens, forged policy bundles; and looks for the
// config's secrets in everything the nodes say.
func TestSecurity(t *testing.T) {
	source, target := harness.Brokers(t)
	if binPath == "" {
		t.Skip("tributary binary not built: real brokers not configured")
	}
	start := time.Now()

	// Certificates made now: the cluster CA with eu-1..3, a certificate of
	// that CA naming another region, one of another CA.
	ca := tlstest.NewCA(t, "cluster")
	certs := map[string]*tlstest.Cert{}
	for _, id := range []string{"eu-1", "eu-2", "eu-3"} {
		certs[id] = ca.Node("eu", id)
	}
	wrongRegion := ca.Node("us", "eu-4")
	foreign := tlstest.NewCA(t, "other").Node("eu", "eu-2")

	// The secrets: tokens in a 0600 file by their SHA-256, a SASL password
	// from the environment, a registry password, the hash key.
	sec := secrets{
		sasl:     "sasl-pw-" + randomHex(t, 12),
		registry: "registry-pw-" + randomHex(t, 12),
		hashKey:  "hash-key-" + randomHex(t, 16),
		tokens:   map[string]string{},
	}
	secDir := t.TempDir()
	var lines []string
	for _, role := range []string{"read", "operate", "admin"} {
		tok := "tok-" + role + "-" + randomHex(t, 16)
		sec.tokens[role] = tok
		sum := sha256.Sum256([]byte(tok))
		lines = append(lines, fmt.Sprintf("- {name: sec-%s, role: %s, sha256: %x}", role, role, sum))
	}
	tokensFile := filepath.Join(secDir, "tokens.yaml")
	writePrivate(t, tokensFile, strings.Join(lines, "\n")+"\n")
	readTokenFile := filepath.Join(secDir, "read.token")
	writePrivate(t, readTokenFile, sec.tokens["read"]+"\n")
	t.Setenv("SEC_E2E_SASL_PASSWORD", sec.sasl)
	t.Setenv("TRIBUTARY_HASH_KEY", sec.hashKey)

	// A registry that wants the password, for the target cluster.
	authFile := filepath.Join(secDir, "registry-users")
	regSum := sha256.Sum256([]byte(sec.registry))
	writePrivate(t, authFile, fmt.Sprintf("svc-tributary:sha256:%x\n", regSum))
	regAddr := startAuthRegistry(t, authFile)

	topic := harness.UniqueName(t, "sec")
	createTopic(t, source, topic, 3, nil)
	polDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(polDir, "payments.yaml"), []byte(policyFile(1, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	// regional's SASL settings go to librdkafka, which ignores them on the
	// broker's plaintext listener; vault's cluster is in no pipeline.
	clusters := fmt.Sprintf(`  regional:
    region: eu
    bootstrap: "%s"
    properties: {sasl.username: svc-regional, sasl.password: "${SEC_E2E_SASL_PASSWORD}"}
  central:
    region: cloud
    bootstrap: "%s"
    schema_registry: {url: "http://%s", username: svc-tributary, password: "%s"}
  vault:
    region: eu
    bootstrap: "127.0.0.1:1"
    properties: {security.protocol: SASL_SSL, sasl.mechanism: SCRAM-SHA-512, sasl.username: svc-vault, sasl.password: "${SEC_E2E_SASL_PASSWORD}"}
policies: %s`, source, target, regAddr, sec.registry, polDir)
	pipelines := fmt.Sprintf(`  - name: sec-mirror
    source: {kafka: regional}
    topics: {include: ['%s']}
    format: bytes
    governance: none
    tasks: 3
`, topic)
	readClient := secClient(ca, nil)
	specs := []nodeSpec{{"eu-1", "eu"}, {"eu-2", "eu"}, {"eu-3", "eu"}}
	c := newClusterWith(t, specs, clusters, pipelines, clusterOpts{
		// Handshakes on a loaded machine: a 300ms lease made leaders step down
		// in the coord TLS test.
		timeout: "500ms",
		extra: func(s nodeSpec) string {
			f := certs[s.id].Files
			return fmt.Sprintf("security:\n  tls: {ca_file: %s, cert_file: %s, key_file: %s}\n  tokens_file: %s\n", f.CA, f.Cert, f.Key, tokensFile)
		},
		scheme: "https", client: readClient, token: sec.tokens["read"],
	})
	c.startAll()

	// A leader over HTTPS, the same on every node, with three members.
	var leader, follower string
	var term uint64
	harness.Eventually(t, 30*time.Second, "one leader known to all three nodes", func() error {
		ids := map[string]bool{}
		for _, s := range specs {
			st, err := c.status(s.id)
			if err != nil {
				return err
			}
			if st.Security != "tls" {
				return fmt.Errorf("%s says security %q, want tls", s.id, st.Security)
			}
			if len(st.Cluster.Members) != 3 {
				return fmt.Errorf("%s knows %d members", s.id, len(st.Cluster.Members))
			}
			ids[st.Cluster.Leader.ID] = true
			term = st.Cluster.Term
		}
		if len(ids) != 1 || ids[""] {
			return fmt.Errorf("leaders %v", ids)
		}
		for id := range ids {
			leader = id
		}
		return nil
	})
	for _, s := range specs {
		if s.id != leader {
			follower = s.id
			break
		}
	}
	t.Logf("leader %s (term %d), follower %s, after %s", leader, term, follower, time.Since(start).Round(time.Millisecond))
	url := func(id, path string) string { return "https://" + c.http[id] + path }

	// intact checks that the cluster still has exactly its three members at
	// their addresses, and its leader.
	intact := func(t *testing.T, after string) {
		t.Helper()
		for _, s := range specs {
			st, err := c.status(s.id)
			if err != nil {
				t.Fatalf("after %s: %v", after, err)
			}
			var got []string
			for _, m := range st.Cluster.Members {
				got = append(got, m.ID+"@"+m.RaftAddr+"/"+m.HTTPAddr+"/"+m.Region)
				if want := c.raft[m.ID]; want == "" || m.RaftAddr != want || m.HTTPAddr != c.http[m.ID] || m.Region != "eu" {
					t.Errorf("after %s, %s lists member %s at %s (http %s, region %s)", after, s.id, m.ID, m.RaftAddr, m.HTTPAddr, m.Region)
				}
			}
			if len(got) != 3 {
				t.Errorf("after %s, %s lists members %v, want eu-1, eu-2, eu-3", after, s.id, got)
			}
			if st.Cluster.Leader.ID != leader || st.Cluster.Term != term {
				t.Errorf("after %s, %s has leader %s in term %d, want %s in term %d", after, s.id, st.Cluster.Leader.ID, st.Cluster.Term, leader, term)
			}
		}
	}

	t.Run("rogue joins are refused", func(t *testing.T) {
		joinAs := func(id, region string) map[string]string {
			return map[string]string{"id": id, "region": region, "raft_addr": freeAddr(t), "http_addr": freeAddr(t)}
		}
		for _, to := range []string{leader, follower} {
			for _, tc := range []struct {
				name      string
				cert      *tlstest.Cert
				token     string
				body      map[string]string
				code      int  // the answer, when the handshake succeeds
				handshake bool // the TLS handshake must fail
			}{
				{"no client certificate, no token", nil, "", joinAs("eu-4", "eu"), http.StatusUnauthorized, false},
				{"no client certificate, an admin token", nil, sec.tokens["admin"], joinAs("eu-4", "eu"), http.StatusForbidden, false},
				{"a certificate of another CA", foreign, "", joinAs("eu-2", "eu"), 0, true},
				{"a certificate of another CA, an admin token", foreign, sec.tokens["admin"], joinAs("eu-4", "eu"), 0, true},
				{"a certificate naming region us, joining as eu", wrongRegion, "", joinAs("eu-4", "eu"), http.StatusForbidden, false},
				{"eu-2's certificate claiming to be eu-9", certs["eu-2"], "", joinAs("eu-9", "eu"), http.StatusForbidden, false},
				{"a follower's certificate reusing the leader's id", certs[follower], "", joinAs(leader, "eu"), http.StatusForbidden, false},
				{"the leader's id without a certificate, an admin token", nil, sec.tokens["admin"], joinAs(leader, "eu"), http.StatusForbidden, false},
				// Even the leader's own key cannot move the leader.
				{"the leader's certificate with another address", certs[leader], "", joinAs(leader, "eu"), http.StatusBadRequest, false},
			} {
				t.Run(tc.name+" to the "+map[bool]string{true: "leader", false: "follower"}[to == leader], func(t *testing.T) {
					code, body, err := call(secClient(ca, tc.cert), http.MethodPost, url(to, "/v1/cluster/join"), tc.token, tc.body)
					switch {
					case tc.handshake && err == nil:
						t.Fatalf("the TLS handshake succeeded: %d %s", code, body)
					case tc.handshake && !strings.Contains(err.Error(), "tls"):
						t.Fatalf("refused, but not by TLS: %v", err)
					case tc.handshake:
						t.Logf("refused by TLS: %v", err)
					case err != nil:
						t.Fatalf("%v", err)
					case code != tc.code:
						t.Fatalf("answer %d %s, want %d", code, strings.TrimSpace(body), tc.code)
					default:
						t.Logf("refused: %d %s", code, strings.TrimSpace(body))
					}
				})
			}
		}
		// Raft's port: mutual TLS, so no certificate or a foreign one fails
		// the handshake; eu-2's certificate passes it (the control).
		for _, tc := range []struct {
			name string
			cert *tlstest.Cert
		}{{"no certificate", nil}, {"a certificate of another CA", foreign}, {"eu-2's certificate", certs["eu-2"]}} {
			cfg := clientTLS(ca, tc.cert)
			cfg.ServerName = "localhost"
			err := raftHandshake(c.raft[leader], cfg)
			switch {
			case tc.cert == certs["eu-2"] && err != nil:
				t.Errorf("raft port of %s refuses a node certificate: %v", leader, err)
			case tc.cert != certs["eu-2"] && err == nil:
				t.Errorf("raft port of %s: a client with %s completed the handshake", leader, tc.name)
			case tc.cert != certs["eu-2"] && !strings.Contains(err.Error(), "tls"):
				t.Errorf("raft port of %s with %s: refused, but not by TLS: %v", leader, tc.name, err)
			case err != nil:
				t.Logf("raft port with %s: %v", tc.name, err)
			}
		}
		intact(t, "the rogue joins")
	})

	t.Run("every endpoint wants its role", func(t *testing.T) {
		none, read, operate, admin := "", sec.tokens["read"], sec.tokens["operate"], sec.tokens["admin"]
		bogus := "tok-admin-" + randomHex(t, 16)
		plain := secClient(ca, nil)
		eu2 := certs["eu-2"]
		rejoin := map[string]string{"id": "eu-2", "region": "eu", "raft_addr": c.raft["eu-2"], "http_addr": c.http["eu-2"]}
		for _, tc := range []struct {
			name, method, path string
			to                 string
			token              string
			cert               *tlstest.Cert
			body               any
			code               int
		}{
			{"status without a token", "GET", "/v1/status", follower, none, nil, nil, 401},
			{"status with an unknown token", "GET", "/v1/status", follower, bogus, nil, nil, 401},
			{"status with read", "GET", "/v1/status", follower, read, nil, nil, 200},
			{"cluster status without a token", "GET", "/v1/cluster", leader, none, nil, nil, 401},
			{"cluster status with read", "GET", "/v1/cluster", leader, read, nil, nil, 200},
			{"offsets translate without a token", "GET", "/v1/offsets/translate?group=g", leader, none, nil, nil, 401},
			{"reload without a token", "POST", "/v1/policies/reload", follower, none, nil, nil, 401},
			{"reload with read", "POST", "/v1/policies/reload", follower, read, nil, nil, 403},
			{"reload with operate", "POST", "/v1/policies/reload", follower, operate, nil, nil, 202},
			{"reload with admin", "POST", "/v1/policies/reload", leader, admin, nil, nil, 202},
			{"join without a token", "POST", "/v1/cluster/join", leader, none, nil, rejoin, 401},
			{"join with read", "POST", "/v1/cluster/join", leader, read, nil, rejoin, 403},
			{"join with operate", "POST", "/v1/cluster/join", follower, operate, nil, rejoin, 403},
			// With TLS a join must come from the node it names: an admin's
			// token alone does not make a member.
			{"join with admin but no node certificate", "POST", "/v1/cluster/join", leader, admin, nil, rejoin, 403},
			{"eu-2 joining again with its certificate", "POST", "/v1/cluster/join", follower, none, eu2, rejoin, 200},
			{"member removal without a token", "DELETE", "/v1/cluster/members/eu-3", leader, none, nil, nil, 401},
			{"member removal with read", "DELETE", "/v1/cluster/members/eu-3", follower, read, nil, nil, 403},
			{"member removal with operate", "DELETE", "/v1/cluster/members/eu-3", leader, operate, nil, nil, 403},
			// A node may leave, not remove others.
			{"eu-2's certificate removing eu-3", "DELETE", "/v1/cluster/members/eu-3", leader, none, eu2, nil, 403},
			{"the us certificate removing eu-3", "DELETE", "/v1/cluster/members/eu-3", follower, none, wrongRegion, nil, 403},
			{"member removal of an unknown member with admin", "DELETE", "/v1/cluster/members/ghost", follower, admin, nil, nil, 404},
		} {
			t.Run(tc.name, func(t *testing.T) {
				client := plain
				if tc.cert != nil {
					client = secClient(ca, tc.cert)
				}
				code, body, err := call(client, tc.method, url(tc.to, tc.path), tc.token, tc.body)
				if err != nil {
					t.Fatal(err)
				}
				if code != tc.code {
					t.Errorf("%s %s on %s: %d %s, want %d", tc.method, tc.path, tc.to, code, strings.TrimSpace(body), tc.code)
				}
			})
		}
		// offsets translate with read gets past the guard (the group has
		// nothing to translate: any answer but 401 and 403).
		code, body, err := call(plain, "GET", url(leader, "/v1/offsets/translate?group=none-"+randomHex(t, 4)), read, nil)
		if err != nil || code == 401 || code == 403 {
			t.Errorf("offsets translate with read: %d %s %v", code, body, err)
		}
		intact(t, "the role checks")
		if m := c.nodes[leader].metrics(); !strings.Contains(m, `tributary_http_denied_total{endpoint="cluster_join",reason="missing"}`) ||
			strings.Contains(m, `tributary_http_denied_total{endpoint="cluster_join",reason="missing"} 0`) {
			t.Errorf("the leader did not count the refused joins")
		}
	})

	t.Run("forged policy bundles are refused", func(t *testing.T) {
		before, err := c.status(leader)
		if err != nil {
			t.Fatal(err)
		}
		if before.Policy.Bundle < 1 || before.Policy.Hash == "" {
			t.Fatalf("no active bundle: %+v", before.Policy)
		}
		empty := &policy.Set{}
		forged, err := policy.Parse("payments.yaml", []byte(policyFile(2, "")))
		if err != nil {
			t.Fatal(err)
		}
		next := before.Policy.Bundle + 1
		for _, tc := range []struct {
			name  string
			to    string
			cert  *tlstest.Cert
			token string
			body  map[string]any
			code  int
		}{
			{"an empty bundle with an admin token", leader, nil, sec.tokens["admin"],
				map[string]any{"version": next, "data": empty.Encode(), "hash": empty.Hash(), "source": "attacker"}, 403},
			{"an empty bundle with an admin token to a follower", follower, nil, sec.tokens["admin"],
				map[string]any{"version": next, "data": empty.Encode(), "hash": empty.Hash(), "source": "attacker"}, 403},
			{"a bundle with a wrong hash from a node's certificate", leader, certs[follower], "",
				map[string]any{"version": next, "data": forged.Encode(), "hash": strings.Repeat("0", 64), "source": "attacker"}, 422},
			{"a bundle with a wrong hash through a follower", follower, certs[follower], "",
				map[string]any{"version": next, "data": forged.Encode(), "hash": strings.Repeat("0", 64), "source": "attacker"}, 422},
			{"a bundle from the us certificate", leader, wrongRegion, "",
				map[string]any{"version": next, "data": forged.Encode(), "hash": strings.Repeat("0", 64), "source": "attacker"}, 422},
			{"a bundle from another CA", leader, foreign, "",
				map[string]any{"version": next, "data": empty.Encode(), "hash": empty.Hash(), "source": "attacker"}, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				code, body, err := call(secClient(ca, tc.cert), "POST", url(tc.to, "/v1/cluster/policy"), tc.token, tc.body)
				switch {
				case tc.code == 0 && err == nil:
					t.Fatalf("the TLS handshake succeeded: %d %s", code, body)
				case tc.code == 0:
					t.Logf("refused by TLS: %v", err)
				case err != nil:
					t.Fatal(err)
				case code != tc.code:
					t.Fatalf("answer %d %s, want %d", code, strings.TrimSpace(body), tc.code)
				default:
					t.Logf("refused: %d %s", code, strings.TrimSpace(body))
				}
			})
		}
		for _, s := range specs {
			st, err := c.status(s.id)
			if err != nil {
				t.Fatal(err)
			}
			if st.Policy.Bundle != before.Policy.Bundle || st.Policy.Hash != before.Policy.Hash {
				t.Errorf("%s: active bundle %d %s, want %d %s", s.id, st.Policy.Bundle, st.Policy.Hash, before.Policy.Bundle, before.Policy.Hash)
			}
		}
		if m := c.nodes[leader].metrics(); !strings.Contains(m, `tributary_policy_bundle_refused_total{reason="hash"} 3`) {
			t.Errorf("the leader did not count three refusals for the hash:\n%s", grepLines(m, "tributary_policy_bundle_refused_total"))
		}
	})

	t.Run("the CLI over TLS", func(t *testing.T) {
		out, err := exec.Command(binPath, "status", "--addr", url(leader, ""), "--token-file", readTokenFile, "--ca-file", ca.File).CombinedOutput()
		if err != nil {
			t.Fatalf("tributary status: %v\n%s", err, out)
		}
		for _, want := range []string{"leader: " + leader, "eu-1", "eu-2", "eu-3"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("tributary status lacks %q:\n%s", want, out)
			}
		}
		if l := sec.leaked(string(out)); len(l) > 0 {
			t.Errorf("tributary status prints %v", l)
		}
		out, err = exec.Command(binPath, "status", "--addr", url(follower, ""), "--token-file", readTokenFile).CombinedOutput()
		if err == nil {
			t.Fatalf("tributary status without --ca-file succeeded:\n%s", out)
		}
		if !strings.Contains(string(out), "certificate") {
			t.Errorf("tributary status without --ca-file does not say the certificate is the problem:\n%s", out)
		}
		t.Logf("without --ca-file: %s", strings.TrimSpace(string(out)))
	})

	t.Run("no secret leaves a node", func(t *testing.T) {
		for _, s := range specs {
			for _, scope := range []string{"", "?scope=cluster"} {
				code, body, err := call(readClient, "GET", url(s.id, "/v1/status"+scope), sec.tokens["read"], nil)
				if err != nil || code != 200 {
					t.Fatalf("/v1/status%s of %s: %d %v", scope, s.id, code, err)
				}
				if l := sec.leaked(body); len(l) > 0 {
					t.Errorf("/v1/status%s of %s shows %v", scope, s.id, l)
				}
			}
			out, err := exec.Command(binPath, "config", "check", c.cfgs[s.id]).CombinedOutput()
			if err != nil {
				t.Errorf("config check %s: %v\n%s", s.id, err, out)
			}
			if l := sec.leaked(string(out)); len(l) > 0 {
				t.Errorf("config check of %s prints %v:\n%s", s.id, l, out)
			}
		}
		// Wrong configs: the errors of config check and of run.
		base, err := os.ReadFile(c.cfgs["eu-1"])
		if err != nil {
			t.Fatal(err)
		}
		looseKey := filepath.Join(t.TempDir(), "loose-key.pem")
		key, err := os.ReadFile(certs["eu-1"].Files.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(looseKey, key, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(looseKey, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []struct {
			name    string
			oldNews []string // pairs of what to replace in eu-1's config, and by what
			want    string
		}{
			{"a misspelt password key", []string{"password: \"" + sec.registry + "\"", "passwd: \"" + sec.registry + "\""}, "passwd"},
			{"a key file readable by others", []string{certs["eu-1"].Files.Key, looseKey}, "mode 0644"},
			{"eu-2's certificate and key in eu-1's config", []string{
				certs["eu-1"].Files.Cert, certs["eu-2"].Files.Cert, certs["eu-1"].Files.Key, certs["eu-2"].Files.Key}, `names node "eu-2"`},
			{"the registry password in a malformed URL", []string{`url: "http://` + regAddr, `url: "http://svc-tributary:` + sec.registry + `@127.0.0.1:12ab`}, "not a valid URL"},
		} {
			t.Run(bad.name, func(t *testing.T) {
				text := string(base)
				for i := 0; i+1 < len(bad.oldNews); i += 2 {
					if !strings.Contains(text, bad.oldNews[i]) {
						t.Fatalf("%q is not in the config", bad.oldNews[i])
					}
					text = strings.Replace(text, bad.oldNews[i], bad.oldNews[i+1], 1)
				}
				cfg := filepath.Join(t.TempDir(), "bad.yaml")
				if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				check, checkErr := exec.Command(binPath, "config", "check", cfg).CombinedOutput()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				run, runErr := exec.CommandContext(ctx, binPath, "run", "--config", cfg).CombinedOutput()
				if runErr == nil || ctx.Err() != nil {
					t.Fatalf("tributary run with %s: %v (want a refusal at start)\n%s", bad.name, runErr, run)
				}
				if checkErr == nil {
					t.Errorf("config check accepts %s:\n%s", bad.name, check)
				}
				for what, out := range map[string][]byte{"config check": check, "run": run} {
					if l := sec.leaked(string(out)); len(l) > 0 {
						t.Errorf("%s with %s prints %v:\n%s", what, bad.name, l, out)
					}
				}
				if !strings.Contains(string(run), bad.want) || !strings.Contains(string(check), bad.want) {
					t.Errorf("config check and run do not both say %q:\n%s\n%s", bad.want, check, run)
				}
				t.Logf("config check: %s\nrun: %s", lastLine(check), lastLine(run))
			})
		}
	})

	t.Run("an admin removes a member", func(t *testing.T) {
		victim := "eu-3"
		if leader == victim {
			victim = follower
		}
		c.nodes[victim].kill()
		code, body, err := call(secClient(ca, nil), "DELETE", url(leader, "/v1/cluster/members/"+victim), sec.tokens["admin"], nil)
		if err != nil || code != 200 {
			t.Fatalf("DELETE /v1/cluster/members/%s with admin: %d %s %v", victim, code, body, err)
		}
		harness.Eventually(t, 10*time.Second, "two members left", func() error {
			st, err := c.status(leader)
			if err != nil {
				return err
			}
			var ids []string
			for _, m := range st.Cluster.Members {
				ids = append(ids, m.ID)
			}
			if len(ids) != 2 || slices.Contains(ids, victim) {
				return fmt.Errorf("members %v", ids)
			}
			return nil
		})
	})

	// Last: every line every node logged, the refusals included.
	for _, s := range specs {
		if l := sec.leaked(c.nodes[s.id].output()); len(l) > 0 {
			t.Errorf("the log of %s shows %v", s.id, l)
		}
		if !strings.Contains(c.nodes[s.id].output(), "http request denied") && s.id == leader {
			t.Errorf("the leader logged no refused request")
		}
	}
	t.Logf("TestSecurity took %s", time.Since(start).Round(time.Millisecond))
}

// raftHandshake connects to a Raft address with cfg and reads for a second:
// with TLS 1.3 a server refusing the client's certificate says so after the
// client's side of the handshake, on the first read. nil: nothing refused it.
func raftHandshake(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return nil
	}
	return err
}

// startAuthRegistry serves an embedded registry that wants basic auth from
// the users in authFile, on loopback, until the test ends.
func startAuthRegistry(t *testing.T, authFile string) string {
	t.Helper()
	users, err := registry.LoadBasicAuth(authFile)
	if err != nil {
		t.Fatal(err)
	}
	h, err := registry.NewServer(registry.ServerOptions{BasicAuth: users})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func writePrivate(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
