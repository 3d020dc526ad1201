package kernels

import "math"

// Dot returns the dot product of x and y[:len(x)]. It panics if y is
// shorter than x, like a slice expression would.
func Dot(x, y []float32) float32 {
	y = y[:len(x)]
	if len(x) == 0 {
		return 0
	}
	return dot(x, y)
}

// Axpy adds alpha*x to y[:len(x)] in place. It panics if y is shorter than x.
func Axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	if len(x) == 0 {
		return
	}
	axpy(alpha, x, y)
}

// Scale multiplies x by alpha in place.
func Scale(alpha float32, x []float32) {
	if len(x) == 0 {
		return
	}
	scale(alpha, x)
}

// GeluTanh writes GPT-2's gelu_new, 0.5·x·(1+tanh(√(2/π)·(x+0.044715·x³))),
// of src[i] to dst[i]; dst may alias src. It panics if dst is shorter than
// src. It evaluates the equivalent x/(1+exp(-2·√(2/π)·(x+0.044715·x³))) in
// float64, which avoids the cancellation in 1+tanh for negative x, so every
// normal result is within 1e-6 relative of the exact value.
func GeluTanh(dst, src []float32) {
	dst = dst[:len(src)]
	if len(src) == 0 {
		return
	}
	gelu(dst, src)
}

func dotGo(x, y []float32) float32 {
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

func axpyGo(alpha float32, x, y []float32) {
	for i, v := range x {
		y[i] += alpha * v
	}
}

func scaleGo(alpha float32, x []float32) {
	for i := range x {
		x[i] *= alpha
	}
}

// GELU constants: gelu(x) = x / (1 + exp(x·(geluC1 + geluC2·x²))).
const (
	geluC1 = -2 * 0.7978845608028654 // -2·√(2/π)
	geluC2 = geluC1 * 0.044715
	// exp range reduction: v = n·ln2 + r, |r| ≤ ln2/2.
	expLog2e = 1.4426950408889634
	expLn2Hi = 6.93147180369123816490e-01
	expLn2Lo = 1.90821492927058770002e-10
	expClamp = 708.0
)

// geluGo is the portable GeluTanh and the reference for the assembly.
func geluGo(dst, src []float32) {
	for i, x32 := range src {
		dst[i] = float32(gelu64(float64(x32)))
	}
}

// gelu64 evaluates gelu_new in float64 with a polynomial exp (degree 9,
// |error| < 1e-15 relative), cheaper than math.Exp.
func gelu64(x float64) float64 {
	v := x * (geluC1 + geluC2*x*x)
	v = min(max(v, -expClamp), expClamp)
	n := math.Floor(v*expLog2e + 0.5)
	r := v - n*expLn2Hi - n*expLn2Lo
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040+r*(1.0/40320+r*(1.0/362880)))))))))
	e := p * math.Float64frombits(uint64(int64(n)+1023)<<52)
	return x / (1 + e)
}
