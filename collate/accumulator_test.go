package collate

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"

	"tdb/dataset"
)

// window is one synthetic window of a corpus.
type window struct {
	src    dataset.Source
	tokens []int32
	acts   []float32 // [T, C] or [T, T, C]
	scores []float32 // pair windows only; nil = acts
}

// synthCorpus makes nWin windows of T tokens and C components. Activations
// are a mix of exact zeros, negatives and a heavy positive tail, rounded to
// 1/16 so that ties in record maxima are common (exercising tie-breaks).
func synthCorpus(seed uint64, nWin, T, C int, pairs bool) []window {
	rng := rand.New(rand.NewPCG(seed, 7))
	var out []window
	doc, off := int64(0), int64(0)
	for w := 0; w < nWin; w++ {
		if rng.IntN(4) == 0 {
			doc, off = doc+1+int64(rng.IntN(3)), 0
		}
		win := window{src: dataset.Source{Doc: doc, Offset: off}, tokens: make([]int32, T)}
		off += int64(T)
		for i := range win.tokens {
			win.tokens[i] = int32(rng.IntN(50257))
		}
		n := T * C
		if pairs {
			n = T * T * C
		}
		gen := func() float32 {
			switch rng.IntN(5) {
			case 0:
				return 0
			case 1:
				return -float32(rng.IntN(4)) / 16
			default:
				return float32(math.Round(rng.ExpFloat64()*16)) / 16
			}
		}
		win.acts = make([]float32, n)
		for i := range win.acts {
			win.acts[i] = gen()
		}
		if pairs {
			win.scores = make([]float32, n)
			for i := range win.scores {
				win.scores[i] = gen()
			}
		}
		out = append(out, win)
	}
	return out
}

func testConfig() Config {
	return Config{TopK: 5, RandomK: 4, QuantileBuckets: 4, PerBucket: 3, QuantilePool: 24, Seed: 42}
}

func feed(t testing.TB, a *LayerAccumulator, wins []window) {
	t.Helper()
	for _, w := range wins {
		var err error
		if a.kind == kindPairs || w.scores != nil {
			err = a.AddPairWindow(w.src, w.tokens, w.acts, w.scores)
		} else {
			err = a.AddWindow(w.src, w.tokens, w.acts)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// column returns component c's stored values and scores of a window.
func column(w window, c, C int) (vals, scores []float32) {
	T := len(w.tokens)
	if w.scores == nil {
		for t := 0; t < T; t++ {
			vals = append(vals, w.acts[t*C+c])
		}
		return vals, vals
	}
	for q := 0; q < T; q++ {
		for k := 0; k <= q; k++ {
			vals = append(vals, w.acts[(q*T+k)*C+c])
			scores = append(scores, w.scores[(q*T+k)*C+c])
		}
	}
	return vals, scores
}

// bruteForce computes what collation must produce for component c.
type bruteResult struct {
	top, random []dataset.Record
	all         []rec
	values      []float64
}

func bruteForce(wins []window, loc string, layer, c, C int, cfg Config) bruteResult {
	var res bruteResult
	s := salt(cfg.Seed, loc, layer)
	for _, w := range wins {
		vals, scores := column(w, c, C)
		mx := slices.Max(scores)
		res.all = append(res.all, rec{Record: dataset.Record{Source: w.src, MaxActivation: mx, Tokens: w.tokens, Activations: vals}, prio: priority(s, c, w.src)})
		for _, v := range scores {
			res.values = append(res.values, float64(v))
		}
	}
	byTop := slices.Clone(res.all)
	slices.SortFunc(byTop, order(func(x, y *rec) bool { return better(&x.Record, &y.Record) }))
	for _, r := range byTop[:min(cfg.TopK, len(byTop))] {
		res.top = append(res.top, r.Record)
	}
	byPrio := slices.Clone(res.all)
	slices.SortFunc(byPrio, order(earlier))
	for _, r := range byPrio[:min(cfg.RandomK, len(byPrio))] {
		res.random = append(res.random, r.Record)
	}
	res.all = byPrio
	return res
}

// twoPass computes population moments in float64 the textbook way.
func twoPass(xs []float64) (mean, variance, skew, kurt float64) {
	for _, x := range xs {
		mean += x
	}
	n := float64(len(xs))
	mean /= n
	var m2, m3, m4 float64
	for _, x := range xs {
		d := x - mean
		m2 += d * d
		m3 += d * d * d
		m4 += d * d * d * d
	}
	variance = m2 / n
	return mean, variance, m3 / n / math.Pow(variance, 1.5), m4/n/(variance*variance) - 3
}

func relClose(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// shardAndMerge splits wins into nShards (window i goes to a random shard),
// accumulates each shard, round-trips it through bytes and merges the
// partials in the given order ("forward", "reverse", "tree").
func shardAndMerge(t testing.TB, wins []window, loc string, layer, C int, cfg Config, nShards int, shardSeed uint64, how string) *LayerAccumulator {
	t.Helper()
	rng := rand.New(rand.NewPCG(shardSeed, 1))
	parts := make([][]window, nShards)
	for _, w := range wins {
		i := rng.IntN(nShards)
		parts[i] = append(parts[i], w)
	}
	accs := make([]*LayerAccumulator, nShards)
	for i, p := range parts {
		a, err := NewLayerAccumulator(loc, layer, C, cfg)
		if err != nil {
			t.Fatal(err)
		}
		feed(t, a, p)
		b, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if accs[i], err = DecodePartial(b); err != nil {
			t.Fatal(err)
		}
	}
	switch how {
	case "reverse":
		slices.Reverse(accs)
	case "tree":
		for len(accs) > 1 {
			var next []*LayerAccumulator
			for i := 0; i < len(accs); i += 2 {
				if i+1 < len(accs) {
					if err := accs[i+1].Merge(accs[i]); err != nil {
						t.Fatal(err)
					}
					next = append(next, accs[i+1])
				} else {
					next = append(next, accs[i])
				}
			}
			accs = next
		}
		return accs[0]
	}
	for _, a := range accs[1:] {
		if err := accs[0].Merge(a); err != nil {
			t.Fatal(err)
		}
	}
	return accs[0]
}

func views(t testing.TB, a *LayerAccumulator) []*dataset.ComponentView {
	t.Helper()
	var out []*dataset.ComponentView
	for c := 0; c < a.Components(); c++ {
		v, err := a.Component(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestCollateMatchesBruteForce(t *testing.T) {
	const loc, layer = "mlp.post_act", 3
	for _, tc := range []struct {
		name    string
		pairs   bool
		T, C, W int
	}{
		{"tokens", false, 16, 7, 300},
		{"tokens wide (vector rows and a remainder)", false, 16, 19, 300},
		{"pairs", true, 6, 3, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			wins := synthCorpus(1, tc.W, tc.T, tc.C, tc.pairs)
			var reference []*dataset.ComponentView
			for _, sh := range []struct {
				n   int
				how string
			}{{1, "forward"}, {3, "forward"}, {3, "reverse"}, {7, "tree"}, {7, "reverse"}, {20, "forward"}} {
				acc := shardAndMerge(t, wins, loc, layer, tc.C, cfg, sh.n, uint64(sh.n), sh.how)
				vs := views(t, acc)
				for c, v := range vs {
					bf := bruteForce(wins, loc, layer, c, tc.C, cfg)
					if !reflect.DeepEqual(v.Top, bf.top) {
						t.Fatalf("shards %d %s component %d: top differs\n got %v\nwant %v", sh.n, sh.how, c, srcs(v.Top), srcs(bf.top))
					}
					if !reflect.DeepEqual(v.Random, bf.random) {
						t.Fatalf("shards %d %s component %d: random differs\n got %v\nwant %v", sh.n, sh.how, c, srcs(v.Random), srcs(bf.random))
					}
					checkStats(t, v.Stats, bf)
					checkQuantiles(t, v, bf, cfg)
				}
				if reference == nil {
					reference = vs
					continue
				}
				for c := range vs {
					if !reflect.DeepEqual(vs[c].Top, reference[c].Top) || !reflect.DeepEqual(vs[c].Quantiles, reference[c].Quantiles) {
						t.Fatalf("component %d records depend on sharding", c)
					}
				}
			}
		})
	}
}

func srcs(rs []dataset.Record) []dataset.Source {
	var out []dataset.Source
	for _, r := range rs {
		out = append(out, r.Source)
	}
	return out
}

func checkStats(t *testing.T, st dataset.Stats, bf bruteResult) {
	t.Helper()
	mean, variance, skew, kurt := twoPass(bf.values)
	if st.Count != int64(len(bf.values)) {
		t.Fatalf("count %d, want %d", st.Count, len(bf.values))
	}
	for _, p := range [][3]any{{"mean", st.Mean, mean}, {"variance", st.Variance, variance}, {"skewness", st.Skewness, skew}, {"kurtosis", st.Kurtosis, kurt}} {
		if !relClose(p[1].(float64), p[2].(float64), 1e-11) {
			t.Fatalf("%s %v, want %v", p[0], p[1], p[2])
		}
	}
	mn, mx, nz := math.Inf(1), math.Inf(-1), 0
	hist := make([]int64, dataset.HistogramBins)
	edges := dataset.HistogramEdges()
	for _, v := range bf.values {
		mn, mx = math.Min(mn, v), math.Max(mx, v)
		if v != 0 {
			nz++
		}
		// The bin whose edges hold v (zero has its own bin).
		i := sort.Search(len(edges), func(i int) bool { return edges[i] > v }) - 1
		switch {
		case v == 0:
			i = histMags
		case v < 0 && v == edges[i]:
			i-- // negative bins are closed above
		}
		hist[i]++
	}
	if float64(st.Min) != mn || float64(st.Max) != mx {
		t.Fatalf("min/max %v/%v, want %v/%v", st.Min, st.Max, mn, mx)
	}
	if st.FracNonzero != float64(nz)/float64(len(bf.values)) {
		t.Fatalf("frac nonzero %v, want %v", st.FracNonzero, float64(nz)/float64(len(bf.values)))
	}
	if !reflect.DeepEqual(st.Histogram, hist) {
		t.Fatalf("histogram\n got %v\nwant %v", st.Histogram, hist)
	}
}

func checkQuantiles(t *testing.T, v *dataset.ComponentView, bf bruteResult, cfg Config) {
	t.Helper()
	b := v.Stats.QuantileBoundaries
	if len(b) != cfg.QuantileBuckets+1 {
		t.Fatalf("%d boundaries, want %d", len(b), cfg.QuantileBuckets+1)
	}
	maxes := make([]float32, len(bf.all))
	for i, r := range bf.all {
		maxes[i] = r.MaxActivation
	}
	slices.Sort(maxes)
	if b[0] != maxes[0] || b[len(b)-1] != maxes[len(maxes)-1] {
		t.Fatalf("outer boundaries %v, %v; want %v, %v", b[0], b[len(b)-1], maxes[0], maxes[len(maxes)-1])
	}
	n := len(maxes)
	for j := 1; j < cfg.QuantileBuckets; j++ {
		exact := maxes[(j*n+cfg.QuantileBuckets-1)/cfg.QuantileBuckets-1]
		// The exact quantile lies in the boundary's sketch bin.
		if b[j] > exact || sketchCode(b[j]) != sketchCode(exact) && b[j] != maxes[0] {
			t.Fatalf("boundary %d = %v, exact quantile %v", j, b[j], exact)
		}
	}
	// Every bucket holds the smallest-priority records of the bucket among
	// all records, unless the pool ran short.
	for k, got := range v.Quantiles {
		var want []dataset.Record
		inPool := 0
		for i, r := range bf.all { // priority order
			if bucketOf(b, r.MaxActivation) != k {
				continue
			}
			if i < cfg.QuantilePool {
				inPool++
			}
			if len(want) < cfg.PerBucket {
				want = append(want, r.Record)
			}
		}
		if inPool >= cfg.PerBucket && !reflect.DeepEqual(got, want) {
			t.Fatalf("bucket %d\n got %v\nwant %v", k, srcs(got), srcs(want))
		}
		if inPool < cfg.PerBucket && len(got) != inPool {
			t.Fatalf("short bucket %d has %d records, pool had %d", k, len(got), inPool)
		}
	}
}

func TestEncodeDeterministic(t *testing.T) {
	cfg := testConfig()
	wins := synthCorpus(3, 120, 8, 5, false)
	var first []byte
	for _, how := range []string{"forward", "reverse", "tree"} {
		acc := shardAndMerge(t, wins, "mlp.post_act", 0, 5, cfg, 5, 9, how)
		b, err := acc.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(first, b) {
			t.Fatalf("merge order %s changes the merged partial", how)
		}
		back, err := DecodePartial(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := back.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Fatal("decode+encode is not the identity")
		}
	}
}

// TestPlanSources checks that planning a shard's sources (the early pool
// threshold) changes nothing in the partial, and that a plan is enforced.
func TestPlanSources(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nWin  int
		pairs bool
	}{{"tokens", 120, false}, {"fewer windows than the pool", 10, false}, {"pairs", 60, true}} {
		t.Run(tc.name, func(t *testing.T) {
			const T, C = 6, 5
			wins := synthCorpus(11, tc.nWin, T, C, tc.pairs)
			cfg := testConfig()
			plain, _ := NewLayerAccumulator("x", 2, C, cfg)
			feed(t, plain, wins)
			planned, _ := NewLayerAccumulator("x", 2, C, cfg)
			var srcs []dataset.Source
			for i := len(wins) - 1; i >= 0; i-- { // any order
				srcs = append(srcs, wins[i].src)
			}
			if err := planned.PlanSources(srcs); err != nil {
				t.Fatal(err)
			}
			feed(t, planned, wins[:len(wins)-1])
			if _, err := planned.MarshalBinary(); err == nil {
				t.Fatal("an open plan encoded")
			}
			if _, err := planned.Component(0); err == nil {
				t.Fatal("an open plan was read")
			}
			feed(t, planned, wins[len(wins)-1:])
			b1, err := plain.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			b2, err := planned.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b1, b2) {
				t.Fatalf("planned partial differs from the plain one (%d vs %d bytes)", len(b2), len(b1))
			}
			if got, want := planned.acts.inUse, plain.acts.inUse; got != want {
				t.Fatalf("planned accumulator holds %d values in live slots, plain %d", got, want)
			}
		})
	}
	a, _ := NewLayerAccumulator("x", 0, 2, testConfig())
	wins := synthCorpus(1, 3, 4, 2, false)
	if err := a.PlanSources([]dataset.Source{wins[0].src, wins[0].src}); err == nil {
		t.Fatal("duplicate planned source accepted")
	}
	if err := a.PlanSources([]dataset.Source{wins[0].src, wins[1].src}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddWindow(wins[2].src, wins[2].tokens, wins[2].acts); err == nil {
		t.Fatal("unplanned window accepted")
	}
	feed(t, a, wins[:1])
	if err := a.AddWindow(wins[0].src, wins[0].tokens, wins[0].acts); err == nil {
		t.Fatal("planned window accepted twice")
	}
	if err := a.PlanSources(nil); err == nil {
		t.Fatal("second plan accepted")
	}
}

// TestArenaReuse checks that evicted records give their slots back: after a
// long stream the live slots are exactly the kept records.
func TestArenaReuse(t *testing.T) {
	const T, C = 4, 3
	cfg := testConfig()
	a, _ := NewLayerAccumulator("x", 0, C, cfg)
	feed(t, a, synthCorpus(4, 400, T, C, false))
	want := int64(0)
	for c := 0; c < C; c++ {
		seen := map[int32]bool{}
		for _, e := range a.top[c] {
			seen[e.win] = true
		}
		for _, e := range a.pool[c] {
			seen[e.win] = true
		}
		want += int64(len(seen) * T)
	}
	if a.acts.inUse != want {
		t.Fatalf("%d values in live slots, want %d (kept records × %d)", a.acts.inUse, want, T)
	}
	if a.wins.len() > 2*a.wins.live+4096 {
		t.Fatalf("window table not compacted: %d windows", a.wins.len())
	}
}

// TestRowsMatchColumns feeds the same windows through the row-wise path
// (AddWindow with at least 8 components) and the transposed column path,
// with zeros of both signs, subnormals and huge values, and checks that
// every count, extreme, histogram and record is identical and the moments
// agree.
func TestRowsMatchColumns(t *testing.T) {
	const T, C = 9, 21
	wins := synthCorpus(6, 50, T, C, false)
	special := []float32{float32(math.Copysign(0, -1)), math.Float32frombits(7), -math.Float32frombits(1 << 20), 3e30, -1e-39}
	rng := rand.New(rand.NewPCG(6, 6))
	for _, w := range wins {
		for range 20 {
			w.acts[rng.IntN(len(w.acts))] = special[rng.IntN(len(special))]
		}
	}
	cfg := testConfig()
	rows, _ := NewLayerAccumulator("x", 0, C, cfg)
	cols, _ := NewLayerAccumulator("x", 0, C, cfg)
	for _, w := range wins {
		if err := rows.AddWindow(w.src, w.tokens, w.acts); err != nil {
			t.Fatal(err)
		}
		if err := cols.setKind(kindTokens); err != nil {
			t.Fatal(err)
		}
		cols.scratch = transpose(cols.scratch, w.acts, T, C)
		cols.addColumns(w.src, w.tokens, cols.scratch, cols.scratch, T)
	}
	for c := 0; c < C; c++ {
		r, _ := rows.Component(c)
		k, _ := cols.Component(c)
		for _, st := range []*dataset.Stats{&r.Stats, &k.Stats} {
			if !relClose(st.Mean, k.Stats.Mean, 1e-12) || !relClose(st.Variance, k.Stats.Variance, 1e-12) ||
				!relClose(st.Skewness, k.Stats.Skewness, 1e-9) || !relClose(st.Kurtosis, k.Stats.Kurtosis, 1e-9) {
				t.Fatalf("component %d: moments %+v vs %+v", c, r.Stats, k.Stats)
			}
			st.Mean, st.Variance, st.Skewness, st.Kurtosis = 0, 0, 0, 0
		}
		if !reflect.DeepEqual(r, k) {
			t.Fatalf("component %d differs between the row and column paths:\n%+v\n%+v", c, r.Stats, k.Stats)
		}
	}
}
