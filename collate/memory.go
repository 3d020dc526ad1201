package collate

// Memory model of an accumulator, for planners that must fit a worker's
// accumulators into a memory budget (internal/jobs groups a job's targets
// by it). It follows the layout of LayerAccumulator: per-component
// statistics, two bounded heaps per component, the activations of the
// kept records in the arena, and the window table of the windows they
// refer to. TestEstimateBytes checks it against the heap of real
// accumulators.

// Shape is what EstimateBytes needs to know of an accumulator beyond its
// Config.
type Shape struct {
	// Components is the number of components (neurons, heads, latents).
	Components int
	// Values is the values in one record: the window's tokens (n_ctx)
	// for per-token components, n_ctx(n_ctx+1)/2 for token pairs.
	Values int
	// Tokens is a window's tokens (n_ctx).
	Tokens int
	// Windows is the windows the task adds (its tokens / n_ctx).
	Windows int
	// Sparse: the components are mostly zero (autoencoder latents), so a
	// kept record is stored as (position, value) pairs, at most half a
	// dense record (sparseWorth).
	Sparse bool
	// Shards is the number of shards run into the accumulator: above one,
	// EndShard allocates the exact (big-float) sums.
	Shards int
}

// Per-component sizes in bytes, from the accumulator's fields.
const (
	// shift, 4 float64 sums, the live histogram, nonzero, min/max/record
	// minimum, thresholds, the priority base, slice headers of the
	// heaps and the sketch, the pending sketch codes, the window
	// maximum and nonzero count.
	componentFixedBytes = 4 + 32 + 4*histStride + 8 + 12 + 4 + 8 + 8 + 3*24 + 2*pendWindows + 4 + 4 + 4 + 4
	// sketchBytes: a fixed-bin sketch of record maxima (2 + 8 bytes per
	// occupied bin, with append slack); its bins are 2^-5 wide in
	// relative terms, so a component's maxima span a few hundred.
	sketchBytes = 300 * 10 * 3 / 2
	// exactBytes: four big.Float sums at up to exactPrec bits (the sums
	// of float32 powers use about 2200) and the int64 histogram, after
	// the first EndShard.
	exactBytes   = 4*(48+2300/8+8) + 8*histLive
	topEntBytes  = 16
	poolEntBytes = 24
	// windowBytes: a window's source and start in the window table, and
	// its entry in a PlanSources plan (a map of sources).
	windowBytes = 16 + 8 + 64
)

// EstimateBytes is an upper estimate of the memory of an accumulator of
// shape s after it has seen every window: the statistics, the heaps at
// their append capacity, the kept records' values (TopK + QuantilePool
// records per component, the most it keeps, stored once when in both),
// the arena's last chunk of slack, the window table and the per-window
// scratch.
func EstimateBytes(cfg Config, s Shape) int64 {
	C := int64(s.Components)
	perComp := int64(componentFixedBytes+sketchBytes) + int64(s.Values)*4 // + the transposed window
	perComp += int64(appendCap(cfg.TopK))*topEntBytes + int64(appendCap(cfg.QuantilePool))*poolEntBytes
	if s.Shards > 1 {
		perComp += exactBytes
	}
	kept := int64(cfg.TopK + cfg.QuantilePool)
	if w := int64(s.Windows); w > 0 {
		kept = min(kept, w)
	}
	records := C * kept * int64(s.Values) * 4
	if s.Sparse {
		// A top-k record is where the component fires: at most the
		// largest sparse slot (1+2nz ≤ n/2). The pool samples windows
		// uniformly, and a sparse layer has at most one value in 8
		// nonzero: 1+2n/8 values.
		top := min(int64(cfg.TopK), kept)
		records = C * (top*(int64(s.Values)/2+1) + (kept-top)*(1+2*((int64(s.Values)+7)/8))) * 4
	}
	total := C*perComp + records
	total += min(records, arenaMaxChunk*4) // the last chunk, partly used
	// The window table holds at most every window of the task, and twice
	// the referenced ones between compactions.
	w := int64(s.Windows)
	if w == 0 {
		w = min(C*kept, 1<<20)
	}
	total += w * (int64(s.Tokens)*4 + windowBytes)
	return total
}

// appendCap bounds the capacity append gives a slice grown one element
// at a time to n elements: doubling from 4 while small, then growing by a
// quarter, rounded up to the allocator's size classes (1/8 at most).
func appendCap(n int) int {
	c := 4
	for c < n {
		if c < 256 {
			c *= 2
		} else {
			c += c/4 + 192
		}
	}
	return c + c/8
}
