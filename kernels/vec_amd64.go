//go:build amd64 && !purego

package kernels

// The AVX2+FMA vector kernels. The assembly handles n rounded down to a
// multiple of 8 (dot and scale handle any n); the Go wrappers finish
// the tail with the portable code, which computes the same formulas.

//go:noescape
func dotAVX2(x, y *float32, n int) float32

//go:noescape
func scaleAVX2(alpha float32, x *float32, n int)

//go:noescape
func sumAVX2(x *float32, n int) float32

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func sumSqDevAVX2(x *float32, n int, mean float32) float32

//go:noescape
func normAVX2(dst, x, gain, bias *float32, n int, mean, rstd float32)

//go:noescape
func addAVX2(dst, a, b *float32, n int)

//go:noescape
func geluAVX2(dst, src *float32, n int)

//go:noescape
func geluGradAVX2(dst, dout, x *float32, n int)

//go:noescape
func expSumAVX2(dst, src *float32, n int, shift float32) float32

//go:noescape
func softmaxGradAVX2(grad, p *float32, n int, dot float32)

//go:noescape
func lnGradSumsAVX2(dout, gain, x *float32, n int, mean float32) (sumDy, sumDyXc float32)

//go:noescape
func lnGradApplyAVX2(dx, dout, gain, x *float32, n int, mean, rstd, c, k float32)

var avx2Vec = &vecKernels{
	dot: func(x, y []float32) float32 {
		y = y[:len(x)]
		return dotAVX2(&x[0], &y[0], len(x))
	},
	scale: func(alpha float32, x []float32) { scaleAVX2(alpha, &x[0], len(x)) },
	sum: func(x []float32) float32 {
		n := len(x) &^ 7
		s := float32(0)
		if n > 0 {
			s = sumAVX2(&x[0], n)
		}
		return s + sumGo(x[n:])
	},
	max: func(x []float32) float32 {
		n := len(x) &^ 7
		m := maxGo(x[n:])
		if n > 0 {
			m = max(m, maxAVX2(&x[0], n))
		}
		return m
	},
	sumSqDev: func(x []float32, mean float32) float32 {
		n := len(x) &^ 7
		s := float32(0)
		if n > 0 {
			s = sumSqDevAVX2(&x[0], n, mean)
		}
		return s + sumSqDevGo(x[n:], mean)
	},
	norm: func(dst, x, gain, bias []float32, mean, rstd float32) {
		dst, gain, bias = dst[:len(x)], gain[:len(x)], bias[:len(x)]
		n := len(x) &^ 7
		if n > 0 {
			normAVX2(&dst[0], &x[0], &gain[0], &bias[0], n, mean, rstd)
		}
		normGo(dst[n:], x[n:], gain[n:], bias[n:], mean, rstd)
	},
	add: func(dst, a, b []float32) {
		a, b = a[:len(dst)], b[:len(dst)]
		n := len(dst) &^ 7
		if n > 0 {
			addAVX2(&dst[0], &a[0], &b[0], n)
		}
		addGo(dst[n:], a[n:], b[n:])
	},
	gelu: func(dst, src []float32) {
		dst = dst[:len(src)]
		n := len(src) &^ 7
		if n > 0 {
			geluAVX2(&dst[0], &src[0], n)
		}
		geluGo(dst[n:], src[n:])
	},
	geluGrad: func(dst, dout, x []float32) {
		dst, dout = dst[:len(x)], dout[:len(x)]
		n := len(x) &^ 7
		if n > 0 {
			geluGradAVX2(&dst[0], &dout[0], &x[0], n)
		}
		geluGradGo(dst[n:], dout[n:], x[n:])
	},
	expSum: func(dst, src []float32, shift float32) float32 {
		dst = dst[:len(src)]
		n := len(src) &^ 7
		s := float32(0)
		if n > 0 {
			s = expSumAVX2(&dst[0], &src[0], n, shift)
		}
		return s + expSumGo(dst[n:], src[n:], shift)
	},
	softmaxGrad: func(g, p []float32, dot float32) {
		p = p[:len(g)]
		n := len(g) &^ 7
		if n > 0 {
			softmaxGradAVX2(&g[0], &p[0], n, dot)
		}
		softmaxGradGo(g[n:], p[n:], dot)
	},
	lnGradSums: func(dout, gain, x []float32, mean float32) (float32, float32) {
		dout, gain = dout[:len(x)], gain[:len(x)]
		n := len(x) &^ 7
		var a, b float32
		if n > 0 {
			a, b = lnGradSumsAVX2(&dout[0], &gain[0], &x[0], n, mean)
		}
		ta, tb := lnGradSumsGo(dout[n:], gain[n:], x[n:], mean)
		return a + ta, b + tb
	},
	lnGradApply: func(dx, dout, gain, x []float32, mean, rstd, c, k float32) {
		dx, dout, gain = dx[:len(x)], dout[:len(x)], gain[:len(x)]
		n := len(x) &^ 7
		if n > 0 {
			lnGradApplyAVX2(&dx[0], &dout[0], &gain[0], &x[0], n, mean, rstd, c, k)
		}
		lnGradApplyGo(dx[n:], dout[n:], gain[n:], x[n:], mean, rstd, c, k)
	},
}
