// Package collate turns a stream of activation windows into a collated
// activation dataset: for every component (one MLP neuron, attention head or
// autoencoder latent at one location and layer) the top-k records by maximum
// activation, a uniform random sample of records, random samples per
// activation-quantile bucket with the bucket boundaries, and statistics over
// every activation (moments, extremes, density, a fixed histogram).
//
// The on-store format (keys, manifest, record and statistics types, Parquet
// schemas) and the readers live in tdb/dataset; collate writes that format.
// It imports only tdb/dataset and tdb/store (and Apache Arrow's Parquet packages,
// github.com/apache/arrow-go/v18, and golang.org/x/sys/cpu to pick the
// AVX2 summary loop).
//
// # Flow
//
//	worker, per task (one shard, or a group of consecutive shards):
//	    acc, _ := collate.NewLayerAccumulator("mlp.post_act", layer, 3072, cfg)
//	    for each window: acc.AddWindow(src, tokens, acts)   // acts [T, C] row-major
//	    (heads: acc.AddPairWindow(src, tokens, probs, writeNorms) // [T, T, H])
//	    at the end of every shard but the last: acc.EndShard()
//	    acc.Encode(w)  → the task's partial on the store
//	merger: per location and layer, collate.MergeLayer (assemble.go; a
//	    worker's merge task, or AssembleDataset's goroutines in process):
//	        MergePartials: a, _ := collate.DecodePartial(bytes); a.Merge(b) ...  // any order
//	        collate.WriteLayer(ctx, st, dataset, a, 0)  // records, stats, index
//	    last: collate.FinishDataset(ctx, st, manifest, results)  // the manifest
//	readers: dataset.ReadManifest, dataset.ReadComponent (tdb top, query)
//
// Files: datasets/<name>/<location>/layer=<L>/records.parquet holds one row
// per record (component, kind "top"/"random"/"quantile", rank, bucket (-1
// unless quantile), max_activation, doc, offset, tokens, activations), sorted
// by component, kind, rank, in row groups of whole components (64 by
// default) with min/max statistics on component so a reader fetches one row
// group. stats.parquet holds one row per component (count, mean, variance,
// skewness, kurtosis, max, min, frac_nonzero, quantile_boundaries,
// histogram); the histogram's bin edges are in the file metadata
// (tdb.histogram_edges) and in dataset.HistogramEdges. A layer of per-token
// components with at most one nonzero activation in 8 (autoencoder latents)
// writes records.parquet in the sparse layout (dataset.SparseRecordsSchema:
// activation_positions and activation_values instead of activations);
// dataset's reader gives the same views from both. Writer settings are fixed
// (zstd level 3, no timestamps, created_by "tdb collate"), so the same
// merged state gives byte-identical files.
//
// # Determinism
//
// Records, counts, extremes, histograms, sketches, quantile boundaries and
// samples are a pure function of the set of windows, however they are
// sharded. Moments are a pure function of the set of shards: any merge order
// or worker count gives the same bits, and a different sharding differs only
// by float64 rounding within shards. So the written files are byte-identical
// for a given shard plan, whatever happens at run time (on one kind of CPU:
// with AVX2 and FMA the per-window sums use fused multiply-adds, so a
// shard's float64 sums can differ in the last bits from a CPU without them,
// as the model's own activations do):
//
//   - Records are totally ordered by (max activation descending, document
//     ascending, offset ascending); the top-k is the first k in that order.
//     Sources must be unique within a dataset (the corpus guarantees it).
//   - The random sample is a bottom-k hash sample: every (component, source)
//     gets a priority hash(seed, location, layer, component, doc, offset) and
//     the sample is the records with the smallest priorities. A merged
//     bottom-k is the bottom-k of the union, so merging is exact.
//   - Quantile samples: the accumulator keeps a larger bottom-k pool
//     (Config.QuantilePool records, default 3 × buckets × per bucket). The
//     bucket boundaries come from a fixed-bin sketch of per-record maxima
//     (sketch.go; relative bin width 2^-5) known only after the merge; then
//     each pool record is put in its bucket and a bucket keeps its
//     PerBucket records of smallest priority. Whenever the pool holds at
//     least PerBucket records of a bucket, this equals the bottom-k hash
//     sample of the whole bucket (a uniform sample of it); a bucket with
//     fewer pool records keeps what it has (probability about 5e-4 per
//     bucket at the defaults). The random sample is the pool's prefix.
//   - Record maxima enter the quantile sketch in batches of 128 windows
//     (a sorted merge per batch), which is exact and order-free as well.
//   - Statistics: within a shard, per-component sums of powers of (x − K)
//     (K = the first activation the shard saw) are kept in float64; merging
//     converts them to exact power sums about zero in big-float arithmetic
//     and adds exactly, so merge order cannot change a bit. Mean, variance,
//     skewness and kurtosis are computed once from the exact sums. Counts,
//     extremes, histograms and sketches are integers or exact comparisons.
//
// Records of per-token components whose values are mostly +0 (at most a
// quarter nonzero) are kept sparse in memory: an arena slot of the count,
// the positions and the values (slots.go), expanded when read.
//
// A worker may run several consecutive shards into one accumulator and
// write one partial for them (a task): EndShard at every shard's end turns
// the shard's float64 sums into exact sums, as merging the shard's own
// partial would, so the dataset is byte-identical whatever the grouping.
// A partial is bounded by the components, not the tokens, so grouping
// divides partial bytes per token by the group's size. Records whose
// values are mostly +0 are written to partials as (distance, value) pairs.
//
// # Memory and speed
//
// A component keeps at most TopK + QuantilePool records (a record in both
// is stored once), so a shard's accumulator is bounded by components ×
// (TopK + QuantilePool) × values per record × 4 bytes however long the
// shard is (1.7 GB for all 36,864 GPT-2 small neurons at n_ctx 64 and the
// defaults), and a longer shard costs no more memory, only fewer partials
// per token. Kept records are pointer-free heap entries; their tokens live
// once per window in a window table and their activations in an arena of
// large chunks whose slots are reused, so keeping a record allocates
// nothing and the garbage collector never scans them. Most windows enter no
// heap: the window maximum is compared with the top-k threshold and the
// sampling priority with the pool threshold before anything else. A worker
// that knows its shard's sources plans them (PlanSources): the pool
// threshold is then final from the first window and only the records that
// end in the pool are ever stored. Windows of at least eight components are
// summarized straight from their [T, C] rows, eight components per AVX2
// vector, without a transpose.
//
// QuantilePool stays at 150 (3 × buckets × per bucket) by default: a
// bucket holds about a tenth of the pool, and the chance that the pool has
// fewer than 5 records of a bucket, which leaves that bucket's sample
// short, is 5e-4 at 150, 6e-3 at 120 and 0.02 at 100 (binomial tails). The
// pool is 82% of a shard's kept records: the price of uniform quantile
// samples.
//
// # Conventions
//
// Variance is the population variance (ddof 0), skewness the population
// skewness, kurtosis the excess kurtosis (normal = 0), as numpy/scipy compute
// them by default.
//
// # NaN and infinities
//
// A window with a NaN or ±Inf activation (or attention score) is refused:
// AddWindow and AddPairWindow return an error wrapping ErrNonFinite that
// names the location, layer, component, token and window, before anything
// of the window is kept. Such a value means the weights are broken (a NaN
// in a bias, an overflowing autoencoder); a top-k, a quantile or a moment
// over it would be meaningless, and silently dropping it would hide the
// fault. In the pipeline the worker fails its shard at once (the error is
// permanent, never retried) and the job fails with that reason.
package collate
