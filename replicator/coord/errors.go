package coord

import (
	"errors"

	"github.com/hashicorp/raft"
)

// Sentinel errors a caller branches on. Each wraps the raft error it stands for,
// so errors.Is works with either.
var (
	// ErrNotLeader means the operation needs the Raft leader and this node is
	// not it, or no leader is known (an election is running). Retry later or on
	// the leader; the HTTP handler forwards for you.
	ErrNotLeader = &wrapErr{msg: "coord: not the leader", err: raft.ErrNotLeader}
	// ErrStalePolicy means a proposed policy bundle's version is not greater
	// than the active bundle's; the active bundle stays.
	ErrStalePolicy = errors.New("coord: policy bundle version not newer than the active one")
	// ErrUnknownMember means the member named in a request is not in the cluster.
	ErrUnknownMember = errors.New("coord: unknown member")
	// ErrClosed means the node has been shut down.
	ErrClosed = &wrapErr{msg: "coord: node closed", err: raft.ErrRaftShutdown}
)

type wrapErr struct {
	msg string
	err error
}

func (e *wrapErr) Error() string { return e.msg }
func (e *wrapErr) Unwrap() error { return e.err }

// IsRetryable reports whether an error of this package (or of raft underneath)
// is transient: the leader changed or is not known yet, or raft's queue was
// full. Retrying the same call later, or on the new leader, may succeed.
func IsRetryable(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) ||
		errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
		errors.Is(err, raft.ErrEnqueueTimeout)
}
