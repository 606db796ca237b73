package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"golang.org/x/sync/errgroup"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/daemon"
	"github.com/tributary-dev/tributary/registry"
)

// The demo's world: a fleet operator with payments in two regional Kafka
// clusters and vehicle telemetry in Pub/Sub, mirrored into one central cluster.
const (
	demoProject      = "acme-fleet"
	demoPubSubTopic  = "vehicle-telemetry"
	demoSubscription = "telemetry-sub"
	demoTelemetry    = "fleet.telemetry"
)

// demoNodes are the three Raft nodes, one per region.
var demoNodes = []struct{ id, region string }{{"eu-1", "eu"}, {"us-1", "us"}, {"cloud-1", "cloud"}}

// demoConfig is one node's config. It is a real config file: --dir keeps it.
const demoConfig = `# Written by "tributary demo": in-memory Kafka clusters (kfake), a Pub/Sub fake
# (pstest) and schema registries on loopback, rewritten at every start (the
# addresses change). The policies folder is kept and watched: edit it live.
node:
  id: {{id}}
  region: {{region}}
  data_dir: {{dir}}/data/{{id}}
  raft_addr: {{raft}}
  http_addr: {{http}}
cluster:
  bootstrap: [{{bootstrap}}]
  heartbeat_timeout: 300ms
  election_timeout: 300ms
  failure_timeout: 3s
kafka:
  eu-west:
    region: eu
    bootstrap: {{eu}}
    schema_registry: {url: "{{eu_registry}}"}
  us-east:
    region: us
    bootstrap: {{us}}
    schema_registry: {url: "{{us_registry}}"}
  central:
    region: cloud
    bootstrap: {{central}}
    schema_registry: {url: "{{central_registry}}"}
pubsub:
  fleet:
    region: cloud
    project: ` + demoProject + `
    emulator_host: "{{pubsub}}"
target: central
policies: {{dir}}/policies
hash_key_file: {{dir}}/hash.key
pipelines:
  - name: eu-payments
    source: {kafka: eu-west}
    topics: {include: ['payments\..*']}
    format: avro
    tasks: 2
    refresh_interval: 5s
  - name: us-payments
    source: {kafka: us-east}
    topics: {include: ['payments\..*']}
    format: avro
    tasks: 2
    refresh_interval: 5s
  - name: fleet-telemetry
    source: {pubsub: fleet, subscription: ` + demoSubscription + `}
    topic: ` + demoTelemetry + `
    key_attribute: vin
    format: json
    tasks: 2
    pubsub:
      streams: 4
      schema: {subject: ` + demoTelemetry + `-value}
`

// demoPolicies are the example policy files, written unless --dir already
// has a policies folder (then the user's edits stay).
var demoPolicies = map[string]string{
	"payments.yaml": `# Card payments at fuel stations and for in-car services.
policy: payments-pii
version: 1
owner: compliance@acme.example
applies_to: {pipelines: [eu-payments, us-payments]}
rules:
  - match: {field: card.number}
    action: mask
    keep_last: 4
    description: PCI DSS 3.3, show the last four digits at most
  - match: {field: customer.email}
    action: hash
  - match: {field: customer.name}
    action: redact
  - match: {field: location.lat}
    action: generalize
    precision: 2
  - match: {field: location.lon}
    action: generalize
    precision: 2
on_unmatched_pii: quarantine
`,
	"telemetry.yaml": `# Vehicle telemetry from Pub/Sub.
policy: telemetry-pii
version: 1
owner: compliance@acme.example
applies_to: {pipelines: [fleet-telemetry]}
rules:
  - match: {field: driver_email}
    action: hash
  - match: {field: "location.*"}
    action: generalize
    precision: 2
on_unmatched_pii: quarantine
`,
}

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

// writeConfigs writes and loads the three nodes' configs.
func (w *demoWorld) writeConfigs(httpPort int) ([]*config.Config, error) {
	var boot []string
	raft := map[string]string{}
	for _, n := range demoNodes {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		raft[n.id] = addr
		boot = append(boot, n.id+"@"+addr)
	}
	var out []*config.Config
	for i, n := range demoNodes {
		port := 0
		if httpPort != 0 {
			port = httpPort + i
		}
		text := strings.NewReplacer(
			"{{id}}", n.id, "{{region}}", n.region, "{{dir}}", w.dir, "{{raft}}", raft[n.id],
			"{{http}}", fmt.Sprintf("127.0.0.1:%d", port), "{{bootstrap}}", strings.Join(boot, ", "),
			"{{eu}}", w.eu.ListenAddrs()[0], "{{us}}", w.us.ListenAddrs()[0], "{{central}}", w.central.ListenAddrs()[0],
			"{{eu_registry}}", w.euReg.url, "{{us_registry}}", w.usReg.url, "{{central_registry}}", w.cReg.url,
			"{{pubsub}}", w.pubsub.Addr,
		).Replace(demoConfig)
		path := filepath.Join(w.dir, n.id+".yaml")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
		cfg, err := config.Load(path)
		if err != nil {
			return nil, &exitError{code: 2, err: err}
		}
		out = append(out, cfg)
	}
	return out, nil
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
	r := &demoRegistry{url: "http://" + l.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
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

// pipelineSummary is what the demo prints per pipeline, summed over the nodes.
type pipelineSummary struct {
	records, quarantined, masked, lag float64
}

func (s pipelineSummary) line(name string) string {
	return fmt.Sprintf("%-16s records %8.0f   lag %6.0f   masked fields %8.0f   quarantined %5.0f", name, s.records, s.lag, s.masked, s.quarantined)
}

// gatherDemo sums the nodes' metrics per pipeline: records replicated (Kafka)
// or written (Pub/Sub), quarantined, fields masked, and lag (source records
// not yet replicated; for Pub/Sub the messages held, not yet acked).
func gatherDemo(regs []prometheus.Gatherer) map[string]pipelineSummary {
	out := map[string]pipelineSummary{}
	add := func(p string, f func(*pipelineSummary)) {
		s := out[p]
		f(&s)
		out[p] = s
	}
	for _, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				p := labels["pipeline"]
				if p == "" {
					continue
				}
				v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
				switch mf.GetName() {
				case "tributary_records_total", "tributary_pubsub_records_total":
					switch labels["outcome"] {
					case "replicated", "written":
						add(p, func(s *pipelineSummary) { s.records += v })
					case "quarantined":
						add(p, func(s *pipelineSummary) { s.quarantined += v })
					}
				case "tributary_masked_fields_total":
					add(p, func(s *pipelineSummary) { s.masked += v })
				case "tributary_replication_lag_records", "tributary_pubsub_outstanding_messages":
					add(p, func(s *pipelineSummary) { s.lag += v })
				}
			}
		}
	}
	return out
}
