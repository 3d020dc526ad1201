// Package coordinator runs collation jobs over NATS JetStream. A job's spec
// and state live in a KV bucket; the coordinator plans the corpus into
// shards, publishes one work-queue message per shard (Nats-Msg-Id =
// job/attempt/shard, so a re-plan never duplicates work), follows the
// workers' shard records in KV, fails the job when a shard runs out of
// deliveries (the server's MAX_DELIVERIES advisory or a worker's final error
// record), merges the partials per location and layer in parallel when every
// shard is done, and writes the dataset manifest last. All of its state is in
// KV and the store, so a restarted coordinator resumes every unfinished job.
//
// Client is the submitting side (tdb collate, tdb jobs): submit, list,
// status, cancel and progress.
//
// It imports corpus, collate, store and internal/natsutil.
package coordinator
