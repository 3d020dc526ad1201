package collate

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"tdb/dataset"
)

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// TestEstimateBytes feeds real accumulators (dense GELU-like neurons and
// sparse latent-like components, one shard and three) and compares the
// heap they hold with EstimateBytes: the estimate must cover it, without
// overstating it by more than half.
func TestEstimateBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds a few thousand windows")
	}
	const T = 64
	for _, tc := range []struct {
		name    string
		C       int
		sparse  bool
		windows int
		shards  int
	}{
		{"dense", 384, false, 3000, 1},
		{"dense-3-shards", 384, false, 3000, 3},
		{"sparse", 2048, true, 1500, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(tc.C)))
			acts := make([]float32, T*tc.C)
			tokens := make([]int32, T)
			srcs := make([]dataset.Source, tc.windows)
			for i := range srcs {
				srcs[i] = dataset.Source{Doc: int64(i)}
			}
			before := heapInUse()
			a, err := NewLayerAccumulator("x", 0, tc.C, DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			if err := a.PlanSources(srcs); err != nil {
				t.Fatal(err)
			}
			per := tc.windows / tc.shards
			for w, src := range srcs {
				for i := range tokens {
					tokens[i] = int32(rng.IntN(50257))
				}
				for i := range acts {
					if tc.sparse {
						acts[i] = 0
						if rng.IntN(64) == 0 {
							acts[i] = float32(rng.ExpFloat64())
						}
						continue
					}
					x := rng.NormFloat64() - 1
					acts[i] = float32(0.5 * x * (1 + math.Tanh(0.7978845608*(x+0.044715*x*x*x))))
				}
				if err := a.AddWindow(src, tokens, acts); err != nil {
					t.Fatal(err)
				}
				if (w+1)%per == 0 && w+1 < len(srcs) {
					a.EndShard()
				}
			}
			got := heapInUse() - before
			est := EstimateBytes(DefaultConfig(), Shape{Components: tc.C, Values: T, Tokens: T, Windows: tc.windows, Sparse: tc.sparse, Shards: tc.shards})
			runtime.KeepAlive(a)
			t.Logf("%s: %d components: measured %.1f MB (%.0f B/component), estimated %.1f MB (%.2fx)",
				tc.name, tc.C, float64(got)/1e6, float64(got)/float64(tc.C), float64(est)/1e6, float64(est)/float64(got))
			// Sparse: the estimate assumes the densest records the sparse
			// layout allows; these have about one nonzero per window.
			over := 1.5
			if tc.sparse {
				over = 3
			}
			if est < got || float64(est) > over*float64(got) {
				t.Errorf("estimate %d bytes, measured %d", est, got)
			}
		})
	}
}

func TestAppendCap(t *testing.T) {
	for _, n := range []int{0, 1, 32, 150, 300, 1000, 5000} {
		var top []topEnt
		var pool []poolEnt
		for range n {
			top = append(top, topEnt{})
			pool = append(pool, poolEnt{})
		}
		if got := appendCap(n); got < max(cap(top), cap(pool)) {
			t.Errorf("appendCap(%d) = %d, append gives %d and %d", n, got, cap(top), cap(pool))
		}
	}
}
