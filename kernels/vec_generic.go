//go:build !amd64 || purego

package kernels

func dot(x, y []float32) float32         { return dotGo(x, y) }
func axpy(alpha float32, x, y []float32) { axpyGo(alpha, x, y) }
func scale(alpha float32, x []float32)   { scaleGo(alpha, x) }
func gelu(dst, src []float32)            { geluGo(dst, src) }
