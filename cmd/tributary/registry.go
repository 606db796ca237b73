package main

import (
	"context"
	"flag"
	"io"

	"github.com/tributary-dev/tributary/registry"
)

// cmdRegistry runs the embedded Confluent-compatible schema registry.
func cmdRegistry(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "serve" {
		return usageErr("usage: tributary registry serve --addr A [--data FILE] [--basic-auth-file F] [--tls-cert F --tls-key F]")
	}
	fs := flag.NewFlagSet("registry serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	data := fs.String("data", "", "file that keeps the registry across restarts (default: in memory)")
	authFile := fs.String("basic-auth-file", "", "require basic auth: a file of user:hash lines (bcrypt, or sha256:<hex>), mode 0600")
	cert := fs.String("tls-cert", "", "serve HTTPS with this PEM certificate (with --tls-key)")
	key := fs.String("tls-key", "", "the certificate's PEM key file, mode 0600")
	if err := fs.Parse(args[1:]); err != nil {
		return usageErr("%w", err)
	}
	log, err := newLogger(stderr, "text", "info")
	if err != nil {
		return err
	}
	opts := registry.ServerOptions{DataFile: *data, Logger: log, TLSCertFile: *cert, TLSKeyFile: *key}
	if *authFile != "" {
		if opts.BasicAuth, err = registry.LoadBasicAuth(*authFile); err != nil {
			return err
		}
	}
	return registry.Serve(ctx, *addr, opts)
}
