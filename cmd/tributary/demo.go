package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tributary-dev/tributary/config"
)

// demoConfig is the node config the demo writes and runs. It is a real config
// file: `--dir` keeps it so a user can edit it and run it with `tributary run`.
const demoConfig = `# Written by "tributary demo": two in-memory Kafka clusters on loopback.
node:
  id: demo-1
  region: eu
  data_dir: %[1]s/data
  http_addr: 127.0.0.1:%[4]d
  raft_addr: %[5]s
kafka:
  eu-west:
    region: eu
    bootstrap: %[2]s
  central:
    region: cloud
    bootstrap: %[3]s
target: central
pipelines:
  - name: eu-payments
    source: {kafka: eu-west}
    topics: {include: ['payments\..*'], exclude: ['^_']}
    rename: "{source}.{topic}"
    tasks: 2
    refresh_interval: 5s
  - name: eu-telemetry
    source: {kafka: eu-west}
    topics: {include: ['telemetry\..*']}
    tasks: 1
    refresh_interval: 5s
`

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 0, "stop after this long (0: until SIGINT)")
	dir := fs.String("dir", "", "keep the generated config in this folder (default: a temporary folder, removed on exit)")
	rate := fs.Int("rate", 2000, "records per second the generator writes")
	httpPort := fs.Int("http-port", 7480, "port of the status API (0: any free port)")
	logLevel := fs.String("log-level", "warn", "log level of the node")
	if err := fs.Parse(args); err != nil {
		return usageErr("%w", err)
	}
	log, err := newLogger(stderr, "text", *logLevel)
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	start := time.Now()
	work := *dir
	if work == "" {
		work, err = os.MkdirTemp("", "tributary-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}

	source, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "payments.fuel", "payments.in-car"), kfake.SeedTopics(3, "telemetry.engine"))
	if err != nil {
		return fmt.Errorf("starting in-memory source cluster: %w", err)
	}
	defer source.Close()
	target, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return fmt.Errorf("starting in-memory target cluster: %w", err)
	}
	defer target.Close()

	cfgPath := filepath.Join(work, "tributary.yaml")
	raftAddr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}
	text := fmt.Sprintf(demoConfig, work, source.ListenAddrs()[0], target.ListenAddrs()[0], *httpPort, raftAddr)
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return &exitError{code: 2, err: err}
	}

	gen, err := newGenerator(source.ListenAddrs()[0])
	if err != nil {
		return err
	}
	defer gen.Close()
	go gen.Run(ctx, *rate)

	nodeErr := make(chan error, 1)
	totals := make(chan map[string]float64, 1)
	addrc := make(chan string, 1)
	go func() {
		nodeErr <- runNode(ctx, cfg, log, nodeHooks{
			started: func(a string) { addrc <- a },
			stopped: func(reg prometheus.Gatherer) { totals <- replicatedTotals(reg) },
		})
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-nodeErr:
		return err
	}
	fmt.Fprintf(stdout, "tributary demo: started in %s\n", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "  config:     %s\n", cfgPath)
	fmt.Fprintf(stdout, "  status page: http://%s/   status API: http://%s/v1/status   metrics: http://%s/metrics\n", addr, addr, addr)

	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-nodeErr:
			return err
		case <-ctx.Done():
			err := <-nodeErr
			final := ""
			select {
			case t := <-totals:
				for _, p := range cfg.Pipelines {
					final += fmt.Sprintf("%s: %.0f replicated   ", p.Name, t[p.Name])
				}
			default:
			}
			fmt.Fprintf(stdout, "final: generated %d records; %s\n", gen.sent.Load(), strings.TrimSpace(final))
			return err
		case <-tick.C:
			fmt.Fprintf(stdout, "%s  generated %d  %s\n", time.Now().Format("15:04:05"), gen.sent.Load(), summarize(ctx, addr, cfg))
		}
	}
}

// summarize reads the node's status: records replicated and lag per pipeline.
func summarize(ctx context.Context, httpAddr string, cfg *config.Config) string {
	var st Status
	client := &http.Client{Timeout: 2 * time.Second}
	if _, err := getJSON(ctx, client, "http://"+httpAddr+"/v1/status", &st); err != nil {
		return "status unavailable: " + err.Error()
	}
	repl, lag := map[string]int64{}, map[string]int64{}
	for _, t := range st.Local {
		repl[t.Pipeline] += t.Replicated
		lag[t.Pipeline] += t.Lag
	}
	out := ""
	for _, p := range cfg.Pipelines {
		out += fmt.Sprintf("%s: %d replicated, lag %d   ", p.Name, repl[p.Name], lag[p.Name])
	}
	return strings.TrimSpace(out)
}

// generator writes connected-car records into the demo's source cluster.
type generator struct {
	p    *kafka.Producer
	sent atomicInt
}

func newGenerator(bootstrap string) (*generator, error) {
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "linger.ms": 5, "go.delivery.reports": false, "log_level": 0, "enable.metrics.push": false})
	if err != nil {
		return nil, fmt.Errorf("starting demo generator: %w", err)
	}
	return &generator{p: p}, nil
}

func (g *generator) Close() { g.p.Flush(2000); g.p.Close() }

func (g *generator) Run(ctx context.Context, rate int) {
	topics := []string{"payments.fuel", "payments.in-car", "telemetry.engine"}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	r := rand.New(rand.NewPCG(1, 2))
	perTick := max(rate/10, 1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for i := 0; i < perTick; i++ {
			topic := topics[r.IntN(len(topics))]
			vin := "WVW" + strconv.Itoa(100000+r.IntN(500))
			var v any
			if topic == "telemetry.engine" {
				v = map[string]any{"vin": vin, "rpm": 800 + r.IntN(5000), "coolant_c": 70 + r.IntN(40), "ts": time.Now().UnixMilli()}
			} else {
				v = map[string]any{"vin": vin, "amount_eur": float64(r.IntN(20000)) / 100, "station": "DE-" + strconv.Itoa(r.IntN(900)), "ts": time.Now().UnixMilli()}
			}
			b, _ := json.Marshal(v)
			if err := g.p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Key: []byte(vin), Value: b}, nil); err == nil {
				g.sent.Add(1)
			}
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

// replicatedTotals sums tributary_records_total{outcome="replicated"} per pipeline.
func replicatedTotals(reg prometheus.Gatherer) map[string]float64 {
	out := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if mf.GetName() != "tributary_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var pipeline, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "pipeline":
					pipeline = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			if outcome == "replicated" {
				out[pipeline] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}
