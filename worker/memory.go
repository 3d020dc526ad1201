package worker

import (
	"context"
	"fmt"
	"sync"

	"tdb/autoencoder"
	"tdb/internal/jobs"
	"tdb/model"
)

// Memory: a worker holds the model, and for a task only the accumulators
// and autoencoders of the task's component group (jobs.MemoryPlan). The
// autoencoders of the last group stay loaded for the next task of that
// group; a task of another group drops them first.

// aeCache holds the autoencoders of the tasks a Job runs.
type aeCache struct {
	mu sync.Mutex
	m  map[string]*aeEntry // by file
}

type aeEntry struct {
	once sync.Once
	ae   *autoencoder.Autoencoder
	err  error
	refs int // running tasks that use it
}

// acquire returns the autoencoder of every latent target of ts (nil for
// the others), loading those not loaded. Loaded ones no running task uses
// and ts does not need are dropped first, so the worker never holds more
// than its running tasks' groups. release ends the task's use.
func (c *aeCache) acquire(ctx context.Context, ts []target) ([]*autoencoder.Autoencoder, func(), error) {
	need := map[string]bool{}
	for _, t := range ts {
		if t.ae != "" {
			need[t.ae] = true
		}
	}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*aeEntry{}
	}
	for path, e := range c.m {
		if e.refs == 0 && !need[path] {
			delete(c.m, path)
		}
	}
	entries := make([]*aeEntry, len(ts))
	for i, t := range ts {
		if t.ae == "" {
			continue
		}
		e := c.m[t.ae]
		if e == nil {
			e = &aeEntry{}
			c.m[t.ae] = e
		}
		e.refs++
		entries[i] = e
	}
	c.mu.Unlock()
	release := func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range entries {
			if e != nil {
				e.refs--
			}
		}
	}
	out := make([]*autoencoder.Autoencoder, len(ts))
	for i, e := range entries {
		if e == nil {
			continue
		}
		path := ts[i].ae
		e.once.Do(func() {
			e.ae, e.err = autoencoder.Load(ctx, path, autoencoder.Options{})
			if e.err != nil && localFileProblem(path) {
				e.err = jobs.Permanent(e.err)
			}
		})
		if e.err == nil && (e.ae.NLatents != ts[i].components || e.ae.NInputs != ts[i].aeInputs) {
			e.err = jobs.Permanent(fmt.Errorf("autoencoder %s changed: %d inputs → %d latents, its header said %d → %d",
				path, e.ae.NInputs, e.ae.NLatents, ts[i].aeInputs, ts[i].components))
		}
		if e.err != nil {
			err := e.err
			c.mu.Lock()
			if c.m[path] == e {
				delete(c.m, path) // the next task loads it again
			}
			c.mu.Unlock()
			release()
			return nil, nil, err
		}
		out[i] = e.ae
	}
	return out, release, nil
}

// SizeJob resolves what jobs.JobSpec.PlanGroups needs to know of a job on
// a model of shape cfg: the model's weights, a forward pass's buffers for a
// batch of the job, and every target's components and buffers, with the
// autoencoders' weights from their headers (local files: an autoencoder
// that cannot be inspected here is an error). spec must be normalized.
func SizeJob(ctx context.Context, cfg model.Config, spec jobs.JobSpec) (*jobs.Sizing, error) {
	ts, err := planTargets(ctx, cfg, spec.Locations, spec.Layers, spec.Autoencoders)
	if err != nil {
		return nil, err
	}
	B, T := int64(max(spec.BatchSize, 1)), int64(spec.NCtx)
	N := B * T
	d, m, H := int64(cfg.DModel), int64(cfg.DMLP), int64(cfg.NHead)
	sz := &jobs.Sizing{
		ModelBytes: cfg.Params() * 4,
		// Two workspace arenas, one layer's buffers each: the residual
		// stream and its layer-norm, q, k, v and the attention output,
		// the MLP's input and activation, and the attention scores and
		// probabilities.
		ForwardBytes: 2 * 4 * (N*(10*d+2*m) + 2*B*H*T*T),
	}
	for _, t := range ts {
		s := jobs.TargetSize{TargetRef: t.ref(), Components: t.components, Pairs: t.heads}
		switch {
		case t.heads:
			// Captured probabilities and values (two batches), the
			// per-key norms, projection and scores.
			s.BatchBytes = 4 * (2*(B*T*T*H+N*d) + N*H + N*d + T*T*H)
		case t.ae != "":
			in, L := int64(t.aeInputs), int64(t.components)
			s.Sparse = true
			s.WeightBytes = 4 * (2*L*in + L + 2*in)
			// Captured inputs (two batches), the codes' latents and
			// normalised inputs.
			s.BatchBytes = 4 * (2*N*in + N*L + N*in + 2*N)
		default:
			s.BatchBytes = 4 * 2 * N * int64(t.components)
		}
		sz.Targets = append(sz.Targets, s)
	}
	return sz, nil
}
