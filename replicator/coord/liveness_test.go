package coord

import (
	"testing"
	"time"
)

func TestTrackerVerdicts(t *testing.T) {
	const (
		failAfter = 10 * time.Second
		confirm   = 2 * time.Second
	)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type event func(tr *tracker)
	failed := func(at, lastContact time.Time) event {
		return func(tr *tracker) { tr.failed("m", lastContact, at) }
	}
	resumed := func(at time.Time) event { return func(tr *tracker) { tr.resumed("m", at) } }
	for _, tc := range []struct {
		name              string
		events            []event
		inConfig          bool
		now               time.Time
		wantAlive, wantOK bool
	}{
		{"a member is undecided right after the election", nil, true, at(time.Second), true, false},
		{"a member without failures is alive once confirmed", nil, true, at(confirm), true, true},
		{"a failing member is undecided before the failure timeout",
			[]event{failed(at(5*time.Second), at(0))}, true, at(5 * time.Second), false, false},
		{"a failing member is dead after the failure timeout counted from the election",
			[]event{failed(at(10500*time.Millisecond), time.Time{})}, true, at(10500 * time.Millisecond), false, true},
		{"contact before the election does not count against a member",
			[]event{failed(at(9*time.Second), at(-time.Hour))}, true, at(9 * time.Second), false, false},
		{"a member whose heartbeats resumed is alive at once",
			[]event{failed(at(11*time.Second), at(0)), resumed(at(12 * time.Second))}, true, at(12 * time.Second), true, true},
		{"a member whose failures stopped is alive after confirm (a lost resume)",
			[]event{failed(at(11*time.Second), at(0))}, true, at(11*time.Second + confirm), true, true},
		{"a member outside the raft configuration is dead after the failure timeout",
			nil, false, at(failAfter + time.Second), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTracker(failAfter, confirm)
			tr.reset(t0)
			for _, e := range tc.events {
				e(tr)
			}
			alive, ok := tr.verdict("m", tc.inConfig, tc.now)
			if alive != tc.wantAlive || ok != tc.wantOK {
				t.Errorf("verdict = (alive %v, decided %v), want (%v, %v)", alive, ok, tc.wantAlive, tc.wantOK)
			}
		})
	}
}
