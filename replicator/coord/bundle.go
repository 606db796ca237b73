package coord

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// Reasons a leader refuses a proposed policy bundle: the label values of
// tributary_policy_bundle_refused_total{reason}, a fixed set.
const (
	// RefusedStale: the version is not greater than the active bundle's
	// (ErrStalePolicy, 409); usually a race between two proposers.
	RefusedStale = "stale"
	// RefusedVersion: the version does not grow by exactly one (422).
	RefusedVersion = "version"
	// RefusedInvalid: the data does not decode or validate (422).
	RefusedInvalid = "invalid"
	// RefusedHash: the claimed hash is not the hash of the data (422).
	RefusedHash = "hash"
	// RefusedUnsafe: the bundle removes or lowers protection of the active
	// bundle without saying so, or is an older copy of it (422).
	RefusedUnsafe = "unsafe"
	// RefusedTooLarge: the request body is over MaxPolicyBody (413).
	RefusedTooLarge = "too_large"
)

var refusalReasons = []string{RefusedStale, RefusedVersion, RefusedInvalid, RefusedHash, RefusedUnsafe, RefusedTooLarge}

// MaxPolicyBody bounds a policy proposal request (the bundle JSON-encoded).
const MaxPolicyBody = 1 << 20

// BundleRefusedError is a proposed bundle the leader refused. Reason is one of
// the Refused* constants; Err says why, naming no secret (bundles hold policy
// rules, not data).
type BundleRefusedError struct {
	Reason string
	Err    error
}

func (e *BundleRefusedError) Error() string {
	return fmt.Sprintf("policy bundle refused (%s): %v", e.Reason, e.Err)
}
func (e *BundleRefusedError) Unwrap() error { return e.Err }

// RefuseBundle returns a *BundleRefusedError; a Config.CheckBundle uses it to
// name the reason of a refusal. An error of CheckBundle that is not one counts
// as RefusedInvalid.
func RefuseBundle(reason string, err error) error {
	return &BundleRefusedError{Reason: reason, Err: err}
}

// checkBundle runs on the leader before a bundle is proposed to Raft: the
// version must be the active one's plus one (1 when there is none), so that a
// version of MaxInt64 cannot freeze policy for good, and Config.CheckBundle, when
// set, checks the content (the daemon decodes, validates, hashes and compares it
// with the active bundle). The FSM checks again, at apply, that versions grow.
func (n *Node) checkBundle(pc *policyCmd) error {
	var active *PolicyBundle
	n.fsm.view(func(s *state) {
		if s.Policy != nil {
			p := *s.Policy
			active = &p
		}
	})
	var cur int64
	if active != nil {
		cur = active.Version
	}
	switch {
	case pc.Version < 1:
		return &BundleRefusedError{Reason: RefusedVersion, Err: fmt.Errorf("version %d: versions start at 1", pc.Version)}
	case pc.Version <= cur:
		return &BundleRefusedError{Reason: RefusedStale, Err: fmt.Errorf("version %d, active %d: %w", pc.Version, cur, ErrStalePolicy)}
	case cur == math.MaxInt64 || pc.Version != cur+1:
		return &BundleRefusedError{Reason: RefusedVersion, Err: fmt.Errorf("version %d: the next version is %d", pc.Version, cur+1)}
	}
	if n.cfg.CheckBundle == nil {
		return nil
	}
	err := n.cfg.CheckBundle(active, PolicyBundle{Version: pc.Version, Data: pc.Data, Hash: pc.Hash, Source: pc.Source})
	if err == nil {
		return nil
	}
	var re *BundleRefusedError
	if errors.As(err, &re) && re.Reason != "" {
		return err
	}
	return &BundleRefusedError{Reason: RefusedInvalid, Err: err}
}

// proposePolicy checks a bundle and proposes it; from names the proposer
// (a node id, or a remote address) for the log of a refusal.
func (n *Node) proposePolicy(ctx context.Context, pc *policyCmd, from string) (uint64, error) {
	if err := n.checkBundle(pc); err != nil {
		n.refused(from, pc.Version, err)
		return 0, err
	}
	return n.propose(ctx, command{Op: opPolicy, At: n.now().UTC(), Policy: pc})
}

// refused logs and counts one refused bundle.
func (n *Node) refused(from string, version int64, err error) {
	reason := RefusedInvalid
	var re *BundleRefusedError
	if errors.As(err, &re) {
		reason = re.Reason
	}
	n.m.bundleRefused.WithLabelValues(reason).Inc()
	n.log.Warn("policy bundle refused", "from", from, "bundle", version, "reason", reason, "err", err)
}
