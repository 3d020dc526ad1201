// Package jobs is the model of a collation job, shared by the coordinator,
// the workers and the CLI without NATS: the spec (what a job computes, its
// defaults, validation, its id and dataset name, its collate.Config), its
// life-cycle state, the body of a shard message, the shard records workers
// report and the partials they list with their checksums, and every KV and
// store key of a job (keys.go).
//
// Keeping the wire format here lets the coordinator and the worker agree on
// it without importing each other; internal/natsx carries it over NATS.
//
// A job is a collation, or (Kind KindExplain, ExplainSpec) an explain job
// over an existing dataset, carried by the same messages and records.
//
// What a job reads is part of it: LocalFilesStamp and DigestFiles (sizes
// and sampled sha256, digest.go) of local model and autoencoder files go in
// the spec at submission, and VerifyFiles is how a worker checks the files
// it loads against them.
//
// A job's worker memory (JobSpec.WorkerMemory) and the sizes the submitter
// resolved (Sizing) let the plan split its targets into component groups
// that fit (memory.go: FixedBytes, TargetBytes, PlanGroups; PlanTasks
// makes the tasks shard ranges × groups). Neither changes the dataset,
// so neither is part of the default id.
//
// Start at JobSpec and Normalize, then JobState and ShardRecord; keys.go
// lists where each lives.
package jobs
