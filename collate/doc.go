// Package collate turns a stream of activation windows into a collated
// activation dataset: for every component (one MLP neuron, attention head or
// autoencoder latent at one location and layer) the top-k records by maximum
// activation, a uniform random sample of records, random samples per
// activation-quantile bucket with the bucket boundaries, and statistics over
// every activation (moments, extremes, density, a fixed histogram).
//
// It imports only tdb/store (and Apache Arrow's Parquet packages).
//
// # Flow
//
// A worker keeps one LayerAccumulator per location and layer and feeds it every
// window of its shard (AddWindow for per-token components, AddPairWindow for
// attention heads), then writes Encode's bytes as the shard's partial. The
// merger decodes the partials (DecodePartial), merges them (Merge) and writes
// the layer's Parquet files (WriteLayer); the dataset manifest is written last
// (WriteManifest) and a dataset without one does not exist for readers
// (ReadManifest, ReadComponent).
//
// # Determinism
//
// The merged result is a pure function of the set of windows given to the
// shards, whatever the shard order, merge order or worker count:
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
//     fewer pool records keeps what it has (probability about 1e-3 per
//     bucket at the defaults). The random sample is the pool's prefix.
//   - Statistics: within a shard, per-component sums of powers of (x − K)
//     (K = the first activation the shard saw) are kept in float64; merging
//     converts them to exact power sums about zero in big-float arithmetic
//     and adds exactly, so merge order cannot change a bit. Mean, variance,
//     skewness and kurtosis are computed once from the exact sums. Counts,
//     extremes, histograms and sketches are integers or exact comparisons.
//
// # Conventions
//
// Variance is the population variance (ddof 0), skewness the population
// skewness, kurtosis the excess kurtosis (normal = 0), as numpy/scipy compute
// them by default. NaN activations are not supported.
package collate
