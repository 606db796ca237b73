// Package harness gives tests access to the real Apache Kafka brokers that
// `make test` (test/run.sh + test/harness/kafka.sh) starts, and to in-memory
// kfake clusters for fast unit tests.
//
// Two single-node KRaft clusters run on loopback for the whole `go test` run:
// "source" (a regional cluster) and "target" (the central one). Their bootstrap
// addresses come from the environment:
//
//	TRIBUTARY_TEST_SOURCE_BOOTSTRAP  127.0.0.1:PORT of the source cluster
//	TRIBUTARY_TEST_TARGET_BOOTSTRAP  127.0.0.1:PORT of the target cluster
//	TRIBUTARY_TEST_KAFKA_DIR         the clusters' directory (for StopCluster/StartCluster)
//	TRIBUTARY_TEST_KAFKA_SH          path of test/harness/kafka.sh
//
// The source cluster also serves clients on a SASL_SSL listener (SCRAM-SHA-512
// over TLS, certificates made by kafka.sh at start), for SourceSASL:
//
//	TRIBUTARY_TEST_SOURCE_SASL_BOOTSTRAP  127.0.0.1:PORT of that listener
//	TRIBUTARY_TEST_SOURCE_SASL_CA         PEM file of the CA that signed the broker's certificate
//	TRIBUTARY_TEST_SASL_USER              the SCRAM user
//	TRIBUTARY_TEST_SASL_PASSWORD          its password
//
// To run one package against brokers by hand:
//
//	test/harness/kafka.sh start /tmp/k && set -a && . /tmp/k/env && set +a
//	go test -race ./some/pkg/
//	test/harness/kafka.sh stop /tmp/k
//
// The clusters are shared by every test of the run, so tests must use their own
// topic, group and transactional-id names (UniqueName). This package must not
// import other packages of the module.
package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Environment variables set by test/run.sh (and listed in the env file that
// `kafka.sh start DIR` writes to DIR/env).
const (
	EnvSourceBootstrap = "TRIBUTARY_TEST_SOURCE_BOOTSTRAP"
	EnvTargetBootstrap = "TRIBUTARY_TEST_TARGET_BOOTSTRAP"
	EnvKafkaDir        = "TRIBUTARY_TEST_KAFKA_DIR"
	EnvKafkaSh         = "TRIBUTARY_TEST_KAFKA_SH"

	EnvSourceSASLBootstrap = "TRIBUTARY_TEST_SOURCE_SASL_BOOTSTRAP"
	EnvSourceSASLCA        = "TRIBUTARY_TEST_SOURCE_SASL_CA"
	EnvSASLUser            = "TRIBUTARY_TEST_SASL_USER"
	EnvSASLPassword        = "TRIBUTARY_TEST_SASL_PASSWORD"
)

// Cluster names accepted by StopCluster, KillCluster and StartCluster.
const (
	Source = "source"
	Target = "target"
)

const skipMsg = "real Kafka brokers not configured: run `make test` (sets " +
	EnvSourceBootstrap + " and " + EnvTargetBootstrap + ")"

// Brokers returns the bootstrap addresses of the real source and target
// clusters, or skips the test when they are not configured.
func Brokers(t testing.TB) (source, target string) {
	t.Helper()
	source, target = os.Getenv(EnvSourceBootstrap), os.Getenv(EnvTargetBootstrap)
	if source == "" || target == "" {
		t.Skip(skipMsg)
	}
	return source, target
}

// SASL is the source cluster's SASL_SSL listener and the SCRAM-SHA-512
// credentials it accepts.
type SASL struct {
	Bootstrap string // 127.0.0.1:PORT
	CAFile    string // PEM of the CA that signed the broker's certificate
	User      string
	Password  string
}

// SourceSASL returns the source cluster's SASL_SSL listener, or skips the test
// when it is not configured.
func SourceSASL(t testing.TB) SASL {
	t.Helper()
	s := SASL{
		Bootstrap: os.Getenv(EnvSourceSASLBootstrap), CAFile: os.Getenv(EnvSourceSASLCA),
		User: os.Getenv(EnvSASLUser), Password: os.Getenv(EnvSASLPassword),
	}
	if s.Bootstrap == "" || s.CAFile == "" || s.User == "" || s.Password == "" {
		t.Skip("the source cluster's SASL_SSL listener is not configured: run `make test` (sets " +
			EnvSourceSASLBootstrap + ", " + EnvSourceSASLCA + ", " + EnvSASLUser + " and " + EnvSASLPassword + ")")
	}
	return s
}

// Properties are the librdkafka properties of a client of the SASL_SSL
// listener (without bootstrap.servers).
func (s SASL) Properties() map[string]string {
	return map[string]string{
		"security.protocol": "SASL_SSL",
		"sasl.mechanism":    "SCRAM-SHA-512",
		"sasl.username":     s.User,
		"sasl.password":     s.Password,
		"ssl.ca.location":   s.CAFile,
	}
}

// StopCluster shuts one real cluster ("source" or "target") down cleanly; it
// keeps its port and data for StartCluster. It skips the test when the brokers
// are not configured. In case the test fails before restarting it, a cleanup
// restarts the cluster so that later tests find it running.
func StopCluster(t testing.TB, which string) {
	t.Helper()
	stopCluster(t, which, "stop-cluster")
}

// KillCluster is StopCluster with SIGKILL: a crash instead of a shutdown. The
// restart takes longer (the controller first expires the dead broker's session,
// about 4 s).
func KillCluster(t testing.TB, which string) {
	t.Helper()
	stopCluster(t, which, "kill-cluster")
}

func stopCluster(t testing.TB, which, cmd string) {
	t.Helper()
	kafkaSh(t, cmd, which)
	t.Cleanup(func() {
		// A no-op when the test restarted it.
		if err := runKafkaSh(cmdTimeout, "start-cluster", which); err != nil {
			t.Errorf("restarting Kafka cluster %s after the test: %v", which, err)
		}
	})
}

// StartCluster (re)starts one real cluster on its previous port and data and
// waits until it serves; it does nothing when the cluster runs.
func StartCluster(t testing.TB, which string) {
	t.Helper()
	kafkaSh(t, "start-cluster", which)
}

const cmdTimeout = 3 * time.Minute

func kafkaSh(t testing.TB, cmd, which string) {
	t.Helper()
	if which != Source && which != Target {
		t.Fatalf("harness: cluster must be %q or %q, got %q", Source, Target, which)
	}
	if os.Getenv(EnvKafkaDir) == "" || os.Getenv(EnvKafkaSh) == "" {
		t.Skip("real Kafka brokers not controllable: run `make test` (sets " +
			EnvKafkaDir + " and " + EnvKafkaSh + ")")
	}
	start := time.Now()
	if err := runKafkaSh(cmdTimeout, cmd, which); err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Logf("harness: kafka.sh %s %s took %v", cmd, which, time.Since(start).Round(time.Millisecond))
}

func runKafkaSh(timeout time.Duration, cmd, which string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", os.Getenv(EnvKafkaSh), cmd, os.Getenv(EnvKafkaDir), which)
	out, err := c.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kafka.sh %s %s: %v\n%s", cmd, which, err, out)
	}
	return nil
}

var nameSeq atomic.Uint64

// UniqueName returns a name for a topic, consumer group or transactional id
// that no other test (in this or another test binary of the run) uses:
// prefix, the test's name, the time, the process id and a counter, all
// lower-cased to [a-z0-9.-].
func UniqueName(t testing.TB, prefix string) string {
	t.Helper()
	test := sanitize(t.Name())
	if len(test) > 40 {
		test = test[:40]
	}
	name := fmt.Sprintf("%s-%s-%s-%d-%d", sanitize(prefix), test,
		strings.ToLower(fmt.Sprintf("%x", time.Now().UnixMilli())), os.Getpid(), nameSeq.Add(1))
	return strings.Trim(name, "-.")
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.':
			b.WriteRune(r)
		default: // '-' and everything else; no runs of dashes
			if s := b.String(); len(s) > 0 && s[len(s)-1] != '-' {
				b.WriteByte('-')
			}
		}
	}
	return strings.Trim(b.String(), "-.")
}

// Eventually polls cond every 50 ms (then 100 ms) until it returns nil, and
// fails the test with what and cond's last error when timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := 50 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(interval)
		interval = 100 * time.Millisecond
	}
}

// KFake starts an in-memory Kafka-protocol cluster (franz-go's kfake) with one
// broker on a random 127.0.0.1 port, closes it when the test ends, and returns
// its bootstrap address. opts are applied after kfake.NumBrokers(1).
func KFake(t testing.TB, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("harness: starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}
