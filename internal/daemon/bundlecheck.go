package daemon

import (
	"fmt"

	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/replicator/coord"
)

// checkBundle is the leader's check of a proposed policy bundle
// (coord.Config.CheckBundle); coord has checked the version step already. The
// bundle must decode and validate on this node, carry its own hash (the audit
// trail names bundles by it), and keep every protection of the active bundle
// unless it retires it on purpose, as the proposing node's rollout checked
// before: a bundle sent by anyone else gets the same checks.
func checkBundle(active *coord.PolicyBundle, p coord.PolicyBundle) error {
	set, err := policy.Decode(p.Data)
	if err != nil {
		return coord.RefuseBundle(coord.RefusedInvalid, err)
	}
	if h := set.Hash(); h != p.Hash {
		return coord.RefuseBundle(coord.RefusedHash, fmt.Errorf("claimed hash %q, the bundle's content hashes to %q", p.Hash, h))
	}
	if active == nil {
		return nil
	}
	cur, err := policy.Decode(active.Data)
	if err != nil {
		// Without the active bundle nothing can be compared: refuse rather
		// than let a bundle through unchecked.
		return coord.RefuseBundle(coord.RefusedInvalid, fmt.Errorf("the active bundle %d does not decode on the leader, so no bundle can be checked against it: %w", active.Version, err))
	}
	if older, why := set.OlderThan(cur); older {
		return coord.RefuseBundle(coord.RefusedUnsafe, fmt.Errorf("older than the active bundle %d: %s", active.Version, why))
	}
	if err := set.CheckAgainst(cur); err != nil {
		return coord.RefuseBundle(coord.RefusedUnsafe, fmt.Errorf("against the active bundle %d: %w", active.Version, err))
	}
	return nil
}
