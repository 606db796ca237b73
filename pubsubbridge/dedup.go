package pubsubbridge

import (
	"hash/maphash"
	"sync"
	"time"
)

// trackerShards spreads the tracker's lock: every receive callback takes it
// twice, and hundreds run at once.
const trackerShards = 16

// tracker knows the messages this bridge holds (in flight) and the ids of the
// messages it handled recently (written to Kafka or quarantined), to suppress
// Pub/Sub redeliveries within a window. Memory is bounded: at most max ids are
// kept (max/trackerShards per shard), each for at most window.
type tracker struct {
	seed   maphash.Seed
	shards [trackerShards]trackerShard
}

type trackerShard struct {
	mu       sync.Mutex
	window   time.Duration // <= 0: no suppression of handled ids
	max      int
	handled  map[string]int64 // message id → when handled (unix nanos)
	queue    []handledID      // handled ids, oldest first; queue[head:] are live
	head     int
	inflight map[string]*flight
}

type handledID struct {
	id string
	at int64
}

// flight is one message being processed. Another delivery of the same id waits
// on done and then reads ok.
type flight struct {
	published time.Time
	done      chan struct{}
	ok        bool // handled (written or quarantined); set before done is closed
}

type seenState int

const (
	seenNew      seenState = iota // process it
	seenHandled                   // handled within the window: ack without writing
	seenInFlight                  // another delivery is being processed: wait for it
)

func newTracker(window time.Duration, limit int) *tracker {
	t := &tracker{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i] = trackerShard{
			window:   window,
			max:      max(limit/trackerShards, 1),
			handled:  make(map[string]int64),
			inflight: make(map[string]*flight),
		}
	}
	return t
}

func (t *tracker) shard(id string) *trackerShard {
	return &t.shards[maphash.String(t.seed, id)%trackerShards]
}

// begin registers a delivery of message id. For seenNew the caller owns the
// returned flight and must call finish; for seenInFlight it may wait on it.
func (t *tracker) begin(id string, published, now time.Time) (*flight, seenState) {
	return t.shard(id).begin(id, published, now)
}

// finish ends the flight of id; ok means the message was written or quarantined.
func (t *tracker) finish(id string, f *flight, ok bool, now time.Time) {
	t.shard(id).finish(id, f, ok, now)
}

// markHandled records a write that completed after its message was given up on
// (a delivery report that arrived after shutdown began), so that the
// redelivery is suppressed.
func (t *tracker) markHandled(id string, now time.Time) {
	s := t.shard(id)
	s.mu.Lock()
	s.add(id, now)
	s.mu.Unlock()
}

// stats returns the publish time of the oldest message in flight (zero when
// none), the number of messages in flight and the number of remembered ids.
func (t *tracker) stats() (oldest time.Time, inflight, ids int) {
	for i := range t.shards {
		o, n, m := t.shards[i].stats()
		if !o.IsZero() && (oldest.IsZero() || o.Before(oldest)) {
			oldest = o
		}
		inflight += n
		ids += m
	}
	return oldest, inflight, ids
}

func (t *trackerShard) begin(id string, published, now time.Time) (*flight, seenState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.window > 0 {
		t.expire(now)
		if _, ok := t.handled[id]; ok {
			return nil, seenHandled
		}
	}
	if f, ok := t.inflight[id]; ok {
		return f, seenInFlight
	}
	f := &flight{published: published, done: make(chan struct{})}
	t.inflight[id] = f
	return f, seenNew
}

func (t *trackerShard) finish(id string, f *flight, ok bool, now time.Time) {
	t.mu.Lock()
	if t.inflight[id] == f {
		delete(t.inflight, id)
	}
	if ok {
		t.add(id, now)
	}
	t.mu.Unlock()
	f.ok = ok
	close(f.done)
}

func (t *trackerShard) add(id string, now time.Time) {
	if t.window <= 0 {
		return
	}
	if _, ok := t.handled[id]; ok {
		return
	}
	at := now.UnixNano()
	t.handled[id] = at
	t.queue = append(t.queue, handledID{id: id, at: at})
	t.expire(now)
}

// expire drops ids older than the window and the oldest ids beyond max.
func (t *trackerShard) expire(now time.Time) {
	cutoff := now.Add(-t.window).UnixNano()
	for t.head < len(t.queue) {
		e := t.queue[t.head]
		if e.at >= cutoff && len(t.handled) <= t.max {
			break
		}
		if t.handled[e.id] == e.at {
			delete(t.handled, e.id)
		}
		t.queue[t.head] = handledID{}
		t.head++
	}
	// Compact once the dead prefix is at least half of the slice.
	if t.head > 1024 && t.head*2 >= len(t.queue) {
		n := copy(t.queue, t.queue[t.head:])
		clear(t.queue[n:])
		t.queue = t.queue[:n]
		t.head = 0
	}
}

func (t *trackerShard) stats() (oldest time.Time, inflight, ids int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, f := range t.inflight {
		if oldest.IsZero() || f.published.Before(oldest) {
			oldest = f.published
		}
	}
	return oldest, len(t.inflight), len(t.handled)
}

// fence keeps ordering keys in order across nacks. Pub/Sub redelivers a nacked
// message of an ordering key, and those published after it, but the client has
// usually received the next message of the key already and dispatches it as
// soon as the nacked one's callback returns. Writing it would put it before its
// predecessor, so the fence nacks the key's messages until the nacked message
// comes back (or timeout passes: it may have gone to another subscriber).
type fence struct {
	mu      sync.Mutex
	timeout time.Duration
	keys    map[string]fenced
}

type fenced struct {
	id    string
	until time.Time
}

func newFence(timeout time.Duration) *fence {
	return &fence{timeout: timeout, keys: make(map[string]fenced)}
}

// admit reports whether a message of ordering key key may be processed.
func (f *fence) admit(key, id string, now time.Time) bool {
	if key == "" {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.keys[key]
	if !ok {
		return true
	}
	if e.id == id || now.After(e.until) {
		delete(f.keys, key)
		return true
	}
	return false
}

// close fences key after its message id was nacked; the first nacked message
// of a key is the one to wait for.
func (f *fence) close(key, id string, now time.Time) {
	if key == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.keys[key]; !ok {
		f.keys[key] = fenced{id: id, until: now.Add(f.timeout)}
	}
}
