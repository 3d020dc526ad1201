package collate

import (
	"math"
	"slices"
)

// The quantile sketch counts per-record maximum activations in fixed bins
// whose relative width is 2^-5 (about 3%), so sketches of shards add up
// exactly and the merged boundaries cannot depend on merge order. Bins are
// keyed by an order-preserving 16-bit code of the float32 value: magnitudes
// below 2^-20 share one "tiny" bin (code 1280), magnitudes of 2^20 and above
// share the outermost bins. A sketch is kept sparse (sorted codes and counts)
// because one component's maxima usually occupy a few hundred bins at most.
const (
	sketchMantBits = 5
	sketchMinExp   = -20
	sketchMaxExp   = 19
	sketchMags     = (sketchMaxExp - sketchMinExp + 1) << sketchMantBits // 1280
	sketchZero     = sketchMags                                          // tiny-magnitude code
	sketchCodes    = 2*sketchMags + 1
)

// sketchCode maps a value to its bin code; codes preserve value order.
func sketchCode(x float32) uint16 {
	b := math.Float32bits(x)
	ex := int((b>>23)&0xff) - 127
	if ex < sketchMinExp {
		return sketchZero
	}
	mag := (ex-sketchMinExp)<<sketchMantBits | int((b>>(23-sketchMantBits))&(1<<sketchMantBits-1))
	if ex > sketchMaxExp {
		mag = sketchMags - 1
	}
	if b>>31 != 0 {
		return uint16(sketchZero - 1 - mag)
	}
	return uint16(sketchZero + 1 + mag)
}

// sketchMagLow is the lower magnitude edge of magnitude bin mag.
func sketchMagLow(mag int) float64 {
	if mag >= sketchMags {
		return math.Inf(1)
	}
	e := mag>>sketchMantBits + sketchMinExp
	m := mag & (1<<sketchMantBits - 1)
	return math.Ldexp(1+float64(m)/(1<<sketchMantBits), e)
}

// sketchBounds returns the value range [lo, hi] of a code's bin: every value
// with that code satisfies lo <= x <= hi (hi is exclusive for positive bins).
func sketchBounds(code uint16) (lo, hi float64) {
	c := int(code)
	switch {
	case c == sketchZero:
		t := math.Ldexp(1, sketchMinExp)
		return -t, t
	case c > sketchZero:
		mag := c - sketchZero - 1
		return sketchMagLow(mag), sketchMagLow(mag + 1)
	default:
		mag := sketchZero - 1 - c
		return -sketchMagLow(mag + 1), -sketchMagLow(mag)
	}
}

// sketch is a sparse histogram of codes: codes ascending, counts aligned.
type sketch struct {
	codes  []uint16
	counts []uint64
}

func (s *sketch) add(code uint16) {
	n := len(s.codes)
	// Fast paths: repeated or new largest code.
	if n > 0 && s.codes[n-1] <= code {
		if s.codes[n-1] == code {
			s.counts[n-1]++
			return
		}
		s.codes = append(s.codes, code)
		s.counts = append(s.counts, 1)
		return
	}
	i, j := 0, n // binary search for the first code >= code
	for i < j {
		m := int(uint(i+j) >> 1)
		if s.codes[m] < code {
			i = m + 1
		} else {
			j = m
		}
	}
	if i < n && s.codes[i] == code {
		s.counts[i]++
		return
	}
	s.codes = append(s.codes, 0)
	s.counts = append(s.counts, 0)
	copy(s.codes[i+1:], s.codes[i:])
	copy(s.counts[i+1:], s.counts[i:])
	s.codes[i] = code
	s.counts[i] = 1
}

// merge adds o's counts into s, in place when s has room.
func (s *sketch) merge(o *sketch) {
	// The union's size, then a merge from the back into s's grown slices.
	n, i, j := 0, 0, 0
	for i < len(s.codes) && j < len(o.codes) {
		switch {
		case s.codes[i] < o.codes[j]:
			i++
		case o.codes[j] < s.codes[i]:
			j++
		default:
			i++
			j++
		}
		n++
	}
	n += len(s.codes) - i + len(o.codes) - j
	i, j = len(s.codes)-1, len(o.codes)-1
	s.codes = slices.Grow(s.codes, n-len(s.codes))[:n]
	s.counts = slices.Grow(s.counts, n-len(s.counts))[:n]
	for k := n - 1; j >= 0; k-- {
		switch {
		case i >= 0 && s.codes[i] > o.codes[j]:
			s.codes[k], s.counts[k] = s.codes[i], s.counts[i]
			i--
		case i >= 0 && s.codes[i] == o.codes[j]:
			s.codes[k], s.counts[k] = s.codes[i], s.counts[i]+o.counts[j]
			i--
			j--
		default:
			s.codes[k], s.counts[k] = o.codes[j], o.counts[j]
			j--
		}
	}
}

func (s *sketch) total() uint64 {
	var n uint64
	for _, c := range s.counts {
		n += c
	}
	return n
}

// boundaries returns buckets+1 bucket boundaries of the counted values:
// the exact minimum lo, then for j = 1..buckets-1 the lower edge of the bin
// holding the ceil(j·N/buckets)-th smallest value (clamped into [lo, hi]),
// then the exact maximum hi. The true quantile lies in the same bin, so it
// is at most one bin width (relative 2^-5) above its boundary.
func (s *sketch) boundaries(buckets int, lo, hi float32) []float32 {
	n := s.total()
	if n == 0 || buckets <= 0 {
		return nil
	}
	out := make([]float32, buckets+1)
	out[0], out[buckets] = lo, hi
	var cum uint64
	i := 0
	for j := 1; j < buckets; j++ {
		target := (uint64(j)*n + uint64(buckets) - 1) / uint64(buckets)
		if target == 0 {
			target = 1
		}
		for i < len(s.codes) && cum+s.counts[i] < target {
			cum += s.counts[i]
			i++
		}
		edge, _ := sketchBounds(s.codes[min(i, len(s.codes)-1)])
		v := float32(edge)
		if float64(v) > edge { // round the edge down, never above the bin
			v = math.Nextafter32(v, float32(math.Inf(-1)))
		}
		out[j] = min(max(v, lo), hi)
	}
	return out
}

// bucketOf returns the quantile bucket of a record maximum: the number of
// inner boundaries it reaches.
func bucketOf(bounds []float32, x float32) int {
	b := 0
	for j := 1; j < len(bounds)-1; j++ {
		if x >= bounds[j] {
			b = j
		}
	}
	return b
}
