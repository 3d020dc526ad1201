//go:build unix

package explain

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"

	"tdb/collate"
	"tdb/dataset"
	"tdb/model/tokenizer"
	"tdb/store"
)

// gpt2SmallLayer collates one GPT-2-small-shaped layer (3072 neurons, 64-
// token windows, the default top 32 / random 16 / 10×5 quantile records)
// over windows of Zipf-distributed GPT-2 token ids; a third of the neurons
// fire on one token each, the rest are heavy-tailed noise.
func gpt2SmallLayer(b *testing.B, st store.Store, windows int) {
	const C, T = 3072, 64
	acc, err := collate.NewLayerAccumulator("mlp.post_act", 0, C, collate.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 10, tokenizer.VocabSize-2)
	fire := make([]int32, C)
	for c := range fire {
		fire[c] = -1
		if c%3 == 0 {
			fire[c] = int32(50 + c)
		}
	}
	toks := make([]int32, T)
	acts := make([]float32, T*C)
	x := uint64(88172645463325252)
	for w := 0; w < windows; w++ {
		for i := range toks {
			if rng.IntN(40) == 0 {
				toks[i] = int32(50 + 3*rng.IntN(C/3))
			} else {
				toks[i] = int32(zipf.Uint64())
			}
		}
		for i := 0; i < T; i++ {
			row := acts[i*C : (i+1)*C]
			for c := range row {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				u := float32(x>>40) / (1 << 24)
				a := float32(-0.17) + 0.4*u*u*u
				if fire[c] == toks[i] {
					a += 3
				}
				row[c] = a
			}
		}
		if err := acc.AddWindow(dataset.Source{Doc: int64(w)}, toks, acts); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := collate.WriteLayer(ctx, st, "gpt2s", acc, 0); err != nil {
		b.Fatal(err)
	}
	m := &dataset.Manifest{Name: "gpt2s", Model: "synthetic", NCtx: T, Settings: dataset.Settings(collate.DefaultConfig()),
		Locations: []dataset.ManifestLocation{{Name: "mlp.post_act", Layers: []int{0}, Components: C}}}
	if err := dataset.WriteManifest(ctx, st, m); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBuiltinGPT2SmallLayer: read a whole layer from Parquet, explain
// every neuron with the builtin explainer and run all three scores with the
// builtin judge, write the explanations; reports components/s.
func BenchmarkBuiltinGPT2SmallLayer(b *testing.B) {
	v, err := GPT2Vocab()
	if err != nil {
		b.Fatal(err)
	}
	st := store.NewMemory()
	gpt2SmallLayer(b, st, 3000)
	ctx := context.Background()
	b.ResetTimer()
	var n int
	start := time.Now()
	cpu0 := cpuTime()
	for range b.N {
		b.StopTimer()
		keys, _ := st.List(ctx, Prefix("gpt2s"))
		for _, k := range keys {
			st.Delete(ctx, k)
		}
		b.StartTimer()
		job := &Job{Store: st, Dataset: "gpt2s", Explainer: &Builtin{Vocab: v}, Scores: ScoreMethods, Workers: runtime.GOMAXPROCS(0)}
		s, err := job.Run(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n += s.Explained
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "components/s")
	// CPU seconds per component: the wall-clock rate depends on how much of
	// the machine the benchmark gets.
	b.ReportMetric(float64(n)/(cpuTime()-cpu0).Seconds(), "components/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkBuiltinComponent: one component in memory, one goroutine:
// explain + simulation + detection + fuzzing.
func BenchmarkBuiltinComponent(b *testing.B) {
	v, err := GPT2Vocab()
	if err != nil {
		b.Fatal(err)
	}
	st := store.NewMemory()
	gpt2SmallLayer(b, st, 400)
	ctx := context.Background()
	m, _ := dataset.ReadManifest(ctx, st, "gpt2s")
	var comps []*Component
	EachComponent(ctx, st, m, "mlp.post_act", 0, func(c int) bool { return c < 64 }, func(c *Component) error { comps = append(comps, c); return nil })
	ex, j := &Builtin{Vocab: v}, &BuiltinJudge{Vocab: v}
	b.ResetTimer()
	start := time.Now()
	cpu0 := cpuTime()
	var sum float64
	for i := range b.N {
		c := comps[i%len(comps)]
		text, _ := ex.Explain(ctx, c)
		s, err := Scored(ctx, j, c, text, ScoreMethods)
		if err != nil {
			b.Fatal(err)
		}
		sum += s.Simulation.Value
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "components/s")
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "components/cpu-s")
	if math.IsNaN(sum) {
		b.Fatal("NaN score")
	}
}
