package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"

	"tdb/dataset"
	"tdb/explain"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
)

// An explain job (jobs.KindExplain) runs through the same stages as a
// collation but for what it plans and how it ends: planExplain cuts the
// existing dataset into explain.Tasks (one location, layer and block of
// components, each its own explanations file), follow publishes and
// watches them like shards, and finishExplain marks the job done when
// every task is done (there is nothing to merge: each task wrote its own
// file).

// planExplain saves the job's task plan and moves it to running.
func (c *Coordinator) planExplain(ctx context.Context, spec jobs.JobSpec, st jobs.JobState, log *slog.Logger) error {
	e := spec.Explain
	log.Info("planning explain job", "dataset", spec.Dataset, "method", e.Method)
	if spec.Store != "" && spec.Store != c.cfg.Store.String() {
		return stageErr("plan", "the job is for store %s, but this coordinator writes to %s (submit with --store %s)", spec.Store, c.cfg.Store, c.cfg.Store)
	}
	j := &explain.Job{Store: c.cfg.Store, Dataset: spec.Dataset, Locations: e.Locations, Layers: e.Layers, Components: e.Components}
	_, tasks, err := j.Plan(ctx)
	if err != nil {
		if errors.Is(err, dataset.ErrNoDataset) {
			return stageErr("plan", "%v (in %s)", err, c.cfg.Store)
		}
		return stageErr("plan", "%v", err)
	}
	plan := make([]json.RawMessage, len(tasks))
	var components int64
	for i, t := range tasks {
		if plan[i], err = json.Marshal(t); err != nil {
			return stageErr("plan", "encoding plan: %w", err)
		}
		if len(e.Components) == 0 {
			components += int64(t.Hi - t.Lo)
		} else {
			components += int64(len(slices.DeleteFunc(slices.Clone(e.Components), func(x int) bool { return x < t.Lo || x >= t.Hi })))
		}
	}
	b, err := json.Marshal(plan)
	if err != nil {
		return stageErr("plan", "encoding plan: %w", err)
	}
	if err := c.cfg.Store.Put(ctx, jobs.PlanKey(spec.ID), bytes.NewReader(b)); err != nil {
		return stageErr("plan", "writing the task plan: %w", err)
	}
	moved := false
	_, err = natsx.UpdateState(ctx, c.kv, spec.ID, func(s *jobs.JobState) bool {
		if s.Attempt != st.Attempt || (s.Status != jobs.Submitted && s.Status != jobs.Planning) {
			return false
		}
		now := time.Now().UTC()
		s.Status, s.Shards, s.PlannedTokens, s.Started, moved = jobs.Running, len(tasks), components, &now, true
		s.Store = c.cfg.Store.String()
		return true
	})
	if err != nil {
		return err
	}
	if moved {
		log.Info("explain job planned", "tasks", len(tasks), "components", components)
	}
	return nil
}

// finishExplain marks an explain job done once every task is: Tokens
// counts the components its tasks went through (explained or skipped).
func (c *Coordinator) finishExplain(ctx context.Context, id string, attempt int, records map[int]jobs.ShardRecord, log *slog.Logger) error {
	var n int64
	for _, r := range records {
		n += r.Tokens
	}
	_, err := natsx.UpdateState(ctx, c.kv, id, func(s *jobs.JobState) bool {
		if s.Status.Final() || s.Attempt != attempt {
			return false
		}
		now := time.Now().UTC()
		s.Status, s.Tokens, s.Finished = jobs.Done, n, &now
		return true
	})
	if err == nil {
		log.Info("explain job done", "components", n)
	}
	return err
}
