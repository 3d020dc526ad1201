package collate

import (
	"math"
	"math/big"
)

// exactPrec is the big.Float precision of exact power sums. Every term that
// is added (a float64 power sum times a power of a float32 shift and a small
// integer) spans well under 2200 bits between its lowest and highest set bit
// for any float32 input, so sums at this precision are exact and therefore
// independent of the order in which partials are merged.
const exactPrec = 4096

// statPrec is the precision used to turn exact sums into moments.
const statPrec = 512

// powerSums are exact sums of x^1..x^4 over every activation of a component.
type powerSums [4]*big.Float

func newExact() *big.Float { return new(big.Float).SetPrec(exactPrec) }

// addShifted adds the exact power sums about zero that correspond to n
// values whose sums of (x-k)^p are t[p-1]: sum x^p = sum_j C(p,j) k^(p-j) t_j.
func (s *powerSums) addShifted(n int64, k float32, t *[4]float64) {
	for i := range s {
		if s[i] == nil {
			s[i] = newExact()
		}
	}
	if n == 0 {
		return
	}
	tj := [5]*big.Float{new(big.Float).SetInt64(n)}
	for j := 1; j <= 4; j++ {
		tj[j] = new(big.Float).SetFloat64(t[j-1])
	}
	kp := [5]*big.Float{new(big.Float).SetInt64(1)}
	kf := new(big.Float).SetFloat64(float64(k))
	for j := 1; j <= 4; j++ {
		kp[j] = newExact().Mul(kp[j-1], kf)
	}
	binom := [5][5]int64{{1}, {1, 1}, {1, 2, 1}, {1, 3, 3, 1}, {1, 4, 6, 4, 1}}
	term := newExact()
	for p := 1; p <= 4; p++ {
		for j := 0; j <= p; j++ {
			term.Mul(kp[p-j], tj[j])
			term.Mul(term, new(big.Float).SetInt64(binom[p][j]))
			s[p-1].Add(s[p-1], term)
		}
	}
}

func (s *powerSums) add(o *powerSums) {
	for i := range s {
		if o[i] == nil {
			continue
		}
		if s[i] == nil {
			s[i] = newExact()
		}
		s[i].Add(s[i], o[i])
	}
}

// moments computes mean, variance, skewness and excess kurtosis (population
// conventions) from exact power sums. Zero variance gives zero skewness
// and kurtosis so that the values stay JSON-encodable.
func moments(n int64, s *powerSums) (mean, variance, skew, kurt float64) {
	if n == 0 || s[0] == nil {
		return 0, 0, 0, 0
	}
	f := func() *big.Float { return new(big.Float).SetPrec(statPrec) }
	nf := f().SetInt64(n)
	mu := f().Quo(s[0], nf)
	// Central sums: M2 = S2 - mu S1; M3 = S3 - 3mu S2 + 3mu^2 S1 - n mu^3;
	// M4 = S4 - 4mu S3 + 6mu^2 S2 - 4mu^3 S1 + n mu^4.
	mu2 := f().Mul(mu, mu)
	mu3 := f().Mul(mu2, mu)
	mu4 := f().Mul(mu3, mu)
	lin := func(terms ...*big.Float) *big.Float {
		acc := f()
		for i := 0; i < len(terms); i += 2 {
			acc.Add(acc, f().Mul(terms[i], terms[i+1]))
		}
		return acc
	}
	c := func(v float64) *big.Float { return f().SetFloat64(v) }
	m2 := lin(c(1), s[1], f().Neg(mu), s[0])
	m3 := lin(c(1), s[2], f().Mul(c(-3), mu), s[1], f().Mul(c(3), mu2), s[0], f().Neg(mu3), nf)
	m4 := lin(c(1), s[3], f().Mul(c(-4), mu), s[2], f().Mul(c(6), mu2), s[1], f().Mul(c(-4), mu3), s[0], mu4, nf)
	mean, _ = mu.Float64()
	v := f().Quo(m2, nf)
	variance, _ = v.Float64()
	if v.Sign() <= 0 {
		return mean, 0, 0, 0
	}
	m3n, _ := f().Quo(m3, nf).Float64()
	m4n, _ := f().Quo(m4, nf).Float64()
	skew = m3n / math.Pow(variance, 1.5)
	kurt = m4n/(variance*variance) - 3
	return mean, variance, skew, kurt
}
