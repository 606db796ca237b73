// Command tributary mirrors regional Kafka clusters and Pub/Sub subscriptions into
// one central Kafka cluster, enforcing schema and PII policies on the way.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tributary-dev/tributary/internal/kafkaclient"
)

func main() {
	// Before any Kafka client exists: librdkafka's threads would each take a
	// malloc arena of their own (see LimitMallocArenas).
	kafkaclient.LimitMallocArenas()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// Drain is bounded inside run; this is the backstop that keeps the promise
		// to exit within 10 s of a signal even if a client library hangs.
		<-ctx.Done()
		stop()
		time.Sleep(9500 * time.Millisecond)
		fmt.Fprintln(os.Stderr, "tributary: shutdown took longer than 9.5s; exiting")
		os.Exit(1)
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(exitCode(err, os.Stderr))
}

// exitError carries a process exit code: 2 for bad usage or invalid config or
// policy, 1 for runtime failures.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	code := 1
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintln(stderr, "tributary:", err)
	return code
}

const usage = `usage: tributary <command> [flags]

commands:
  run --config FILE        run a node until SIGINT/SIGTERM
  demo [--duration D]      run an in-memory demo (Kafka clusters and a generator in one process)
  config check FILE        validate a node config file (exit 2 on errors)
  status [--addr URL]      show the cluster: leader, members, tasks with node, state and lag
  registry serve --addr A  run the embedded Confluent-compatible schema registry [--data FILE]
  offsets translate --config FILE --group G [--json] [--apply]
                           a consumer group's source offsets as target offsets
  policy lint PATH...      check policy files (exit 2 on errors); policy test, policy diff
  raft recover --data-dir D --peers FILE
                           rewrite a stopped node's Raft configuration after a lost quorum
  version                  print the version
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageErr("no command given")
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "config":
		if len(args) < 2 || args[1] != "check" {
			return usageErr("usage: tributary config check FILE")
		}
		return cmdConfigCheck(args[2:], stdout)
	case "status":
		return cmdStatus(ctx, args[1:], stdout, stderr)
	case "policy":
		return cmdPolicy(ctx, args[1:], stdout, stderr)
	case "registry":
		return cmdRegistry(ctx, args[1:], stdout, stderr)
	case "offsets":
		return cmdOffsets(ctx, args[1:], stdout, stderr)
	case "raft":
		return cmdRaft(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageErr("unknown command %q", args[0])
}
