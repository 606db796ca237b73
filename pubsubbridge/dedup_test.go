package pubsubbridge

import (
	"fmt"
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	t0 := time.Unix(1000, 0)
	t.Run("a handled id is suppressed within the window and forgotten after it", func(t *testing.T) {
		tr := newTracker(time.Minute, 100)
		f, s := tr.begin("a", t0, t0)
		if s != seenNew {
			t.Fatalf("first delivery: %v", s)
		}
		tr.finish("a", f, true, t0)
		if _, s := tr.begin("a", t0, t0.Add(59*time.Second)); s != seenHandled {
			t.Errorf("redelivery within the window: %v, want seenHandled", s)
		}
		f, s = tr.begin("a", t0, t0.Add(61*time.Second))
		if s != seenNew {
			t.Errorf("redelivery after the window: %v, want seenNew", s)
		}
		tr.finish("a", f, false, t0)
	})
	t.Run("a failed id is not suppressed", func(t *testing.T) {
		tr := newTracker(time.Minute, 100)
		f, _ := tr.begin("a", t0, t0)
		tr.finish("a", f, false, t0)
		if _, s := tr.begin("a", t0, t0); s != seenNew {
			t.Errorf("after a failure: %v, want seenNew", s)
		}
	})
	t.Run("a delivery of an id in flight waits for its outcome", func(t *testing.T) {
		tr := newTracker(time.Minute, 100)
		f, _ := tr.begin("a", t0, t0)
		g, s := tr.begin("a", t0, t0)
		if s != seenInFlight || g != f {
			t.Fatalf("second delivery: %v", s)
		}
		go tr.finish("a", f, true, t0)
		<-g.done
		if !g.ok {
			t.Errorf("outcome not seen by the waiting delivery")
		}
	})
	t.Run("memory is bounded by max ids, oldest first", func(t *testing.T) {
		tr := newTracker(time.Hour, 1000)
		for i := range 5000 {
			id := fmt.Sprint(i)
			f, _ := tr.begin(id, t0, t0)
			tr.finish(id, f, true, t0.Add(time.Duration(i)))
		}
		if _, _, n := tr.stats(); n > 1000 {
			t.Errorf("%d ids remembered, want <= 1000", n)
		}
		for i := range tr.shards {
			s := &tr.shards[i]
			if live := len(s.queue) - s.head; live > s.max+1 || cap(s.queue) > 8*s.max+2048 {
				t.Errorf("shard %d queue holds %d (cap %d), max %d", i, live, cap(s.queue), s.max)
			}
		}
		if _, s := tr.begin("4999", t0, t0.Add(5000)); s != seenHandled {
			t.Errorf("newest id forgotten")
		}
		// The oldest ids are forgotten first (per shard, so check a few).
		for i := range 100 {
			if f, s := tr.begin(fmt.Sprint(i), t0, t0.Add(5000)); s != seenNew {
				t.Errorf("old id %d still remembered", i)
			} else {
				tr.finish(fmt.Sprint(i), f, false, t0)
			}
		}
		if f, s := tr.begin("0", t0, t0.Add(5000)); s != seenNew {
			t.Errorf("oldest id still remembered")
		} else {
			tr.finish("0", f, false, t0)
		}
	})
	t.Run("no window, no suppression", func(t *testing.T) {
		tr := newTracker(-1, 1000)
		f, _ := tr.begin("a", t0, t0)
		tr.finish("a", f, true, t0)
		if _, s := tr.begin("a", t0, t0); s != seenNew {
			t.Errorf("suppressed with the window off")
		}
	})
	t.Run("stats report the oldest message in flight", func(t *testing.T) {
		tr := newTracker(time.Minute, 10)
		tr.begin("new", t0.Add(time.Second), t0)
		tr.begin("old", t0, t0)
		if oldest, n, _ := tr.stats(); !oldest.Equal(t0) || n != 2 {
			t.Errorf("stats = %v, %d", oldest, n)
		}
	})
}

func TestFence(t *testing.T) {
	t0 := time.Unix(1000, 0)
	f := newFence(time.Minute)
	f.close("car-1", "m1", t0)
	f.close("car-1", "m2", t0) // the first nacked message is the one to wait for
	if f.admit("car-1", "m2", t0) {
		t.Errorf("a later message of a fenced key was admitted")
	}
	if !f.admit("car-2", "x", t0) || !f.admit("", "y", t0) {
		t.Errorf("other keys are held back")
	}
	if !f.admit("car-1", "m1", t0) {
		t.Errorf("the nacked message itself was not admitted")
	}
	if !f.admit("car-1", "m2", t0) {
		t.Errorf("the key stays fenced after the nacked message came back")
	}
	f.close("car-3", "m9", t0)
	if !f.admit("car-3", "m10", t0.Add(61*time.Second)) {
		t.Errorf("the fence did not time out")
	}
}
