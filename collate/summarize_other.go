//go:build !amd64 || purego

package collate

import "math"

// summarizeVec is the vector part of summarizeColumn; without one it
// covers nothing.
func summarizeVec(col []float32, k float64, s *[4]float64) (mxk, mnk uint32, zeros, done int) {
	return 0, ^uint32(0), 0, 0
}

// histAdd counts every value of col into its histLUT bin of h.
func histAdd(col []float32, h *[histStride]uint32) {
	for _, x := range col {
		h[histLUT[math.Float32bits(x)>>22]]++
	}
}

// summarizeRows is the row-wise vector summary; without one it covers no
// component.
func summarizeRows(acts []float32, T, C int, shift []float32, sums []float64, hist []uint32, mxk, mnk []uint32, zeros []int32) int {
	return 0
}

// hasAVX2FMA is false: there is no vector path.
const hasAVX2FMA = false
