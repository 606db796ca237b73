package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/metrics"
)

func cmdConfigCheck(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usageErr("usage: tributary config check FILE")
	}
	cfg, err := config.Load(args[0])
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	fmt.Fprintf(stdout, "%s: ok (%d pipelines, target %s)\n", args[0], len(cfg.Pipelines), cfg.Target)
	return nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format %q: want json or text", format)
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "node config file (required)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return usageErr("%w", err)
	}
	if *path == "" || fs.NArg() > 0 {
		return usageErr("usage: tributary run --config FILE")
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	return runNode(ctx, cfg, log, nil)
}

// runNode runs one node until ctx is cancelled. started, when set, receives the
// HTTP address once the node serves.
func runNode(ctx context.Context, cfg *config.Config, log *slog.Logger, started func(httpAddr string)) error {
	log = log.With("node", cfg.Node.ID)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	deps := replicator.Deps{Logger: log, Metrics: m}

	worker, err := replicator.NewWorker(cfg, deps)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	// Until the Raft cluster assigns tasks, a node runs every task it has.
	if err := worker.Assign(worker.AllTasks()); err != nil {
		return err
	}
	started0 := time.Now()
	status := func() any {
		return map[string]any{
			"node":   map[string]string{"id": cfg.Node.ID, "region": cfg.Node.Region},
			"uptime": time.Since(started0).Round(time.Second).String(),
			"tasks":  worker.Status(),
		}
	}
	ready := func() error {
		if !worker.Ready() {
			var waiting []string
			for _, t := range worker.Status() {
				if t.State != metrics.TaskRunning {
					waiting = append(waiting, t.ID+" ("+t.State+")")
				}
			}
			return errors.New("tasks not running: " + strings.Join(waiting, ", "))
		}
		return nil
	}
	srv, err := replicator.NewServer(cfg.Node.HTTPAddr, reg, status, ready, log)
	if err != nil {
		return err
	}
	log.Info("tributary node starting", "version", versionString(), "http", srv.Addr(), "region", cfg.Node.Region, "pipelines", len(cfg.Pipelines), "tasks", len(worker.AllTasks()))
	if started != nil {
		started(srv.Addr())
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return worker.Run(gctx) })
	g.Go(func() error { return srv.Run(gctx) })
	err = g.Wait()
	if ctx.Err() != nil {
		log.Info("tributary node stopped")
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", cfg.Node.ID, err)
	}
	return nil
}

// stderrIsTerminal is used by the demo to pick a compact output.
func stderrIsTerminal() bool {
	fi, err := os.Stderr.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
