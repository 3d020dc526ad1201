package query

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus metrics.
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	hits     prometheus.Counter
	misses   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, r *Reader) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tdb_query_requests_total", Help: "API requests by route and status code."}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tdb_query_request_seconds", Help: "API request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10}}, []string{"route"}),
		hits:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_query_cache_hits_total", Help: "LRU cache hits (row groups, tables, rendered components)."}),
		misses: prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_query_cache_misses_total", Help: "LRU cache misses."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.hits, m.misses,
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tdb_query_store_read_bytes_total", Help: "Bytes read from the store."},
				func() float64 { return float64(r.st.read.Load()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tdb_query_cache_bytes", Help: "Bytes held by the LRU cache."},
				func() float64 { return float64(r.cache.bytes() + r.answers.bytes()) }))
	}
	return m
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}
