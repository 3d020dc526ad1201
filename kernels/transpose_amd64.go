//go:build amd64 && !purego

package kernels

// transpose16AVX512 transposes 16 rows × 16·blocks columns of src into dst.
//
//go:noescape
func transpose16AVX512(dst *float32, dstStride int, src *float32, srcStride int, blocks int)
