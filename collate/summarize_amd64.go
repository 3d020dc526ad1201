//go:build amd64 && !purego

package collate

import "golang.org/x/sys/cpu"

var hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func summarizeAVX2(col *float32, n int, k float64, s *[4]float64) (mxk, mnk uint32, zeros int)

// summarizeVec runs the vector part of summarizeColumn over the first
// len(col) rounded down to 8 values, reporting how many it covered.
func summarizeVec(col []float32, k float64, s *[4]float64) (mxk, mnk uint32, zeros, done int) {
	n := len(col) &^ 7
	if !hasAVX2FMA || n == 0 {
		return 0, ^uint32(0), 0, 0
	}
	mxk, mnk, zeros = summarizeAVX2(&col[0], n, k, s)
	return mxk, mnk, zeros, n
}

//go:noescape
func histCount(col *float32, n int, lut *uint8, h *uint32)

// histAdd counts every value of col into its histLUT bin of h.
func histAdd(col []float32, h *[histStride]uint32) {
	if len(col) > 0 {
		histCount(&col[0], len(col), &histLUT[0], &h[0])
	}
}
