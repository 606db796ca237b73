package coord

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics of the Raft node. tributary_tasks{state="unassigned"} belongs to the
// replicator metrics set; cmd sets it from (*Node).Unassigned.
type metrics struct {
	state         prometheus.Gauge
	term          prometheus.Gauge
	leaderChanges prometheus.Counter
	bundleRefused *prometheus.CounterVec
	applyHalted   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		state: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tributary_raft_state",
			Help: "Raft state of this node: 0 follower, 1 candidate, 2 leader, 3 shutdown.",
		}),
		term: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tributary_raft_term",
			Help: "Current Raft term seen by this node.",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_raft_leader_changes_total",
			Help: "Times this node saw a new Raft leader.",
		}),
		bundleRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_policy_bundle_refused_total",
			Help: "Policy bundles this node refused to propose as the leader, by reason.",
		}, []string{"reason"}),
		applyHalted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tributary_raft_apply_halted",
			Help: "1 when this node stopped applying the Raft log because an entry or snapshot has a version it does not understand (upgrade it), else 0.",
		}),
	}
	for _, r := range refusalReasons {
		m.bundleRefused.WithLabelValues(r)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.state, m.term, m.leaderChanges, m.bundleRefused, m.applyHalted} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// stateValue maps raft states to the values of tributary_raft_state; raft's
// own RaftState numbering is the same but is not a documented contract.
func stateValue(s raft.RaftState) float64 {
	switch s {
	case raft.Follower:
		return 0
	case raft.Candidate:
		return 1
	case raft.Leader:
		return 2
	default:
		return 3
	}
}
