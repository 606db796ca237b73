package pubsubbridge

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/tributary-dev/tributary/test/harness"
)

// envServe makes the test binary a pstest server: TestMain re-executes itself
// with it so that the emulator tests reach Pub/Sub in another process, through
// PUBSUB_EMULATOR_HOST, as a deployment with the emulator does.
const envServe = "TRIBUTARY_TEST_PSTEST_SERVE"

// emulatorHost is the separate pstest process's address (or the emulator
// PUBSUB_EMULATOR_HOST already named when the tests started).
var emulatorHost string

func TestMain(m *testing.M) {
	if os.Getenv(envServe) == "1" {
		serve()
		return
	}
	// The end-to-end tests mostly wait: pstest hands out about one message per
	// stream every 10 ms and the client acks every 100 ms. Run more of them at
	// once than -parallel's default (GOMAXPROCS) unless -parallel is given.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "4")
	}
	var stop func()
	emulatorHost = os.Getenv(EnvEmulatorHost)
	if emulatorHost == "" {
		var err error
		emulatorHost, stop, err = startEmulator()
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting pstest in a separate process:", err)
			os.Exit(1)
		}
		// Every client that is not given an endpoint explicitly now talks to
		// it; the in-process tests pass their own connection.
		os.Setenv(EnvEmulatorHost, emulatorHost)
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	if code == 0 {
		if leaked := harness.LeakedGoroutines(5*time.Second, "tributary/pubsubbridge.(*"); leaked != "" {
			fmt.Fprintln(os.Stderr, "goroutines of pubsubbridge still running after the tests:\n"+leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// serve runs pstest until stdin closes, printing its address first.
func serve() {
	srv := pstest.NewServer()
	fmt.Println(srv.Addr)
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Close()
}

func startEmulator() (addr string, stop func(), err error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// The binary may be built with -race, and pstest races with itself when a
	// client goes away mid-stream (see TestHandover): keep its reports out of
	// the test output and its exit code.
	raceLog := filepath.Join(os.TempDir(), fmt.Sprintf("pubsubbridge-pstest-race-%d", os.Getpid()))
	cmd.Env = append(os.Environ(), envServe+"=1", "GORACE=exitcode=0 log_path="+raceLog)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", nil, fmt.Errorf("reading its address: %w", err)
	}
	stop = func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if logs, _ := filepath.Glob(raceLog + ".*"); len(logs) > 0 {
			fmt.Fprintf(os.Stderr, "note: the pstest process reported data races in pstest's own code (%s)\n", strings.Join(logs, ", "))
		}
	}
	return strings.TrimSpace(line), stop, nil
}
