// Package worker runs the tasks of collation jobs (a task is one shard or a
// group of consecutive shards, fixed by the plan, with one partial per
// target for the whole group; jobs.TaskShards): it pulls shard messages
// from the shared JetStream consumer, reads the job spec from KV, loads the
// model (and autoencoders) and the corpus the spec names (cached across
// shards), runs the forward pass over the shard's windows in batches, feeds
// one collate accumulator per location and layer, writes each accumulator's
// partial to the store under a deterministic key, records the shard in KV
// and only then acks. While it computes it sends in-progress acks so a long
// shard is not redelivered; a crash leaves the message unacked and the
// server redelivers it to another worker.
//
// A task may cover one component group of the job (jobs.TaskShards.Targets,
// planned by jobs.JobSpec.PlanGroups to fit a worker's memory): the worker
// then builds accumulators, captures sites and loads autoencoders for that
// group only (memory.go: autoencoders are loaded per task and the last
// group's kept for the next task of that group). SizeJob gives the
// submitter the sizes the plan is made from.
//
// A shard runs as a pipeline: its windows are read first (tokens are small)
// so every accumulator can plan the shard's sources; then the forward pass
// of one batch runs while the previous batch is accumulated (hooks copy the
// captured sites into two reused buffer sets), and the partials are encoded,
// hashed and written in parallel at the end.
//
// Before computing it checks what the job reads against what was
// submitted and planned: the local model and autoencoder files against the
// spec's digests (jobs.VerifyFiles, before loading and after; the model
// cache is keyed by them), and each corpus block against its planned hash
// (corpus.Windows). A mismatch is a permanent error: the job fails at once
// with the reason, never mixing old and new content.
//
// A message of an explain job (ShardTask.Kind jobs.KindExplain) carries an
// explain.Task instead: the worker runs it with explain.Job.RunTask
// (explain.go) in the same handle/record/ack flow.
//
// A merge task (jobs.KindMerge, merge.go) names one location and layer of
// a job whose shards are done and the partials to fold: the worker checks
// and merges them, then writes one partial (an intermediate merge of the
// tree) or that layer's dataset files (collate.MergeLayer, the final
// merge), and records what it wrote.
//
// Start at Run, then handle (one delivery: skip, compute, record, ack) and
// Job.Run (one shard's forward passes and accumulators).
//
// It imports model, model/hub, autoencoder, corpus, collate, explain, store,
// internal/jobs and internal/natsx; it knows nothing of the coordinator.
package worker
