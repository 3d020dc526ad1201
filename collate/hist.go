package collate

import (
	"math"
)

// The activation histogram has fixed, data-independent bins so that
// histograms of different shards add up exactly. Bins are by magnitude on a
// half-octave log scale from 2^-8 to 2^8, mirrored for negative values, with
// exact zero in a bin of its own:
//
//	magnitude bin m (0..31) holds |x| in [E_m, E_m+1), where
//	E_0 = 0 (exclusive), E_m = 2^(m/2-8) · (1 + (m%2)/2), E_32 = +Inf;
//	so the lowest bin is (0, 1.5·2^-8) and the highest [192, +Inf).
//
// The written histogram has 65 counts in ascending value order: 32 negative
// bins (m = 31 down to 0), the zero bin, 32 positive bins (m = 0 up to 31).
// HistogramEdges returns their 66 signed edges.
const (
	histMags = 32
	histLive = 2 * histMags // live bins: nonzero values only
	// HistogramBins is the number of bins in a written histogram.
	HistogramBins = histLive + 1
	// histStride is the live histogram's per-component size: the bins
	// plus a scratch slot for values with a zero exponent field.
	histStride = histLive + 1
)

// histLUT maps the top 10 bits of a float32 (sign, exponent, first mantissa
// bit) to its live bin; zero-exponent values (zeros and subnormals) map to
// the scratch slot histLive.
var histLUT = func() (t [1024]uint8) {
	for i := range t {
		if (i>>1)&0xff == 0 {
			t[i] = histLive
			continue
		}
		t[i] = uint8(histBin(math.Float32frombits(uint32(i) << 22)))
	}
	return t
}()

// histBin maps a nonzero activation to its live bin: 0..31 negative
// (ascending value), 32..63 positive. It is branch-free bit arithmetic on the
// float32 encoding, so it costs a few instructions per activation.
func histBin(x float32) int {
	b := math.Float32bits(x)
	ex := int((b>>23)&0xff) - 127
	ex = min(max(ex, -9), 8)
	mag := (ex+8)*2 + int((b>>22)&1)
	mag = min(max(mag, 0), histMags-1)
	// positive: 32+mag; negative: 31-mag.
	neg := int(b >> 31)
	return histMags + mag - neg*(2*mag+1)
}

// histEdge returns the magnitude edge E_m.
func histEdge(m int) float64 {
	switch {
	case m <= 0:
		return 0
	case m >= histMags:
		return math.Inf(1)
	}
	return math.Ldexp(1+0.5*float64(m%2), m/2-8)
}

// HistogramEdges returns the 66 edges of the 65 written histogram bins in
// ascending order. Bin i holds the values between edges i and i+1; the zero
// bin (index 32) has both edges 0 and holds exact zeros only.
func HistogramEdges() []float64 {
	edges := make([]float64, 0, HistogramBins+1)
	for m := histMags; m >= 1; m-- {
		edges = append(edges, -histEdge(m))
	}
	edges = append(edges, 0, 0)
	for m := 1; m <= histMags; m++ {
		edges = append(edges, histEdge(m))
	}
	return edges
}
