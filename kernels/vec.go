package kernels

import "math"

// The vector kernels of the forward and backward passes. Each exported
// function works on one row (or one flat buffer) and runs the active path's
// implementation: AVX2+FMA assembly on amd64, NEON on arm64, else the
// portable float32 Go below, which is also the reference for the assembly.
// All arithmetic is float32; exp is a polynomial (see exp32), so no value
// makes a float64 round trip.

// GeluTanh writes GPT-2's gelu_new, 0.5·x·(1+tanh(√(2/π)·(x+0.044715·x³))),
// of src[i] to dst[i]; dst may alias src. It panics if dst is shorter than
// src. It evaluates the equivalent x·σ(2u) as x/(1+e^v) (v = −2u) through
// e^−|v| only, which never overflows and avoids the cancellation in 1+tanh
// for negative x: the result is within a few float32 roundings of the exact
// value of the (rounded) input.
func GeluTanh(dst, src []float32) {
	dst = dst[:len(src)]
	if len(src) == 0 {
		return
	}
	active.Load().vec.gelu(dst, src)
}

// GeluTanhGrad writes dout[i]·gelu_new'(x[i]) to dst[i]; dst may alias dout.
// It panics if dst or dout is shorter than x.
func GeluTanhGrad(dst, dout, x []float32) {
	dst, dout = dst[:len(x)], dout[:len(x)]
	if len(x) == 0 {
		return
	}
	active.Load().vec.geluGrad(dst, dout, x)
}

// Softmax writes the softmax of src to dst (dst may alias src). Entries of
// −Inf get probability exactly 0; a row of only −Inf becomes all zeros.
func Softmax(dst, src []float32) {
	dst = dst[:len(src)]
	if len(src) == 0 {
		return
	}
	v := active.Load().vec
	mx := v.max(src)
	if math.IsInf(float64(mx), -1) {
		clear(dst)
		return
	}
	s := v.expSum(dst, src, mx)
	v.scale(1/s, dst)
}

// SoftmaxGrad turns g, the gradient at the output p of a softmax, into the
// gradient at its input, in place: g = p·(g − Σ p·g). It panics if p is
// shorter than g.
func SoftmaxGrad(g, p []float32) {
	p = p[:len(g)]
	if len(g) == 0 {
		return
	}
	v := active.Load().vec
	v.softmaxGrad(g, p, v.dot(p, g))
}

// LayerNormStats returns the mean of x and 1/√(var(x)+eps) (biased variance,
// as PyTorch's LayerNorm). x must not be empty.
func LayerNormStats(x []float32, eps float32) (mean, rstd float32) {
	v := active.Load().vec
	n := float32(len(x))
	mean = v.sum(x) / n
	ss := v.sumSqDev(x, mean)
	return mean, float32(1 / math.Sqrt(float64(ss/n)+float64(eps)))
}

// LayerNormApply writes (x−mean)·rstd·gain + bias to dst (dst may alias x).
// gain, bias and dst must be at least as long as x.
func LayerNormApply(dst, x []float32, mean, rstd float32, gain, bias []float32) {
	dst, gain, bias = dst[:len(x)], gain[:len(x)], bias[:len(x)]
	if len(x) == 0 {
		return
	}
	active.Load().vec.norm(dst, x, gain, bias, mean, rstd)
}

// LayerNormGrad adds to dx the gradient through one LayerNorm row whose
// output gradient is dout, given the row's input x, gain, mean and rstd. It
// returns dscale, the gradient at rstd: Σ dout·gain·(x−mean) plus the seed
// passed in. When through is false rstd is held constant (frozen or set by
// an intervention) and no gradient flows through it into dx.
func LayerNormGrad(dx, dout, x, gain []float32, mean, rstd, dscale float32, through bool) float32 {
	d := len(x)
	dx, dout, gain = dx[:d], dout[:d], gain[:d]
	if d == 0 {
		return dscale
	}
	v := active.Load().vec
	sumDy, sumDyXc := v.lnGradSums(dout, gain, x, mean)
	ds := dscale + sumDyXc
	k := float32(0)
	if through {
		k = -ds * rstd * rstd * rstd / float32(d)
	}
	v.lnGradApply(dx, dout, gain, x, mean, rstd, -rstd*sumDy/float32(d), k)
	return ds
}

// Add writes a[i]+b[i] to dst[i]; dst may alias a or b. It panics if a or b
// is shorter than dst.
func Add(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	if len(dst) == 0 {
		return
	}
	active.Load().vec.add(dst, a, b)
}

// vecKernels is one implementation of the vector kernels. Slices are
// non-empty and of equal length (checked by the exported wrappers).
type vecKernels struct {
	dot         func(x, y []float32) float32
	scale       func(alpha float32, x []float32)
	sum         func(x []float32) float32
	max         func(x []float32) float32
	sumSqDev    func(x []float32, mean float32) float32
	norm        func(dst, x, gain, bias []float32, mean, rstd float32)
	add         func(dst, a, b []float32)
	gelu        func(dst, src []float32)
	geluGrad    func(dst, dout, x []float32)
	expSum      func(dst, src []float32, shift float32) float32
	softmaxGrad func(g, p []float32, dot float32)
	lnGradSums  func(dout, gain, x []float32, mean float32) (sumDy, sumDyXc float32)
	lnGradApply func(dx, dout, gain, x []float32, mean, rstd, c, k float32)
}

// goVec is the portable float32 implementation.
var goVec = &vecKernels{
	dot: dotGo, scale: scaleGo, sum: sumGo, max: maxGo, sumSqDev: sumSqDevGo,
	norm: normGo, add: addGo, gelu: geluGo, geluGrad: geluGradGo, expSum: expSumGo,
	softmaxGrad: softmaxGradGo, lnGradSums: lnGradSumsGo, lnGradApply: lnGradApplyGo,
}

func dotGo(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func scaleGo(alpha float32, x []float32) {
	for i := range x {
		x[i] *= alpha
	}
}

func sumGo(x []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i]
		s1 += x[i+1]
		s2 += x[i+2]
		s3 += x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// maxGo returns the largest element; NaN if any element is NaN.
func maxGo(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	return m
}

func sumSqDevGo(x []float32, mean float32) float32 {
	var s0, s1 float32
	i := 0
	for ; i+2 <= len(x); i += 2 {
		d0, d1 := x[i]-mean, x[i+1]-mean
		s0 += d0 * d0
		s1 += d1 * d1
	}
	for ; i < len(x); i++ {
		d := x[i] - mean
		s0 += d * d
	}
	return s0 + s1
}

func normGo(dst, x, gain, bias []float32, mean, rstd float32) {
	dst, gain, bias = dst[:len(x)], gain[:len(x)], bias[:len(x)]
	for i, v := range x {
		dst[i] = (v-mean)*rstd*gain[i] + bias[i]
	}
}

func addGo(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

// GELU constants in float32: gelu(x) = x/(1+e^v), v = x·(geluC1+geluC2·x²),
// and u' = du/dx = geluK1 + geluK3·x² with u = −v/2.
const (
	geluK1 = 0.7978845608028654 // √(2/π)
	geluK3 = geluK1 * 3 * 0.044715
	geluC1 = -2 * geluK1
	geluC2 = geluC1 * 0.044715
)

// exp32 constants: v = n·ln2 + r with |r| ≤ ln2/2, e^r by its degree-7
// Taylor polynomial (truncation below 1e-8 relative), 2^n from the exponent
// bits. Below expMin (where 2^n would leave the normal range) the result is
// 0, so exp(−Inf) is exactly 0.
const (
	expLog2e  = 1.4426950408889634
	expLn2Hi  = 0.693359375 // ln 2 = expLn2Hi + expLn2Lo, Hi with few bits
	expLn2Lo  = -2.12194440e-4
	expMin    = -87.33654 // −126·ln 2
	expRound  = 12582912  // 1.5·2²³: adding it rounds to an integer
	expP2     = 1.0 / 2
	expP3     = 1.0 / 6
	expP4     = 1.0 / 24
	expP5     = 1.0 / 120
	expP6     = 1.0 / 720
	expP7     = 1.0 / 5040
	signMask  = 0x80000000
	expBias32 = 127
)

// exp32 returns e^v for v ≤ 0 (and NaN for NaN) in float32.
func exp32(v float32) float32 {
	c := max(v, expMin)
	z := float32(c*expLog2e) + expRound
	n := z - expRound
	r := c - n*expLn2Hi
	r -= n * expLn2Lo
	p := float32(expP7)
	p = p*r + expP6
	p = p*r + expP5
	p = p*r + expP4
	p = p*r + expP3
	p = p*r + expP2
	p = p*r + 1
	p = p*r + 1
	return p * pow2(z, v)
}

// exp32x4 is exp32 of four values. The four chains of dependent operations
// are independent, so a scalar core overlaps them: several times the
// throughput of four calls of a one-value function.
func exp32x4(v0, v1, v2, v3 float32) (e0, e1, e2, e3 float32) {
	c0, c1, c2, c3 := max(v0, expMin), max(v1, expMin), max(v2, expMin), max(v3, expMin)
	z0, z1 := float32(c0*expLog2e)+expRound, float32(c1*expLog2e)+expRound
	z2, z3 := float32(c2*expLog2e)+expRound, float32(c3*expLog2e)+expRound
	n0, n1, n2, n3 := z0-expRound, z1-expRound, z2-expRound, z3-expRound
	r0, r1, r2, r3 := c0-n0*expLn2Hi, c1-n1*expLn2Hi, c2-n2*expLn2Hi, c3-n3*expLn2Hi
	r0, r1, r2, r3 = r0-n0*expLn2Lo, r1-n1*expLn2Lo, r2-n2*expLn2Lo, r3-n3*expLn2Lo
	p0, p1, p2, p3 := float32(expP7), float32(expP7), float32(expP7), float32(expP7)
	p0, p1, p2, p3 = p0*r0+expP6, p1*r1+expP6, p2*r2+expP6, p3*r3+expP6
	p0, p1, p2, p3 = p0*r0+expP5, p1*r1+expP5, p2*r2+expP5, p3*r3+expP5
	p0, p1, p2, p3 = p0*r0+expP4, p1*r1+expP4, p2*r2+expP4, p3*r3+expP4
	p0, p1, p2, p3 = p0*r0+expP3, p1*r1+expP3, p2*r2+expP3, p3*r3+expP3
	p0, p1, p2, p3 = p0*r0+expP2, p1*r1+expP2, p2*r2+expP2, p3*r3+expP2
	p0, p1, p2, p3 = p0*r0+1, p1*r1+1, p2*r2+1, p3*r3+1
	p0, p1, p2, p3 = p0*r0+1, p1*r1+1, p2*r2+1, p3*r3+1
	return p0 * pow2(z0, v0), p1 * pow2(z1, v1), p2 * pow2(z2, v2), p3 * pow2(z3, v3)
}

// pow2 returns 2^n for the integer n that z = n + expRound holds, or 0 when
// v is below expMin (so that e^v is 0 there; NaN stays NaN).
func pow2(z, v float32) float32 {
	n := math.Float32bits(z) - math.Float32bits(expRound)
	keep := uint32(0)
	if v >= expMin || v != v {
		keep = ^uint32(0)
	}
	return math.Float32frombits((n + expBias32) << 23 & keep)
}

// negAbs returns −|v|.
func negAbs(v float32) float32 { return math.Float32frombits(math.Float32bits(v) | signMask) }

// pick returns a when v > 0 and b otherwise, without a branch: the sign of
// x is random in a model, so a branch would be mispredicted half the time.
func pick(v, a, b float32) float32 {
	m := uint32(int32(math.Float32bits(-v)) >> 31) // all ones when −v < 0, i.e. v > 0
	return math.Float32frombits(math.Float32bits(a)&m | math.Float32bits(b)&^m)
}

// gelu32 is gelu_new of one value (see GeluTanh).
func gelu32(x float32) float32 {
	v := x * (geluC1 + geluC2*x*x)
	t := exp32(negAbs(v)) // e^−|v|
	return pick(v, x*t, x) / (1 + t)
}

func geluGo(dst, src []float32) {
	dst = dst[:len(src)]
	i := 0
	for ; i+4 <= len(src); i += 4 {
		x0, x1, x2, x3 := src[i], src[i+1], src[i+2], src[i+3]
		v0, v1 := x0*(geluC1+geluC2*x0*x0), x1*(geluC1+geluC2*x1*x1)
		v2, v3 := x2*(geluC1+geluC2*x2*x2), x3*(geluC1+geluC2*x3*x3)
		t0, t1, t2, t3 := exp32x4(negAbs(v0), negAbs(v1), negAbs(v2), negAbs(v3))
		dst[i] = pick(v0, x0*t0, x0) / (1 + t0)
		dst[i+1] = pick(v1, x1*t1, x1) / (1 + t1)
		dst[i+2] = pick(v2, x2*t2, x2) / (1 + t2)
		dst[i+3] = pick(v3, x3*t3, x3) / (1 + t3)
	}
	for ; i < len(src); i++ {
		dst[i] = gelu32(src[i])
	}
}

// geluGradFrom finishes gelu_new'(x) = s·(1 + 2x·(1−s)·u') from the clamped
// x, x², v and t = e^−|v|, where s = σ(2u) = 1/(1+e^v).
func geluGradFrom(x, x2, v, t float32) float32 {
	r := 1 / (1 + t)
	tr := t * r
	s, oms := pick(v, tr, r), pick(v, r, tr)
	q := x * oms * (geluK1 + geluK3*x2)
	return s + 2*s*q
}

// geluGrad32 is gelu_new'(x). Beyond |x| = 16 it is 0 or 1 in float32; x
// is clamped there so that x² cannot overflow (0·∞).
func geluGrad32(x float32) float32 {
	x = min(max(x, -16), 16)
	x2 := x * x
	v := x * (geluC1 + geluC2*x2)
	return geluGradFrom(x, x2, v, exp32(negAbs(v)))
}

func geluGradGo(dst, dout, x []float32) {
	dst, dout = dst[:len(x)], dout[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		x0, x1 := min(max(x[i], -16), 16), min(max(x[i+1], -16), 16)
		x2, x3 := min(max(x[i+2], -16), 16), min(max(x[i+3], -16), 16)
		s0, s1, s2, s3 := x0*x0, x1*x1, x2*x2, x3*x3
		v0, v1 := x0*(geluC1+geluC2*s0), x1*(geluC1+geluC2*s1)
		v2, v3 := x2*(geluC1+geluC2*s2), x3*(geluC1+geluC2*s3)
		t0, t1, t2, t3 := exp32x4(negAbs(v0), negAbs(v1), negAbs(v2), negAbs(v3))
		dst[i] = dout[i] * geluGradFrom(x0, s0, v0, t0)
		dst[i+1] = dout[i+1] * geluGradFrom(x1, s1, v1, t1)
		dst[i+2] = dout[i+2] * geluGradFrom(x2, s2, v2, t2)
		dst[i+3] = dout[i+3] * geluGradFrom(x3, s3, v3, t3)
	}
	for ; i < len(x); i++ {
		dst[i] = dout[i] * geluGrad32(x[i])
	}
}

func expSumGo(dst, src []float32, shift float32) float32 {
	dst = dst[:len(src)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(src); i += 4 {
		e0, e1, e2, e3 := exp32x4(src[i]-shift, src[i+1]-shift, src[i+2]-shift, src[i+3]-shift)
		dst[i], dst[i+1], dst[i+2], dst[i+3] = e0, e1, e2, e3
		s0, s1, s2, s3 = s0+e0, s1+e1, s2+e2, s3+e3
	}
	for ; i < len(src); i++ {
		e := exp32(src[i] - shift)
		dst[i] = e
		s0 += e
	}
	return (s0 + s1) + (s2 + s3)
}

func softmaxGradGo(g, p []float32, dot float32) {
	p = p[:len(g)]
	for i := range g {
		g[i] = p[i] * (g[i] - dot)
	}
}

func lnGradSumsGo(dout, gain, x []float32, mean float32) (sumDy, sumDyXc float32) {
	dout, gain = dout[:len(x)], gain[:len(x)]
	for i, v := range x {
		dy := dout[i] * gain[i]
		sumDy += dy
		sumDyXc += dy * (v - mean)
	}
	return sumDy, sumDyXc
}

// lnGradApplyGo adds rstd·dout·gain + c + k·(x−mean) to dx.
func lnGradApplyGo(dx, dout, gain, x []float32, mean, rstd, c, k float32) {
	dx, dout, gain = dx[:len(x)], dout[:len(x)], gain[:len(x)]
	for i, v := range x {
		dx[i] += rstd*(dout[i]*gain[i]) + c + k*(v-mean)
	}
}
