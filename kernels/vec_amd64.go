//go:build amd64 && !purego

package kernels

// The AVX2+FMA vector kernels (vec_amd64.s), 8 lanes; see asmVec.

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

var avx2Vec = asmVec{
	dot: dotAVX2, scale: scaleAVX2, sum: sumAVX2, max: maxAVX2, sumSqDev: sumSqDevAVX2,
	norm: normAVX2, add: addAVX2, gelu: geluAVX2, geluGrad: geluGradAVX2, expSum: expSumAVX2,
	softmaxGrad: softmaxGradAVX2, lnGradSums: lnGradSumsAVX2, lnGradApply: lnGradApplyAVX2,
}.vecKernels(8)
