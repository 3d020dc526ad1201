package collate

import (
	"bytes"
	"math"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"tdb/dataset"
)

// cpuTime is the process's CPU time: benchmarks report it next to wall
// time because shared CI machines deschedule the benchmark for long spells.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// gptWindows makes n windows of GELU-like activations for C neurons.
func gptWindows(n, T, C int) []window {
	rng := rand.New(rand.NewPCG(5, 5))
	out := make([]window, n)
	for w := range out {
		out[w] = window{src: dataset.Source{Doc: int64(w), Offset: 0}, tokens: make([]int32, T), acts: make([]float32, T*C)}
		for i := range out[w].tokens {
			out[w].tokens[i] = int32(rng.IntN(50257))
		}
		for i := range out[w].acts {
			x := rng.NormFloat64() - 1
			out[w].acts[i] = float32(0.5 * x * (1 + math.Tanh(0.7978845608*(x+0.044715*x*x*x))))
		}
	}
	return out
}

// BenchmarkAddWindow feeds 64-token windows of 3072 neurons (one GPT-2
// small MLP layer) with default settings; ns/token-component is the cost
// per activation, ×36864 the cost per token of all GPT-2 small neurons.
func BenchmarkAddWindow(b *testing.B) {
	const T, C = 64, 3072
	wins := gptWindows(64, T, C)
	a, err := NewLayerAccumulator("mlp.post_act", 0, C, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	// Warm up past the first windows, which always enter the top-k and pool
	// (a real shard is ~15k windows; entry rates fall as k·ln(n)/n).
	for i := 0; i < 3000; i++ {
		w := wins[i%len(wins)]
		if err := a.AddWindow(dataset.Source{Doc: int64(i)}, w.tokens, w.acts); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(T * C * 4))
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		w := wins[i%len(wins)]
		if err := a.AddWindow(dataset.Source{Doc: int64(i + 3000)}, w.tokens, w.acts); err != nil {
			b.Fatal(err)
		}
	}
	cpu := float64((cpuTime() - c0).Nanoseconds()) / float64(b.N) / (T * C)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(T*C), "wall-ns/token-component")
	b.ReportMetric(cpu, "cpu-ns/token-component")
	b.ReportMetric(cpu*36864/1000, "cpu-µs/token-gpt2small")
}

func BenchmarkAddPairWindow(b *testing.B) {
	const T, C = 64, 12
	wins := synthCorpus(1, 8, T, C, true)
	a, err := NewLayerAccumulator("attn.heads", 0, C, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := wins[i%len(wins)]
		if err := a.AddPairWindow(dataset.Source{Doc: int64(i)}, w.tokens, w.acts, w.scores); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/T, "ns/token-layer")
}

// BenchmarkSummarizeColumn is the per-activation hot loop alone (64 values).
func BenchmarkSummarizeColumn(b *testing.B) {
	w := gptWindows(1, 64, 1)[0]
	var h [histStride]uint32
	var s [4]float64
	for i := 0; i < b.N; i++ {
		summarizeColumn(w.acts, 0.1, &h, &s)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/value")
}

// BenchmarkTranspose is the [T, C] -> [C, T] copy of one window.
func BenchmarkTranspose(b *testing.B) {
	const T, C = 64, 3072
	w := gptWindows(1, T, C)[0]
	var dst []float32
	for i := 0; i < b.N; i++ {
		dst = transpose(dst, w.acts, T, C)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(T*C), "ns/value")
}

// BenchmarkCalibrate is a plain float64 sum, for comparing machines: about
// 1.3 ns/value on an idle 3 GHz core (one dependent add per value).
func BenchmarkCalibrate(b *testing.B) {
	x := gptWindows(1, 64, 1024)[0].acts
	var sink float64
	for i := 0; i < b.N; i++ {
		var s float64
		for _, v := range x {
			s += float64(v)
		}
		sink += s
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(x)), "ns/value")
	_ = sink
}

// mergeInputs makes n shard partials of one 3072-neuron layer.
func mergeInputs(b *testing.B, n, windows int) [][]byte {
	const T, C = 64, 3072
	wins := gptWindows(16, T, C)
	var parts [][]byte
	for s := 0; s < n; s++ {
		a, err := NewLayerAccumulator("mlp.post_act", 0, C, DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < windows; i++ {
			w := wins[i%len(wins)]
			if err := a.AddWindow(dataset.Source{Doc: int64(s*windows + i)}, w.tokens, w.acts); err != nil {
				b.Fatal(err)
			}
		}
		p, err := a.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		parts = append(parts, p)
	}
	return parts
}

// BenchmarkMerge decodes two 3072-neuron shard partials and merges them.
func BenchmarkMerge(b *testing.B) {
	parts := mergeInputs(b, 2, 300)
	b.SetBytes(int64(len(parts[0]) + len(parts[1])))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x, err := DecodePartial(parts[0])
		if err != nil {
			b.Fatal(err)
		}
		y, err := DecodePartial(parts[1])
		if err != nil {
			b.Fatal(err)
		}
		if err := x.Merge(y); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(parts[0])), "partial-bytes")
}

// BenchmarkWriteLayer finalizes a merged 3072-neuron layer and writes both
// Parquet files.
func BenchmarkWriteLayer(b *testing.B) {
	parts := mergeInputs(b, 2, 300)
	x, _ := DecodePartial(parts[0])
	y, _ := DecodePartial(parts[1])
	if err := x.Merge(y); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var size int
	for i := 0; i < b.N; i++ {
		var rb, sb bytes.Buffer
		if err := x.WriteRecords(&rb, DefaultComponentsPerRowGroup); err != nil {
			b.Fatal(err)
		}
		if err := x.WriteStats(&sb, DefaultComponentsPerRowGroup); err != nil {
			b.Fatal(err)
		}
		size = rb.Len() + sb.Len()
	}
	b.ReportMetric(float64(size), "file-bytes")
}

// BenchmarkAddWindowShard runs whole shards of 1024 windows of one GPT-2
// small MLP layer (3072 neurons, 64 tokens) from a fresh accumulator with
// the shard's sources planned, as a worker does: the early windows all enter
// the heaps, so this is the realistic cost (BenchmarkAddWindow is the steady
// state). cpu-µs/token-gpt2small scales it to all 36,864 neurons.
func BenchmarkAddWindowShard(b *testing.B) {
	const T, C, W = 64, 3072, 1024
	wins := gptWindows(64, T, C)
	srcs := make([]dataset.Source, W)
	for i := range srcs {
		srcs[i] = dataset.Source{Doc: int64(i / 4), Offset: int64(i%4) * T}
	}
	b.SetBytes(int64(W * T * C * 4))
	c0 := cpuTime()
	for b.Loop() {
		a, err := NewLayerAccumulator("mlp.post_act", 0, C, DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		if err := a.PlanSources(srcs); err != nil {
			b.Fatal(err)
		}
		for i, src := range srcs {
			w := wins[(i*7)%len(wins)]
			if err := a.AddWindow(src, w.tokens, w.acts); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu := float64((cpuTime() - c0).Nanoseconds()) / float64(b.N) / (W * T * C)
	b.ReportMetric(cpu, "cpu-ns/token-component")
	b.ReportMetric(cpu*36864/1000, "cpu-µs/token-gpt2small")
}

// BenchmarkLatentPartial accumulates a shard of 1024 windows of 64 tokens
// for one 32768-latent TopK autoencoder (32 latents fire per token, so a
// latent is zero at 99.9% of tokens) and encodes the partial: the partial
// bytes and kept-record memory per latent that the cost model scales to
// 12 layers (README, Cost model).
func BenchmarkLatentPartial(b *testing.B) {
	const T, C, W, K = 64, 32768, 1024, 32
	rng := rand.New(rand.NewPCG(9, 9))
	acts := make([]float32, T*C)
	tokens := make([]int32, T)
	srcs := make([]dataset.Source, W)
	for i := range srcs {
		srcs[i] = dataset.Source{Doc: int64(i / 4), Offset: int64(i%4) * T}
	}
	var size int
	var inUse int64
	c0 := cpuTime()
	for b.Loop() {
		a, err := NewLayerAccumulator("autoencoder_latent", 0, C, DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		if err := a.PlanSources(srcs); err != nil {
			b.Fatal(err)
		}
		for _, src := range srcs {
			clear(acts)
			for t := range T {
				tokens[t] = int32(rng.IntN(50257))
				for range K {
					acts[t*C+rng.IntN(C)] = float32(rng.ExpFloat64())
				}
			}
			if err := a.AddWindow(src, tokens, acts); err != nil {
				b.Fatal(err)
			}
		}
		inUse = a.acts.inUse
		p, err := a.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		size = len(p)
	}
	cpu := float64((cpuTime() - c0).Nanoseconds()) / float64(b.N)
	b.ReportMetric(float64(size)/C, "partial-B/latent")
	b.ReportMetric(float64(inUse*4)/C, "record-B/latent")
	b.ReportMetric(cpu/(W*T*C), "cpu-ns/token-component")
}
