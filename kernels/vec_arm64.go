//go:build arm64 && !purego

package kernels

// The NEON vector kernels (vec_arm64.s), 4 lanes; see asmVec.

//go:noescape
func dotNEON(x, y *float32, n int) float32

//go:noescape
func scaleNEON(alpha float32, x *float32, n int)

//go:noescape
func sumNEON(x *float32, n int) float32

//go:noescape
func maxNEON(x *float32, n int) float32

//go:noescape
func sumSqDevNEON(x *float32, n int, mean float32) float32

//go:noescape
func normNEON(dst, x, gain, bias *float32, n int, mean, rstd float32)

//go:noescape
func addNEON(dst, a, b *float32, n int)

//go:noescape
func geluNEON(dst, src *float32, n int)

//go:noescape
func geluGradNEON(dst, dout, x *float32, n int)

//go:noescape
func expSumNEON(dst, src *float32, n int, shift float32) float32

//go:noescape
func softmaxGradNEON(grad, p *float32, n int, dot float32)

//go:noescape
func lnGradSumsNEON(dout, gain, x *float32, n int, mean float32) (sumDy, sumDyXc float32)

//go:noescape
func lnGradApplyNEON(dx, dout, gain, x *float32, n int, mean, rstd, c, k float32)

var neonVec = asmVec{
	dot: dotNEON, scale: scaleNEON, sum: sumNEON, max: maxNEON, sumSqDev: sumSqDevNEON,
	norm: normNEON, add: addNEON, gelu: geluNEON, geluGrad: geluGradNEON, expSum: expSumNEON,
	softmaxGrad: softmaxGradNEON, lnGradSums: lnGradSumsNEON, lnGradApply: lnGradApplyNEON,
}.vecKernels(4)
