package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.yaml.in/yaml/v3"

	"github.com/tributary-dev/tributary/test/harness"
)

// The operator-facing files under deploy/ that name tributary's metrics.
const (
	dashboardPath = "../deploy/grafana/tributary.json"
	alertsPath    = "../deploy/prometheus/alerts.yml"
)

// grafanaPanel is the part of a Grafana panel the tests check. Rows hold their
// panels in Panels when collapsed.
type grafanaPanel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource *grafanaDatasource `json:"datasource"`
	Targets    []struct {
		RefID      string             `json:"refId"`
		Expr       string             `json:"expr"`
		Datasource *grafanaDatasource `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaInput struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	PluginID string `json:"pluginId"`
}

type grafanaDashboard struct {
	SchemaVersion int            `json:"schemaVersion"`
	Inputs        []grafanaInput `json:"__inputs"`
	Templating    struct {
		List []struct {
			Name       string             `json:"name"`
			Definition string             `json:"definition"`
			Datasource *grafanaDatasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

func loadDashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return d
}

// allPanels flattens rows (collapsed rows keep their panels inside).
func allPanels(ps []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

const dsInput = "${DS_PROMETHEUS}"

func TestDeployDashboardIsValid(t *testing.T) {
	d := loadDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want a Grafana 10 dashboard (>= 36)", d.SchemaVersion)
	}
	if !slices.ContainsFunc(d.Inputs, func(in grafanaInput) bool {
		return in.Name == "DS_PROMETHEUS" && in.Type == "datasource" && in.PluginID == "prometheus"
	}) {
		t.Errorf("__inputs lacks the DS_PROMETHEUS datasource input: %+v", d.Inputs)
	}
	hasPipeline := false
	for _, v := range d.Templating.List {
		if v.Name == "pipeline" {
			hasPipeline = true
			if v.Datasource == nil || v.Datasource.UID != dsInput {
				t.Errorf("variable pipeline: datasource %+v, want uid %s", v.Datasource, dsInput)
			}
		}
	}
	if !hasPipeline {
		t.Error("no template variable pipeline")
	}

	ids := map[int]string{}
	type rect struct {
		title      string
		x, y, w, h int
	}
	var rects []rect
	panels := allPanels(d.Panels)
	if len(panels) < 10 {
		t.Fatalf("%d panels: the dashboard looks truncated", len(panels))
	}
	for _, p := range panels {
		if p.ID <= 0 {
			t.Errorf("panel %q: id %d", p.Title, p.ID)
		} else if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, r := range rects {
			if g.X < r.x+r.w && r.x < g.X+g.W && g.Y < r.y+r.h && r.y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", r.title, p.Title)
			}
		}
		rects = append(rects, rect{p.Title, g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			continue
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("panel %q: refId %q missing or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s: empty expr", p.Title, tg.RefID)
			}
			if err := checkPromQLShape(tg.Expr); err != nil {
				t.Errorf("panel %q target %s: %v in %s", p.Title, tg.RefID, err, tg.Expr)
			}
			ds := tg.Datasource
			if ds == nil {
				ds = p.Datasource
			}
			if ds == nil || ds.UID != dsInput {
				t.Errorf("panel %q target %s: datasource %+v, want uid %s", p.Title, tg.RefID, ds, dsInput)
			}
		}
	}
}

// alertRule is one Prometheus alerting rule. Decoding is strict: an unknown
// key (a typo such as "annotation") is an error, as in promtool.
type alertRule struct {
	Alert         string            `yaml:"alert"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

type alertFile struct {
	Groups []struct {
		Name     string      `yaml:"name"`
		Interval string      `yaml:"interval"`
		Rules    []alertRule `yaml:"rules"`
	} `yaml:"groups"`
}

func loadAlerts(t *testing.T) alertFile {
	t.Helper()
	b, err := os.ReadFile(alertsPath)
	if err != nil {
		t.Fatal(err)
	}
	var f alertFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", alertsPath, err)
	}
	return f
}

var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

func TestDeployAlertsAreValid(t *testing.T) {
	f := loadAlerts(t)
	if len(f.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	names := map[string]bool{}
	groups := map[string]bool{}
	n := 0
	for _, g := range f.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q missing or repeated", g.Name)
		}
		groups[g.Name] = true
		for _, r := range g.Rules {
			n++
			where := fmt.Sprintf("group %s rule %d (%s)", g.Name, n, r.Alert)
			if r.Alert == "" {
				t.Errorf("%s: no alert name", where)
			} else if names[r.Alert] {
				t.Errorf("%s: alert name repeated", where)
			}
			names[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", where)
			} else if err := checkPromQLShape(r.Expr); err != nil {
				t.Errorf("%s: expr: %v", where, err)
			}
			if !promDuration.MatchString(r.For) {
				t.Errorf("%s: for %q, want a duration such as 5m", where, r.For)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: labels.severity %q, want critical or warning", where, s)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: annotations.%s missing", where, a)
				}
			}
			for k, text := range r.Annotations {
				if err := checkAlertTemplate(text); err != nil {
					t.Errorf("%s: annotations.%s: %v", where, k, err)
				}
			}
		}
	}
	if n < 9 {
		t.Errorf("%d rules: want at least lag, unassigned, no leader, quarantine rate, policy reload, expiry, stalled and failed tasks", n)
	}
}

// checkAlertTemplate expands an annotation the way Prometheus does (Go
// templates, $labels and $value defined first), with its humanize functions
// stubbed.
func checkAlertTemplate(text string) error {
	stub := func(v any) string { return fmt.Sprint(v) }
	funcs := template.FuncMap{"humanize": stub, "humanize1024": stub, "humanizeDuration": stub,
		"humanizePercentage": stub, "humanizeTimestamp": stub, "toUpper": strings.ToUpper, "toLower": strings.ToLower}
	tmpl, err := template.New("annotation").Funcs(funcs).Option("missingkey=zero").
		Parse("{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}" + text)
	if err != nil {
		return err
	}
	data := struct {
		Labels, ExternalLabels map[string]string
		Value                  float64
	}{Labels: map[string]string{"pipeline": "p", "instance": "i", "job": "j"}, Value: 1}
	return tmpl.Execute(io.Discard, data)
}

// checkPromQLShape catches the slips a PromQL parser would: unbalanced
// brackets and unterminated strings. (The real parser lives in the Prometheus
// server module, too large a dependency for this.)
func checkPromQLShape(expr string) error {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	for i := 0; i < len(expr); i++ {
		c := rune(expr[i])
		switch c {
		case '"', '\'', '`':
			j := i + 1
			for j < len(expr) && rune(expr[j]) != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return fmt.Errorf("unterminated string at %d", i)
			}
			i = j
		case '(', '[', '{':
			stack = append(stack, c)
		case ')', ']', '}':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return fmt.Errorf("unbalanced %q at %d", c, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		return fmt.Errorf("unclosed %q", stack[len(stack)-1])
	}
	return nil
}

var metricToken = regexp.MustCompile(`\btributary_[a-z_]+`)

// deployMetricNames returns every metric name the dashboard and the alert
// rules mention, histogram series suffixes stripped.
func deployMetricNames(t *testing.T) []string {
	t.Helper()
	set := map[string]bool{}
	for _, p := range []string{dashboardPath, alertsPath} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricToken.FindAllString(string(b), -1) {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				m = strings.TrimSuffix(m, suffix)
			}
			set[m] = true
		}
	}
	var names []string
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// TestDeployMetricsExistInTheBinary runs a tributary node on two in-memory
// Kafka clusters, with schema registries and a masking policy so that every
// labelled series exists, and checks that each metric the dashboard and the
// alerts use is exposed on /metrics.
func TestDeployMetricsExistInTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds and runs the tributary binary")
	}
	names := deployMetricNames(t)
	if len(names) < 15 {
		t.Fatalf("found only %d metric names in deploy/: %v", len(names), names)
	}
	bin := tributaryBinary(t)
	t.Setenv("TRIBUTARY_HASH_KEY", "deploy-test-hash-key-0123456789")

	const topic = "cards"
	source := harness.KFake(t, kfake.SeedTopics(2, topic))
	target := harness.KFake(t)
	srcReg := startRegistry(t, "")
	dstReg := startRegistry(t, "")
	id := srcReg.register(topic+"-value", cardSchemaA)
	polDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(polDir, "payments.yaml"), []byte(policyFile(1, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tributary.yaml")
	text := fmt.Sprintf(`node:
  id: deploy-1
  region: eu
  data_dir: %s/data
  http_addr: 127.0.0.1:0
  raft_addr: %s
kafka:
  regional:
    region: eu
    bootstrap: %s
    schema_registry: {url: %s}
  central:
    region: cloud
    bootstrap: %s
    schema_registry: {url: %s}
target: central
policies: %s
pipelines:
  - name: deploy
    source: {kafka: regional}
    topics: {include: ['%s']}
    format: avro
    tasks: 1
    refresh_interval: 1s
    groups: {include: ['deploy-.*'], interval: 1s}
`, dir, freeAddr(t), source, srcReg.url(), target, dstReg.url(), polDir, topic)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	node := runNodeProcess(t, bin, cfg)
	addr := node.httpAddr(t, 30*time.Second)
	harness.Eventually(t, 60*time.Second, "node ready", func() error {
		if node.exited() {
			t.Fatalf("tributary exited:\n%s", node.tail(4096))
		}
		return httpOK("http://" + addr + "/readyz")
	})

	const records = 20
	p := newProducer(t, source)
	for i := 0; i < records; i++ {
		tp := topic
		v := avroFrame(t, id, cardSchemaA, cardPayment{Vin: fmt.Sprintf("WVW%d", i), Email: fmt.Sprintf("driver%d@fleet.example", i%3), Card: "4111111111111111", Amount: float64(i)})
		if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &tp, Partition: int32(i % 2)}, Value: v}, nil); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, p)

	replicated := fmt.Sprintf(`tributary_records_total{outcome="replicated",pipeline="deploy"} %d`, records)
	var metrics string
	harness.Eventually(t, 90*time.Second, "records replicated and masked", func() error {
		if node.exited() {
			t.Fatalf("tributary exited:\n%s", node.tail(4096))
		}
		var err error
		if metrics, err = httpBody("http://" + addr + "/metrics"); err != nil {
			return err
		}
		for _, want := range []string{replicated, "tributary_masked_fields_total{", "tributary_policy_version{"} {
			if !strings.Contains(metrics, want) {
				return fmt.Errorf("/metrics lacks %s", want)
			}
		}
		// Heartbeats flow (the in-memory source is writable): the age of the
		// newest one in the target is small.
		m := heartbeatAgeLine.FindStringSubmatch(metrics)
		if m == nil {
			return fmt.Errorf("/metrics lacks tributary_heartbeat_age_seconds{pipeline=\"deploy\"}")
		}
		if age, err := strconv.ParseFloat(m[1], 64); err != nil || age > 5 {
			return fmt.Errorf("heartbeat age %s s, want < 5", m[1])
		}
		return nil
	})

	var missing []string
	for _, n := range names {
		if !regexp.MustCompile(`(?m)^# HELP ` + regexp.QuoteMeta(n) + ` `).MatchString(metrics) {
			missing = append(missing, n)
		}
	}
	t.Logf("%d metric names in deploy/, %d exposed", len(names), len(names)-len(missing))
	if len(missing) > 0 {
		t.Errorf("deploy/ uses metrics the binary does not expose on /metrics: %s", strings.Join(missing, ", "))
	}
	if t.Failed() {
		t.Logf("node log (tail):\n%s", node.tail(4096))
	}
}

// tributaryBinary returns the binary TestMain built (real brokers configured)
// or builds one into the test's temporary directory.
func tributaryBinary(t *testing.T) string {
	t.Helper()
	if binPath != "" {
		return binPath
	}
	bin := filepath.Join(t.TempDir(), "tributary")
	start := time.Now()
	build := exec.Command("go", "build", "-o", bin, "../cmd/tributary")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tributary: %v\n%s", err, out)
	}
	t.Logf("built tributary in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// nodeProcess is `tributary run` as a child process with its log captured.
type nodeProcess struct {
	cmd  *exec.Cmd
	out  logBuffer
	done chan struct{}
}

func runNodeProcess(t *testing.T, bin, cfg string) *nodeProcess {
	t.Helper()
	n := &nodeProcess{done: make(chan struct{})}
	n.cmd = exec.Command(bin, "run", "--config", cfg)
	n.cmd.Stdout, n.cmd.Stderr = &n.out, &n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(20 * time.Second):
			n.cmd.Process.Kill()
			<-n.done
		}
	})
	return n
}

func (n *nodeProcess) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

func (n *nodeProcess) tail(size int) string { return n.out.tail(size) }

var heartbeatAgeLine = regexp.MustCompile(`(?m)^tributary_heartbeat_age_seconds\{pipeline="deploy"\} (\S+)$`)

var startLine = regexp.MustCompile(`msg="tributary node starting".*\bhttp=(\S+)`)

// httpAddr waits for the start-up log line and returns the bound HTTP address.
func (n *nodeProcess) httpAddr(t *testing.T, timeout time.Duration) string {
	t.Helper()
	var addr string
	harness.Eventually(t, timeout, "the node's start-up log line", func() error {
		if n.exited() {
			t.Fatalf("tributary exited:\n%s", n.tail(4096))
		}
		m := startLine.FindStringSubmatch(n.out.String())
		if m == nil {
			return fmt.Errorf("no line with msg=\"tributary node starting\" and http=ADDR yet")
		}
		addr = m[1]
		return nil
	})
	return addr
}

func httpBody(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

func httpOK(url string) error {
	_, err := httpBody(url)
	return err
}
