package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/internal/auth"
	"github.com/tributary-dev/tributary/internal/nodecert"
	"github.com/tributary-dev/tributary/internal/redact"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/coord"
	"github.com/tributary-dev/tributary/replicator/metrics"
	"github.com/tributary-dev/tributary/statuspage"
)

// Options are what a node needs besides its config. Nil fields get defaults.
type Options struct {
	// Logger receives the node's logs; default: discard.
	Logger *slog.Logger
	// Version is reported in /v1/status and the start log line.
	Version string
	// Started is called once the node serves HTTP, with its address and its
	// metrics registry; the demo and tests watch nodes run in-process with it.
	Started func(httpAddr string, reg prometheus.Gatherer)
}

// ConfigError is an error Run found in its configuration (before anything
// ran): the command exits 2 for it, 1 for runtime failures.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Run assembles a node from cfg — the Raft member, the Kafka workers, the Pub/Sub
// receivers, the governance step, the policy rollout and the HTTP server — and
// runs it until ctx is cancelled. On cancellation the workers drain first (each
// task commits or aborts its open transaction), then Raft stops; the HTTP API
// answers until the end.
func Run(ctx context.Context, cfg *config.Config, opts Options) (err error) {
	// Secrets are kept out of logs, errors and answers where they are used;
	// this removes any that a library quotes (librdkafka echoes
	// sasl.oauthbearer.config in its errors) on the way out.
	secrets := cfg.SecretValues()
	if key, kerr := policy.LoadHashKey(cfg.HashKeyFile, os.Getenv); kerr == nil {
		secrets = append(secrets, string(key))
	}
	red := redact.New(secrets...)
	defer func() { err = red.Error(err) }()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = slog.New(red.Handler(log.Handler())).With("node", cfg.Node.ID)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Certificates and tokens first: a key or tokens file others can read
	// stops the node before it connects anywhere.
	certs, err := loadCerts(cfg)
	if err != nil {
		return &ConfigError{Err: err}
	}
	guard, err := newGuard(cfg, certs, log, reg)
	if err != nil {
		return &ConfigError{Err: err}
	}
	m := metrics.New(reg)
	gov, err := newPipelines(cfg, m, reg, log)
	if err != nil {
		return &ConfigError{Err: err}
	}
	defer gov.Close()
	for _, p := range cfg.Pipelines {
		if p.Ungoverned() {
			log.Warn("pipeline runs ungoverned (governance: none): its records are never masked", "pipeline", p.Name)
		}
	}
	pol := newRollout(cfg.Policies, gov.masking, reg, log)
	pol.known = make(chan struct{})
	if cfg.Policies != "" {
		// This node's own folder must not apply to a pipeline it cannot mask;
		// a bundle that arrives later and does stops that pipeline instead.
		if set, err := policy.LoadDir(cfg.Policies); err == nil {
			if err := gov.checkMaskable(cfg, set); err != nil {
				return &ConfigError{Err: fmt.Errorf("policies %s: %w", cfg.Policies, err)}
			}
		}
	}
	deps := replicator.Deps{Logger: log, Metrics: m, Transformers: gov.transformers(cfg)}

	worker, err := replicator.NewWorker(cfg, deps)
	if err != nil {
		return &ConfigError{Err: err}
	}
	br, err := newBridges(cfg, log, reg, gov.steps)
	if err != nil {
		return err
	}
	defer br.Close()
	n := &node{cfg: cfg, version: opts.Version, log: log, worker: worker, metrics: m, policy: pol, bridges: br,
		peers: newPeerClient(certs, cfg.Node.ID, cfg.Node.RaftAddr, memberStatusTimeout), security: securityMode(cfg, certs, log)}
	n.srv, err = replicator.NewServer(cfg.Node.HTTPAddr, reg, n.status, n.ready, log)
	if err != nil {
		return err
	}
	if certs != nil {
		// Tokens reach the API too: a client certificate is verified when
		// given, required only where the handlers say so.
		n.srv.UseTLS(certs.ServerConfig(false))
	}
	// Members ask each other for /v1/status (the cluster view).
	n.srv.HandleStatus(guard.RequireOrNode(auth.Read, auth.EndpointStatus, n.statusHandler()))
	n.srv.Redact(red.String)
	ccfg, err := coordConfig(cfg, n.srv.Addr(), certs)
	if err != nil {
		return &ConfigError{Err: err}
	}
	n.disk = newDiskGuard(cfg.Node.DataDir, cfg.Node.MinFree(), log)
	n.coord, err = coord.New(ccfg, coord.Deps{Logger: log, Registerer: reg,
		Client: nodeClient(cfg, certs, 10*time.Second), Guard: clusterGuard(guard), DiskFull: n.disk.writeFailed})
	if err != nil {
		return fmt.Errorf("starting raft: %w", err)
	}
	// Checked once before the node registers, so that a node starting on a
	// full data_dir never takes tasks.
	n.disk.set = n.coord.SetUnhealthy
	n.disk.check(time.Now(), diskCheckInterval)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tributary_data_dir_free_bytes",
		Help: "Free bytes of the file system of node.data_dir, as last read (every 2 s); below node.min_free_bytes the node declines tasks.",
	}, n.disk.freeBytes), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tributary_data_dir_min_free_bytes",
		Help: "node.min_free_bytes: below this free space on data_dir the node declines tasks.",
	}, func() float64 { return float64(cfg.Node.MinFree()) }))
	if err := n.coord.SetTasks(taskSpecs(cfg)); err != nil {
		n.coord.Close()
		return err
	}
	cluster := n.coord.Handler()
	n.srv.Handle("/v1/cluster", cluster)
	n.srv.Handle("/v1/cluster/", cluster)
	n.srv.Handle("POST /v1/policies/reload", guard.Require(auth.Operate, auth.EndpointPoliciesReload, pol.reloadHandler()))
	n.srv.Handle("GET /v1/offsets/translate", guard.Require(auth.Read, auth.EndpointOffsetsTranslate, replicator.TranslateHandler(cfg)))
	// The status page: "/{$}" rather than "/", which the mux cannot order
	// against the method-less /v1/cluster/ routes.
	page := statuspage.Handler()
	n.srv.Handle("GET /{$}", page)
	n.srv.Handle("GET /ui/", page)
	log.Info("tributary node starting", "version", opts.Version, "http", n.srv.Addr(), "raft", cfg.Node.RaftAddr,
		"region", cfg.Node.Region, "pipelines", len(cfg.Pipelines), "tasks", len(worker.AllTasks()))
	if opts.Started != nil {
		opts.Started(n.srv.Addr(), reg)
	}

	// The worker drains before Raft stops, so a task never outlives the node's
	// membership; the HTTP API answers until the end.
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	g, gctx := errgroup.WithContext(ctx)
	workerDone := make(chan error, 1)
	go func() { workerDone <- worker.Run(wctx) }()
	g.Go(func() error { return n.coord.Run(gctx) })
	g.Go(func() error { n.disk.run(gctx, diskCheckInterval); return nil })
	g.Go(func() error { return n.follow(gctx) })
	g.Go(func() error { pol.follow(gctx, n.coord.Policy()); return nil })
	g.Go(func() error { pol.awaitBundle(gctx, n.coord, 200*time.Millisecond); return nil })
	g.Go(func() error { pol.watch(gctx, n.coord, policyPollInterval); return nil })
	srvCtx, srvCancel := context.WithCancel(context.Background())
	srvDone := make(chan error, 1)
	go func() { srvDone <- n.srv.Run(srvCtx) }()

	<-gctx.Done()
	wcancel()
	werr := <-workerDone
	err = g.Wait()
	srvCancel()
	serr := <-srvDone
	if ctx.Err() != nil {
		log.Info("tributary node stopped")
	}
	if err = errors.Join(err, werr, serr); err != nil {
		return fmt.Errorf("node %s: %w", cfg.Node.ID, err)
	}
	return nil
}

// node ties the Raft node to the worker and serves their status.
type node struct {
	cfg     *config.Config
	version string
	log     *slog.Logger
	worker  *replicator.Worker
	coord   *coord.Node
	srv     *replicator.Server
	metrics *metrics.Set
	policy  *rollout
	bridges *bridges
	peers   peerClient // asks the other members for the cluster status
	disk    *diskGuard
	// security is Status.Security.
	security string
}

// loadCerts loads security.tls (nil when not configured). Validate read the
// files already; they are read again here, as they may have changed since.
func loadCerts(cfg *config.Config) (*nodecert.Bundle, error) {
	f, ok := cfg.TLSFiles()
	if !ok {
		return nil, nil
	}
	b, err := nodecert.Load(f)
	if err != nil {
		return nil, fmt.Errorf("security.tls: %w", err)
	}
	if b.ID != cfg.Node.ID || b.Region != cfg.Node.Region {
		return nil, fmt.Errorf("security.tls.cert_file: certificate %s names node %q in region %q, but node.id is %q and node.region is %q",
			f.Cert, b.ID, b.Region, cfg.Node.ID, cfg.Node.Region)
	}
	return b, nil
}

// coordConfig builds the Raft node's config. A node with neither
// cluster.bootstrap nor cluster.join forms a cluster of one.
func coordConfig(cfg *config.Config, httpAddr string, certs *nodecert.Bundle) (coord.Config, error) {
	peers, err := coord.ParsePeers(cfg.Cluster.Bootstrap)
	if err != nil {
		return coord.Config{}, err
	}
	raftAdvertised := cfg.Node.RaftAddr
	if cfg.Node.RaftAdvertiseAddr != "" {
		raftAdvertised = cfg.Node.RaftAdvertiseAddr
	}
	if len(peers) == 0 && len(cfg.Cluster.Join) == 0 {
		peers = []coord.Peer{{ID: cfg.Node.ID, Addr: raftAdvertised}}
	}
	return coord.Config{
		NodeID: cfg.Node.ID, Region: cfg.Node.Region, RaftAddr: cfg.Node.RaftAddr, RaftAdvertise: cfg.Node.RaftAdvertiseAddr,
		HTTPAddr: advertisedHTTP(httpAddr, cfg.Node.HTTPAdvertiseAddr, raftAdvertised), DataDir: cfg.Node.DataDir,
		Bootstrap: peers, Join: cfg.Cluster.Join,
		HeartbeatTimeout: cfg.Cluster.HeartbeatTimeout.D(), ElectionTimeout: cfg.Cluster.ElectionTimeout.D(),
		FailureTimeout: cfg.Cluster.FailureTimeout.D(), RebalanceMargin: cfg.Cluster.RebalanceMargin,
		HasPolicies: cfg.Policies != "",
		Voters:      cfg.Cluster.Voters, TLS: certs,
		CheckBundle: checkBundle,
	}, nil
}

// advertisedHTTP is the HTTP address other nodes use to reach this one:
// node.http_advertise_addr when set, else the bound address with an
// unspecified host (0.0.0.0, ::) replaced by the host of the advertised Raft
// address, which peers already reach.
func advertisedHTTP(bound, advertise, raftAddr string) string {
	if advertise != "" {
		return advertise
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if rh, _, err := net.SplitHostPort(raftAddr); err == nil {
			host = rh
		}
	}
	return net.JoinHostPort(host, port)
}

// taskSpecs lists every task of the configured pipelines (Kafka and Pub/Sub)
// with the region of its source: the leader places a task only on nodes of
// that region.
func taskSpecs(cfg *config.Config) []coord.TaskSpec {
	var specs []coord.TaskSpec
	for _, p := range cfg.Pipelines {
		var region string
		switch {
		case p.Source.Kafka != "":
			region = cfg.Kafka[p.Source.Kafka].Region
		case p.Source.PubSub != "":
			region = cfg.PubSub[p.Source.PubSub].Region
		default:
			continue
		}
		for i := 0; i < p.Tasks; i++ {
			specs = append(specs, coord.TaskSpec{ID: replicator.TaskID{Pipeline: p.Name, Index: i}.String(), Pipeline: p.Name, Region: region})
		}
	}
	return specs
}

// follow hands the tasks Raft assigns to this node to the worker, reports their
// load to the leader, and keeps the unassigned-task gauge current.
func (n *node) follow(ctx context.Context) error {
	regions := map[string]string{}
	for _, s := range taskSpecs(n.cfg) {
		regions[s.ID] = s.Region
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := map[string]int64{}
	lastAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ids := <-n.coord.Assigned():
			var tasks, psTasks []replicator.TaskID
			for _, s := range ids {
				id, err := replicator.ParseTaskID(s)
				if err != nil {
					n.log.Error("ignoring assigned task", "task", s, "err", err)
					continue
				}
				// Defence in depth for data residency: the leader never does this,
				// but a node never reads raw data of another region.
				if r, ok := regions[s]; !ok || r != n.cfg.Node.Region {
					n.log.Error("refusing assigned task: its source is in another region or unknown here", "task", s, "task_region", r, "node_region", n.cfg.Node.Region)
					continue
				}
				if n.bridges.has(id) {
					psTasks = append(psTasks, id)
				} else {
					tasks = append(tasks, id)
				}
			}
			if err := n.worker.Assign(tasks); err != nil {
				n.log.Error("applying assignment", "err", err)
			}
			n.bridges.Assign(ctx, psTasks)
		case now := <-tick.C:
			n.metrics.Tasks.WithLabelValues(metrics.TaskUnassigned).Set(float64(n.coord.Unassigned()))
			if now.Sub(lastAt) < 5*time.Second {
				continue
			}
			load := map[string]float64{}
			secs := now.Sub(lastAt).Seconds()
			cur := map[string]int64{}
			for _, t := range n.worker.Status() {
				cur[t.ID] = t.Replicated
				if prev, ok := last[t.ID]; ok && t.Replicated >= prev {
					load[t.ID] = float64(t.Replicated-prev) / secs
				}
			}
			last, lastAt = cur, now
			if len(load) > 0 {
				n.coord.ReportLoad(load)
			}
		}
	}
}

// status is the plain /v1/status: this node's view of the cluster and the
// figures of the tasks it runs.
func (n *node) status() any { return n.localStatus() }

func (n *node) localStatus() Status {
	cs := n.coord.Status()
	local := append(n.worker.Status(), n.bridges.Status()...)
	byID := map[string]replicator.TaskStatus{}
	for _, t := range local {
		byID[t.ID] = t
	}
	st := Status{
		Node:     NodeInfo{ID: n.cfg.Node.ID, Region: n.cfg.Node.Region, Version: n.version},
		Security: n.security,
		Cluster:  cs, Local: local, Policy: n.policy.status(),
		Pipelines: n.pipelineInfo(),
		Disk:      n.disk.status(),
	}
	for _, t := range cs.Tasks {
		v := TaskView{TaskStatus: t}
		if l, ok := byID[t.ID]; ok {
			lag := l.Lag
			v.Running, v.Partitions, v.Lag, v.Replicated, v.Error = l.State, l.Partitions, &lag, l.Replicated, l.Error
		}
		st.Tasks = append(st.Tasks, v)
	}
	return st
}

func (n *node) ready() error {
	if err := n.coord.Halted(); err != nil {
		return err
	}
	if reason := n.disk.unhealthy(); reason != "" {
		return errors.New(reason + "; this node declines tasks until space returns")
	}
	if !n.coord.Ready() {
		return errors.New("no contact with a Raft leader")
	}
	if !n.worker.Ready() {
		var waiting []string
		for _, t := range n.worker.Status() {
			if t.State != metrics.TaskRunning {
				waiting = append(waiting, t.ID+" ("+t.State+")")
			}
		}
		return errors.New("tasks not running: " + strings.Join(waiting, ", "))
	}
	return nil
}

// pipelineInfo lists the configured pipelines for /v1/status.
func (n *node) pipelineInfo() []PipelineInfo {
	sources := n.pipelineSources()
	out := make([]PipelineInfo, 0, len(n.cfg.Pipelines))
	for _, p := range n.cfg.Pipelines {
		gov := config.GovernanceEnforced
		if p.Ungoverned() {
			gov = config.GovernanceNone
		}
		out = append(out, PipelineInfo{Name: p.Name, Source: sources[p.Name], Format: p.Format, Governance: gov})
	}
	return out
}
