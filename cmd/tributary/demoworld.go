package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/daemon"
	"github.com/tributary-dev/tributary/registry"
)

// demoWorld is everything the nodes talk to, in memory or on loopback.
type demoWorld struct {
	dir                string
	eu, us, central    *kfake.Cluster
	euReg, usReg, cReg *demoRegistry
	pubsub             *pstest.Server
	closers            []func()
	policies           string
}

func startDemoWorld(ctx context.Context, dir string) (*demoWorld, error) {
	w := &demoWorld{dir: dir}
	ok := false
	defer func() {
		if !ok {
			w.Close()
		}
	}()
	var err error
	for _, c := range []struct {
		dst  **kfake.Cluster
		opts []kfake.Opt
	}{
		{&w.eu, []kfake.Opt{kfake.SeedTopics(6, "payments.fuel"), kfake.SeedTopics(3, "payments.in-car")}},
		{&w.us, []kfake.Opt{kfake.SeedTopics(6, "payments.fuel"), kfake.SeedTopics(3, "payments.in-car")}},
		{&w.central, nil},
	} {
		cl, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, c.opts...)...)
		if err != nil {
			return nil, fmt.Errorf("starting an in-memory Kafka cluster: %w", err)
		}
		*c.dst = cl
		w.closers = append(w.closers, cl.Close)
	}
	for _, r := range []**demoRegistry{&w.euReg, &w.usReg, &w.cReg} {
		if *r, err = startDemoRegistry(); err != nil {
			return nil, err
		}
		w.closers = append(w.closers, (*r).Close)
	}
	w.pubsub = pstest.NewServer()
	w.closers = append(w.closers, func() { w.pubsub.Close() })

	if err := os.RemoveAll(filepath.Join(dir, "data")); err != nil { // Raft state of an earlier run
		return nil, err
	}
	w.policies = filepath.Join(dir, "policies")
	if _, err := os.Stat(w.policies); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(w.policies, 0o755); err != nil {
			return nil, err
		}
		for name, text := range demoPolicies {
			if err := os.WriteFile(filepath.Join(w.policies, name), []byte(text), 0o644); err != nil {
				return nil, err
			}
		}
	}
	keyFile := filepath.Join(dir, "hash.key")
	if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	// The central registry holds the telemetry JSON Schema the Pub/Sub
	// pipeline validates against.
	c, err := w.cReg.client()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Register(ctx, demoTelemetry+"-value", &registry.Schema{Type: registry.JSON, Text: telemetrySchema}); err != nil {
		return nil, fmt.Errorf("registering the telemetry schema: %w", err)
	}
	ok = true
	return w, nil
}

func (w *demoWorld) Close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
	w.closers = nil
}

// demoRegistry is an embedded schema registry on loopback.
type demoRegistry struct {
	url string
	srv *http.Server
}

func startDemoRegistry() (*demoRegistry, error) {
	h, err := registry.NewServer(registry.ServerOptions{})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &demoRegistry{url: "http://" + l.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}}
	go r.srv.Serve(l)
	return r, nil
}

func (r *demoRegistry) Close() { r.srv.Close() }

func (r *demoRegistry) client() (*registry.Client, error) {
	return registry.NewClient(&config.SchemaRegistry{URL: r.url}, registry.ClientOptions{})
}

// waitForLeader waits until the cluster has a leader and every node joined,
// as the first node's status reports it.
func waitForLeader(ctx context.Context, addr string) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st daemon.Status
		if _, err := getJSON(ctx, client, "http://"+addr+"/v1/status", &st); err == nil && st.Cluster.Leader.ID != "" {
			alive := 0
			for _, m := range st.Cluster.Members {
				if m.Alive {
					alive++
				}
			}
			if alive == len(demoNodes) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the demo cluster elected no leader within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freeLoopbackAddr returns a loopback address whose port was free a moment ago
// (Raft advertises its address, so it cannot listen on port 0).
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
