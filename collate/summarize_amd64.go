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

//go:noescape
func rowsAVX2(src *float32, T, C, blocks int, shift *float32, sums *float64, hist *uint32, lut *uint8, mxk, mnk *uint32, zeros *int32)

// summarizeRows summarizes components 0..n-1 of a [T, C] window straight
// from its rows, n the largest multiple of 8 the vector loop covers (0
// without AVX2): see rowsAVX2. sums is [4][C], hist [C][histStride], and
// mxk, mnk and zeros get one entry per component.
func summarizeRows(acts []float32, T, C int, shift []float32, sums []float64, hist []uint32, mxk, mnk []uint32, zeros []int32) int {
	blocks := C / 8
	if !hasAVX2FMA || blocks == 0 || T == 0 {
		return 0
	}
	// Bounds the assembly relies on.
	_ = acts[T*C-1]
	_ = shift[C-1]
	_ = sums[4*C-1]
	_ = hist[C*histStride-1]
	_, _, _ = mxk[C-1], mnk[C-1], zeros[C-1]
	rowsAVX2(&acts[0], T, C, blocks, &shift[0], &sums[0], &hist[0], &histLUT[0], &mxk[0], &mnk[0], &zeros[0])
	return 8 * blocks
}

// rowsAVX2 hard-codes a component's histogram as 65 uint32s.
const _ = uint(histStride-65) + uint(65-histStride)
