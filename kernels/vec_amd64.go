//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

var (
	hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512  = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL
)

//go:noescape
func dotAVX2(x, y *float32, n int) float32

//go:noescape
func axpyAVX2(alpha float32, x, y *float32, n int)

//go:noescape
func scaleAVX2(alpha float32, x *float32, n int)

// geluAVX512 handles n rounded down to a multiple of 16.
//
//go:noescape
func geluAVX512(dst, src *float32, n int)

func dot(x, y []float32) float32 {
	if hasAVX2FMA {
		return dotAVX2(&x[0], &y[0], len(x))
	}
	return dotGo(x, y)
}

func axpy(alpha float32, x, y []float32) {
	if hasAVX2FMA {
		axpyAVX2(alpha, &x[0], &y[0], len(x))
		return
	}
	axpyGo(alpha, x, y)
}

func scale(alpha float32, x []float32) {
	if hasAVX2FMA {
		scaleAVX2(alpha, &x[0], len(x))
		return
	}
	scaleGo(alpha, x)
}

func gelu(dst, src []float32) {
	n := 0
	if hasAVX512 && len(src) >= 16 {
		n = len(src) &^ 15
		geluAVX512(&dst[0], &src[0], n)
	}
	geluGo(dst[n:], src[n:])
}
