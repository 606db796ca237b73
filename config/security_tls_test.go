package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-dev/tributary/internal/tlstest"
)

// TestSecurityTLS loads configs naming certificates made by the test: the
// files are read at validation, so `config check` catches a certificate that
// names another node, another region, or comes from another CA.
func TestSecurityTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "cluster")
	other := tlstest.NewCA(t, "other")
	good := ca.Node("eu", "solo")
	wrongRegion := ca.Node("us", "solo")
	wrongID := ca.Node("eu", "eu-2")
	foreign := other.Node("eu", "solo")
	loose := ca.Node("eu", "solo-loose")
	if err := os.Chmod(loose.Files.Key, 0o640); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, tls string, extra ...string) string {
		path := filepath.Join(dir, name)
		body := "node:\n  id: solo\n  region: eu\n" + strings.Join(extra, "") +
			"kafka:\n  central: {region: eu, bootstrap: 'localhost:9092'}\n" +
			"target: central\n" +
			"pipelines:\n  - {name: copy, source: {kafka: central}, topics: {include: ['a']}}\n" +
			"security:\n  tls:\n" + tls
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	files := func(ca, cert, key string) string {
		return fmt.Sprintf("    ca_file: %s\n    cert_file: %s\n    key_file: %s\n", ca, cert, key)
	}

	t.Run("a certificate naming this node and region is accepted", func(t *testing.T) {
		cfg, err := Load(write("good.yaml", files(good.Files.CA, good.Files.Cert, good.Files.Key)))
		if err != nil {
			t.Fatal(err)
		}
		f, ok := cfg.TLSFiles()
		if !ok || f != good.Files {
			t.Errorf("TLSFiles = %+v, %v; want %+v", f, ok, good.Files)
		}
		if !strings.Contains(cfg.Redacted(), "cert_file: "+good.Files.Cert) {
			t.Errorf("Redacted lacks security.tls:\n%s", cfg.Redacted())
		}
	})
	t.Run("off loopback, TLS without tokens is refused unless insecure says so", func(t *testing.T) {
		tls := files(good.Files.CA, good.Files.Cert, good.Files.Key)
		addrs := "  raft_addr: 10.0.0.5:7400\n  http_addr: 10.0.0.5:7480\n"
		_, err := Load(write("open.yaml", tls, addrs))
		if err == nil || !strings.Contains(err.Error(), "security.tokens_file: required with security.tls") {
			t.Fatalf("Load = %v, want tokens_file required", err)
		}
		if _, err := Load(write("tokens.yaml", tls+"  tokens_file: /etc/tributary/tokens.yaml\n", addrs)); err != nil {
			t.Errorf("with tokens: %v", err)
		}
		if _, err := Load(write("insecure.yaml", tls+"  insecure: true\n", addrs)); err != nil {
			t.Errorf("with insecure: %v", err)
		}
	})
	t.Run("a join address saying http is refused under TLS", func(t *testing.T) {
		_, err := Load(write("join.yaml", files(good.Files.CA, good.Files.Cert, good.Files.Key), "cluster:\n  join: ['http://10.0.0.1:7480', '10.0.0.2:7480']\n"))
		if err == nil || !strings.Contains(err.Error(), `:5:10: cluster.join[0]: "http://10.0.0.1:7480": members serve https when security.tls is set`) {
			t.Fatalf("Load = %v", err)
		}
	})
	for _, tc := range []struct {
		name string
		tls  string
		want []string
	}{
		{"a certificate naming another region is refused naming both", files(ca.File, wrongRegion.Files.Cert, wrongRegion.Files.Key),
			[]string{`:12:5: security.tls.cert_file: certificate ` + wrongRegion.Files.Cert + ` names node "solo" in region "us" (tributary://us/solo), but node.id is "solo" and node.region is "eu"`}},
		{"a certificate naming another node is refused naming both", files(ca.File, wrongID.Files.Cert, wrongID.Files.Key),
			[]string{`security.tls.cert_file: certificate ` + wrongID.Files.Cert + ` names node "eu-2" in region "eu"`, `node.id is "solo"`}},
		{"a certificate from another CA is refused", files(ca.File, foreign.Files.Cert, foreign.Files.Key),
			[]string{`:10:3: security.tls: certificate ` + foreign.Files.Cert + ` is not issued by the CA in ` + ca.File}},
		{"a key file readable by the group is refused naming its mode", files(ca.File, loose.Files.Cert, loose.Files.Key),
			[]string{`security.tls: key file ` + loose.Files.Key + ` has mode 0640`}},
		{"a missing file is refused", files(ca.File, good.Files.Cert, filepath.Join(dir, "nope.pem")),
			[]string{`security.tls: key file: stat ` + filepath.Join(dir, "nope.pem") + `: no such file or directory`}},
		{"all three files or none", "    ca_file: " + ca.File + "\n",
			[]string{`security.tls.cert_file: required: security.tls needs ca_file, cert_file and key_file`, `security.tls.key_file: required`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(write("bad.yaml", tc.tls))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestClusterVoters(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		voters string
		want   string
	}{
		{"3", ""},
		{"0", ""},
		{"4", "cluster.voters: 4: want an odd number from 1 to 9, or 0 for 3 or 5 by member count"},
		{"11", "cluster.voters: 11: want an odd number"},
		{"-1", "cluster.voters: -1: want an odd number"},
	} {
		t.Run("cluster.voters "+tc.voters, func(t *testing.T) {
			path := filepath.Join(dir, "c.yaml")
			body := "node: {id: solo, region: eu}\ncluster: {voters: " + tc.voters + "}\n" +
				"kafka:\n  central: {region: eu, bootstrap: 'localhost:9092'}\n" +
				"target: central\n" +
				"pipelines:\n  - {name: copy, source: {kafka: central}, topics: {include: ['a']}}\n"
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Load = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Load = %v, want %q", err, tc.want)
			}
		})
	}
}
