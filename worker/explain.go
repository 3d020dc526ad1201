package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"time"

	"golang.org/x/time/rate"

	"tdb/dataset"
	"tdb/explain"
	"tdb/explain/llm"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/store"
)

// Explain tasks (jobs.KindExplain): one location, layer and block of
// components of a dataset, explained and scored by explain.Job.RunTask,
// which reads and writes only the block's own explanations file and skips
// the components the file already holds for the job's method. A
// redelivered or repeated task therefore redoes only what its last
// delivery did not write, and two workers never write the same file.

// computeExplain runs one explain task. It returns the components the
// task went through (explained now or already done) as the task's
// "tokens", and how many of them it explained.
func (w *Worker) computeExplain(ctx context.Context, task jobs.ShardTask, progress func(int64)) (explained, skipped int, err error) {
	var spec jobs.JobSpec
	if _, err := natsx.GetJSON(ctx, w.kv, jobs.SpecKey(task.Job), &spec); err != nil {
		return 0, 0, err // GetJSON names the spec key
	}
	if spec.Explain == nil {
		return 0, 0, jobs.Permanent(fmt.Errorf("job %s: an explain task of a job without explain settings", task.Job))
	}
	var t explain.Task
	if err := json.Unmarshal(task.Shard, &t); err != nil {
		return 0, 0, jobs.Permanent(fmt.Errorf("decoding explain task %d: %w", task.Index, err))
	}
	job, err := ExplainJob(w.cfg.Store, spec)
	if err != nil {
		return 0, 0, jobs.Permanent(err)
	}
	m, err := dataset.ReadManifest(ctx, w.cfg.Store, spec.Dataset)
	if err != nil {
		return 0, 0, err
	}
	if w.cfg.ShardDelay > 0 {
		select {
		case <-ctx.Done():
			return 0, 0, context.Cause(ctx)
		case <-time.After(w.cfg.ShardDelay):
		}
	}
	job.Explained = func(n int) { progress(int64(n)) }
	sum, err := job.RunTask(ctx, m, t)
	return sum.Explained, sum.Skipped, err
}

// ExplainJob builds the explain.Job an explain job's spec describes (the
// explainer, the judge, the scores), without its Progress: what a worker
// runs each task of the job with. The LLM key comes from this process's
// TDB_LLM_API_KEY, never from the spec.
func ExplainJob(st store.Store, spec jobs.JobSpec) (*explain.Job, error) {
	e := spec.Explain
	if e == nil {
		return nil, fmt.Errorf("job %s has no explain settings", spec.ID)
	}
	vocab, err := explain.GPT2Vocab()
	if err != nil {
		return nil, err
	}
	var client *llm.Client
	if e.UsesLLM() {
		if e.LLMURL == "" || e.LLMModel == "" {
			return nil, fmt.Errorf("job %s: the llm method and judge need an LLM URL and model", spec.ID)
		}
		client = &llm.Client{URL: e.LLMURL, Model: e.LLMModel, APIKey: os.Getenv("TDB_LLM_API_KEY"), Cache: st, Attempts: e.LLMAttempts}
		if e.LLMRPS > 0 {
			client.Limiter = rate.NewLimiter(rate.Limit(e.LLMRPS), 1)
		}
	}
	job := &explain.Job{Store: st, Dataset: spec.Dataset, Locations: e.Locations, Layers: e.Layers, Components: e.Components,
		Scores: e.Scores, Workers: runtime.GOMAXPROCS(0)}
	switch e.Method {
	case "builtin":
		job.Explainer = &explain.Builtin{Vocab: vocab}
	case "llm":
		job.Explainer = &explain.LLMExplainer{Client: client, Vocab: vocab}
	default:
		return nil, fmt.Errorf("job %s: explain method %q: want builtin or llm", spec.ID, e.Method)
	}
	switch e.Judge {
	case "builtin", "":
		job.Judge = &explain.BuiltinJudge{Vocab: vocab}
	case "llm":
		job.Judge = &explain.LLMJudge{Client: client, Vocab: vocab, Batch: e.LLMBatch}
	default:
		return nil, fmt.Errorf("job %s: explain judge %q: want builtin or llm", spec.ID, e.Judge)
	}
	return job, nil
}
