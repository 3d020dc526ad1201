package coordinator

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the coordinator's Prometheus metrics.
type Metrics struct {
	Jobs          *prometheus.GaugeVec // by status
	QueueDepth    prometheus.Gauge
	AckPending    prometheus.Gauge
	Redeliveries  prometheus.Gauge
	ShardsDone    prometheus.Counter
	Tokens        prometheus.Counter
	ShardDuration prometheus.Histogram
	MergeDuration prometheus.Histogram
	Errors        *prometheus.CounterVec // by stage
	Leader        prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Jobs:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tdb_coordinator_jobs", Help: "Jobs in KV by status."}, []string{"status"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tdb_coordinator_queue_depth", Help: "Shard messages waiting for a worker."}),
		AckPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tdb_coordinator_shards_in_flight", Help: "Shard messages delivered and not yet acked."}),
		Redeliveries: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tdb_coordinator_redeliveries",
			Help: "Shard messages currently on their second or later delivery (consumer num_redelivered)."}),
		ShardsDone: prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_coordinator_shards_done_total", Help: "Shards recorded as done."}),
		Tokens:     prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_coordinator_tokens_total", Help: "Tokens processed by finished shards."}),
		ShardDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tdb_coordinator_shard_duration_seconds",
			Help: "Compute time of finished shards, as the workers report it.", Buckets: prometheus.ExponentialBuckets(0.25, 2, 14)}),
		MergeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tdb_coordinator_merge_duration_seconds",
			Help: "Time to merge one location and layer (a merge task, as the workers report it).", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tdb_coordinator_errors_total", Help: "Errors by stage (plan, publish, kv, merge, advisory, jobs, panic)."}, []string{"stage"}),
		Leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tdb_coordinator_leader", Help: "1 while this coordinator holds the leader lease, 0 while it stands by."}),
	}
	if reg != nil {
		reg.MustRegister(m.Leader, m.Jobs, m.QueueDepth, m.AckPending, m.Redeliveries, m.ShardsDone, m.Tokens, m.ShardDuration, m.MergeDuration, m.Errors)
	}
	return m
}
