package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"tdb/collate"
	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
)

// group is one location and layer to merge, with its partials in shard order.
type group struct {
	location string
	layer    int
	refs     []jobs.PartialRef
}

// merge checks that every shard left a complete set of partials, runs one
// merge task per location and layer on the work queue (any worker folds
// that layer's partials and writes its files: worker/merge.go), then
// writes the manifest, last, from what the merge tasks recorded, and marks
// the job done. It is idempotent: a coordinator that restarts in the
// middle finds the merge tasks done so far in KV, republishes the others
// (the same message ids) and writes the same bytes.
func (c *Coordinator) merge(ctx context.Context, spec jobs.JobSpec, st jobs.JobState, log *slog.Logger) error {
	start := time.Now()
	groups, tokens, err := c.collectPartials(ctx, spec.ID, st.Shards)
	if err != nil {
		return err
	}
	var shardRefs []jobs.PartialRef
	for _, g := range groups {
		shardRefs = append(shardRefs, g.refs...)
	}
	if tokens == 0 {
		return stageErr("merge", "corpus %s is empty: it holds no window of %d tokens (are all documents shorter than --n-ctx?)", spec.Corpus, spec.NCtx)
	}
	// The tree: while a layer has more partials than the fan-in, a level
	// of intermediate merges folds them in groups; then one final merge
	// per layer writes it. Task numbers run on across levels.
	fanIn := c.cfg.MergeFanIn
	base := 0
	var intermediates []string
	for level := 0; ; level++ {
		var plan []json.RawMessage
		type slot struct{ group, chunk int }
		var slots []slot
		outs := make([][]jobs.PartialRef, len(groups))
		for gi, g := range groups {
			if len(g.refs) <= fanIn {
				continue
			}
			chunks := (len(g.refs) + fanIn - 1) / fanIn
			outs[gi] = make([]jobs.PartialRef, chunks)
			for ci := range chunks {
				lo, hi := ci*len(g.refs)/chunks, (ci+1)*len(g.refs)/chunks
				t := jobs.MergeTask{Dataset: spec.Dataset, Location: g.location, Layer: g.layer, Partials: g.refs[lo:hi],
					Output: jobs.MergePartialKey(spec.ID, g.location, g.layer, level, ci)}
				b, err := json.Marshal(t)
				if err != nil {
					return stageErr("merge", "encoding merge task: %w", err)
				}
				plan = append(plan, b)
				slots = append(slots, slot{gi, ci})
				intermediates = append(intermediates, t.Output)
			}
		}
		if len(plan) == 0 {
			break
		}
		records, stop, err := c.runTasks(ctx, spec.ID, jobs.KindMerge, st.Attempt, base, jobs.Merging, plan)
		if stop || err != nil {
			return err
		}
		for i, sl := range slots {
			r := records[i].Merge
			if r == nil || r.Output == nil {
				return stageErr("merge", "merge task %d (%s layer %d) is done but recorded no partial", base+i, groups[sl.group].location, groups[sl.group].layer)
			}
			outs[sl.group][sl.chunk] = *r.Output
		}
		for gi := range groups {
			if outs[gi] != nil {
				groups[gi].refs = outs[gi]
			}
		}
		base += len(plan)
		log.Info("merge level done", "level", level, "tasks", len(plan))
	}
	plan := make([]json.RawMessage, len(groups))
	for i, g := range groups {
		if plan[i], err = json.Marshal(jobs.MergeTask{Dataset: spec.Dataset, Location: g.location, Layer: g.layer, Partials: g.refs}); err != nil {
			return stageErr("merge", "encoding merge task: %w", err)
		}
	}
	records, stop, err := c.runTasks(ctx, spec.ID, jobs.KindMerge, st.Attempt, base, jobs.Merging, plan)
	if stop || err != nil {
		return err
	}
	layers := make([]collate.LayerResult, len(groups))
	for i, g := range groups {
		r := records[i].Merge
		if r == nil || r.Location != g.location || r.Layer != g.layer {
			return stageErr("merge", "merge task %d (%s layer %d) is done but recorded no result for that layer", base+i, g.location, g.layer)
		}
		layers[i] = r.LayerResult
	}
	m := dataset.Manifest{
		Name: spec.Dataset, Model: spec.Model, Autoencoders: spec.Autoencoders, Corpus: spec.Corpus,
		Tokens: tokens, NCtx: spec.NCtx, CreatedBy: "tdb coordinator (job " + spec.ID + ")",
	}
	if _, err := collate.FinishDataset(ctx, c.cfg.Store, m, layers); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return stageErr("merge", "%w", err)
	}
	_, err = natsx.UpdateState(ctx, c.kv, spec.ID, func(s *jobs.JobState) bool {
		if s.Status != jobs.Merging || s.Attempt != st.Attempt {
			return false
		}
		now := time.Now().UTC()
		s.Status, s.Tokens, s.Finished = jobs.Done, tokens, &now
		return true
	})
	if err != nil {
		return err
	}
	log.Info("dataset written", "dataset", spec.Dataset, "store", c.cfg.Store.String(), "tokens", tokens, "layers", len(groups), "merge_seconds", time.Since(start).Seconds())
	if !c.cfg.KeepPartials {
		// Finish the clean-up even when the coordinator is stopping (the
		// job is done: nothing else would delete them).
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		c.deletePartials(dctx, spec.ID, shardRefs, intermediates, log)
	}
	return nil
}

// collectPartials reads every task record and groups the partials by
// location and layer, sorted, each in task order (shard order: tasks are
// group-major, jobs.PlanTasks). Every task must be done, and every target
// must have one partial per shard range and as many tokens as every other
// (with component groups a target is in one task of each range), or the
// job fails instead of writing a dataset with data missing.
func (c *Coordinator) collectPartials(ctx context.Context, id string, shards int) ([]group, int64, error) {
	var groups []group
	index := map[string]int{}
	var tokens []int64 // per group
	for i := range shards {
		var r jobs.ShardRecord
		if _, err := natsx.GetJSON(ctx, c.kv, jobs.ShardKey(id, i), &r); err != nil {
			return nil, 0, stageErr("merge", "shard %d has no record: %w", i, err)
		}
		if r.Status != jobs.ShardDone {
			return nil, 0, stageErr("merge", "shard %d is %s, not done", i, r.Status)
		}
		if len(r.Partials) == 0 {
			return nil, 0, stageErr("merge", "shard %d recorded no partials", i)
		}
		for _, p := range r.Partials {
			k := fmt.Sprintf("%s/%d", p.Location, p.Layer)
			gi, ok := index[k]
			if !ok {
				gi = len(groups)
				index[k] = gi
				groups = append(groups, group{location: p.Location, layer: p.Layer})
				tokens = append(tokens, 0)
			}
			groups[gi].refs = append(groups[gi].refs, p)
			tokens[gi] += r.Tokens
		}
	}
	for gi, g := range groups[1:] {
		if f := groups[0]; len(g.refs) != len(f.refs) || tokens[gi+1] != tokens[0] {
			return nil, 0, stageErr("merge", "%s layer %d has %d partials of %d tokens, %s layer %d %d of %d: a task's partials are missing",
				g.location, g.layer, len(g.refs), tokens[gi+1], f.location, f.layer, len(f.refs), tokens[0])
		}
	}
	slices.SortFunc(groups, func(a, b group) int {
		if a.location != b.location {
			return strings.Compare(a.location, b.location)
		}
		return a.layer - b.layer
	})
	return groups, tokens[0], nil
}

// deletePartials removes a finished job's partials (the shards' and the
// merge tree's) and plan (best effort).
func (c *Coordinator) deletePartials(ctx context.Context, id string, refs []jobs.PartialRef, intermediates []string, log *slog.Logger) {
	var errs []error
	for _, r := range refs {
		errs = append(errs, c.cfg.Store.Delete(ctx, r.Key))
	}
	for _, k := range intermediates {
		errs = append(errs, c.cfg.Store.Delete(ctx, k))
	}
	errs = append(errs, c.cfg.Store.Delete(ctx, jobs.PlanKey(id)))
	if err := errors.Join(errs...); err != nil {
		log.Warn("cannot delete the job's partials", "err", err)
	}
}

// DefaultMergeFanIn is Config.MergeFanIn's default: a merge task holds two
// partials in memory at a time whatever its fan-in; the fan-in bounds how
// long one task runs and how much a redelivery redoes.
const DefaultMergeFanIn = 16
