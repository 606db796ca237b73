package registry

import (
	"sync"
	"sync/atomic"
)

// cache is a bounded map with CLOCK (second-chance) eviction, an
// approximation of LRU whose lookups only take the read lock: a hit sets the
// slot's referenced bit, and an insertion into a full cache sweeps the ring,
// clearing bits, until it finds a slot not referenced since the last sweep.
// Strict LRU would need the write lock on every hit to move the entry, which
// is what the translation hot path, called from every task at once, must not
// pay for. Values are stored as given; callers treat them as immutable.
type cache[K comparable, V any] struct {
	mu    sync.RWMutex
	items map[K]*slot[K, V]
	ring  []*slot[K, V]
	hand  int
	max   int
}

type slot[K comparable, V any] struct {
	key K
	val V
	ref atomic.Bool
}

func newCache[K comparable, V any](max int) *cache[K, V] {
	if max < 1 {
		max = 1
	}
	return &cache[K, V]{items: make(map[K]*slot[K, V]), max: max}
}

func (c *cache[K, V]) get(k K) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	// Only write the bit when it changes, so that concurrent hits on a hot
	// entry do not bounce its cache line between cores.
	if !s.ref.Load() {
		s.ref.Store(true)
	}
	return s.val, true
}

// put inserts or replaces k, evicting one entry when the cache is full.
func (c *cache[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.items[k]; ok {
		s.val = v
		s.ref.Store(true)
		return
	}
	s := &slot[K, V]{key: k, val: v}
	if len(c.ring) < c.max {
		c.ring = append(c.ring, s)
		c.items[k] = s
		return
	}
	for {
		old := c.ring[c.hand]
		if old.ref.Load() {
			old.ref.Store(false)
			c.hand = (c.hand + 1) % len(c.ring)
			continue
		}
		delete(c.items, old.key)
		c.ring[c.hand] = s
		c.items[k] = s
		c.hand = (c.hand + 1) % len(c.ring)
		return
	}
}

func (c *cache[K, V]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.items)
}
