//go:build amd64 && !purego

package kernels

// transpose16AVX512 transposes 16 rows × 16·blocks columns of src into dst.
//
//go:noescape
func transpose16AVX512(dst *float32, dstStride int, src *float32, srcStride int, blocks int)

// transpose8AVX2 transposes 8 rows × 8·blocks columns of src into dst.
//
//go:noescape
func transpose8AVX2(dst *float32, dstStride int, src *float32, srcStride int, blocks int)

// copyRows16AVX2 copies rows × 16 floats, src row stride srcStride, to dst.
//
//go:noescape
func copyRows16AVX2(dst, src *float32, srcStride, rows int)

// packA6AVX2 packs 6 rows × 8·blocks columns of src (row stride srcStride)
// into a k-major micro-panel of A: dst[6k+r] = src[r][k].
//
//go:noescape
func packA6AVX2(dst, src *float32, srcStride, blocks int)
