package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/test/harness"
)

// saslConfig writes a node config whose regional cluster is the source's
// SASL_SSL listener (SCRAM-SHA-512 over TLS, the harness CA trusted), with
// the user and password taken from the environment (${KAFKA_SASL_USER},
// ${KAFKA_SASL_PASSWORD}), as an operator keeps them out of the file.
func saslConfig(t *testing.T, s harness.SASL, target, pipeline string) (path, httpAddr string) {
	t.Helper()
	return writeConfigWith(t, fmt.Sprintf(`kafka:
  regional:
    region: eu
    bootstrap: %s
    properties:
      security.protocol: SASL_SSL
      sasl.mechanism: SCRAM-SHA-512
      sasl.username: ${KAFKA_SASL_USER}
      sasl.password: ${KAFKA_SASL_PASSWORD}
      ssl.ca.location: %s
  central:
    region: cloud
    bootstrap: %s
`, s.Bootstrap, s.CAFile, target), pipeline)
}

// saslSource returns the SASL_SSL listener and the target, or skips.
func saslSource(t *testing.T) (harness.SASL, string) {
	t.Helper()
	_, target := harness.Brokers(t)
	return harness.SourceSASL(t), target
}

// TestSASLMirrorExactlyOnce mirrors a topic from the source cluster's
// SASL_SSL listener to the target, exactly once and byte-identical.
func TestSASLMirrorExactlyOnce(t *testing.T) {
	s, target := saslSource(t)
	source, _ := harness.Brokers(t)
	topic := harness.UniqueName(t, "sasl")
	createTopic(t, source, topic, partitions, nil)
	base := recentBase()
	seq := map[int32]int{}
	p := newProducer(t, source)
	produceN(t, p, topic, 0, 5000, base, seq)
	flush(t, p)

	cfg, httpAddr := saslConfig(t, s, target, pipelineYAML(topic, topic, ""))
	d := startDaemonEnv(t, cfg, httpAddr, "KAFKA_SASL_USER="+s.User, "KAFKA_SASL_PASSWORD="+s.Password)
	d.waitReady(60 * time.Second)

	got := readAll(t, target, "regional."+topic, 5000, 2*time.Minute)
	verifyExactlyOnce(t, got, seq, topic, "regional", base, true)

	// More records while the node runs: the live path goes through SASL_SSL too.
	produceN(t, p, topic, 5000, 1000, base, seq)
	flush(t, p)
	got = readAll(t, target, "regional."+topic, 6000, 2*time.Minute)
	verifyExactlyOnce(t, got, seq, topic, "regional", base, true)

	checkNoSecret(t, s.Password, "node log", d.output())
	checkNoSecret(t, s.Password, "/v1/status", httpGet(t, "http://"+httpAddr+"/v1/status"))
}

// TestSASLBadCredentialsMirrorNothing runs a node whose SASL password is
// wrong: it must say that authentication failed (log and /v1/status), mirror
// nothing, and never print the password it was given — nor does config check.
func TestSASLBadCredentialsMirrorNothing(t *testing.T) {
	s, target := saslSource(t)
	source, _ := harness.Brokers(t)
	topic := harness.UniqueName(t, "saslbad")
	createTopic(t, source, topic, 2, nil)
	p := newProducer(t, source)
	for i := 0; i < 10; i++ {
		if err := p.Produce(sourceRecord(topic, int32(i%2), i/2, recentBase()), nil); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, p)

	// Recognisable, so that any echo of it is found.
	const wrong = "WRONGPW-q7Zt3x-9Kd2vR"
	cfg, httpAddr := saslConfig(t, s, target, pipelineYAML(topic, topic, ""))
	env := []string{"KAFKA_SASL_USER=" + s.User, "KAFKA_SASL_PASSWORD=" + wrong}

	check := exec.Command(binPath, "config", "check", cfg)
	check.Env = append(check.Environ(), env...)
	out, err := check.CombinedOutput()
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	checkNoSecret(t, wrong, "config check output", string(out))

	d := startDaemonEnv(t, cfg, httpAddr, env...)

	// The node says why it cannot read: in its log and in /v1/status.
	authErr := func(s string) bool {
		return strings.Contains(strings.ToLower(s), "sasl authentication error")
	}
	harness.Eventually(t, 60*time.Second, "an authentication error in the node's log", func() error {
		select {
		case <-d.exited:
			return nil // checked below: exiting with the error is fine too
		default:
		}
		if !authErr(d.output()) {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	var status string
	harness.Eventually(t, 60*time.Second, "an authentication error in /v1/status", func() error {
		status = httpGet(t, "http://"+httpAddr+"/v1/status")
		var st struct {
			Local []struct {
				ID    string `json:"id"`
				Error string `json:"error"`
			} `json:"local_tasks"`
			Tasks []struct {
				Error string `json:"error"`
			} `json:"tasks"`
		}
		if err := json.Unmarshal([]byte(status), &st); err != nil {
			return fmt.Errorf("%v: %s", err, status)
		}
		for _, l := range st.Local {
			if authErr(l.Error) {
				return nil
			}
		}
		for _, l := range st.Tasks {
			if authErr(l.Error) {
				return nil
			}
		}
		return fmt.Errorf("no task reports an authentication error: %s", status)
	})
	t.Logf("status: %s", status)

	// Nothing reaches the target: the mirrored topic stays absent or empty.
	time.Sleep(3 * time.Second)
	if n, err := partitionCount(target, "regional."+topic); err == nil && n > 0 {
		if got := readAll(t, target, "regional."+topic, 1, 5*time.Second); countRecords(got) > 0 {
			t.Fatalf("%d records mirrored with a wrong password", countRecords(got))
		}
	}

	checkNoSecret(t, wrong, "node log", d.output())
	checkNoSecret(t, wrong, "/v1/status", status)
	checkNoSecret(t, wrong, "/v1/status?scope=cluster", httpGet(t, "http://"+httpAddr+"/v1/status?scope=cluster"))
	checkNoSecret(t, wrong, "/metrics", d.metrics())
}

func countRecords(m map[int32][]targetRecord) int {
	n := 0
	for _, r := range m {
		n += len(r)
	}
	return n
}

func checkNoSecret(t *testing.T, secret, where, text string) {
	t.Helper()
	if strings.Contains(text, secret) {
		i := strings.Index(text, secret)
		lo, hi := max(0, i-200), min(len(text), i+len(secret)+200)
		t.Errorf("the SASL password appears in the %s: ...%s...", where, text[lo:hi])
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}
