package collate

import (
	"fmt"
	"math"
	"slices"

	"tdb/dataset"
)

// Kind of values a layer's components have.
const (
	kindUnset  uint8 = 0
	kindTokens uint8 = 1 // one activation per token: a record holds T values
	kindPairs  uint8 = 2 // one activation per (query, key) pair: T(T+1)/2 values
)

// maxValues bounds the values in one record (a 1024-token pair window).
const maxValues = 1024 * 1025 / 2

// LayerAccumulator collates every component of one location and layer. It is
// not safe for concurrent use; a worker keeps one per location and layer
// (they may run in parallel with each other).
type LayerAccumulator struct {
	location   string
	layer      int
	components int
	cfg        Config
	salt       uint64
	kind       uint8

	// Live per-shard statistics: every component has seen count values.
	count    int64
	shiftSet bool
	shift    []float32 // per component K of the shifted sums
	sums     []float64 // sum (x-K)^p of component c at sums[(p-1)*C+c], p=1..4
	hist     []uint32  // per component histLive bins and a scratch slot

	// Merged (exact) statistics, allocated on first merge or flush.
	exactCount int64
	exact      []powerSums
	histTotal  []int64

	nonzero []int64
	minAct  []float32
	maxAct  []float32
	minRec  []float32 // smallest record maximum
	records int64     // records (windows) per component
	sketch  []sketch

	// Kept records (heap.go): entries refer to the window table and to
	// activation slots in the arena.
	wins   windowTable
	acts   arena
	top    [][]topEnt
	topThr []float32 // root's max when the heap is full, else -Inf
	pool   [][]poolEnt
	// poolThr is the root's priority when the pool is full, else
	// MaxUint64, or, while a plan is open, the pool's final threshold.
	poolThr []uint64
	// planned holds the sources of a PlanSources plan not added yet.
	planned map[dataset.Source]struct{}
	// prioBase[c] is the component part of the sampling hash.
	prioBase []uint64

	// Record maxima wait here (as sketch codes, [component][window]) and
	// enter the per-component sketches in batches: one sorted merge per
	// batch instead of a cache-missing search per component and window.
	pend      []uint16
	pendN     int
	pendCodes []uint16
	batch     sketch

	scratch []float32 // transposed window [component][values]
	winMax  []float32 // the window's maximum per component
	col     []float32 // one gathered column
	fills   []fill    // kept records of the current window to fill
	// outputs of the row-wise vector summary
	rowMax, rowMin []uint32
	rowZeros       []int32
	scores         []float32 // transposed scores of pair windows
}

// NewLayerAccumulator returns an empty accumulator for nComponents components
// of location at layer.
func NewLayerAccumulator(location string, layer, nComponents int, cfg Config) (*LayerAccumulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if location == "" || layer < 0 || nComponents <= 0 || nComponents > 1<<24 {
		return nil, fmt.Errorf("collate: bad layer accumulator (location %q, layer %d, %d components)", location, layer, nComponents)
	}
	n := nComponents
	a := &LayerAccumulator{
		location: location, layer: layer, components: n, cfg: cfg,
		salt:     salt(cfg.Seed, location, layer),
		shift:    make([]float32, n),
		sums:     make([]float64, 4*n),
		hist:     make([]uint32, histStride*n),
		nonzero:  make([]int64, n),
		minAct:   make([]float32, n),
		maxAct:   make([]float32, n),
		minRec:   make([]float32, n),
		sketch:   make([]sketch, n),
		top:      make([][]topEnt, n),
		topThr:   make([]float32, n),
		pool:     make([][]poolEnt, n),
		poolThr:  make([]uint64, n),
		prioBase: make([]uint64, n),
	}
	for c := 0; c < n; c++ {
		a.minAct[c] = float32(math.Inf(1))
		a.maxAct[c] = negInf32
		a.minRec[c] = float32(math.Inf(1))
		a.topThr[c] = negInf32
		a.poolThr[c] = math.MaxUint64
		a.prioBase[c] = priorityBase(a.salt, c)
	}
	return a, nil
}

// Location, Layer, Components and Config describe the accumulator.
func (a *LayerAccumulator) Location() string { return a.location }
func (a *LayerAccumulator) Layer() int       { return a.layer }
func (a *LayerAccumulator) Components() int  { return a.components }
func (a *LayerAccumulator) Config() Config   { return a.cfg }

// Pairs reports whether the components are pair-indexed (attention heads).
func (a *LayerAccumulator) Pairs() bool { return a.kind == kindPairs }

// Records returns how many windows every component has seen.
func (a *LayerAccumulator) Records() int64 { return a.records }

func (a *LayerAccumulator) setKind(k uint8) error {
	if a.kind == kindUnset {
		a.kind = k
	}
	if a.kind != k {
		return fmt.Errorf("collate: %s layer %d mixes per-token and per-pair windows", a.location, a.layer)
	}
	return nil
}

// AddWindow adds one window of per-token components. acts is the model's
// [T, nComponents] row-major block for the window's T = len(tokens) tokens.
// The slices are not retained.
func (a *LayerAccumulator) AddWindow(src dataset.Source, tokens []int32, acts []float32) error {
	T, C := len(tokens), a.components
	if T == 0 || T > maxValues || len(acts) != T*C {
		return fmt.Errorf("collate: %s layer %d window %v: %d activations for %d tokens × %d components", a.location, a.layer, src, len(acts), T, C)
	}
	if err := a.checkPlanned(src); err != nil {
		return err
	}
	if err := a.setKind(kindTokens); err != nil {
		return err
	}
	if hasAVX2FMA && C >= 8 {
		a.addRows(src, tokens, acts, T)
		return nil
	}
	a.scratch = transpose(a.scratch, acts, T, C)
	a.addColumns(src, tokens, a.scratch, a.scratch, T)
	return nil
}

// addRows is addColumns for a [T, C] window read row by row: the vector
// loop summarizes blocks of eight components with one per lane (no
// transpose); the last C%8 components and kept records' values are
// gathered column by column.
func (a *LayerAccumulator) addRows(src dataset.Source, tokens []int32, acts []float32, T int) {
	C := a.components
	if !a.shiftSet {
		copy(a.shift, acts[:C])
		a.shiftSet = true
	}
	if len(a.winMax) < C {
		a.winMax = make([]float32, C)
		a.rowMax, a.rowMin = make([]uint32, C), make([]uint32, C)
		a.rowZeros = make([]int32, C)
	}
	n := summarizeRows(acts, T, C, a.shift, a.sums, a.hist, a.rowMax, a.rowMin, a.rowZeros)
	a.col = slices.Grow(a.col[:0], T)[:T]
	column := func(c int) []float32 {
		for t := range a.col {
			a.col[t] = acts[t*C+c]
		}
		return a.col
	}
	for c := 0; c < n; c++ {
		mx, mn, zeros := fromKey(a.rowMax[c]), fromKey(a.rowMin[c]), int(a.rowZeros[c])
		h := (*[histStride]uint32)(a.hist[c*histStride : (c+1)*histStride])
		if h[histLive] != uint32(zeros) {
			fixSubnormals(column(c), h)
		}
		h[histLive] = 0
		a.nonzero[c] += int64(T - zeros)
		a.maxAct[c] = max(a.maxAct[c], mx)
		a.minAct[c] = min(a.minAct[c], mn)
		a.winMax[c] = mx
	}
	for c := n; c < C; c++ {
		a.winMax[c] = a.summarize(c, column(c))
	}
	// Kept records' values are gathered afterwards in one pass over the
	// rows (a column gathered per record misses the cache on every value).
	a.fills = a.fills[:0]
	a.addRecords(src, tokens, T, nil)
	if len(a.fills) > 0 {
		for t := 0; t < T; t++ {
			row := acts[t*C : (t+1)*C]
			for _, f := range a.fills {
				a.acts.chunks[f.ref>>32][int(uint32(f.ref))+t] = row[f.c]
			}
		}
	}
}

// fill is a kept record whose slot awaits its values.
type fill struct {
	c   int32
	ref slotRef
}

// AddPairWindow adds one window of pair components (attention heads).
// values and scores are [T, T, nComponents] row-major ([query, key,
// component], T = len(tokens)); only the lower triangle (key <= query) is
// read. A record stores the lower triangle of values row by row; scores rank
// it (its maximum activation is the largest score) and feed the statistics,
// histogram and quantiles. scores may be nil to use values for both; a
// worker typically passes attention probabilities as values and the
// per-pair write norm as scores.
func (a *LayerAccumulator) AddPairWindow(src dataset.Source, tokens []int32, values, scores []float32) error {
	T, C := len(tokens), a.components
	L := T * (T + 1) / 2
	if T == 0 || L > maxValues || len(values) != T*T*C || (scores != nil && len(scores) != T*T*C) {
		return fmt.Errorf("collate: %s layer %d pair window %v: want %d×%d×%d values and scores", a.location, a.layer, src, T, T, C)
	}
	if err := a.checkPlanned(src); err != nil {
		return err
	}
	if err := a.setKind(kindPairs); err != nil {
		return err
	}
	a.scratch = lowerTriangle(a.scratch, values, T, C)
	sc := a.scratch
	if scores != nil {
		a.scores = lowerTriangle(a.scores, scores, T, C)
		sc = a.scores
	}
	a.addColumns(src, tokens, a.scratch, sc, L)
	return nil
}

// PlanSources tells a new accumulator the sources of every window it will
// be given (a worker knows its shard's windows before it runs the model).
// With them the final pool threshold of every component is known at once:
// the QuantilePool-th smallest priority of the shard. Records beyond it are
// then never stored, instead of entering the pool and being evicted later
// (about 3x fewer pool insertions in a shard of 1024 windows). Until every
// planned window is added, adding any other window is an error, and the
// accumulator cannot be encoded, merged or read.
func (a *LayerAccumulator) PlanSources(srcs []dataset.Source) error {
	if a.records > 0 || a.exact != nil || a.planned != nil {
		return fmt.Errorf("collate: %s layer %d: sources must be planned before any window is added", a.location, a.layer)
	}
	planned := make(map[dataset.Source]struct{}, len(srcs))
	for _, s := range srcs {
		if _, dup := planned[s]; dup {
			return fmt.Errorf("collate: %s layer %d: window %v planned twice", a.location, a.layer, s)
		}
		planned[s] = struct{}{}
	}
	if len(planned) == 0 {
		return nil
	}
	a.planned = planned
	P := a.cfg.QuantilePool
	if P == 0 || len(srcs) <= P {
		return nil // every record enters the pool
	}
	prios := make([]uint64, len(srcs))
	for c := range a.components {
		for i, s := range srcs {
			prios[i] = priorityOf(a.prioBase[c], s)
		}
		a.poolThr[c] = nthSmallest(prios, P-1)
	}
	return nil
}

// checkPlanned refuses a window outside an open plan.
func (a *LayerAccumulator) checkPlanned(src dataset.Source) error {
	if a.planned == nil {
		return nil
	}
	if _, ok := a.planned[src]; !ok {
		return fmt.Errorf("collate: %s layer %d: window %v was not planned (or was added twice)", a.location, a.layer, src)
	}
	return nil
}

// openPlan reports a plan whose windows are not all added.
func (a *LayerAccumulator) openPlan() error {
	if a.planned != nil {
		return fmt.Errorf("collate: %s layer %d: %d planned windows were never added", a.location, a.layer, len(a.planned))
	}
	return nil
}

// nthSmallest returns the value of rank n (0-based) of xs, reordering xs
// (quickselect; xs holds hashes, so the middle pivot is as good as random).
func nthSmallest(xs []uint64, n int) uint64 {
	lo, hi := 0, len(xs)-1
	for lo < hi {
		p := xs[lo+(hi-lo)/2]
		i, j := lo, hi
		for i <= j {
			for xs[i] < p {
				i++
			}
			for xs[j] > p {
				j--
			}
			if i <= j {
				xs[i], xs[j] = xs[j], xs[i]
				i++
				j--
			}
		}
		switch {
		case n <= j:
			hi = j
		case n >= i:
			lo = i
		default:
			return xs[n]
		}
	}
	return xs[n]
}

// transpose writes the [T, C] block as [C, T] into dst. It reads bands of
// four rows front to back (few prefetch streams; a column-tiled transpose of
// a block that is not in cache is latency-bound and measured 4x slower) and
// writes four consecutive values of each column.
func transpose(dst, src []float32, T, C int) []float32 {
	dst = slices.Grow(dst[:0], T*C)[:T*C]
	t := 0
	for ; t+3 < T; t += 4 {
		r0 := src[t*C : (t+1)*C]
		r1 := src[(t+1)*C : (t+2)*C]
		r2 := src[(t+2)*C : (t+3)*C]
		r3 := src[(t+3)*C : (t+4)*C]
		for c := range r0 {
			d := dst[c*T+t : c*T+t+4 : c*T+t+4]
			d[0], d[1], d[2], d[3] = r0[c], r1[c], r2[c], r3[c]
		}
	}
	for ; t < T; t++ {
		for c, x := range src[t*C : (t+1)*C] {
			dst[c*T+t] = x
		}
	}
	return dst
}

// lowerTriangle gathers, per component, the pairs (q, k<=q) of a [T, T, C]
// block row by row into dst [C][T(T+1)/2].
func lowerTriangle(dst, src []float32, T, C int) []float32 {
	L := T * (T + 1) / 2
	dst = slices.Grow(dst[:0], L*C)[:L*C]
	i := 0
	for q := 0; q < T; q++ {
		for k := 0; k <= q; k++ {
			row := src[(q*T+k)*C : (q*T+k+1)*C]
			for c, x := range row {
				dst[c*L+i] = x
			}
			i++
		}
	}
	return dst
}

// addColumns updates every component from its L stored values and L scores
// (vals[c*L:], scores[c*L:]; the same slice for per-token windows).
func (a *LayerAccumulator) addColumns(src dataset.Source, tokens []int32, vals, scores []float32, L int) {
	if !a.shiftSet {
		for c := range a.shift {
			a.shift[c] = scores[c*L]
		}
		a.shiftSet = true
	}
	if len(a.winMax) < a.components {
		a.winMax = make([]float32, a.components)
	}
	for c := 0; c < a.components; c++ {
		a.winMax[c] = a.summarize(c, scores[c*L:(c+1)*L])
	}
	a.addRecords(src, tokens, L, func(c int) []float32 { return vals[c*L : (c+1)*L] })
}

// addRecords finishes a window whose per-component maxima are in winMax:
// the sketches, the heaps (values(c) returns component c's L values, called
// only for records that are kept) and the counts.
func (a *LayerAccumulator) addRecords(src dataset.Source, tokens []int32, L int, values func(c int) []float32) {
	closing := false
	if a.planned != nil {
		delete(a.planned, src)
		closing = len(a.planned) == 0
	}
	win := a.wins.add(src, tokens)
	if a.pend == nil {
		a.pend = make([]uint16, pendWindows*a.components)
	}
	pend := a.pend[a.pendN:]
	useTop, usePool := a.cfg.TopK > 0, a.cfg.QuantilePool > 0
	for c := 0; c < a.components; c++ {
		mx := a.winMax[c]
		pend[c*pendWindows] = sketchCode(mx)
		a.minRec[c] = min(a.minRec[c], mx)
		// Most windows enter neither heap: two compares reject them.
		enterTop := useTop && mx >= a.topThr[c]
		var prio uint64
		enterPool := false
		if usePool {
			prio = priorityOf(a.prioBase[c], src)
			enterPool = prio <= a.poolThr[c]
		}
		if enterTop || enterPool {
			a.keep(c, win, mx, prio, L, values)
		}
	}
	if closing {
		// Every planned window is in: the heaps are exact again.
		a.planned = nil
		for c := range a.pool {
			if len(a.pool[c]) < a.cfg.QuantilePool {
				a.heapifyPool(c)
			}
		}
	}
	a.count += int64(L)
	a.records++
	if a.pendN++; a.pendN == pendWindows {
		a.flushSketch()
	}
	if a.count >= 1<<31 { // keep the uint32 histogram from overflowing
		a.flushLive()
	}
	a.maybeCompact()
}

// recordLen is the number of stored values of a record of window w.
func (a *LayerAccumulator) recordLen(w int32) int {
	T := a.wins.ntok(w)
	if a.kind == kindPairs {
		return T * (T + 1) / 2
	}
	return T
}

// maybeCompact drops windows no record refers to once they are at least
// as many as the referenced ones (amortized: each compaction at least
// doubles the table's size before the next).
func (a *LayerAccumulator) maybeCompact() {
	if a.wins.len() <= 2*a.wins.live+4096 {
		return
	}
	keep := make([]bool, a.wins.len())
	for c := range a.top {
		for _, e := range a.top[c] {
			keep[e.win] = true
		}
		for _, e := range a.pool[c] {
			keep[e.win] = true
		}
	}
	remap := a.wins.compact(keep)
	for c := range a.top {
		for i := range a.top[c] {
			a.top[c][i].win = remap[a.top[c][i].win]
		}
		for i := range a.pool[c] {
			a.pool[c][i].win = remap[a.pool[c][i].win]
		}
	}
}
