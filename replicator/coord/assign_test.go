package coord

import (
	"fmt"
	"reflect"
	"testing"
)

// Helpers to write the tables compactly.

func tasksOf(region string, pipeline string, n int) map[string]TaskSpec {
	m := map[string]TaskSpec{}
	for i := range n {
		id := fmt.Sprintf("%s/%d", pipeline, i)
		m[id] = TaskSpec{ID: id, Pipeline: pipeline, Region: region}
	}
	return m
}

func union[V any](ms ...map[string]V) map[string]V {
	out := map[string]V{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func members(spec ...string) map[string]Member {
	// spec: "id@region" (alive) or "id@region!" (dead)
	out := map[string]Member{}
	for _, s := range spec {
		alive := s[len(s)-1] != '!'
		if !alive {
			s = s[:len(s)-1]
		}
		var id, region string
		for i := range s {
			if s[i] == '@' {
				id, region = s[:i], s[i+1:]
			}
		}
		out[id] = Member{ID: id, Region: region, Alive: alive}
	}
	return out
}

func counts(a map[string]Assignment) map[string]int {
	c := map[string]int{}
	for _, x := range a {
		c[x.Node]++
	}
	return c
}

func TestAssign(t *testing.T) {
	eu6 := tasksOf("eu", "eu-pay", 6)
	us2 := tasksOf("us", "us-pay", 2)
	balanced := map[string]Assignment{
		"eu-pay/0": {"eu-1", 1}, "eu-pay/1": {"eu-1", 1}, "eu-pay/2": {"eu-1", 1},
		"eu-pay/3": {"eu-2", 1}, "eu-pay/4": {"eu-2", 1}, "eu-pay/5": {"eu-2", 1},
		"us-pay/0": {"us-1", 1}, "us-pay/1": {"us-1", 1},
	}
	for _, tc := range []struct {
		name       string
		tasks      map[string]TaskSpec
		members    map[string]Member
		current    map[string]Assignment
		margin     float64
		wantCounts map[string]int
		wantMoved  []string
		wantUnass  []string
		check      func(t *testing.T, next map[string]Assignment)
	}{
		{
			name:       "tasks are spread evenly over the live nodes of their region",
			tasks:      union(eu6, us2),
			members:    members("eu-1@eu", "eu-2@eu", "us-1@us"),
			margin:     0.2,
			wantCounts: map[string]int{"eu-1": 3, "eu-2": 3, "us-1": 2},
			check: func(t *testing.T, next map[string]Assignment) {
				for id, a := range next {
					if a.Epoch != 1 {
						t.Errorf("%s: epoch %d, want 1 for a first placement", id, a.Epoch)
					}
				}
			},
		},
		{
			name:       "a stable assignment stays as it is",
			tasks:      union(eu6, us2),
			members:    members("eu-1@eu", "eu-2@eu", "us-1@us"),
			current:    balanced,
			margin:     0.2,
			wantCounts: map[string]int{"eu-1": 3, "eu-2": 3, "us-1": 2},
			check: func(t *testing.T, next map[string]Assignment) {
				if !reflect.DeepEqual(next, balanced) {
					t.Errorf("next = %v, want unchanged", next)
				}
			},
		},
		{
			name:       "adding one task moves nothing else",
			tasks:      union(eu6, us2, map[string]TaskSpec{"eu-pay/6": {ID: "eu-pay/6", Pipeline: "eu-pay", Region: "eu"}}),
			members:    members("eu-1@eu", "eu-2@eu", "us-1@us"),
			current:    balanced,
			margin:     0.2,
			wantCounts: map[string]int{"eu-1": 4, "eu-2": 3, "us-1": 2},
			check: func(t *testing.T, next map[string]Assignment) {
				for id, a := range balanced {
					if next[id] != a {
						t.Errorf("%s changed from %v to %v", id, a, next[id])
					}
				}
				if next["eu-pay/6"] != (Assignment{"eu-1", 1}) {
					t.Errorf("new task = %v, want eu-1 (tie broken by node id) at epoch 1", next["eu-pay/6"])
				}
			},
		},
		{
			name:       "killing a node moves only its tasks, within its region",
			tasks:      union(eu6, us2),
			members:    members("eu-1@eu!", "eu-2@eu", "us-1@us"),
			current:    balanced,
			margin:     0.2,
			wantCounts: map[string]int{"eu-2": 6, "us-1": 2},
			wantMoved:  []string{"eu-pay/0", "eu-pay/1", "eu-pay/2"},
			check: func(t *testing.T, next map[string]Assignment) {
				if next["eu-pay/0"].Epoch != 2 || next["eu-pay/3"].Epoch != 1 {
					t.Errorf("epochs: moved task %d (want 2), kept task %d (want 1)", next["eu-pay/0"].Epoch, next["eu-pay/3"].Epoch)
				}
			},
		},
		{
			name:       "a removed node's tasks move like a dead node's",
			tasks:      union(eu6, us2),
			members:    members("eu-2@eu", "eu-3@eu", "us-1@us"),
			current:    balanced,
			margin:     0.2,
			wantCounts: map[string]int{"eu-2": 3, "eu-3": 3, "us-1": 2},
			wantMoved:  []string{"eu-pay/0", "eu-pay/1", "eu-pay/2"},
		},
		{
			name:       "with every eu node dead the eu tasks are unassigned and us is untouched",
			tasks:      union(eu6, us2),
			members:    members("eu-1@eu!", "eu-2@eu!", "us-1@us"),
			current:    balanced,
			margin:     0.2,
			wantCounts: map[string]int{"": 6, "us-1": 2},
			wantMoved:  []string{"eu-pay/0", "eu-pay/1", "eu-pay/2", "eu-pay/3", "eu-pay/4", "eu-pay/5"},
			wantUnass:  []string{"eu-pay/0", "eu-pay/1", "eu-pay/2", "eu-pay/3", "eu-pay/4", "eu-pay/5"},
		},
		{
			name:       "tasks of a region without any member wait unassigned",
			tasks:      union(us2, tasksOf("cloud", "fleet", 1)),
			members:    members("us-1@us"),
			margin:     0.2,
			wantCounts: map[string]int{"us-1": 2, "": 1},
			wantUnass:  []string{"fleet/0"},
		},
		{
			name:       "a task on a node of the wrong region moves to its region",
			tasks:      us2,
			members:    members("eu-1@eu", "us-1@us"),
			current:    map[string]Assignment{"us-pay/0": {"eu-1", 4}, "us-pay/1": {"us-1", 1}},
			margin:     0.2,
			wantCounts: map[string]int{"us-1": 2},
			wantMoved:  []string{"us-pay/0"},
		},
		{
			name:       "a new node takes tasks from the busiest until balanced",
			tasks:      eu6,
			members:    members("eu-1@eu", "eu-2@eu", "eu-3@eu"),
			current:    balanced,
			margin:     0.2,
			wantCounts: map[string]int{"eu-1": 2, "eu-2": 2, "eu-3": 2},
			wantMoved:  []string{"eu-pay/0", "eu-pay/3"},
		},
		{
			name:    "an imbalance within the margin moves nothing",
			tasks:   tasksOf("eu", "p", 9),
			members: members("a@eu", "b@eu"),
			current: map[string]Assignment{
				"p/0": {"a", 1}, "p/1": {"a", 1}, "p/2": {"a", 1}, "p/3": {"a", 1}, "p/4": {"a", 1},
				"p/5": {"b", 1}, "p/6": {"b", 1}, "p/7": {"b", 1}, "p/8": {"b", 1},
			},
			margin:     0.25, // 5 vs 4: diff 1 <= 0.25 × 4.5
			wantCounts: map[string]int{"a": 5, "b": 4},
		},
		{
			name:    "an imbalance beyond the margin moves one task",
			tasks:   tasksOf("eu", "p", 9),
			members: members("a@eu", "b@eu"),
			current: map[string]Assignment{
				"p/0": {"a", 1}, "p/1": {"a", 1}, "p/2": {"a", 1}, "p/3": {"a", 1}, "p/4": {"a", 1}, "p/5": {"a", 1},
				"p/6": {"b", 1}, "p/7": {"b", 1}, "p/8": {"b", 1},
			},
			margin:     0.25, // 6 vs 3: diff 3 > 0.25 × 4.5; moving one gives 5 vs 4
			wantCounts: map[string]int{"a": 5, "b": 4},
			wantMoved:  []string{"p/0"},
		},
		{
			name: "a move that would not narrow the gap is not made",
			tasks: map[string]TaskSpec{
				"p/0": {ID: "p/0", Region: "eu", Weight: 10}, "p/1": {ID: "p/1", Region: "eu", Weight: 1},
			},
			members:    members("a@eu", "b@eu"),
			current:    map[string]Assignment{"p/0": {"a", 1}, "p/1": {"b", 1}},
			margin:     0,
			wantCounts: map[string]int{"a": 1, "b": 1},
		},
		{
			name: "weights from measured load steer placement",
			tasks: map[string]TaskSpec{
				"p/0": {ID: "p/0", Region: "eu", Weight: 5}, "p/1": {ID: "p/1", Region: "eu", Weight: 1},
				"p/2": {ID: "p/2", Region: "eu", Weight: 1}, "p/3": {ID: "p/3", Region: "eu", Weight: 1},
			},
			members:    members("a@eu", "b@eu"),
			margin:     0.2,
			wantCounts: map[string]int{"a": 1, "b": 3},
			check: func(t *testing.T, next map[string]Assignment) {
				if next["p/0"].Node != "a" {
					t.Errorf("heavy task on %s, want alone on a", next["p/0"].Node)
				}
			},
		},
		{
			name:       "a node coming back to a region without live nodes gets its tasks",
			tasks:      tasksOf("eu", "p", 2),
			members:    members("a@eu"),
			current:    map[string]Assignment{"p/0": {"", 2}, "p/1": {"", 4}},
			margin:     0.2,
			wantCounts: map[string]int{"a": 2},
			check: func(t *testing.T, next map[string]Assignment) {
				if next["p/0"].Epoch != 3 || next["p/1"].Epoch != 5 {
					t.Errorf("epochs = %d, %d; want 3, 5", next["p/0"].Epoch, next["p/1"].Epoch)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, moved, unassigned := Assign(tc.tasks, tc.members, tc.current, tc.margin)
			if len(next) != len(tc.tasks) {
				t.Fatalf("next has %d tasks, want %d", len(next), len(tc.tasks))
			}
			for id, a := range next {
				if a.Node == "" {
					continue
				}
				m := tc.members[a.Node]
				if !m.Alive || m.Region != tc.tasks[id].Region {
					t.Errorf("%s (region %s) on %s (region %s, alive %v)", id, tc.tasks[id].Region, a.Node, m.Region, m.Alive)
				}
			}
			if got := counts(next); !reflect.DeepEqual(got, tc.wantCounts) {
				t.Errorf("tasks per node = %v, want %v", got, tc.wantCounts)
			}
			if !reflect.DeepEqual(moved, tc.wantMoved) {
				t.Errorf("moved = %v, want %v", moved, tc.wantMoved)
			}
			if !reflect.DeepEqual(unassigned, tc.wantUnass) {
				t.Errorf("unassigned = %v, want %v", unassigned, tc.wantUnass)
			}
			if tc.check != nil {
				tc.check(t, next)
			}
			// Assign is a fixed point: applying it again changes nothing.
			again, moved2, _ := Assign(tc.tasks, tc.members, next, tc.margin)
			if !reflect.DeepEqual(again, next) || len(moved2) != 0 {
				t.Errorf("a second round moved %v", moved2)
			}
		})
	}
}

func TestEffectiveWeight(t *testing.T) {
	for _, tc := range []struct{ base, rps, want float64 }{
		{0, 0, 1}, {0, 1000, 2}, {2, 500, 2.5}, {0, -5, 1},
	} {
		if got := effectiveWeight(tc.base, tc.rps); got != tc.want {
			t.Errorf("effectiveWeight(%v, %v) = %v, want %v", tc.base, tc.rps, got, tc.want)
		}
	}
}
