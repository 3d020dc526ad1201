// Package service is the plumbing every tdb HTTP service shares: a
// Prometheus registry with the runtime collectors, a mux with /metrics and
// /healthz, a server that stops with its context, and the slog set-up. It
// imports no NATS, so the query service and the viewer use it too.
//
// Start at NewRegistry, then NewMux (add the service's routes) and Serve;
// ServeMetrics is the two together for services with no other routes.
// ServeUntil is the foreground loop of a command that is a server (tdb
// query, tdb serve).
package service
