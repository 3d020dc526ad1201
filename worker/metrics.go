package worker

import "github.com/prometheus/client_golang/prometheus"

// Metrics are a worker process's Prometheus metrics; the workers of one
// process share them.
type Metrics struct {
	Tokens        prometheus.Counter
	Shards        *prometheus.CounterVec // by result: done, skipped, failed, retried, stale
	ShardDuration prometheus.Histogram
	Redeliveries  prometheus.Counter
	Errors        *prometheus.CounterVec // by stage
	InFlight      prometheus.Gauge
	// MergePartials counts the partials folded by merge tasks, and
	// MergeSecondsPerPartial is each merge task's time (read, merge and
	// write the layer) divided by its partials.
	MergePartials          prometheus.Counter
	MergeSecondsPerPartial prometheus.Histogram
	// MemoryWaits counts tasks that waited for the process's memory
	// (MemoryGate).
	MemoryWaits prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Tokens: prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_worker_tokens_total", Help: "Tokens run through the model and collated."}),
		Shards: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tdb_worker_shards_total",
			Help: "Shard deliveries handled, by result (done, skipped, retried, failed, stale, interrupted)."}, []string{"result"}),
		ShardDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tdb_worker_shard_duration_seconds",
			Help: "Time to compute and write one shard.", Buckets: prometheus.ExponentialBuckets(0.25, 2, 14)}),
		Redeliveries: prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_worker_redeliveries_total", Help: "Shard messages received on their second or later delivery."}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tdb_worker_errors_total",
			Help: "Errors by stage (fetch, decode, job, compute, merge, store, kv, ack)."}, []string{"stage"}),
		InFlight:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "tdb_worker_shards_in_flight", Help: "Shards being computed now."}),
		MergePartials: prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_worker_merge_partials_total", Help: "Partials merged by merge tasks."}),
		MergeSecondsPerPartial: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tdb_worker_merge_seconds_per_partial",
			Help: "A merge task's time (read, merge, write the layer) per partial it merged.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		MemoryWaits: prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_worker_memory_waits_total",
			Help: "Tasks that waited for memory the process's other tasks held (--workers N sharing --worker-memory)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Tokens, m.Shards, m.ShardDuration, m.Redeliveries, m.Errors, m.InFlight, m.MergePartials, m.MergeSecondsPerPartial, m.MemoryWaits)
	}
	return m
}
