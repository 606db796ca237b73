package coord

import (
	"math"
	"sort"
)

// Assign computes the next assignment of tasks to members. It is a pure
// function; the leader calls it with the replicated state whenever membership,
// liveness, the task list or the load changes, and periodically.
//
// The Weight of each task is its effective weight (the leader passes base
// weight + records_per_sec/1000); a node's load is the sum of the weights of its
// tasks. The rules, in order:
//
//  1. Residency is absolute: a task of region R runs only on a live member of
//     region R. When there is none, the task is unassigned.
//  2. Sticky: a task stays on its node while that node is a live member of
//     the task's region.
//  3. Every other task goes to the least loaded live node of its region (ties:
//     fewer tasks, then the smaller node id), heaviest tasks first.
//  4. Rebalance: while the most and the least loaded nodes of a region differ
//     by more than margin × their mean load, move the task from the most to
//     the least loaded node that narrows that difference most; a move that
//     does not narrow it is never made.
//
// next holds every task of tasks; an Epoch grows by one whenever its Node
// changes. moved lists the tasks that had a node and now have another (or
// none); unassigned lists the tasks left without a node. Both are sorted.
func Assign(tasks map[string]TaskSpec, members map[string]Member, current map[string]Assignment, margin float64) (next map[string]Assignment, moved []string, unassigned []string) {
	ids := make([]string, 0, len(tasks))
	for id := range tasks {
		ids = append(ids, id)
	}
	sort.Strings(ids)

	type nodeLoad struct {
		id    string
		load  float64
		tasks map[string]bool
	}
	regions := map[string][]*nodeLoad{} // live nodes by region, sorted by id
	nodes := map[string]*nodeLoad{}
	memberIDs := make([]string, 0, len(members))
	for id := range members {
		memberIDs = append(memberIDs, id)
	}
	sort.Strings(memberIDs)
	for _, id := range memberIDs {
		m := members[id]
		if !m.Alive {
			continue
		}
		n := &nodeLoad{id: id, tasks: map[string]bool{}}
		nodes[id] = n
		regions[m.Region] = append(regions[m.Region], n)
	}
	weight := func(id string) float64 {
		if w := tasks[id].Weight; w > 0 && !math.IsInf(w, 0) {
			return w
		}
		return 1
	}
	place := map[string]string{}
	put := func(task string, n *nodeLoad) {
		place[task] = n.id
		n.load += weight(task)
		n.tasks[task] = true
	}
	lighter := func(a, b *nodeLoad) bool { // a is less loaded than b
		if a.load != b.load {
			return a.load < b.load
		}
		if len(a.tasks) != len(b.tasks) {
			return len(a.tasks) < len(b.tasks)
		}
		return a.id < b.id
	}

	// 2. Keep what may stay.
	var homeless []string
	for _, id := range ids {
		cur := current[id].Node
		if n, ok := nodes[cur]; ok && members[cur].Region == tasks[id].Region {
			put(id, n)
			continue
		}
		homeless = append(homeless, id)
	}
	// 3. Place the rest, heaviest first.
	sort.SliceStable(homeless, func(i, j int) bool { return weight(homeless[i]) > weight(homeless[j]) })
	for _, id := range homeless {
		var best *nodeLoad
		for _, n := range regions[tasks[id].Region] {
			if best == nil || lighter(n, best) {
				best = n
			}
		}
		if best != nil {
			put(id, best)
		}
	}
	// 4. Rebalance each region. Every move lowers the sum of squared loads, so
	// the loop ends; the bound is a second guarantee.
	regionNames := make([]string, 0, len(regions))
	for r := range regions {
		regionNames = append(regionNames, r)
	}
	sort.Strings(regionNames)
	for _, r := range regionNames {
		ns := regions[r]
		if len(ns) < 2 {
			continue
		}
		for range len(ids)*len(ns) + 1 {
			hi, lo := ns[0], ns[0]
			for _, n := range ns[1:] {
				if lighter(hi, n) {
					hi = n
				}
				if lighter(n, lo) {
					lo = n
				}
			}
			diff := hi.load - lo.load
			if diff <= 1e-9 || diff <= margin*(hi.load+lo.load)/2 {
				break
			}
			var pick string
			bestGap := diff
			for _, id := range sortedKeys(hi.tasks) {
				w := weight(id)
				if gap := math.Abs(diff - 2*w); w < diff && gap < bestGap-1e-9 {
					pick, bestGap = id, gap
				}
			}
			if pick == "" {
				break
			}
			delete(hi.tasks, pick)
			hi.load -= weight(pick)
			put(pick, lo)
		}
	}

	next = make(map[string]Assignment, len(ids))
	for _, id := range ids {
		cur := current[id]
		node := place[id]
		a := Assignment{Node: node, Epoch: cur.Epoch}
		if node != cur.Node {
			a.Epoch++
			if cur.Node != "" {
				moved = append(moved, id)
			}
		}
		next[id] = a
		if node == "" {
			unassigned = append(unassigned, id)
		}
	}
	return next, moved, unassigned
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
