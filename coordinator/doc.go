// Package coordinator runs collation jobs over NATS JetStream. A job's spec
// and state live in a KV bucket; the coordinator plans the corpus into
// shards, publishes one work-queue message per shard (Nats-Msg-Id =
// job/attempt/shard, so a re-plan never duplicates work), follows the
// workers' shard records in KV, fails the job when a shard runs out of
// deliveries (the server's MAX_DELIVERIES advisory or a worker's final error
// record), and when every shard is done has collate.AssembleDataset merge
// the partials per location and layer and write the dataset, manifest last.
// All of its state is in KV and the store, so a restarted coordinator
// resumes every unfinished job.
//
// Any number of coordinators may run: natsx.Lead elects one through a KV
// lease with a TTL (compare-and-set renewals); the others stand by and
// take over within about a TTL when the leader dies. Watches are
// natsx.Watch, re-established from the last revision when they end, and a
// panic in one job's driver fails that job, never the coordinator.
//
// An explain job (jobs.KindExplain, explain.go) goes through the same
// stages on the same stream, but is planned from an existing dataset into
// explain.Tasks and is done, without a merge, when every task is.
//
// Client is the submitting side (tdb collate, tdb jobs): submit, list,
// status, cancel and progress.
//
// Start at Run, then drive: each job moves through plan, follow (replay
// the shard records, publish, watch) and merge; Client (client.go) is the
// submitting side.
//
// It imports corpus, collate, explain, store, internal/jobs and
// internal/natsx.
package coordinator
