package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/replicator/coord"
	"github.com/tributary-dev/tributary/test/harness"
)

// paymentsPolicy is the policy file of payments-pii at version; keep is the
// card number's keep_last, so that two files of one version can differ.
func paymentsPolicy(version, keep int) string {
	return fmt.Sprintf(`policy: payments-pii
version: %d
owner: compliance@acme.example
applies_to: {pipelines: [eu-payments]}
rules:
  - match: {field: customer.email}
    action: redact
  - match: {field: card.number}
    action: mask
    keep_last: %d
`, version, keep)
}

const fleetPolicy = `policy: fleet-telemetry
version: 1
owner: privacy@acme.example
applies_to: {pipelines: [fleet-telemetry]}
rules:
  - match: {field: driver.name}
    action: redact
`

// writePolicy replaces dir/name with content at once, as an editor saving
// through a rename does: the rollout never reads a half-written file.
func writePolicy(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// fakeLog plays the Raft log for the rollout. ProposePolicy fails with the
// next error of fail while there is one; otherwise it records the proposal and
// delivers it on applied, as the log applies a bundle, at the next index.
type fakeLog struct {
	mu        sync.Mutex
	fail      []error
	calls     int
	proposals []coord.PolicyBundle
	applied   chan coord.PolicyBundle
}

func newFakeLog(fail ...error) *fakeLog {
	return &fakeLog{fail: fail, applied: make(chan coord.PolicyBundle, 16)}
}

func (l *fakeLog) ProposePolicy(_ context.Context, version int64, data []byte, hash, source string) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if len(l.fail) > 0 {
		err := l.fail[0]
		l.fail = l.fail[1:]
		return 0, err
	}
	b := coord.PolicyBundle{Version: version, Data: data, Hash: hash, Source: source,
		AppliedIndex: uint64(41 + len(l.proposals)), AppliedAt: time.Now().UTC()}
	l.proposals = append(l.proposals, b)
	l.applied <- b
	return b.AppliedIndex, nil
}

// state returns the number of ProposePolicy calls and the proposals recorded.
func (l *fakeLog) state() (int, []coord.PolicyBundle) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls, slices.Clone(l.proposals)
}

// testRollout is a rollout with the masking it activates bundles in and its
// metrics.
type testRollout struct {
	*rollout
	masking *governance.Masking
	reg     *prometheus.Registry
}

func newTestRollout(dir string) *testRollout {
	reg := prometheus.NewRegistry()
	masking := governance.NewMasking(governance.MaskingOptions{WaitForBundle: true})
	return &testRollout{rollout: newRollout(dir, masking, reg, slog.New(slog.DiscardHandler)), masking: masking, reg: reg}
}

// startRollout runs the rollout of dir against log as a node does — watch the
// folder every interval, follow the bundles the log applies — until the test
// ends.
func startRollout(t *testing.T, dir string, log *fakeLog, interval time.Duration) *testRollout {
	t.Helper()
	r := newTestRollout(dir)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.watch(ctx, log, interval) })
	wg.Go(func() { r.follow(ctx, log.applied) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return r
}

// waitBundle waits until bundle version is active and returns the status.
func (r *testRollout) waitBundle(t *testing.T, version int64) PolicyStatus {
	t.Helper()
	var st PolicyStatus
	harness.Eventually(t, 5*time.Second, fmt.Sprintf("bundle %d active", version), func() error {
		if st = r.status(); st.Bundle != version {
			return fmt.Errorf("bundle %d active (last error %q)", st.Bundle, st.LastError)
		}
		return nil
	})
	return st
}

// metricValue is the value of the metric called name in reg (the sum of its
// series), 0 when it has none.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

func (r *testRollout) reloadErrors(t *testing.T) float64 {
	t.Helper()
	return metricValue(t, r.reg, "tributary_policy_reload_errors_total")
}

func TestRolloutProposesValidChanges(t *testing.T) {
	dir := t.TempDir()
	payments := filepath.Join(dir, "payments.yaml")
	fleet := filepath.Join(dir, "fleet.yaml")
	writePolicy(t, dir, "payments.yaml", paymentsPolicy(3, 4))
	writePolicy(t, dir, "fleet.yaml", fleetPolicy)
	log := newFakeLog()
	r := startRollout(t, dir, log, 10*time.Millisecond)

	t.Run("a valid folder is proposed as bundle 1, then applied", func(t *testing.T) {
		st := r.waitBundle(t, 1)
		set, err := policy.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		_, props := log.state()
		if len(props) != 1 || props[0].Version != 1 || props[0].Hash != set.Hash() || props[0].Source != dir {
			t.Fatalf("proposals %+v, want bundle 1 of %s with hash %s", props, dir, set.Hash())
		}
		want := PolicyStatus{
			Bundle: 1, Hash: set.Hash(), Source: dir, AppliedAt: props[0].AppliedAt, AppliedIdx: props[0].AppliedIndex,
			Policies: map[string]int64{"payments-pii": 3, "fleet-telemetry": 1},
			Files:    map[string]string{payments: sha256Hex(paymentsPolicy(3, 4)), fleet: sha256Hex(fleetPolicy)},
		}
		if !reflect.DeepEqual(st, want) {
			t.Errorf("status\n%+v\nwant\n%+v", st, want)
		}
		if a := r.masking.Active(); a == nil || a.Hash() != set.Hash() {
			t.Errorf("the masking's active bundle is not the applied one: %v", a)
		}
		wantVersions := `
# HELP tributary_policy_version Version of each policy in the active bundle (applied through the Raft log).
# TYPE tributary_policy_version gauge
tributary_policy_version{policy="fleet-telemetry"} 1
tributary_policy_version{policy="payments-pii"} 3
`
		if err := testutil.GatherAndCompare(r.reg, strings.NewReader(wantVersions), "tributary_policy_version"); err != nil {
			t.Error(err)
		}
	})

	t.Run("an edit that raises the version is proposed as the next bundle", func(t *testing.T) {
		writePolicy(t, dir, "payments.yaml", paymentsPolicy(4, 6))
		st := r.waitBundle(t, 2)
		if _, props := log.state(); len(props) != 2 || props[1].Version != 2 {
			t.Fatalf("proposals %+v, want bundle 2 next", props)
		}
		if st.Policies["payments-pii"] != 4 || st.Files[payments] != sha256Hex(paymentsPolicy(4, 6)) || st.LastError != "" {
			t.Errorf("status %+v", st)
		}
	})

	t.Run("removing a file without retiring its policy is rejected and the bundle stays", func(t *testing.T) {
		if err := os.Remove(fleet); err != nil {
			t.Fatal(err)
		}
		harness.Eventually(t, 5*time.Second, "the removal rejected", func() error {
			if st := r.status(); !strings.Contains(st.LastError, `older than the cluster's bundle 2: policy "fleet-telemetry" (version 1 in the cluster's bundle) is missing and not retired`) {
				return fmt.Errorf("last error %q", st.LastError)
			}
			return nil
		})
		if st := r.status(); st.Bundle != 2 || st.Policies["fleet-telemetry"] != 1 {
			t.Errorf("status %+v, want bundle 2 with fleet-telemetry still active", st)
		}
	})

	t.Run("a retired policy leaves the next bundle and the version gauge", func(t *testing.T) {
		writePolicy(t, dir, "retired.yaml", "retired: [fleet-telemetry]\n")
		st := r.waitBundle(t, 3)
		if len(st.Policies) != 1 || len(st.Files) != 2 || st.Policies["payments-pii"] != 4 {
			t.Errorf("status %+v, want payments-pii@4 alone, from payments.yaml and retired.yaml", st)
		}
		want := `
# HELP tributary_policy_version Version of each policy in the active bundle (applied through the Raft log).
# TYPE tributary_policy_version gauge
tributary_policy_version{policy="payments-pii"} 4
`
		if err := testutil.GatherAndCompare(r.reg, strings.NewReader(want), "tributary_policy_version"); err != nil {
			t.Error(err)
		}
	})
}

func TestRolloutRejectsInvalidChanges(t *testing.T) {
	tests := []struct {
		name    string
		content string // the new payments.yaml
		wantErr string // in the status's last error
	}{
		{"a file that is not YAML", "policy: payments-pii\nversion: [3\n", "payments.yaml:"},
		{"a rule with an unknown action", strings.Replace(paymentsPolicy(4, 4), "action: redact", "action: hsah", 1), `unknown action "hsah"`},
		{"a changed policy whose version was not raised", paymentsPolicy(3, 6), `changed but its version is still 3; raise it to 4`},
		{"a lowered version", paymentsPolicy(2, 4), "is older than the cluster's bundle 1: policy \"payments-pii\" is at version 2, the cluster's bundle has 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writePolicy(t, dir, "payments.yaml", paymentsPolicy(3, 4))
			log := newFakeLog()
			r := startRollout(t, dir, log, 10*time.Millisecond)
			before := r.waitBundle(t, 1)
			active := r.masking.Active()

			writePolicy(t, dir, "payments.yaml", tt.content)
			harness.Eventually(t, 5*time.Second, "the change rejected", func() error {
				if n := r.reloadErrors(t); n != 1 {
					return fmt.Errorf("tributary_policy_reload_errors_total = %v", n)
				}
				return nil
			})
			st := r.status()
			if !strings.Contains(st.LastError, tt.wantErr) || st.LastErrorAt.IsZero() {
				t.Errorf("last error %q at %v, want one with %q", st.LastError, st.LastErrorAt, tt.wantErr)
			}
			if st.Bundle != 1 || st.Hash != before.Hash || !reflect.DeepEqual(st.Policies, before.Policies) || r.masking.Active() != active {
				t.Errorf("the active bundle changed: %+v", st)
			}
			if _, props := log.state(); len(props) != 1 {
				t.Errorf("%d proposals, want the first alone", len(props))
			}

			// Putting the active file back makes the folder good again:
			// the error clears, and there is nothing to propose.
			writePolicy(t, dir, "payments.yaml", paymentsPolicy(3, 4))
			harness.Eventually(t, 5*time.Second, "the last error cleared", func() error {
				if e := r.status().LastError; e != "" {
					return errors.New(e)
				}
				return nil
			})
			if _, props := log.state(); len(props) != 1 || r.reloadErrors(t) != 1 {
				t.Errorf("%d proposals and %v reload errors after the revert, want 1 and 1", len(props), r.reloadErrors(t))
			}
		})
	}
}

// TestRolloutPropose covers each outcome of one look at the folder, and
// whether the folder counts as dealt with: watch looks again at an unchanged
// folder only when it was not.
func TestRolloutPropose(t *testing.T) {
	errStale := fmt.Errorf("proposing policy bundle 2: %w", fmt.Errorf("policy bundle version 2 (active 2): %w", coord.ErrStalePolicy))
	tests := []struct {
		name   string
		active int64  // the active bundle's version, of paymentsPolicy(3, 4); 0 for none
		folder string // payments.yaml
		prior  bool   // a rejected change before
		fail   error  // ProposePolicy's answer

		wantDealt        bool
		wantVersion      int64 // the bundle proposed; 0 for none
		wantCalls        int
		wantReloadErrors float64
		wantLastError    bool
	}{
		{name: "a folder is proposed as bundle 1 when none is active",
			folder: paymentsPolicy(3, 4), wantDealt: true, wantVersion: 1, wantCalls: 1},
		{name: "a folder that differs from the active bundle is proposed as the next version",
			active: 5, folder: paymentsPolicy(4, 4), wantDealt: true, wantVersion: 6, wantCalls: 1},
		{name: "a proposal clears the last rejection",
			active: 5, folder: paymentsPolicy(4, 4), prior: true, wantDealt: true, wantVersion: 6, wantCalls: 1, wantReloadErrors: 1},
		{name: "the folder of the active bundle proposes nothing and clears the last rejection",
			active: 5, folder: paymentsPolicy(3, 4), prior: true, wantDealt: true, wantReloadErrors: 1},
		{name: "a stale proposal is looked at again: the newest bundle may not be applied here yet",
			active: 1, folder: paymentsPolicy(4, 4), fail: errStale, wantDealt: false, wantCalls: 1},
		{name: "any other proposal error is not dealt with, so the next tick retries",
			active: 1, folder: paymentsPolicy(4, 4), fail: errors.New("no raft leader"), wantDealt: false, wantCalls: 1},
		{name: "a bundle the leader refuses is dealt with by rejecting it, not retried",
			active: 1, folder: paymentsPolicy(4, 4), fail: &coord.BundleRefusedError{Reason: coord.RefusedHash, Err: errors.New("claimed hash is not the bundle's")},
			wantDealt: true, wantCalls: 1, wantReloadErrors: 1, wantLastError: true},
		{name: "an invalid folder is dealt with by rejecting it",
			active: 1, folder: "version: [", wantDealt: true, wantReloadErrors: 1, wantLastError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := newTestRollout(dir)
			if tt.active != 0 {
				set, err := policy.Parse(filepath.Join(dir, "payments.yaml"), []byte(paymentsPolicy(3, 4)))
				if err != nil {
					t.Fatal(err)
				}
				r.apply(coord.PolicyBundle{Version: tt.active, Data: set.Encode(), Hash: set.Hash(), Source: dir, AppliedIndex: 7})
			}
			if tt.prior {
				r.reject(errors.New("an earlier change was invalid"))
			}
			writePolicy(t, dir, "payments.yaml", tt.folder)
			var fail []error
			if tt.fail != nil {
				fail = append(fail, tt.fail)
			}
			log := newFakeLog(fail...)

			if dealt := r.propose(context.Background(), log); dealt != tt.wantDealt {
				t.Errorf("dealt with = %v, want %v", dealt, tt.wantDealt)
			}
			calls, props := log.state()
			if calls != tt.wantCalls {
				t.Errorf("%d ProposePolicy calls, want %d", calls, tt.wantCalls)
			}
			switch {
			case tt.wantVersion == 0 && len(props) != 0:
				t.Errorf("proposed %+v, want nothing", props)
			case tt.wantVersion != 0 && (len(props) != 1 || props[0].Version != tt.wantVersion):
				t.Errorf("proposed %+v, want bundle %d", props, tt.wantVersion)
			}
			if n := r.reloadErrors(t); n != tt.wantReloadErrors {
				t.Errorf("tributary_policy_reload_errors_total = %v, want %v", n, tt.wantReloadErrors)
			}
			if e := r.status().LastError; (e != "") != tt.wantLastError {
				t.Errorf("last error %q, want one: %v", e, tt.wantLastError)
			}
		})
	}
}

func TestRolloutRetries(t *testing.T) {
	t.Run("a proposal that failed is made again on the next tick", func(t *testing.T) {
		dir := t.TempDir()
		writePolicy(t, dir, "payments.yaml", paymentsPolicy(3, 4))
		log := newFakeLog(errors.New("no raft leader"), errors.New("no raft leader"))
		r := startRollout(t, dir, log, 5*time.Millisecond)
		r.waitBundle(t, 1)
		if calls, props := log.state(); calls != 3 || len(props) != 1 {
			t.Errorf("%d calls for %d proposals, want 3 for 1", calls, len(props))
		}
		if st := r.status(); st.LastError != "" || r.reloadErrors(t) != 0 {
			t.Errorf("a failed proposal counted as a rejected change: %q", st.LastError)
		}
	})

	t.Run("after a stale proposal an unchanged folder is looked at again on a reload request", func(t *testing.T) {
		dir := t.TempDir()
		writePolicy(t, dir, "payments.yaml", paymentsPolicy(3, 4))
		log := newFakeLog(coord.ErrStalePolicy)
		// No tick within the test: only the reload request makes watch look again.
		r := startRollout(t, dir, log, time.Hour)
		harness.Eventually(t, 5*time.Second, "the first proposal", func() error {
			if calls, _ := log.state(); calls != 1 {
				return fmt.Errorf("%d calls", calls)
			}
			return nil
		})
		rec := httptest.NewRecorder()
		r.reloadHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/policies/reload", nil))
		if rec.Code != http.StatusAccepted {
			t.Fatalf("reload answered %d %s", rec.Code, rec.Body)
		}
		r.waitBundle(t, 1)
		if calls, _ := log.state(); calls != 2 {
			t.Errorf("%d calls, want 2", calls)
		}
	})
}

func TestReloadHandler(t *testing.T) {
	tests := []struct {
		name     string
		dir      string
		requests int
		want     int
		wantBody string
	}{
		{"a node without a policy folder has nothing to reload", "", 1, http.StatusConflict, "no policies folder configured"},
		{"a node with a folder accepts the request", t.TempDir(), 1, http.StatusAccepted, "reload requested"},
		{"requests while one is pending are accepted without waiting", t.TempDir(), 3, http.StatusAccepted, "reload requested"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestRollout(tt.dir).reloadHandler() // no watch runs: nobody takes the request
			for range tt.requests {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/policies/reload", nil))
				if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.wantBody) {
					t.Fatalf("answered %d %s, want %d with %q", rec.Code, rec.Body, tt.want, tt.wantBody)
				}
			}
		})
	}
}

func TestFolderFingerprint(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		want   bool // whether the fingerprint changes
	}{
		{"adding a policy file changes it", func(t *testing.T, dir string) {
			writePolicy(t, dir, "fleet.yaml", fleetPolicy)
		}, true},
		{"editing a file changes it, even at the same size", func(t *testing.T, dir string) {
			writePolicy(t, dir, "payments.yaml", paymentsPolicy(3, 5))
		}, true},
		{"removing a file changes it", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "payments.yaml")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"renaming a file changes it", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "payments.yaml"), filepath.Join(dir, "payments.yml")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"writing the same bytes again leaves it", func(t *testing.T, dir string) {
			writePolicy(t, dir, "payments.yaml", paymentsPolicy(3, 4))
		}, false},
		{"an editor's dot-file leaves it", func(t *testing.T, dir string) {
			writePolicy(t, dir, ".payments.yaml.swp", "draft")
		}, false},
		{"a file that is not a policy file leaves it", func(t *testing.T, dir string) {
			writePolicy(t, dir, "README.md", "Policies owned by compliance.")
		}, false},
		{"a link to a folder leaves it", func(t *testing.T, dir string) {
			if err := os.Symlink(t.TempDir(), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"a sub-folder leaves it", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, "drafts"), 0o755); err != nil {
				t.Fatal(err)
			}
			writePolicy(t, filepath.Join(dir, "drafts"), "next.yaml", fleetPolicy)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writePolicy(t, dir, "payments.yaml", paymentsPolicy(3, 4))
			before, err := folderFingerprint(dir)
			if err != nil {
				t.Fatal(err)
			}
			tt.change(t, dir)
			after, err := folderFingerprint(dir)
			if err != nil {
				t.Fatal(err)
			}
			if changed := after != before; changed != tt.want {
				t.Errorf("changed = %v, want %v", changed, tt.want)
			}
		})
	}
	t.Run("a folder that cannot be read is an error", func(t *testing.T) {
		if _, err := folderFingerprint(filepath.Join(t.TempDir(), "missing")); err == nil {
			t.Error("no error")
		}
	})
}

// TestRolloutConfigMapVolume follows a policy folder mounted from a Kubernetes
// ConfigMap: the files are links into ..data, itself a link to a timestamped
// folder that the kubelet swaps on an update.
func TestRolloutConfigMapVolume(t *testing.T) {
	dir := t.TempDir()
	update := func(stamp, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, stamp), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, stamp, "payments.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(stamp, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	update("..2026_12_01_10_00_00.000000001", paymentsPolicy(3, 4))
	if err := os.Symlink(filepath.Join("..data", "payments.yaml"), filepath.Join(dir, "payments.yaml")); err != nil {
		t.Fatal(err)
	}
	r := startRollout(t, dir, newFakeLog(), 10*time.Millisecond)
	if st := r.waitBundle(t, 1); st.Policies["payments-pii"] != 3 {
		t.Fatalf("status %+v", st)
	}
	update("..2026_12_01_11_00_00.000000002", paymentsPolicy(4, 4))
	if st := r.waitBundle(t, 2); st.Policies["payments-pii"] != 4 {
		t.Fatalf("status %+v", st)
	}
	if n := r.reloadErrors(t); n != 0 {
		t.Errorf("%v reload errors, last %q", n, r.status().LastError)
	}
}
