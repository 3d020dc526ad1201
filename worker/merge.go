package worker

import (
	"context"
	"fmt"
	"io"
	"time"

	"tdb/collate"
	"tdb/internal/jobs"
)

// Merge tasks (jobs.KindMerge): one location and layer of a collation job
// whose shards are all done. The worker folds the layer's partials, each
// checked against the size and sha256 its shard recorded, and writes the
// layer's dataset files with collate.MergeLayer, the code the coordinator
// used to run itself. The files' keys and bytes depend only on the
// partials, so a redelivered merge (a worker killed mid-way) rewrites the
// same bytes; the coordinator writes the manifest only after every merge
// task is done.

// computeMerge runs one merge task; progress gets the partials read so
// far (the heartbeat records it as the task's "tokens").
func (w *Worker) computeMerge(ctx context.Context, task jobs.ShardTask, progress func(int64)) (*jobs.MergeResult, error) {
	t, err := jobs.DecodeMergeTask(task.Shard)
	if err != nil {
		return nil, jobs.Permanent(fmt.Errorf("merge task %d: %w", task.Index, err))
	}
	if w.cfg.MergeDelay > 0 {
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(w.cfg.MergeDelay):
		}
	}
	lp := collate.LayerPartials{Location: t.Location, Layer: t.Layer}
	var read int64
	for _, ref := range t.Partials {
		lp.Partials = append(lp.Partials, collate.Partial{Name: ref.Key, Read: func(ctx context.Context) ([]byte, error) {
			b, err := w.readPartial(ctx, ref)
			if err == nil {
				read++
				progress(read)
			}
			return b, err
		}})
	}
	start := time.Now()
	res := &jobs.MergeResult{Partials: len(t.Partials)}
	if t.Output != "" {
		// An intermediate merge of the tree: one partial out.
		acc, err := collate.MergePartials(ctx, lp)
		if err == nil {
			var ref jobs.PartialRef
			ref, err = WritePartial(ctx, w.cfg.Store, t.Output, acc)
			res.Output = &ref
		}
		err = w.mergeErr(ctx, err)
		if err != nil {
			return nil, err
		}
	} else {
		r, err := collate.MergeLayer(ctx, w.cfg.Store, t.Dataset, lp)
		if err = w.mergeErr(ctx, err); err != nil {
			return nil, err
		}
		res.LayerResult = r
	}
	w.cfg.Metrics.MergePartials.Add(float64(len(t.Partials)))
	w.cfg.Metrics.MergeSecondsPerPartial.Observe(time.Since(start).Seconds() / float64(len(t.Partials)))
	return res, nil
}

// mergeErr counts a merge error that is not a stop.
func (w *Worker) mergeErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() == nil {
		w.cfg.Metrics.Errors.WithLabelValues("merge").Inc()
	}
	return err
}

// readPartial reads a shard's partial and checks it against its record.
func (w *Worker) readPartial(ctx context.Context, ref jobs.PartialRef) ([]byte, error) {
	rc, err := w.cfg.Store.Get(ctx, ref.Key)
	if err != nil {
		return nil, fmt.Errorf("reading a shard's partial: %w", err) // the store names the key
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("reading partial %s: %w", ref.Key, err)
	}
	if err := jobs.CheckPartial(b, ref); err != nil {
		return nil, err
	}
	return b, nil
}

// verifyDone checks that a task recorded as done left what it wrote: a
// shard's partials, and an intermediate merge's, must verify; a final
// merge task's record holds its result (written after the layer's files).
func (w *Worker) verifyDone(ctx context.Context, task jobs.ShardTask, rec jobs.ShardRecord) error {
	if task.Kind == jobs.KindMerge {
		switch {
		case rec.Merge == nil:
			return fmt.Errorf("merge task %d recorded as done without its result", task.Index)
		case rec.Merge.Output != nil:
			return verifyPartial(ctx, w.cfg.Store, *rec.Merge.Output)
		}
		return nil
	}
	return w.verify(ctx, rec.Partials)
}
