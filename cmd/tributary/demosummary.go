package main

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// pipelineSummary is what the demo prints per pipeline, summed over the nodes.
type pipelineSummary struct {
	records, quarantined, masked, lag float64
}

func (s pipelineSummary) line(name string) string {
	return fmt.Sprintf("%-16s records %8.0f   lag %6.0f   masked fields %8.0f   quarantined %5.0f", name, s.records, s.lag, s.masked, s.quarantined)
}

// gatherDemo sums the nodes' metrics per pipeline: records replicated (Kafka)
// or written (Pub/Sub), quarantined, fields masked, and lag (source records
// not yet replicated; for Pub/Sub the messages held, not yet acked).
func gatherDemo(regs []prometheus.Gatherer) map[string]pipelineSummary {
	out := map[string]pipelineSummary{}
	add := func(p string, f func(*pipelineSummary)) {
		s := out[p]
		f(&s)
		out[p] = s
	}
	for _, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				p := labels["pipeline"]
				if p == "" {
					continue
				}
				v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
				switch mf.GetName() {
				case "tributary_records_total", "tributary_pubsub_records_total":
					switch labels["outcome"] {
					case "replicated", "written":
						add(p, func(s *pipelineSummary) { s.records += v })
					case "quarantined":
						add(p, func(s *pipelineSummary) { s.quarantined += v })
					}
				case "tributary_masked_fields_total":
					add(p, func(s *pipelineSummary) { s.masked += v })
				case "tributary_replication_lag_records", "tributary_pubsub_outstanding_messages":
					add(p, func(s *pipelineSummary) { s.lag += v })
				}
			}
		}
	}
	return out
}
