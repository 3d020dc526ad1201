// Package natsx is the NATS side of the distributed collation job, shared
// by the coordinator, the workers and the CLI: an embedded JetStream server
// for the one-machine default, connections that retry with back-off, the
// stream, consumer and KV bucket (names, subjects, redelivery schedule) and
// JSON values in KV with compare-and-set state updates.
//
// What travels on it (specs, states, shard records, keys) is the job model
// in internal/jobs, which knows nothing of NATS; HTTP plumbing is in
// internal/service.
//
// Start at StartEmbedded or RetryDialer (a connection), then EnsureBucket
// and EnsureQueue (the coordinator) or Bind (a worker); UpdateState is how
// a job's state changes.
package natsx
