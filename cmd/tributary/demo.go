package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tributary-dev/tributary/internal/daemon"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 0, "stop after this long and print a final summary (0: until SIGINT)")
	dir := fs.String("dir", "", "keep the generated configs and policies in this folder (default: a temporary folder, removed on exit)")
	rate := fs.Int("rate", 1000, "payment records per second the generator writes (telemetry: a tenth of it)")
	httpPort := fs.Int("http-port", 7480, "HTTP port of eu-1; us-1 and cloud-1 use the next two (0: any free ports)")
	every := fs.Duration("every", 2*time.Second, "how often the live summary is printed")
	logLevel := fs.String("log-level", "error", "log level of the nodes (the summary is printed anyway)")
	if err := fs.Parse(args); err != nil {
		return usageErr("%w", err)
	}
	if fs.NArg() > 0 || *rate < 1 || *every <= 0 || *httpPort < 0 || *httpPort > 65533 {
		return usageErr("usage: tributary demo [--duration D] [--dir DIR] [--rate N] [--http-port P] [--every D]")
	}
	log, err := newLogger(stderr, "text", *logLevel)
	if err != nil {
		return err
	}
	start := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()

	work := *dir
	if work == "" {
		if work, err = os.MkdirTemp("", "tributary-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	env, err := startDemoWorld(runCtx, work)
	if err != nil {
		return err
	}
	defer env.Close()

	cfgs, err := env.writeConfigs(*httpPort)
	if err != nil {
		return err
	}
	gen, err := newDemoGenerator(runCtx, env)
	if err != nil {
		return err
	}
	defer gen.Close()

	// The three nodes, in this process.
	type started struct {
		id, addr string
		reg      prometheus.Gatherer
	}
	startedc := make(chan started, len(cfgs))
	var nodes errgroup.Group
	nodeDone := make(chan struct{})
	var firstErr error
	var errOnce sync.Once
	for i, cfg := range cfgs {
		nodes.Go(func() error {
			err := runNode(runCtx, cfg, daemon.Options{Logger: log, Started: func(addr string, reg prometheus.Gatherer) {
				startedc <- started{demoNodes[i].id, addr, reg}
			}})
			if err != nil {
				errOnce.Do(func() { firstErr = fmt.Errorf("node %s: %w", cfg.Node.ID, err) })
				stop() // one node failing ends the demo
			}
			return err
		})
	}
	go func() { nodes.Wait(); close(nodeDone) }()
	addrs := map[string]string{}
	var regs []prometheus.Gatherer
	for len(addrs) < len(cfgs) {
		select {
		case s := <-startedc:
			addrs[s.id] = s.addr
			regs = append(regs, s.reg)
		case <-nodeDone:
			return firstErr
		}
	}
	if err := waitForLeader(runCtx, addrs["eu-1"]); err != nil {
		stop()
		<-nodeDone
		return errors.Join(err, firstErr)
	}
	go gen.Run(runCtx, *rate)

	fmt.Fprintf(stdout, "tributary demo: started in %s (3 Kafka clusters, Pub/Sub, 3 registries, 3 Raft nodes)\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "  status page: http://%s/\n", addrs["eu-1"])
	for _, n := range demoNodes {
		fmt.Fprintf(stdout, "  node %-8s region %-6s http://%s/   (/v1/status, /metrics)\n", n.id, n.region, addrs[n.id])
	}
	fmt.Fprintf(stdout, "  configs:     %s   policies: %s (edit them: the cluster applies valid changes live)\n",
		filepath.Join(work, "*.yaml"), filepath.Join(work, "policies"))
	if *dir == "" {
		fmt.Fprintf(stdout, "  (temporary folder, removed on exit: use --dir to keep it)\n")
	}

	var timeout <-chan time.Time
	if *duration > 0 {
		timeout = time.After(*duration - time.Since(start))
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	pipelines := []string{"eu-payments", "us-payments", "fleet-telemetry"}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-timeout:
			break loop
		case <-nodeDone:
			break loop
		case <-tick.C:
			sum := gatherDemo(regs)
			fmt.Fprintf(stdout, "%s  generated %d payments, %d telemetry messages\n", time.Now().Format("15:04:05"), gen.payments.Load(), gen.telemetry.Load())
			for _, p := range pipelines {
				fmt.Fprintf(stdout, "  %s\n", sum[p].line(p))
			}
		}
	}
	// Counters only grow: the final figures are the larger of those read
	// before the nodes stop (Pub/Sub bridges drop their series when they
	// stop) and after (the last transactions committed while draining).
	before := gatherDemo(regs)
	stop()
	gen.Close()
	<-nodeDone
	sum := gatherDemo(regs)
	for p, b := range before {
		a := sum[p]
		a.records, a.quarantined, a.masked = max(a.records, b.records), max(a.quarantined, b.quarantined), max(a.masked, b.masked)
		sum[p] = a
	}
	fmt.Fprintf(stdout, "final summary after %s: generated %d payments, %d telemetry messages\n",
		time.Since(start).Round(time.Second), gen.payments.Load(), gen.telemetry.Load())
	for _, p := range pipelines {
		fmt.Fprintf(stdout, "  %s\n", sum[p].line(p))
	}
	if firstErr != nil {
		return firstErr
	}
	return nil
}
