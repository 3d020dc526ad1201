package worker

import (
	"context"
	"fmt"
	"math"
	"runtime"

	"golang.org/x/sync/errgroup"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"tdb/autoencoder"
	"tdb/collate"
	"tdb/corpus"
	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/model"
)

// Job is everything a worker needs to run shards of one job: the model, the
// corpus and the targets. It is safe to run several shards of a Job at once.
type Job struct {
	Spec    jobs.JobSpec
	Model   *model.Model
	Corpus  *corpus.Corpus
	targets []target
	cfg     collate.Config
	aes     aeCache
}

// NewJob prepares a job: it checks the spec against the model and opens the
// corpus (opts.VocabSize is set to the model's vocabulary).
func NewJob(ctx context.Context, spec jobs.JobSpec, m *model.Model, opts corpus.Options) (*Job, error) {
	if spec.NCtx < 1 || spec.NCtx > m.NCtx {
		return nil, jobs.Permanent(fmt.Errorf("n_ctx %d is out of range: the model takes 1..%d tokens", spec.NCtx, m.NCtx))
	}
	cfg := spec.CollateConfig()
	if err := cfg.Validate(); err != nil {
		return nil, jobs.Permanent(err)
	}
	ts, err := planTargets(ctx, m.Config, spec.Locations, spec.Layers, spec.Autoencoders)
	if err != nil {
		return nil, err // planTargets marks what is permanent
	}
	opts.VocabSize = m.Vocab
	opts.BlockBytes, opts.NCtx = spec.BlockBytes, spec.NCtx
	c, err := corpus.Open(ctx, spec.Corpus, opts)
	if err != nil {
		return nil, err
	}
	return &Job{Spec: spec, Model: m, Corpus: c, targets: ts, cfg: cfg}, nil
}

// Targets lists the job's targets (locations and layers), in job order.
func (j *Job) Targets() []jobs.TargetRef {
	out := make([]jobs.TargetRef, len(j.targets))
	for i, t := range j.targets {
		out[i] = t.ref()
	}
	return out
}

// group returns the job's targets in a task's component group, in job
// order (every target for an empty group).
func (j *Job) group(refs []jobs.TargetRef) ([]target, error) {
	if len(refs) == 0 {
		return j.targets, nil
	}
	want := map[jobs.TargetRef]bool{}
	for _, r := range refs {
		want[r] = true
	}
	var out []target
	for _, t := range j.targets {
		if want[t.ref()] {
			out = append(out, t)
			delete(want, t.ref())
		}
	}
	for r := range want {
		return nil, jobs.Permanent(fmt.Errorf("the task's component group has %s, which the job does not collate", r))
	}
	return out, nil
}

// ShardResult is a computed shard: one accumulator per target, in the
// job's target order, and what the corpus read.
type ShardResult struct {
	Accumulators []*collate.LayerAccumulator
	Stats        corpus.Stats
}

// Run computes one shard: RunShards of that shard alone.
func (j *Job) Run(ctx context.Context, sh corpus.Shard, progress func(tokens int64)) (*ShardResult, error) {
	return j.RunShards(ctx, []corpus.Shard{sh}, progress)
}

// RunShards runs a task of every target: RunTask without a group.
func (j *Job) RunShards(ctx context.Context, shards []corpus.Shard, progress func(tokens int64)) (*ShardResult, error) {
	return j.RunTask(ctx, jobs.TaskShards{Shards: shards}, progress)
}

// RunTask computes a task: consecutive shards run into one accumulator
// per target of the task's component group (task.Targets; empty: every
// target), whose partial is then the merge of the shards' own partials
// (every shard's sums are closed with EndShard where it ends, and batches
// never span two shards, so each shard's numbers are those it gives
// alone). progress (may be nil) gets the tokens done so far after every
// batch.
//
// The windows of every shard are read first (their tokens are small next to
// the activations), so that every accumulator knows the task's sources
// (collate.LayerAccumulator.PlanSources) before the first batch. The forward
// pass of one batch then runs while the previous batch is accumulated; the
// captured activations are copied by hooks into two reused buffer sets
// instead of being allocated per batch. Only the group's sites are
// captured and only its autoencoders loaded (the forward pass stops after
// the group's last layer).
func (j *Job) RunTask(ctx context.Context, task jobs.TaskShards, progress func(tokens int64)) (*ShardResult, error) {
	shards := task.Shards
	if len(shards) == 0 {
		return nil, fmt.Errorf("a task without shards")
	}
	targets, err := j.group(task.Targets)
	if err != nil {
		return nil, err
	}
	capture := captures(targets)
	aes, release, err := j.aes.acquire(ctx, targets)
	if err != nil {
		return nil, err
	}
	defer release()
	var wins []corpus.Window
	var ends []int // ends[i]: windows of shards 0..i
	var st corpus.Stats
	for _, sh := range shards {
		s, err := j.Corpus.Windows(ctx, sh, j.Spec.NCtx, func(w corpus.Window) error {
			wins = append(wins, w)
			return nil
		})
		if err != nil {
			return nil, err
		}
		st.Add(s)
		ends = append(ends, len(wins))
	}
	srcs := make([]dataset.Source, len(wins))
	for i, w := range wins {
		srcs[i] = dataset.Source{Doc: w.Doc, Offset: w.Offset}
	}
	accs := make([]*collate.LayerAccumulator, len(targets))
	feeds := make([]*feeder, len(targets))
	for i, t := range targets {
		a, err := collate.NewLayerAccumulator(t.location, t.layer, t.components, j.cfg)
		if err != nil {
			return nil, err
		}
		accs[i] = a
		feeds[i] = &feeder{t: t, acc: a, m: j.Model, ae: aes[i]}
	}
	if err := forEach(ctx, len(accs), func(i int) error { return accs[i].PlanSources(srcs) }); err != nil {
		return nil, err
	}
	bs := j.Spec.BatchSize
	if bs <= 0 {
		bs = jobs.DefaultBatchSize
	}
	// Batches start at every shard's first window, as in a task of one shard.
	type span struct {
		start, end int
		last       bool // the shard's last batch
	}
	var batches []span
	from := 0
	for _, end := range ends {
		for start := from; start < end; start += bs {
			batches = append(batches, span{start, min(start+bs, end), start+bs >= end})
		}
		from = end
	}

	// Two buffer sets circulate between the forward loop and the
	// accumulating goroutine.
	free := make(chan *batchActs, 2)
	for range 2 {
		free <- &batchActs{acts: map[model.Site]*model.Tensor{}}
	}
	full := make(chan *batchActs)
	accErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		var done int64
		var err error
		for ba := range full {
			if err == nil {
				res := &model.Result{Acts: ba.acts}
				// The targets in parallel: each accumulator is touched by
				// one goroutine.
				err = forEach(ctx, len(feeds), func(i int) error {
					if err := feeds[i].feed(res, ba.batch); err != nil {
						return err
					}
					if ba.endsShard {
						feeds[i].acc.EndShard()
					}
					return nil
				})
				if err == nil {
					for _, w := range ba.batch {
						done += int64(len(w.Tokens))
					}
					if progress != nil {
						progress(done)
					}
				} else {
					cancel() // stop the forward loop
				}
			}
			free <- ba
		}
		accErr <- err
	}()
	forwardErr := func() error {
		defer close(full)
		tokens := make([][]int, 0, bs)
		for i, sp := range batches {
			batch := wins[sp.start:sp.end]
			var ba *batchActs
			select {
			case ba = <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
			tokens = tokens[:0]
			for _, w := range batch {
				seq := make([]int, len(w.Tokens))
				for i, id := range w.Tokens {
					seq[i] = int(id)
				}
				tokens = append(tokens, seq)
			}
			// The task's last shard stays open, as a task of one shard
			// leaves it (its partial carries the live sums).
			ba.batch, ba.endsShard = batch, sp.last && i < len(batches)-1
			if _, err := j.Model.Forward(ctx, model.Request{Tokens: tokens, Hooks: ba.hooks(capture)}); err != nil {
				free <- ba
				return fmt.Errorf("forward pass on windows from document %d offset %d: %w", batch[0].Doc, batch[0].Offset, err)
			}
			select {
			case full <- ba:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}()
	if err := <-accErr; err != nil {
		return nil, err
	}
	if forwardErr != nil {
		return nil, forwardErr
	}
	return &ShardResult{Accumulators: accs, Stats: st}, nil
}

// batchActs is one batch's captured activations in buffers reused from
// batch to batch.
type batchActs struct {
	acts      map[model.Site]*model.Tensor
	batch     []corpus.Window
	endsShard bool // the last batch of a shard that is not the task's last
}

// hooks returns hooks that copy the sites' activations into ba's buffers.
func (ba *batchActs) hooks(sites []model.Site) []model.Hook {
	hs := make([]model.Hook, len(sites))
	for i, s := range sites {
		hs[i] = model.Hook{Site: s, Fn: func(t *model.Tensor) error {
			dst := ba.acts[s]
			if dst == nil {
				dst = &model.Tensor{}
				ba.acts[s] = dst
			}
			dst.Shape = append(dst.Shape[:0], t.Shape...)
			dst.Data = append(dst.Data[:0], t.Data...)
			return nil
		}}
	}
	return hs
}

// forEach runs fn(0..n-1) on up to GOMAXPROCS goroutines. After the first
// error, or once ctx ends, no new call starts; it returns the first error.
func forEach(ctx context.Context, n int, fn func(i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// feeder turns one target's activations into accumulator windows.
type feeder struct {
	t     target
	acc   *collate.LayerAccumulator
	m     *model.Model
	ae    *autoencoder.Autoencoder // the target's, for latents
	codes autoencoder.Codes
	// head scratch
	norms, proj, scores []float32
}

func (f *feeder) feed(res *model.Result, batch []corpus.Window) error {
	switch {
	case f.t.heads:
		return f.feedHeads(res, batch)
	case f.ae != nil:
		x := res.Acts[f.t.site]
		B, T := x.Shape[0], x.Shape[1]
		if err := f.ae.EncodeInto(&f.codes, x.Data, B*T); err != nil {
			return err
		}
		return f.feedTokens(f.codes.Latents, T, batch)
	default:
		x := res.Acts[f.t.site]
		return f.feedTokens(x.Data, x.Shape[1], batch)
	}
}

func (f *feeder) feedTokens(data []float32, T int, batch []corpus.Window) error {
	C := f.t.components
	for b, w := range batch {
		if len(w.Tokens) != T {
			return fmt.Errorf("window of %d tokens in a batch padded to %d", len(w.Tokens), T)
		}
		if err := f.acc.AddWindow(dataset.Source{Doc: w.Doc, Offset: w.Offset}, w.Tokens, data[b*T*C:(b+1)*T*C]); err != nil {
			return err
		}
	}
	return nil
}

// feedHeads scores every token pair (query i, key j) of head h by the norm
// of what it writes to the residual stream: ‖p[i,j,h] · v[j,h] · W_O[h]‖ =
// p[i,j,h] · ‖v[j,h] · W_O[h]‖ (p ≥ 0), with W_O[h] the head's rows of
// c_proj. The per-key norms cost one [T, d_head]×[d_head, d] product per
// head, like c_proj itself.
func (f *feeder) feedHeads(res *model.Result, batch []corpus.Window) error {
	probs := res.Acts[model.At(model.AttnQKProbs, f.t.layer)]
	v := res.Acts[model.At(model.AttnV, f.t.layer)]
	B, T := probs.Shape[0], probs.Shape[1]
	H, dh, d := f.m.NHead, f.m.DHead(), f.m.DModel
	w := f.m.Blocks[f.t.layer].ProjW
	N := B * T
	f.norms = grow(f.norms, N*H)
	f.proj = grow(f.proj, N*d)
	for h := range H {
		vh := blas32.General{Rows: N, Cols: dh, Stride: H * dh, Data: v.Data[h*dh:]}
		wh := blas32.General{Rows: dh, Cols: d, Stride: d, Data: w[h*dh*d : (h+1)*dh*d]}
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, vh, wh, 0, blas32.General{Rows: N, Cols: d, Stride: d, Data: f.proj})
		for r := range N {
			var s float64
			for _, x := range f.proj[r*d : (r+1)*d] {
				s += float64(x) * float64(x)
			}
			f.norms[r*H+h] = float32(math.Sqrt(s))
		}
	}
	f.scores = grow(f.scores, T*T*H)
	for b, win := range batch {
		if len(win.Tokens) != T {
			return fmt.Errorf("window of %d tokens in a batch padded to %d", len(win.Tokens), T)
		}
		p := probs.Data[b*T*T*H : (b+1)*T*T*H]
		norm := f.norms[b*T*H : (b+1)*T*H]
		for i := range T {
			for j := range T {
				row := (i*T + j) * H
				for h := range H {
					f.scores[row+h] = p[row+h] * norm[j*H+h]
				}
			}
		}
		if err := f.acc.AddPairWindow(dataset.Source{Doc: win.Doc, Offset: win.Offset}, win.Tokens, f.scores, nil); err != nil {
			return err
		}
	}
	return nil
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
