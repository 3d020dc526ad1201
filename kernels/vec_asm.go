//go:build (amd64 || arm64) && !purego

package kernels

// asmVec are the assembly vector kernels of one ISA, on pointers and a
// length that is a multiple of the vector width (dot and scale: any length).
type asmVec struct {
	dot         func(x, y *float32, n int) float32
	scale       func(alpha float32, x *float32, n int)
	sum         func(x *float32, n int) float32
	max         func(x *float32, n int) float32
	sumSqDev    func(x *float32, n int, mean float32) float32
	norm        func(dst, x, gain, bias *float32, n int, mean, rstd float32)
	add         func(dst, a, b *float32, n int)
	gelu        func(dst, src *float32, n int)
	geluGrad    func(dst, dout, x *float32, n int)
	expSum      func(dst, src *float32, n int, shift float32) float32
	softmaxGrad func(grad, p *float32, n int, dot float32)
	lnGradSums  func(dout, gain, x *float32, n int, mean float32) (sumDy, sumDyXc float32)
	lnGradApply func(dx, dout, gain, x *float32, n int, mean, rstd, c, k float32)
}

// vecKernels wraps a: the assembly handles the length rounded down to a
// multiple of lanes and the portable code, which computes the same
// formulas, finishes the tail.
func (a asmVec) vecKernels(lanes int) *vecKernels {
	body := func(n int) int { return n / lanes * lanes }
	return &vecKernels{
		dot: func(x, y []float32) float32 {
			y = y[:len(x)]
			return a.dot(&x[0], &y[0], len(x))
		},
		scale: func(alpha float32, x []float32) { a.scale(alpha, &x[0], len(x)) },
		sum: func(x []float32) float32 {
			n := body(len(x))
			s := float32(0)
			if n > 0 {
				s = a.sum(&x[0], n)
			}
			return s + sumGo(x[n:])
		},
		max: func(x []float32) float32 {
			n := body(len(x))
			m := maxGo(x[n:])
			if n > 0 {
				m = max(m, a.max(&x[0], n))
			}
			return m
		},
		sumSqDev: func(x []float32, mean float32) float32 {
			n := body(len(x))
			s := float32(0)
			if n > 0 {
				s = a.sumSqDev(&x[0], n, mean)
			}
			return s + sumSqDevGo(x[n:], mean)
		},
		norm: func(dst, x, gain, bias []float32, mean, rstd float32) {
			dst, gain, bias = dst[:len(x)], gain[:len(x)], bias[:len(x)]
			n := body(len(x))
			if n > 0 {
				a.norm(&dst[0], &x[0], &gain[0], &bias[0], n, mean, rstd)
			}
			normGo(dst[n:], x[n:], gain[n:], bias[n:], mean, rstd)
		},
		add: func(dst, x, y []float32) {
			x, y = x[:len(dst)], y[:len(dst)]
			n := body(len(dst))
			if n > 0 {
				a.add(&dst[0], &x[0], &y[0], n)
			}
			addGo(dst[n:], x[n:], y[n:])
		},
		gelu: func(dst, src []float32) {
			dst = dst[:len(src)]
			n := body(len(src))
			if n > 0 {
				a.gelu(&dst[0], &src[0], n)
			}
			geluGo(dst[n:], src[n:])
		},
		geluGrad: func(dst, dout, x []float32) {
			dst, dout = dst[:len(x)], dout[:len(x)]
			n := body(len(x))
			if n > 0 {
				a.geluGrad(&dst[0], &dout[0], &x[0], n)
			}
			geluGradGo(dst[n:], dout[n:], x[n:])
		},
		expSum: func(dst, src []float32, shift float32) float32 {
			dst = dst[:len(src)]
			n := body(len(src))
			s := float32(0)
			if n > 0 {
				s = a.expSum(&dst[0], &src[0], n, shift)
			}
			return s + expSumGo(dst[n:], src[n:], shift)
		},
		softmaxGrad: func(g, p []float32, dot float32) {
			p = p[:len(g)]
			n := body(len(g))
			if n > 0 {
				a.softmaxGrad(&g[0], &p[0], n, dot)
			}
			softmaxGradGo(g[n:], p[n:], dot)
		},
		lnGradSums: func(dout, gain, x []float32, mean float32) (float32, float32) {
			dout, gain = dout[:len(x)], gain[:len(x)]
			n := body(len(x))
			var s1, s2 float32
			if n > 0 {
				s1, s2 = a.lnGradSums(&dout[0], &gain[0], &x[0], n, mean)
			}
			t1, t2 := lnGradSumsGo(dout[n:], gain[n:], x[n:], mean)
			return s1 + t1, s2 + t2
		},
		lnGradApply: func(dx, dout, gain, x []float32, mean, rstd, c, k float32) {
			dx, dout, gain = dx[:len(x)], dout[:len(x)], gain[:len(x)]
			n := body(len(x))
			if n > 0 {
				a.lnGradApply(&dx[0], &dout[0], &gain[0], &x[0], n, mean, rstd, c, k)
			}
			lnGradApplyGo(dx[n:], dout[n:], gain[n:], x[n:], mean, rstd, c, k)
		},
	}
}
