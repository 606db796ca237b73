package coord

import (
	"sync"
	"time"
)

// tracker is the leader's view of which members it reaches, fed by raft's
// FailedHeartbeatObservation, ResumedHeartbeatObservation and PeerObservation.
//
// raft reports a failed heartbeat every time one fails (at least every
// HeartbeatTimeout/2 while a peer stays unreachable, or every transport timeout
// when the peer accepts connections but never answers), with the time of the
// last successful contact. So a member is:
//   - failing while its last failure is younger than confirm;
//   - dead when failing and its last contact (never before the tracking start,
//     the election) is older than FailureTimeout;
//   - alive when a heartbeat resumed, or when no failure was reported for
//     confirm (which also repairs a lost "resumed" observation).
//
// A new leader starts a fresh tracker: it considers every member reached at
// the start and lets the evidence decide from there.
type tracker struct {
	failAfter time.Duration // FailureTimeout
	confirm   time.Duration // transport timeout + 2 × heartbeat timeout

	mu    sync.Mutex
	start time.Time
	peers map[string]*peerHealth
	wake  chan struct{} // buffered 1: a member's state may have changed
}

type peerHealth struct {
	lastFail    time.Time // latest failed heartbeat; zero after a resume
	lastContact time.Time // latest successful contact reported
	resumed     bool      // a heartbeat succeeded after failures
	added       time.Time // when replication to it started
	anyFail     time.Time // latest failed heartbeat, kept after a resume
}

func newTracker(failAfter, confirm time.Duration) *tracker {
	return &tracker{failAfter: failAfter, confirm: confirm, peers: map[string]*peerHealth{}, wake: make(chan struct{}, 1)}
}

// reset starts tracking afresh (on winning an election).
func (t *tracker) reset(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.start = now
	t.peers = map[string]*peerHealth{}
}

func (t *tracker) peer(id string) *peerHealth {
	p, ok := t.peers[id]
	if !ok {
		p = &peerHealth{}
		t.peers[id] = p
	}
	return p
}

func (t *tracker) notify() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *tracker) failed(id string, lastContact, now time.Time) {
	t.mu.Lock()
	p := t.peer(id)
	first := p.lastFail.IsZero()
	p.lastFail, p.resumed, p.anyFail = now, false, now
	if lastContact.After(p.lastContact) {
		p.lastContact = lastContact
	}
	t.mu.Unlock()
	if first {
		t.notify()
	}
}

// resumed records positive evidence of contact: a heartbeat succeeded after
// failures, or the member itself asked to (re)join.
func (t *tracker) resumed(id string, now time.Time) {
	t.mu.Lock()
	p := t.peer(id)
	p.lastFail, p.resumed, p.lastContact = time.Time{}, true, now
	t.mu.Unlock()
	t.notify()
}

// added records that replication to a member started now.
func (t *tracker) added(id string, now time.Time) {
	t.mu.Lock()
	p := t.peer(id)
	p.added = now
	t.mu.Unlock()
}

func (t *tracker) removed(id string) {
	t.mu.Lock()
	delete(t.peers, id)
	t.mu.Unlock()
	t.notify()
}

// verdict is the tracker's opinion of a member: alive, dead, or undecided
// (ok false), in which case its recorded liveness stands.
func (t *tracker) verdict(id string, inConfig bool, now time.Time) (alive, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peer(id)
	since := t.start
	if p.added.After(since) {
		since = p.added
	}
	if !inConfig {
		// Not a Raft voter (a removal half done): nobody replicates to it.
		return false, now.Sub(since) > t.failAfter
	}
	if !p.lastFail.IsZero() && now.Sub(p.lastFail) < t.confirm {
		last := p.lastContact
		if last.Before(since) {
			last = since
		}
		return false, now.Sub(last) > t.failAfter
	}
	if p.resumed {
		return true, true
	}
	quiet := since
	if p.lastFail.After(quiet) {
		quiet = p.lastFail
	}
	return true, now.Sub(quiet) >= t.confirm
}

// steady reports whether the leader has reached id without a failed heartbeat
// for the confirmation period since replication to it started (or since the
// election), and since its last failure, even one a rejoin resumed: the
// evidence that a non-voter keeps up before it is promoted.
func (t *tracker) steady(id string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok || !p.lastFail.IsZero() || p.added.IsZero() && t.start.IsZero() {
		return false
	}
	since := t.start
	for _, at := range []time.Time{p.added, p.anyFail} {
		if at.After(since) {
			since = at
		}
	}
	return now.Sub(since) >= t.confirm
}
