package test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/tlstest"
	"github.com/tributary-dev/tributary/registry"
	"github.com/tributary-dev/tributary/test/harness"
)

// TestRegistryOverTLSWithBasicAuth runs the central schema registry as
// `tributary registry serve --tls-cert --tls-key --basic-auth-file` (a
// certificate from a CA made for the test) and a node that registers the
// mirrored schemas there over HTTPS with basic auth (the password from
// ${REG_PASSWORD}, the CA in schema_registry.ca_file). The records land with
// ids of that registry, and the password shows in no log or status.
func TestRegistryOverTLSWithBasicAuth(t *testing.T) {
	source, target := harness.Brokers(t)
	if binPath == "" {
		t.Skip("tributary binary not built: real brokers not configured")
	}
	topic := harness.UniqueName(t, "regtls")
	createTopic(t, source, topic, 1, nil)

	ca := tlstest.NewCA(t, "registry")
	cert := ca.Issue("registry")
	const user, pass = "tributary", "REGPW-t8Kq2-zW41vN"
	sum := sha256.Sum256([]byte(pass))
	authFile := filepath.Join(t.TempDir(), "registry-users")
	if err := os.WriteFile(authFile, []byte(user+":sha256:"+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	regAddr := freeAddr(t)
	reg := &daemon{t: t, exited: make(chan struct{})}
	reg.cmd = exec.Command(binPath, "registry", "serve", "--addr", regAddr,
		"--tls-cert", cert.Files.Cert, "--tls-key", cert.Files.Key, "--basic-auth-file", authFile)
	reg.spawn("registry")
	regURL := "https://" + regAddr
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	get := func(path string, withAuth bool) (int, []byte, error) {
		req, _ := http.NewRequest("GET", regURL+path, nil)
		if withAuth {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, nil
	}
	harness.Eventually(t, 20*time.Second, "registry serving HTTPS", func() error {
		code, b, err := get("/subjects", true)
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("%d %s", code, b)
		}
		return nil
	})
	if code, _, err := get("/subjects", false); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("registry without credentials: %d %v, want 401", code, err)
	}

	srcReg := startRegistry(t, "")
	id := srcReg.register(topic+"-value", paymentV1)
	cfgPath, httpAddr := writeConfigWith(t, fmt.Sprintf(`kafka:
  regional:
    region: eu
    bootstrap: %s
    schema_registry: {url: %s}
  central:
    region: cloud
    bootstrap: %s
    schema_registry:
      url: %s
      username: %s
      password: ${REG_PASSWORD}
      ca_file: %s
`, source, srcReg.url(), target, regURL, user, ca.File), fmt.Sprintf(`  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    format: avro
`, topic, topic))

	type payment struct {
		Vin    string  `avro:"vin"`
		Amount float64 `avro:"amount"`
	}
	p := newProducer(t, source)
	const n = 5
	for i := 0; i < n; i++ {
		v := avroFrame(t, id, paymentV1, payment{Vin: "WVW" + strconv.Itoa(i), Amount: float64(i)})
		if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Value: v}, nil); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, p)

	d := startDaemonEnv(t, cfgPath, httpAddr, "REG_PASSWORD="+pass)
	d.waitReady(60 * time.Second)
	got := readAll(t, target, "regional."+topic, n, time.Minute)[0]
	if len(got) != n {
		t.Fatalf("%d records landed, want %d", len(got), n)
	}
	for i, r := range got {
		ref, _, err := registry.ReadRef(r.Value, registry.Avro)
		if err != nil {
			t.Fatalf("target record %d: %v", i, err)
		}
		code, b, err := get("/schemas/ids/"+strconv.Itoa(int(ref.ID)), true)
		if err != nil || code != 200 {
			t.Fatalf("target record %d: schema id %d not in the TLS registry: %d %s %v", i, ref.ID, code, b, err)
		}
		var s struct {
			Schema string `json:"schema"`
		}
		if err := json.Unmarshal(b, &s); err != nil || s.Schema == "" {
			t.Fatalf("schema %d: %q %v", ref.ID, b, err)
		}
	}
	checkNoSecret(t, pass, "node log", d.output())
	checkNoSecret(t, pass, "registry log", reg.output())
	checkNoSecret(t, pass, "/v1/status", httpGet(t, "http://"+httpAddr+"/v1/status"))
}
