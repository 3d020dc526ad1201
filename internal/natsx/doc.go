// Package natsutil is the NATS side of the distributed collation job, shared
// by the coordinator, the workers and the CLI: an embedded JetStream server
// for the one-machine default, connections that retry with back-off, the
// layout of the stream, consumer and KV bucket, the messages and records
// exchanged on them, and a small /metrics HTTP server.
//
// Keeping the wire format here lets the coordinator and the worker agree on it
// without importing each other. The package imports only nats.go,
// nats-server (for the embedded server) and Prometheus' client library.
package natsx
