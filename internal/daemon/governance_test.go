package daemon

import (
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/replicator/metrics"
)

// testPipelines is the governance of testdata/governance.yaml, wired as Run
// wires it.
func testPipelines(t *testing.T) (*config.Config, *pipelines) {
	t.Helper()
	cfg, err := config.Load(filepath.Join("testdata", "governance.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := newPipelines(cfg, metrics.New(reg), reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return cfg, p
}

func TestCheckMaskable(t *testing.T) {
	cfg, p := testPipelines(t)
	tests := []struct {
		name   string
		folder string // under testdata/policies
		// want are the refusals, each by pipeline (format), policy and file;
		// none: the folder is accepted.
		want [][]string
	}{
		{
			name: "a policy that names a bytes pipeline is refused, naming the pipeline, the policy and its file", folder: "raw",
			want: [][]string{{"pipeline eu-raw (format bytes)", "raw-pii@2", "testdata/policies/raw/raw.yaml"}},
		},
		{
			name: "a policy without a scope is refused for every pipeline that cannot be masked, Kafka and Pub/Sub", folder: "everywhere",
			want: [][]string{
				{"pipeline eu-raw (format bytes)", "all-pii@1", "testdata/policies/everywhere/all.yaml"},
				{"pipeline fleet-raw (format bytes)", "all-pii@1", "testdata/policies/everywhere/all.yaml"},
			},
		},
		{
			// Which topics a pipeline mirrors is only known once it runs.
			name: "a policy scoped by topics alone is refused for every pipeline that cannot be masked", folder: "topics",
			want: [][]string{
				{"pipeline eu-raw (format bytes)", "pii-topics@1"},
				{"pipeline fleet-raw (format bytes)", "pii-topics@1"},
			},
		},
		{
			name: "policies scoped to pipelines that can be masked are accepted", folder: "scoped",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := policy.LoadDir(filepath.Join("testdata", "policies", tt.folder))
			if err != nil {
				t.Fatal(err)
			}
			err = p.checkMaskable(cfg, set)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d refusals, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, want := range tt.want {
				for _, s := range want {
					if !strings.Contains(lines[i], s) {
						t.Errorf("refusal %d %q does not name %q", i, lines[i], s)
					}
				}
			}
			for _, ok := range []string{"eu-customers", "eu-events", "fleet-telemetry"} {
				if strings.Contains(err.Error(), ok) {
					t.Errorf("a pipeline that can be masked is refused: %v", err)
				}
			}
		})
	}

	t.Run("every configured pipeline has its step, and only the bytes and Pub/Sub bytes ones cannot mask", func(t *testing.T) {
		want := map[string]bool{"eu-raw": false, "eu-events": true, "eu-customers": true, "fleet-raw": false, "fleet-telemetry": true}
		for name, maskable := range want {
			s := p.steps[name]
			if s == nil {
				t.Errorf("pipeline %s has no step", name)
				continue
			}
			if s.Maskable() != maskable {
				t.Errorf("pipeline %s: Maskable() = %v, want %v", name, s.Maskable(), maskable)
			}
		}
		if len(p.steps) != len(want) {
			t.Errorf("%d steps, want %d", len(p.steps), len(want))
		}
	})
}
