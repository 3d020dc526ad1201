package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"tdb/collate"
	"tdb/dataset"
	"tdb/internal/natsutil"
)

// group is one location and layer to merge, with its partials in shard order.
type group struct {
	location string
	layer    int
	refs     []natsutil.PartialRef
}

// merge checks that every shard left a complete, verified set of partials,
// merges them per location and layer in parallel, writes the layers, then
// the manifest, and marks the job done. It is idempotent: a coordinator
// that restarts in the middle redoes it and writes the same bytes.
func (c *Coordinator) merge(ctx context.Context, spec natsutil.JobSpec, st natsutil.JobState, log *slog.Logger) error {
	start := time.Now()
	groups, tokens, err := c.collectPartials(ctx, spec.ID, st.Shards)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, c.cfg.MergeParallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	metas := make([]dataset.ManifestLocation, len(groups))
	var settings collate.Config
	for gi, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			t0 := time.Now()
			acc, err := c.mergeGroup(ctx, g)
			if err == nil {
				err = collate.WriteLayer(ctx, c.cfg.Store, spec.Dataset, acc, 0)
				if err != nil {
					err = stageErr("merge", "writing %s layer %d: %w", g.location, g.layer, err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			metas[gi] = dataset.ManifestLocation{Name: g.location, Layers: []int{g.layer}, Components: acc.Components(), Pairs: acc.Pairs()}
			settings = acc.Config()
			c.cfg.Metrics.MergeDuration.Observe(time.Since(t0).Seconds())
			log.Debug("layer merged", "location", g.location, "layer", g.layer, "seconds", time.Since(t0).Seconds())
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m := &dataset.Manifest{
		Name: spec.Dataset, Model: spec.Model, Autoencoders: spec.Autoencoders, Corpus: spec.Corpus,
		Tokens: tokens, NCtx: spec.NCtx, Settings: dataset.Settings(settings), ComponentsPerRowGroup: collate.DefaultComponentsPerRowGroup,
		CreatedBy: "tdb coordinator (job " + spec.ID + ")",
	}
	for _, l := range metas {
		n := len(m.Locations)
		if n > 0 && m.Locations[n-1].Name == l.Name {
			m.Locations[n-1].Layers = append(m.Locations[n-1].Layers, l.Layers...)
			continue
		}
		m.Locations = append(m.Locations, l)
	}
	if err := dataset.WriteManifest(ctx, c.cfg.Store, m); err != nil {
		return stageErr("merge", "%w", err)
	}
	_, err = natsutil.UpdateState(ctx, c.kv, spec.ID, func(s *natsutil.JobState) bool {
		if s.Status != natsutil.Merging || s.Attempt != st.Attempt {
			return false
		}
		now := time.Now().UTC()
		s.Status, s.Tokens, s.Finished = natsutil.Done, tokens, &now
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
		c.deletePartials(dctx, spec.ID, groups, log)
	}
	return nil
}

// collectPartials reads every shard record and groups the partials by
// location and layer, sorted; every shard must be done and list the same
// locations and layers, or the job fails instead of writing a dataset with
// data missing.
func (c *Coordinator) collectPartials(ctx context.Context, id string, shards int) ([]group, int64, error) {
	var groups []group
	index := map[string]int{}
	var tokens int64
	var first string
	for i := range shards {
		var r natsutil.ShardRecord
		if _, err := natsutil.GetJSON(ctx, c.kv, natsutil.ShardKey(id, i), &r); err != nil {
			return nil, 0, stageErr("merge", "shard %d has no record: %w", i, err)
		}
		if r.Status != natsutil.ShardDone {
			return nil, 0, stageErr("merge", "shard %d is %s, not done", i, r.Status)
		}
		if len(r.Partials) == 0 {
			return nil, 0, stageErr("merge", "shard %d recorded no partials", i)
		}
		var names []string
		for _, p := range r.Partials {
			names = append(names, fmt.Sprintf("%s/%d", p.Location, p.Layer))
		}
		slices.Sort(names)
		sig := strings.Join(names, ",")
		if i == 0 {
			first = sig
		} else if sig != first {
			return nil, 0, stageErr("merge", "shard %d has partials for %s, shard 0 for %s", i, sig, first)
		}
		for _, p := range r.Partials {
			k := fmt.Sprintf("%s/%d", p.Location, p.Layer)
			gi, ok := index[k]
			if !ok {
				gi = len(groups)
				index[k] = gi
				groups = append(groups, group{location: p.Location, layer: p.Layer})
			}
			groups[gi].refs = append(groups[gi].refs, p)
		}
		tokens += r.Tokens
	}
	slices.SortFunc(groups, func(a, b group) int {
		if a.location != b.location {
			return strings.Compare(a.location, b.location)
		}
		return a.layer - b.layer
	})
	return groups, tokens, nil
}

// mergeGroup folds the partials of one location and layer in shard order,
// holding at most two in memory.
func (c *Coordinator) mergeGroup(ctx context.Context, g group) (*collate.LayerAccumulator, error) {
	var acc *collate.LayerAccumulator
	for _, ref := range g.refs {
		b, err := c.readPartial(ctx, ref)
		if err != nil {
			return nil, err
		}
		p, err := collate.DecodePartial(b)
		if err != nil {
			return nil, stageErr("merge", "decoding partial %s: %w", ref.Key, err)
		}
		if acc == nil {
			acc = p
			continue
		}
		if err := acc.Merge(p); err != nil {
			return nil, stageErr("merge", "merging partial %s: %w", ref.Key, err)
		}
	}
	if acc == nil {
		return nil, stageErr("merge", "%s layer %d has no partials", g.location, g.layer)
	}
	return acc, nil
}

// readPartial reads a partial and checks it against its record.
func (c *Coordinator) readPartial(ctx context.Context, ref natsutil.PartialRef) ([]byte, error) {
	rc, err := c.cfg.Store.Get(ctx, ref.Key)
	if err != nil {
		return nil, stageErr("merge", "partial %s is missing from %s: %w", ref.Key, c.cfg.Store, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, stageErr("merge", "reading partial %s: %w", ref.Key, err)
	}
	if err := natsutil.CheckPartial(b, ref); err != nil {
		return nil, stageErr("merge", "%w", err)
	}
	return b, nil
}

// deletePartials removes a finished job's partials and plan (best effort).
func (c *Coordinator) deletePartials(ctx context.Context, id string, groups []group, log *slog.Logger) {
	var errs []error
	for _, g := range groups {
		for _, r := range g.refs {
			errs = append(errs, c.cfg.Store.Delete(ctx, r.Key))
		}
	}
	errs = append(errs, c.cfg.Store.Delete(ctx, natsutil.PlanKey(id)))
	if err := errors.Join(errs...); err != nil {
		log.Warn("cannot delete the job's partials", "err", err)
	}
}
