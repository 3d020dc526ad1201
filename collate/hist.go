package collate

import (
	"math"

	"tdb/dataset"
)

// The live histogram bins are dataset's written bins (see
// dataset.HistogramEdges) without the zero bin.
const (
	histMags = dataset.HistogramMagnitudes
	histLive = 2 * histMags // live bins: nonzero values only
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
