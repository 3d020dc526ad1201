package collate

import (
	"math"
	"math/rand/v2"
	"testing"
)

// gptWindows makes n windows of GELU-like activations for C neurons.
func gptWindows(n, T, C int) []window {
	rng := rand.New(rand.NewPCG(5, 5))
	out := make([]window, n)
	for w := range out {
		out[w] = window{src: Source{Doc: int64(w), Offset: 0}, tokens: make([]int32, T), acts: make([]float32, T*C)}
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
	// Warm up past the first windows, which always enter the top-k.
	for i := 0; i < 2000; i++ {
		w := wins[i%len(wins)]
		if err := a.AddWindow(Source{Doc: int64(i)}, w.tokens, w.acts); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(T * C * 4))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := wins[i%len(wins)]
		if err := a.AddWindow(Source{Doc: int64(i + 2000)}, w.tokens, w.acts); err != nil {
			b.Fatal(err)
		}
	}
	perTC := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / (T * C)
	b.ReportMetric(perTC, "ns/token-component")
	b.ReportMetric(perTC*36864/1000, "µs/token-gpt2small")
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
		if err := a.AddPairWindow(Source{Doc: int64(i)}, w.tokens, w.acts, w.scores); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/T, "ns/token-layer")
}
