package autoencoder

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"tdb/kernels"
	"tdb/model"
)

// Benchmarks at the size of OpenAI's public GPT-2 small MLP autoencoders:
// 3072 inputs, 32768 latents, TopK k = 32 (and a ReLU variant), 512 tokens
// per batch. Run with
//
//	go test ./autoencoder -run XXX -bench . -benchtime 3x
//
// They report tokens/s. The GEMMs go through kernels.Install().

const (
	benchIn, benchLatents, benchK, benchTokens = 3072, 32768, 32, 512
)

var (
	benchOnce sync.Once
	benchAEs  map[Activation]*Autoencoder
)

// benchAutoencoders builds random public-sized autoencoders once (1.6 GB of
// weights for both): ReLU with a negative latent bias so that a realistic
// few percent of latents fire, and TopK with input normalisation.
func benchAutoencoders() map[Activation]*Autoencoder {
	benchOnce.Do(func() {
		kernels.Install()
		enc, dec := randomMatrix(1, benchLatents*benchIn, 0.02), randomMatrix(2, benchLatents*benchIn, 0.02)
		bias := make([]float32, benchLatents)
		for i := range bias {
			bias[i] = -2
		}
		base := Autoencoder{Source: "bench", Format: "openai", NInputs: benchIn, NLatents: benchLatents, Layer: model.NoLayer,
			enc: enc, dec: dec, inBias: make([]float32, benchIn), latentBias: bias}
		base.outBias = base.inBias
		relu, topk := base, base
		relu.Activation = ReLU
		topk.Activation, topk.K, topk.PostAct, topk.Normalize = TopK, benchK, ReLU, true
		topk.latentBias = make([]float32, benchLatents)
		benchAEs = map[Activation]*Autoencoder{ReLU: &relu, TopK: &topk}
	})
	return benchAEs
}

// randomMatrix fills n values uniformly in ±scale·√3 (std = scale), fast.
func randomMatrix(seed uint64, n int, scale float32) []float32 {
	out := make([]float32, n)
	const chunk = 1 << 20
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(lo)))
			for i := lo; i < hi; i++ {
				out[i] = (rng.Float32()*2 - 1) * 1.7320508 * scale
			}
		}(lo, min(lo+chunk, n))
	}
	wg.Wait()
	return out
}

func benchInputs() []float32 {
	x := randomMatrix(3, benchTokens*benchIn, 1)
	for i := range x { // MLP post-activations are GELU outputs: mostly ≥ 0
		if x[i] < -0.17 {
			x[i] = -0.17
		}
	}
	return x
}

func BenchmarkEncode(b *testing.B) {
	aes := benchAutoencoders()
	x := benchInputs()
	for _, act := range []Activation{TopK, ReLU} {
		b.Run(string(act), func(b *testing.B) {
			a := aes[act]
			var c Codes
			for b.Loop() {
				if err := a.EncodeInto(&c, x, benchTokens); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchTokens)/b.Elapsed().Seconds(), "tokens/s")
			nnz := 0
			for _, v := range c.Latents {
				if v != 0 {
					nnz++
				}
			}
			b.ReportMetric(float64(nnz)/benchTokens, "active/token")
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	aes := benchAutoencoders()
	x := benchInputs()
	for _, act := range []Activation{TopK, ReLU} {
		b.Run(string(act), func(b *testing.B) {
			a := aes[act]
			c, err := a.Encode(x, benchTokens)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]float32, benchTokens*benchIn)
			for b.Loop() {
				if err := a.Decode(c, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchTokens)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

// BenchmarkGPT2Spliced runs a random GPT-2 small (124M parameters) on
// 8 × 64 tokens, alone and with a 32768-latent TopK autoencoder spliced into
// mlp.post_act of every layer. To keep memory at about 1.5 GB, one
// autoencoder is shared by all twelve layers (twelve distinct ones would need
// 9.6 GB); the compute is the same as with twelve.
func BenchmarkGPT2Spliced(b *testing.B) {
	aes := benchAutoencoders()
	m, err := model.NewRandom(model.Presets["gpt2"], 1)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	tokens := make([][]int, 8)
	for i := range tokens {
		for range 64 {
			tokens[i] = append(tokens[i], rng.IntN(m.Vocab))
		}
	}
	logits := model.At(model.Logits, model.NoLayer)
	for _, tc := range []struct {
		name    string
		spliced bool
	}{{"model", false}, {"model+12xTopK32768", true}} {
		b.Run(tc.name, func(b *testing.B) {
			var hooks []model.Hook
			if tc.spliced {
				for l := range m.NLayer {
					s, err := aes[TopK].Splice(l, model.MLPPostAct)
					if err != nil {
						b.Fatal(err)
					}
					hooks = append(hooks, s.Hook())
				}
			}
			for b.Loop() {
				if _, err := m.Forward(context.Background(), model.Request{Tokens: tokens, Capture: []model.Site{logits}, Hooks: hooks}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*8*64)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
