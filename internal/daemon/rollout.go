package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-dev/tributary/internal/governance"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/replicator"
	"github.com/tributary-dev/tributary/replicator/coord"
)

// policyPollInterval is how often the policy folder is checked for changes.
const policyPollInterval = 2 * time.Second

// policyProposer is what the rollout needs from the Raft node: a way to put a
// bundle into the cluster's log. *coord.Node implements it; ErrStalePolicy
// means another node proposed that version first.
type policyProposer interface {
	ProposePolicy(ctx context.Context, version int64, data []byte, hash, source string) (uint64, error)
}

// rollout brings the policy folder's changes to the whole cluster: it proposes
// valid changes through the Raft log (watch), and activates each bundle the log
// applies (follow) in the governance step, so every node switches at the same
// log index. Invalid changes are rejected with their errors, counted, shown in
// /v1/status, and the active bundle stays.
type rollout struct {
	dir     string // the policy folder; "" on nodes without one
	log     *slog.Logger
	masking *governance.Masking
	active  atomic.Pointer[activeBundle]
	// applyMu orders apply (follow's and awaitBundle's) and the no-bundle
	// decision, so that neither undoes the other.
	applyMu sync.Mutex
	// newest is the version of the newest bundle from the log, applied or
	// not (one this node cannot decode leaves active behind it); nil before
	// the first.
	newest atomic.Pointer[int64]
	// known, when not nil, is closed once awaitBundle learned the cluster's
	// bundle: watch proposes nothing before, so a node restarting with a stale
	// folder compares it with the cluster's bundle, not with nothing.
	known     chan struct{}
	knownOnce sync.Once

	versions     *prometheus.GaugeVec // policy
	reloadErrors prometheus.Counter
	ready        prometheus.Gauge

	reload  chan struct{}
	mu      sync.Mutex // guards lastErr and errAt
	lastErr string
	errAt   time.Time
}

type activeBundle struct {
	set    *policy.Set
	bundle coord.PolicyBundle
}

func newRollout(dir string, masking *governance.Masking, reg prometheus.Registerer, log *slog.Logger) *rollout {
	r := &rollout{
		dir: dir, log: log, masking: masking, reload: make(chan struct{}, 1),
		versions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tributary_policy_version",
			Help: "Version of each policy in the active bundle (applied through the Raft log).",
		}, []string{"policy"}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_policy_reload_errors_total",
			Help: "Policy folder changes rejected (invalid files, version not increased); the previous bundle stays active.",
		}),
	}
	r.ready = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "tributary_policy_bundle_ready",
		Help: "1 when this node holds the cluster's policy bundle (or knows there is none) and governs records; 0 while its records wait for it.",
	})
	reg.MustRegister(r.versions, r.reloadErrors, r.ready)
	return r
}

// follow activates each bundle the Raft log delivers.
func (r *rollout) follow(ctx context.Context, bundles <-chan coord.PolicyBundle) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-bundles:
			r.apply(b)
		}
	}
}

// apply activates one bundle from the log. Bundle versions only grow: a
// bundle not newer than the newest one seen (a late copy) is ignored, also
// when this node could not decode the newest: records then keep waiting
// rather than being masked with an older bundle.
func (r *rollout) apply(b coord.PolicyBundle) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if n := r.newest.Load(); n != nil && b.Version <= *n {
		return
	}
	r.newest.Store(&b.Version)
	set, err := policy.Decode(b.Data)
	if err != nil {
		// Every node applies the same bytes; a bundle this node cannot read
		// (an older binary) stops its records instead of masking them with
		// the previous bundle, loudly, until the node is upgraded.
		err = fmt.Errorf("cannot apply the cluster's policy bundle %d (log index %d): %w", b.Version, b.AppliedIndex, err)
		r.log.Error("records wait: this node cannot apply the cluster's policy bundle", "bundle", b.Version, "index", b.AppliedIndex, "err", err)
		r.masking.Unusable(err)
		r.ready.Set(0)
		return
	}
	r.active.Store(&activeBundle{set: set, bundle: b})
	r.masking.Activate(set)
	r.ready.Set(1)
	r.versions.Reset()
	for _, p := range set.Policies {
		r.versions.WithLabelValues(p.Name).Set(float64(p.Version))
	}
	r.log.Info("policy bundle applied", "bundle", b.Version, "index", b.AppliedIndex, "hash", b.Hash, "policies", set.Versions())
}

// policyState is what the rollout needs to know the cluster's bundle before
// the log delivers it: *coord.Node implements it.
type policyState interface {
	PolicyState() coord.PolicyView
}

// awaitBundle keeps records waiting until this node knows the cluster's
// bundle, and keeps the governance step's state right afterwards. While the
// node's replica is not current (a new node, a node cut off from the leader
// at start) nothing is decided. Once it is, the replica's bundle is applied;
// with none, records flow with no policies (PII-tagged fields quarantined)
// only when no member of the cluster has a policy folder and neither has
// this node — else they wait for the bundle that member will propose.
func (r *rollout) awaitBundle(ctx context.Context, st policyState, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	none := false // records flow with no policies
	for {
		if v := st.PolicyState(); v.Current {
			switch {
			case v.HasBundle:
				r.apply(v.Bundle)
				none = false
			default:
				none = r.decideNoBundle(v.Expected || r.dir != "", none)
			}
			r.markKnown()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// decideNoBundle sets the governance state of a cluster without a bundle:
// records wait when a bundle is expected, else flow with no policies. It holds
// applyMu, so a bundle that follow applies meanwhile is never overwritten.
// It returns whether records flow with no policies.
func (r *rollout) decideNoBundle(expected, none bool) bool {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	switch {
	case r.newest.Load() != nil:
		// A bundle arrived through the log meanwhile (applied, or one this
		// node cannot decode, whose records wait).
		return false
	case expected:
		if none {
			r.masking.Unusable(governance.ErrNoBundle)
			r.ready.Set(0)
			r.log.Warn("a member with a policy folder joined a cluster without a bundle: records wait for its bundle")
		}
		return false
	case !none:
		r.masking.NoBundle()
		r.ready.Set(1)
		r.log.Info("the cluster uses no policies: records are governed without a bundle (PII-tagged fields are quarantined)")
	}
	return true
}

// markKnown releases watch.
func (r *rollout) markKnown() {
	if r.known != nil {
		r.knownOnce.Do(func() { close(r.known) })
	}
}

// watch proposes valid changes of the policy folder through the Raft log;
// invalid ones are rejected with their errors and the active bundle stays. It
// looks every interval, and at once on POST /v1/policies/reload.
func (r *rollout) watch(ctx context.Context, log policyProposer, interval time.Duration) {
	if r.dir == "" {
		return
	}
	if r.known != nil {
		select {
		case <-ctx.Done():
			return
		case <-r.known:
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	seen := ""
	for {
		fp, err := folderFingerprint(r.dir)
		if err != nil {
			r.reject(fmt.Errorf("reading policy folder: %w", err))
		} else if fp != seen {
			if r.propose(ctx, log) {
				seen = fp
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-r.reload:
			seen = ""
		}
	}
}

// propose loads, checks and proposes the folder; it reports whether the folder
// was dealt with (proposed, rejected, or already active).
func (r *rollout) propose(ctx context.Context, log policyProposer) bool {
	set, err := policy.LoadDir(r.dir)
	if err != nil {
		r.reject(err)
		return true
	}
	var active *policy.Set
	var version int64
	if b := r.active.Load(); b != nil {
		if b.bundle.Hash == set.Hash() {
			r.clearError()
			return true
		}
		active, version = b.set, b.bundle.Version
	}
	if older, why := set.OlderThan(active); older {
		// A stale copy of the folder (a node restarted with an old ConfigMap,
		// a lagging sync): proposing it would roll the cluster back.
		r.reject(fmt.Errorf("policy folder %s is older than the cluster's bundle %d: %s; not proposed", r.dir, version, why))
		return true
	}
	if err := set.CheckAgainst(active); err != nil {
		r.reject(err)
		return true
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	idx, err := log.ProposePolicy(pctx, version+1, set.Encode(), set.Hash(), r.dir)
	switch {
	case err == nil:
		r.clearError()
		r.log.Info("policy change proposed", "bundle", version+1, "index", idx, "policies", set.Versions())
		return true
	case errors.As(err, new(*coord.BundleRefusedError)):
		// The leader's checks refused it (its hash, its content against
		// the active bundle): retrying the same folder would be refused
		// again. Reported like a folder this node refuses itself.
		r.reject(fmt.Errorf("the leader refused policy bundle %d: %w", version+1, err))
		return true
	case errors.Is(err, coord.ErrStalePolicy):
		// Another node proposed a bundle of that version first, or this node
		// has not applied the newest one yet. Look again on the next tick: by
		// then the bundle has arrived and either is this folder or is not.
		r.log.Debug("policy bundle version taken; looking again", "bundle", version+1)
		return false
	default:
		r.log.Warn("proposing the policy change failed; retrying", "err", err)
		return false
	}
}

func (r *rollout) reject(err error) {
	r.reloadErrors.Inc()
	r.log.Error("policy change rejected; the active bundle stays", "err", err)
	r.mu.Lock()
	r.lastErr, r.errAt = err.Error(), time.Now()
	r.mu.Unlock()
}

func (r *rollout) clearError() {
	r.mu.Lock()
	r.lastErr, r.errAt = "", time.Time{}
	r.mu.Unlock()
}

// status is the policy part of /v1/status.
func (r *rollout) status() PolicyStatus {
	var st PolicyStatus
	if b := r.active.Load(); b != nil {
		st.Bundle, st.Hash, st.Source, st.AppliedAt, st.AppliedIdx = b.bundle.Version, b.bundle.Hash, b.bundle.Source, b.bundle.AppliedAt, b.bundle.AppliedIndex
		st.Policies = map[string]int64{}
		for _, p := range b.set.Policies {
			st.Policies[p.Name] = p.Version
		}
		st.Files = map[string]string{}
		for _, f := range b.set.Files {
			st.Files[f.Name] = f.SHA256
		}
	}
	r.mu.Lock()
	st.LastError, st.LastErrorAt = r.lastErr, r.errAt
	r.mu.Unlock()
	if err := r.masking.Ready(); err != nil {
		st.Waiting = err.Error()
	}
	return st
}

// reloadHandler serves POST /v1/policies/reload: check the folder now.
func (r *rollout) reloadHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if r.dir == "" {
			replicator.WriteJSON(w, http.StatusConflict, map[string]string{"error": "no policies folder configured"})
			return
		}
		select {
		case r.reload <- struct{}{}:
		default:
		}
		replicator.WriteJSON(w, http.StatusAccepted, map[string]string{"status": "reload requested"})
	})
}

// folderFingerprint changes when a policy file is added, removed or edited.
// It reads the files policy.LoadDir reads and no others: a Kubernetes
// ConfigMap volume holds ..data, a symlink to a folder that IsDir does not
// report, and reading it failed every look, so no change was ever proposed.
func folderFingerprint(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var names []string
	for _, en := range entries {
		n := en.Name()
		if ext := strings.ToLower(filepath.Ext(n)); en.IsDir() || strings.HasPrefix(n, ".") || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		sum := sha256.Sum256(b)
		h.Write([]byte(n + "\x00" + hex.EncodeToString(sum[:]) + "\x00" + strconv.Itoa(len(b)) + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
