package model

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"tdb/internal/parallel"
	"tdb/kernels"
)

func sqrt64(x float64) float64 { return math.Sqrt(x) }

func general(rows, cols, stride int, data []float32) blas32.General {
	return blas32.General{Rows: rows, Cols: cols, Stride: stride, Data: data}
}

// linear computes out[n×o] = x[n×i]·w[i×o] + bias (bias may be nil).
func linear(out, x []float32, n, in int, w []float32, o int, bias []float32) {
	beta := float32(0)
	if bias != nil {
		// On every core: a single-threaded broadcast left the other cores
		// idle for 3% of a 32 × 64 pass.
		parallel.Rows(n, max(1, 1<<14/o), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				copy(out[r*o:(r+1)*o], bias)
			}
		})
		beta = 1
	}
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, general(n, in, in, x), general(in, o, o, w), beta, general(n, o, o, out))
}

// linearBackward accumulates dx[n×i] += dy[n×o]·w[i×o]^T.
func linearBackward(dx, dy []float32, n, in int, w []float32, o int) {
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, general(n, o, o, dy), general(in, o, o, w), 1, general(n, in, in, dx))
}

// layerNormStats computes per-row mean and 1/sqrt(var+eps) of x[n×d].
func layerNormStats(mean, scale, x []float32, n, d int, eps float32) {
	parallel.Rows(n, 1, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			mean[r], scale[r] = kernels.LayerNormStats(x[r*d:(r+1)*d], eps)
		}
	})
}

// layerNormApply writes out = (x − mean)·scale·g + b row by row.
func layerNormApply(out, x, mean, scale, g, b []float32, n, d int) {
	parallel.Rows(n, 1, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			kernels.LayerNormApply(out[r*d:(r+1)*d], x[r*d:(r+1)*d], mean[r], scale[r], g, b)
		}
	})
}

// layerNormBackward adds to dx the gradient through a LayerNorm whose output
// gradient is dout. dscale receives Σ dy'·(x−mean) per row plus any seed
// already in it; when throughScale is false the scale is a constant (frozen
// or overwritten) and no gradient flows through it.
func layerNormBackward(dx, dscale, dout, x, mean, scale, g []float32, n, d int, throughScale bool) {
	parallel.Rows(n, 1, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			dscale[r] = kernels.LayerNormGrad(dx[r*d:(r+1)*d], dout[r*d:(r+1)*d], x[r*d:(r+1)*d], g, mean[r], scale[r], dscale[r], throughScale)
		}
	})
}

// gelu is GPT-2's gelu_new (tanh approximation).
func gelu(out, in []float32) {
	parallel.Rows(len(in), 1, func(lo, hi int) {
		kernels.GeluTanh(out[lo:hi], in[lo:hi])
	})
}

// geluBackward writes din = dout · gelu'(in).
func geluBackward(din, dout, in []float32) {
	parallel.Rows(len(in), 1, func(lo, hi int) {
		kernels.GeluTanhGrad(din[lo:hi], dout[lo:hi], in[lo:hi])
	})
}

// add writes a + b to dst (dst may alias either).
func add(dst, a, b []float32) {
	parallel.Rows(len(dst), 1, func(lo, hi int) {
		kernels.Add(dst[lo:hi], a[lo:hi], b[lo:hi])
	})
}
