// Package coordinator runs collation jobs over NATS JetStream. A job's spec
// and state live in a KV bucket; the coordinator plans the corpus into
// shards, publishes one work-queue message per task (Nats-Msg-Id =
// job/attempt/shard, so a re-plan never duplicates work; a task is a range
// of consecutive shards × a component group when the job's targets do not
// fit its worker memory, jobs.JobSpec.PlanGroups), follows the
// workers' shard records in KV, fails the job when a shard runs out of
// deliveries (the server's MAX_DELIVERIES advisory or a worker's final error
// record), and when every shard is done runs the merge as tasks on the
// same stream (jobs.KindMerge, merge.go): a tree of merges, levels of
// intermediate merges of at most Config.MergeFanIn partials into one, then
// one final merge per location and layer, which writes that layer's files
// (collate.MergeLayer). Any worker runs them; they are redelivered and
// retried like shards, and when every final merge is done the coordinator
// writes the manifest, last, from their records (collate.FinishDataset). All of its state is in KV and the store, so a restarted coordinator
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
// Start at Run, then drive: each job moves through plan, follow and merge,
// both of which run their tasks with runTasks (replay the task records,
// publish the tasks not done, watch); Client (client.go) is the submitting
// side.
//
// It imports corpus, collate, explain, store, internal/jobs and
// internal/natsx.
package coordinator
