package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/auth"
	"github.com/tributary-dev/tributary/internal/daemon"
)

func cmdConfigCheck(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usageErr("usage: tributary config check FILE")
	}
	cfg, err := config.Load(args[0])
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	// The tokens file is checked as the node checks it at start: its
	// permissions and every entry.
	if f := cfg.Security.TokensFile; f != "" {
		if _, err := auth.Load(f); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("%s: security.tokens_file: %w", args[0], err)}
		}
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
	return runNode(ctx, cfg, daemon.Options{Logger: log})
}

// runNode runs one node until ctx is cancelled; an error in its configuration
// exits 2.
func runNode(ctx context.Context, cfg *config.Config, opts daemon.Options) error {
	opts.Version = versionString()
	err := daemon.Run(ctx, cfg, opts)
	var ce *daemon.ConfigError
	if errors.As(err, &ce) {
		return &exitError{code: 2, err: err}
	}
	return err
}
