package collate

import (
	"errors"
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
	if i := firstNonFinite(acts); i >= 0 {
		return a.nonFinite(src, acts[i], i%C, i/C)
	}
	if hasAVX2FMA && C >= 8 {
		a.addRows(src, tokens, acts, T)
		return nil
	}
	a.scratch = transpose(a.scratch, acts, T, C)
	a.addColumns(src, tokens, a.scratch, a.scratch, T)
	return nil
}

// ErrNonFinite marks a window with a NaN or infinite activation. The policy
// (doc.go, "NaN and infinities"): such a window is refused, and the job
// that computed it fails naming the component and the window, since any
// statistic or ranking over it would be meaningless.
var ErrNonFinite = errors.New("non-finite activation")

// firstNonFinite returns the index of the first NaN or ±Inf in v, or -1.
func firstNonFinite(v []float32) int {
	for i, x := range v {
		if math.Float32bits(x)&0x7f800000 == 0x7f800000 {
			return i
		}
	}
	return -1
}

func (a *LayerAccumulator) nonFinite(src dataset.Source, v float32, c, t int) error {
	return fmt.Errorf("collate: %w %v in %s layer %d component %d at token %d of document %d, offset %d (NaN or Inf activations are not collated; check the model and autoencoder weights)",
		ErrNonFinite, v, a.location, a.layer, c, t, src.Doc, src.Offset)
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
	for _, v := range [][]float32{values, scores} {
		if i := firstNonFinite(v); i >= 0 {
			return a.nonFinite(src, v[i], i%C, i/C/T)
		}
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

// liveSums returns component c's live power sums.
func (a *LayerAccumulator) liveSums(c int) [4]float64 {
	C := a.components
	return [4]float64{a.sums[c], a.sums[C+c], a.sums[2*C+c], a.sums[3*C+c]}
}

func (a *LayerAccumulator) setLiveSums(c int, s *[4]float64) {
	C := a.components
	a.sums[c], a.sums[C+c], a.sums[2*C+c], a.sums[3*C+c] = s[0], s[1], s[2], s[3]
}

// summarize folds one component's window into the live statistics and
// returns its maximum.
func (a *LayerAccumulator) summarize(c int, col []float32) float32 {
	h := (*[histStride]uint32)(a.hist[c*histStride : (c+1)*histStride])
	s := a.liveSums(c)
	mx, mn, zeros := summarizeColumn(col, float64(a.shift[c]), h, &s)
	a.setLiveSums(c, &s)
	a.nonzero[c] += int64(len(col) - zeros)
	a.maxAct[c] = max(a.maxAct[c], mx)
	a.minAct[c] = min(a.minAct[c], mn)
	return mx
}

// summarizeColumn is the hot loop: it adds the shifted power sums of col to
// s, counts col's nonzero values into their histogram bins and returns the
// maximum, minimum and number of exact zeros. Extremes are taken over
// order-preserving integer keys of the float32 bits. On CPUs with AVX2 and
// FMA the sums, extremes and zeros of the first len(col)&^7 values come from
// an 8-wide vector loop (its float64 sums add in a different order from the
// scalar loop; either is a fixed function of the column). Values whose
// float32 exponent field is zero (zeros and subnormals) are counted in
// scratch slot histLive; subnormals are rare enough to be binned afterwards
// by a second look at the column.
func summarizeColumn(col []float32, k float64, h *[histStride]uint32, s *[4]float64) (mx, mn float32, zeros int) {
	mxk, mnk, vz, done := summarizeVec(col, k, s)
	zs := uint32(vz)
	if done < len(col) {
		var a1, a2, a3, a4 float64
		for _, x := range col[done:] {
			b := math.Float32bits(x)
			z := b << 1
			zs += (z|-z)>>31 ^ 1
			key := b ^ (uint32(int32(b)>>31) | 0x80000000)
			mxk = max(mxk, key)
			mnk = min(mnk, key)
			d := float64(x) - k
			d2 := d * d
			a1 += d
			a2 += d2
			a3 += d2 * d
			a4 += d2 * d2
		}
		s[0] += a1
		s[1] += a2
		s[2] += a3
		s[3] += a4
	}
	histAdd(col, h)
	if h[histLive] != zs {
		fixSubnormals(col, h)
	}
	h[histLive] = 0
	return fromKey(mxk), fromKey(mnk), int(zs)
}

// fixSubnormals puts col's subnormals, which the histogram LUT counts in
// scratch slot histLive with the zeros, in the lowest magnitude bin of their
// sign.
func fixSubnormals(col []float32, h *[histStride]uint32) {
	for _, x := range col {
		if x != 0 && math.Float32bits(x)&0x7f800000 == 0 {
			h[histBin(x)]++
		}
	}
}

// fromKey inverts the order-preserving key of summarizeColumn.
func fromKey(k uint32) float32 {
	if k&0x80000000 != 0 {
		return math.Float32frombits(k &^ 0x80000000)
	}
	return math.Float32frombits(^k)
}

// pendWindows is how many windows of record maxima wait before they enter
// the sketches.
const pendWindows = 128

// flushSketch moves the pending record maxima into the sketches.
func (a *LayerAccumulator) flushSketch() {
	if a.pendN == 0 {
		return
	}
	C := a.components
	codes := slices.Grow(a.pendCodes[:0], a.pendN)[:a.pendN]
	batch := &a.batch
	for c := 0; c < C; c++ {
		copy(codes, a.pend[c*pendWindows:c*pendWindows+a.pendN])
		slices.Sort(codes)
		batch.codes, batch.counts = batch.codes[:0], batch.counts[:0]
		for _, code := range codes {
			batch.add(code) // ascending: the append fast path
		}
		a.sketch[c].merge(batch)
	}
	a.pendCodes = codes
	a.pendN = 0
}

// flushLive moves the live float64 sums and uint32 histogram into the exact
// merged state and resets them.
func (a *LayerAccumulator) flushLive() {
	if a.exact == nil {
		a.exact = make([]powerSums, a.components)
		a.histTotal = make([]int64, histLive*a.components)
	}
	if a.count > 0 {
		for c := range a.exact {
			s := a.liveSums(c)
			a.exact[c].addShifted(a.count, a.shift[c], &s)
		}
	} else {
		for c := range a.exact {
			a.exact[c].addShifted(0, 0, nil)
		}
	}
	for c := 0; c < a.components; c++ {
		for i := 0; i < histLive; i++ {
			a.histTotal[c*histLive+i] += int64(a.hist[c*histStride+i])
		}
	}
	a.exactCount += a.count
	a.count = 0
	a.shiftSet = false
	clear(a.sums)
	clear(a.hist)
	clear(a.shift)
}

// Merge folds o into a; o must not be used afterwards. Both must describe the
// same location, layer, component count and Config. The result does not
// depend on the order in which partials are merged.
func (a *LayerAccumulator) Merge(o *LayerAccumulator) error {
	if a.location != o.location || a.layer != o.layer || a.components != o.components {
		return fmt.Errorf("collate: cannot merge %s layer %d (%d components) into %s layer %d (%d components)",
			o.location, o.layer, o.components, a.location, a.layer, a.components)
	}
	if a.cfg != o.cfg {
		return fmt.Errorf("collate: cannot merge %s layer %d: settings differ (%+v vs %+v)", a.location, a.layer, o.cfg, a.cfg)
	}
	if err := a.openPlan(); err != nil {
		return err
	}
	if err := o.openPlan(); err != nil {
		return err
	}
	if o.kind != kindUnset {
		if err := a.setKind(o.kind); err != nil {
			return err
		}
	}
	a.flushLive()
	o.flushLive()
	a.flushSketch()
	o.flushSketch()
	a.exactCount += o.exactCount
	a.records += o.records
	// o's windows enter a's table when one of their records is kept.
	remap := make([]int32, o.wins.len())
	for i := range remap {
		remap[i] = -1
	}
	existed := make([]bool, o.wins.len())
	window := func(ow int32) (int32, bool) {
		if w := remap[ow]; w >= 0 {
			return w, existed[ow]
		}
		w, ok := a.wins.lookup(o.wins.src[ow])
		if !ok {
			w = a.wins.add(o.wins.src[ow], o.wins.tokens(ow))
		}
		remap[ow], existed[ow] = w, ok
		return w, ok
	}
	for c := 0; c < a.components; c++ {
		a.exact[c].add(&o.exact[c])
		a.nonzero[c] += o.nonzero[c]
		a.minAct[c] = min(a.minAct[c], o.minAct[c])
		a.maxAct[c] = max(a.maxAct[c], o.maxAct[c])
		a.minRec[c] = min(a.minRec[c], o.minRec[c])
		a.sketch[c].merge(&o.sketch[c])
		// Every record o keeps is offered once to both heaps: the merged
		// top-k (pool) is the top-k (pool) of the union.
		for _, e := range o.top[c] {
			a.mergeRecord(c, o, e.win, e.max, e.ref, window)
		}
		for _, e := range o.pool[c] {
			if !o.inTop(c, &topEnt{win: e.win, max: e.max}) {
				a.mergeRecord(c, o, e.win, e.max, e.ref, window)
			}
		}
	}
	for i, v := range o.histTotal {
		a.histTotal[i] += v
	}
	a.maybeCompact()
	return nil
}

// mergeRecord offers o's record (window ow, maximum mx, activations in slot
// ref of o's arena) of component c to a. A record whose source a already
// keeps is ignored, so merging the same partial twice changes nothing.
func (a *LayerAccumulator) mergeRecord(c int, o *LayerAccumulator, ow int32, mx float32, ref slotRef, window func(int32) (int32, bool)) {
	src := o.wins.src[ow]
	var prio uint64
	enterPool := false
	if a.cfg.QuantilePool > 0 {
		prio = priorityOf(a.prioBase[c], src)
		enterPool = prio <= a.poolThr[c]
	}
	if !(a.cfg.TopK > 0 && mx >= a.topThr[c]) && !enterPool {
		return
	}
	w, existed := window(ow)
	if existed && a.holds(c, w) {
		return
	}
	n := o.recordLen(ow)
	a.keep(c, w, mx, prio, n, func(int) []float32 { return o.acts.get(ref, n) })
}

// holds reports whether component c keeps a record of window w.
func (a *LayerAccumulator) holds(c int, w int32) bool {
	for _, e := range a.top[c] {
		if e.win == w {
			return true
		}
	}
	for _, e := range a.pool[c] {
		if e.win == w {
			return true
		}
	}
	return false
}

// Component returns the collated view of component c (finalizing the
// quantile buckets). It does not change the accumulator.
func (a *LayerAccumulator) Component(c int) (*dataset.ComponentView, error) {
	if c < 0 || c >= a.components {
		return nil, fmt.Errorf("collate: %s layer %d has no component %d (it has %d)", a.location, a.layer, c, a.components)
	}
	if err := a.openPlan(); err != nil {
		return nil, err
	}
	a.flushSketch()
	v := &dataset.ComponentView{Location: a.location, Layer: a.layer, Index: c, Pairs: a.kind == kindPairs}
	top := make([]rec, len(a.top[c]))
	for i, e := range a.top[c] {
		top[i] = a.view(e.win, e.max, e.ref, 0)
	}
	slices.SortFunc(top, order(func(x, y *rec) bool { return better(&x.Record, &y.Record) }))
	for _, r := range top {
		v.Top = append(v.Top, r.Record)
	}
	pool := make([]rec, len(a.pool[c]))
	for i, e := range a.pool[c] {
		pool[i] = a.view(e.win, e.max, e.ref, e.prio)
	}
	slices.SortFunc(pool, order(earlier))
	for _, r := range pool[:min(len(pool), a.cfg.RandomK)] {
		v.Random = append(v.Random, r.Record)
	}
	v.Stats = a.stats(c)
	if nb := a.cfg.QuantileBuckets; nb > 0 && len(v.Stats.QuantileBoundaries) > 0 {
		v.Quantiles = make([][]dataset.Record, nb)
		for _, r := range pool {
			b := bucketOf(v.Stats.QuantileBoundaries, r.MaxActivation)
			if len(v.Quantiles[b]) < a.cfg.PerBucket {
				v.Quantiles[b] = append(v.Quantiles[b], r.Record)
			}
		}
	}
	return v, nil
}

// view returns a kept record as a rec with its own copy of the activations
// (arena slots are reused) and the window table's tokens.
func (a *LayerAccumulator) view(w int32, mx float32, ref slotRef, prio uint64) rec {
	return rec{Record: dataset.Record{Source: a.wins.src[w], MaxActivation: mx, Tokens: a.wins.tokens(w),
		Activations: slices.Clone(a.acts.get(ref, a.recordLen(w)))}, prio: prio}
}

// order turns a strict total order into a sort comparison.
func order(before func(x, y *rec) bool) func(x, y rec) int {
	return func(x, y rec) int {
		switch {
		case before(&x, &y):
			return -1
		case before(&y, &x):
			return 1
		}
		return 0
	}
}

// stats computes component c's statistics from the exact and live state.
func (a *LayerAccumulator) stats(c int) dataset.Stats {
	a.flushSketch()
	var ps powerSums
	if a.exact != nil {
		ps.add(&a.exact[c])
	}
	if a.count > 0 {
		s := a.liveSums(c)
		ps.addShifted(a.count, a.shift[c], &s)
	}
	n := a.exactCount + a.count
	st := dataset.Stats{Count: n, Histogram: make([]int64, dataset.HistogramBins)}
	if n == 0 {
		return st
	}
	st.Mean, st.Variance, st.Skewness, st.Kurtosis = moments(n, &ps)
	st.Max, st.Min = a.maxAct[c], a.minAct[c]
	st.FracNonzero = float64(a.nonzero[c]) / float64(n)
	for i := 0; i < histLive; i++ {
		v := int64(a.hist[c*histStride+i])
		if a.histTotal != nil {
			v += a.histTotal[c*histLive+i]
		}
		j := i
		if i >= histMags {
			j++ // after the zero bin
		}
		st.Histogram[j] = v
	}
	st.Histogram[histMags] = n - a.nonzero[c]
	st.QuantileBoundaries = a.sketch[c].boundaries(a.cfg.QuantileBuckets, a.minRec[c], a.maxAct[c])
	return st
}
