package collate

import (
	"bytes"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"tdb/dataset"
)

func TestHistBin(t *testing.T) {
	sub := math.Float32frombits(1) // smallest subnormal
	for _, tc := range []struct {
		x    float32
		want int
	}{
		{1, 32 + 16},    // [1, 1.5): mag 16
		{1.49, 32 + 16}, // still mag 16
		{1.5, 32 + 17},  // [1.5, 2): mag 17
		{-1, 31 - 16},   // mirrored
		{192, 63},       // top bin starts at 192
		{1e30, 63},      // clamped
		{float32(math.Inf(1)), 63},
		{-1e30, 0},
		{sub, 32},       // subnormal: lowest positive bin
		{-sub, 31},      // lowest negative bin
		{0.006, 32 + 1}, // 0.006 in [1.5·2^-8, 2^-7)
		{0.001, 32},     // below 2^-8: lowest bin
	} {
		if got := histBin(tc.x); got != tc.want {
			t.Errorf("histBin(%v) = %d, want %d", tc.x, got, tc.want)
		}
		// The bin agrees with the published edges.
		edges := dataset.HistogramEdges()
		j := tc.want
		if j >= histMags {
			j++
		}
		lo, hi := edges[j], edges[j+1]
		if x := float64(tc.x); !(lo <= x && x <= hi) {
			t.Errorf("%v not within edges [%v, %v] of its bin %d", x, lo, hi, j)
		}
	}
	for i := 0; i < 1024; i++ {
		if (i>>1)&0xff == 0 {
			continue
		}
		x := math.Float32frombits(uint32(i)<<22 | 0x1234)
		if int(histLUT[i]) != histBin(x) {
			t.Fatalf("LUT[%d] = %d, histBin = %d", i, histLUT[i], histBin(x))
		}
	}
}

func TestSummarizeColumnZerosAndSubnormals(t *testing.T) {
	sub := math.Float32frombits(5)
	negZero := float32(math.Copysign(0, -1))
	col := []float32{0, negZero, sub, -sub, 1, -2, 0, 3}
	var h [histStride]uint32
	var s [4]float64
	mx, mn, zeros := summarizeColumn(col, 0, &h, &s)
	if mx != 3 || mn != -2 || zeros != 3 {
		t.Fatalf("max %v min %v zeros %d; want 3 -2 3", mx, mn, zeros)
	}
	want := [histStride]uint32{}
	for _, x := range col {
		if x != 0 {
			want[histBin(x)]++
		}
	}
	if h != want {
		t.Fatalf("histogram %v, want %v", h, want)
	}
	var s1, s2 float64
	for _, x := range col {
		s1 += float64(x)
		s2 += float64(x) * float64(x)
	}
	if s[0] != s1 || s[1] != s2 {
		t.Fatalf("sums %v, want %v %v", s, s1, s2)
	}
}

func TestSketchCodesAreOrdered(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	xs := []float32{0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 1e30, -1e30, 1, -1, 2, 3}
	for range 2000 {
		xs = append(xs, float32(rng.NormFloat64()*math.Exp(rng.NormFloat64()*4)))
	}
	slices.Sort(xs)
	for i := 1; i < len(xs); i++ {
		if sketchCode(xs[i-1]) > sketchCode(xs[i]) {
			t.Fatalf("code(%v) = %d > code(%v) = %d", xs[i-1], sketchCode(xs[i-1]), xs[i], sketchCode(xs[i]))
		}
	}
	for _, x := range xs {
		lo, hi := sketchBounds(sketchCode(x))
		if v := float64(x); v < lo || v > hi {
			t.Fatalf("%v outside its bin [%v, %v]", x, lo, hi)
		}
		if math.Abs(float64(x)) > 1e-5 && math.Abs(float64(x)) < 1e5 && (hi-lo) > math.Abs(float64(x))/30 {
			t.Fatalf("bin of %v is [%v, %v]: wider than 2^-5 relative", x, lo, hi)
		}
	}
}

// TestMomentsStable checks moments of data whose mean dwarfs its spread
// (where naive power sums lose every digit) against a two-pass float64
// computation, across shards.
func TestMomentsStable(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const C, T = 2, 32
	var wins []window
	var vals [C][]float64
	for w := 0; w < 200; w++ {
		win := window{src: dataset.Source{Doc: int64(w)}, tokens: make([]int32, T), acts: make([]float32, T*C)}
		for i := range win.acts {
			x := float32(1000 + rng.ExpFloat64()*0.01)
			if i%C == 1 {
				x = float32(rng.NormFloat64())
			}
			win.acts[i] = x
			vals[i%C] = append(vals[i%C], float64(x))
		}
		wins = append(wins, win)
	}
	acc := shardAndMerge(t, wins, "resid.post_mlp", 0, C, testConfig(), 5, 1, "tree")
	for c := 0; c < C; c++ {
		v, _ := acc.Component(c)
		mean, variance, skew, kurt := twoPass(vals[c])
		for _, p := range []struct {
			name      string
			got, want float64
			tol       float64
		}{{"mean", v.Stats.Mean, mean, 1e-14}, {"variance", v.Stats.Variance, variance, 1e-9}, {"skewness", v.Stats.Skewness, skew, 1e-7}, {"kurtosis", v.Stats.Kurtosis, kurt, 1e-7}} {
			if !relClose(p.got, p.want, p.tol) {
				t.Errorf("component %d %s = %v, want %v", c, p.name, p.got, p.want)
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mut := range []func(*Config){
		func(c *Config) { c.TopK = -1 },
		func(c *Config) { c.RandomK = c.QuantilePool + 1 },
		func(c *Config) { c.PerBucket = c.QuantilePool + 1 },
		func(c *Config) { c.QuantileBuckets = maxBuckets + 1 },
		func(c *Config) { c.QuantilePool = maxTopK + 1 },
	} {
		c := good
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	if _, err := NewLayerAccumulator("", 0, 3, good); err == nil {
		t.Error("empty location accepted")
	}
	if _, err := NewLayerAccumulator("x", 0, 0, good); err == nil {
		t.Error("zero components accepted")
	}
}

func TestBadInput(t *testing.T) {
	a, _ := NewLayerAccumulator("mlp.post_act", 0, 4, testConfig())
	if err := a.AddWindow(dataset.Source{}, []int32{1, 2}, make([]float32, 7)); err == nil {
		t.Error("wrong activation count accepted")
	}
	if err := a.AddWindow(dataset.Source{}, nil, nil); err == nil {
		t.Error("empty window accepted")
	}
	if err := a.AddWindow(dataset.Source{}, []int32{1}, make([]float32, 4)); err != nil {
		t.Fatal(err)
	}
	if err := a.AddPairWindow(dataset.Source{Doc: 1}, []int32{1}, make([]float32, 4), nil); err == nil {
		t.Error("mixing token and pair windows accepted")
	}
	b, _ := NewLayerAccumulator("mlp.post_act", 1, 4, testConfig())
	if err := a.Merge(b); err == nil {
		t.Error("merging different layers accepted")
	}
	cfg := testConfig()
	cfg.Seed++
	b, _ = NewLayerAccumulator("mlp.post_act", 0, 4, cfg)
	if err := a.Merge(b); err == nil {
		t.Error("merging different settings accepted")
	}
	if _, err := a.Component(4); err == nil {
		t.Error("component out of range accepted")
	}
}

// TestDuplicateMergeIsIdempotentForRecords: merging a partial twice keeps
// each record once.
func TestDuplicateMergeRecords(t *testing.T) {
	wins := synthCorpus(5, 40, 8, 3, false)
	a, _ := NewLayerAccumulator("x", 0, 3, testConfig())
	feed(t, a, wins)
	b1, _ := a.MarshalBinary()
	p1, _ := DecodePartial(b1)
	p2, _ := DecodePartial(b1)
	if err := p1.Merge(p2); err != nil {
		t.Fatal(err)
	}
	v1, _ := a.Component(1)
	v2, _ := p1.Component(1)
	if !slices.EqualFunc(v1.Top, v2.Top, func(x, y dataset.Record) bool { return x.Source == y.Source }) {
		t.Fatalf("double merge changed the top records")
	}
}

func FuzzDecodePartial(f *testing.F) {
	for _, pairs := range []bool{false, true} {
		wins := synthCorpus(2, 6, 3, 2, pairs)
		a, _ := NewLayerAccumulator("mlp.post_act", 1, 2, Config{TopK: 2, RandomK: 1, QuantileBuckets: 2, PerBucket: 1, QuantilePool: 3, Seed: 1})
		feed(f, a, wins)
		b, _ := a.MarshalBinary()
		f.Add(b)
		m, _ := DecodePartial(b)
		m2, _ := DecodePartial(b)
		m.Merge(m2)
		b, _ = m.MarshalBinary()
		f.Add(b)
	}
	sp, _ := NewLayerAccumulator("autoencoder_latent", 0, 2, Config{TopK: 2, RandomK: 1, QuantileBuckets: 2, PerBucket: 1, QuantilePool: 3, Seed: 1})
	feed(f, sp, sparseWindows(1, 8, 6, 2))
	b, _ := sp.MarshalBinary()
	f.Add(b)
	f.Add([]byte(partialMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodePartial(data)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode, decode again to the same state
		// and finalize.
		b, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		a2, err := DecodePartial(b)
		if err != nil {
			t.Fatalf("re-encoded partial does not decode: %v", err)
		}
		b2, _ := a2.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable")
		}
		for c := 0; c < a.Components(); c++ {
			if _, err := a.Component(c); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestSummarizeColumnPaths checks the vector and scalar parts of
// summarizeColumn against a plain reference for every length around the
// vector width, with zeros of both signs, subnormals and extremes.
func TestSummarizeColumnPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	special := []float32{0, float32(math.Copysign(0, -1)), math.Float32frombits(3), -math.Float32frombits(9),
		3e4, -2e4, 1e-30, -7.5}
	for n := 1; n <= 41; n++ {
		col := make([]float32, n)
		for i := range col {
			if rng.IntN(3) == 0 {
				col[i] = special[rng.IntN(len(special))]
			} else {
				col[i] = float32(rng.NormFloat64())
			}
		}
		const k = 0.25
		var h [histStride]uint32
		var s [4]float64
		mx, mn, zeros := summarizeColumn(col, k, &h, &s)
		var want [histStride]uint32
		var ws [4]float64
		wmx, wmn, wz := float32(math.Inf(-1)), float32(math.Inf(1)), 0
		for _, x := range col {
			if x == 0 {
				wz++
			} else {
				want[histBin(x)]++
			}
			if x > wmx || (x == wmx && !math.Signbit(float64(x))) {
				wmx = x
			}
			if x < wmn || (x == wmn && math.Signbit(float64(x))) {
				wmn = x
			}
			d := float64(x) - k
			ws[0] += d
			ws[1] += d * d
			ws[2] += d * d * d
			ws[3] += d * d * d * d
		}
		if math.Float32bits(mx) != math.Float32bits(wmx) || math.Float32bits(mn) != math.Float32bits(wmn) || zeros != wz {
			t.Fatalf("n=%d: max %v min %v zeros %d; want %v %v %d", n, mx, mn, zeros, wmx, wmn, wz)
		}
		if h != want {
			t.Fatalf("n=%d: histogram %v, want %v", n, h, want)
		}
		for p := range s {
			if !relClose(s[p], ws[p], 1e-12) {
				t.Fatalf("n=%d: sum of power %d = %v, want %v", n, p+1, s[p], ws[p])
			}
		}
	}
}

// TestSketchMerge checks the in-place merge against counting by hand.
func TestSketchMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for trial := 0; trial < 200; trial++ {
		var s, o sketch
		want := map[uint16]uint64{}
		for _, sk := range []*sketch{&s, &o} {
			for range rng.IntN(30) {
				code := uint16(rng.IntN(60))
				sk.add(code)
				want[code]++
			}
		}
		s.merge(&o)
		if len(s.codes) != len(want) || len(s.counts) != len(s.codes) {
			t.Fatalf("trial %d: %d codes, want %d", trial, len(s.codes), len(want))
		}
		for i, code := range s.codes {
			if i > 0 && s.codes[i-1] >= code {
				t.Fatalf("trial %d: codes not increasing: %v", trial, s.codes)
			}
			if s.counts[i] != want[code] {
				t.Fatalf("trial %d: code %d counted %d, want %d", trial, code, s.counts[i], want[code])
			}
		}
	}
}
