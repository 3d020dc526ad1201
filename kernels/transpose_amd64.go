//go:build amd64 && !purego

package kernels

//go:noescape
func transpose16AVX512(dst *float32, dstStride int, src *float32, srcStride int, blocks int)

// transpose16 transposes 16 rows × 16·blocks columns of src into dst when
// the CPU has AVX-512, reporting whether it did.
func transpose16(dst []float32, dstStride int, src []float32, srcStride int, blocks int) bool {
	if !hasAVX512 || blocks == 0 {
		return false
	}
	// Bounds the assembly relies on.
	_ = src[15*srcStride+16*blocks-1]
	_ = dst[(16*blocks-1)*dstStride+15]
	transpose16AVX512(&dst[0], dstStride, &src[0], srcStride, blocks)
	return true
}
