//go:build !amd64 || purego

package kernels

func transpose16(dst []float32, dstStride int, src []float32, srcStride int, blocks int) bool {
	return false
}
