package governance

import "github.com/prometheus/client_golang/prometheus"

// metrics are the governance step's own series.
type metrics struct {
	masked      *prometheus.CounterVec // pipeline, policy, action
	validations *prometheus.CounterVec // pipeline, result
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		masked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_masked_fields_total",
			Help: "Field values masked before landing, by pipeline, policy and action.",
		}, []string{"pipeline", "policy", "action"}),
		validations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_pubsub_schema_validations_total",
			Help: "Pub/Sub messages checked against their JSON Schema subject, by pipeline and result (valid, invalid).",
		}, []string{"pipeline", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.masked, m.validations)
	}
	return m
}
