package collate

// Statistics: live per-window sums, histograms and the quantile sketch,
// flushed into the exact state, and the final moments of a component.

import (
	"math"
	"slices"

	"tdb/dataset"
)

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
