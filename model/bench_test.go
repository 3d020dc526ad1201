package model

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"tdb/internal/memstat"
	"tdb/kernels"
)

var (
	smallOnce sync.Once
	small     *Model
)

// gpt2Small is GPT-2-small-shaped random weights, built once per test binary.
func gpt2Small(b *testing.B) *Model {
	smallOnce.Do(func() {
		var err error
		if small, err = NewRandom(Presets["gpt2"], 1); err != nil {
			b.Fatal(err)
		}
	})
	return small
}

func benchForward(b *testing.B, batch, seq int, capture func(c Config) []Site, fast bool) {
	benchForwardRelease(b, batch, seq, capture, fast, false)
}

// benchForwardRelease is benchForward, releasing each Result when release
// is set (the next pass captures into its memory).
func benchForwardRelease(b *testing.B, batch, seq int, capture func(c Config) []Site, fast, release bool) {
	if fast {
		kernels.Install()
	}
	m := gpt2Small(b)
	tokens := benchTokens(batch, seq, m.Vocab)
	req := Request{Tokens: tokens, Capture: capture(m.Config)}
	if _, err := m.Forward(context.Background(), req); err != nil { // warm the workspace
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := m.Forward(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		if release {
			res.Release()
		}
	}
	b.ReportMetric(float64(batch*seq*b.N)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(memstat.PeakRSSMiB(), "peak-RSS-MiB")
}

func allMLP(c Config) []Site {
	var s []Site
	for l := range c.NLayer {
		s = append(s, At(MLPPostAct, l))
	}
	return s
}

func withLogits(c Config) []Site { return append(allMLP(c), At(Logits, NoLayer)) }

// BenchmarkForward: GPT-2-small-shaped random weights, batch 8 × 64, MLP
// activations of all layers captured (the collation workload), with and
// without the unembedding, on gonum's Sgemm and on package kernels
// (TDB_KERNELS picks the kernel path; the gonum case uses it for the vector
// kernels too). "/release" releases each Result (Result.Release).
func BenchmarkForward(b *testing.B) {
	b.Run("gonum/8x64/mlp", func(b *testing.B) { benchForward(b, 8, 64, allMLP, false) })
	b.Run("kernels/8x64/mlp", func(b *testing.B) { benchForward(b, 8, 64, allMLP, true) })
	b.Run("kernels/8x64/mlp+logits", func(b *testing.B) { benchForward(b, 8, 64, withLogits, true) })
	b.Run("kernels/32x64/mlp", func(b *testing.B) { benchForward(b, 32, 64, allMLP, true) })
	b.Run("kernels/32x64/mlp+logits", func(b *testing.B) { benchForward(b, 32, 64, withLogits, true) })
	b.Run("kernels/32x64/mlp+logits/release", func(b *testing.B) { benchForwardRelease(b, 32, 64, withLogits, true, true) })
}

func logitsOnly(Config) []Site { return []Site{At(Logits, NoLayer)} }

// BenchmarkUnembed: passes that capture only the logits (GPT-2-small
// shapes, random weights), each Result dropped ("fresh": the next pass
// allocates its 50,257-wide logits anew) or released ("release": the next
// pass writes into the same memory).
func BenchmarkUnembed(b *testing.B) {
	for _, sh := range []struct{ batch, seq int }{{8, 64}, {32, 64}} {
		for _, release := range []bool{false, true} {
			name := fmt.Sprintf("%dx%d/fresh", sh.batch, sh.seq)
			if release {
				name = fmt.Sprintf("%dx%d/release", sh.batch, sh.seq)
			}
			b.Run(name, func(b *testing.B) { benchUnembed(b, sh.batch, sh.seq, release) })
		}
	}
}

func benchUnembed(b *testing.B, batch, seq int, release bool) {
	kernels.Install()
	m := gpt2Small(b)
	tokens := benchTokens(batch, seq, m.Vocab)
	req := Request{Tokens: tokens, Capture: logitsOnly(m.Config)}
	run := func() {
		res, err := m.Forward(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		if release {
			res.Release()
		}
	}
	run() // warm the workspace
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		run()
	}
	b.ReportMetric(float64(batch*seq*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// benchTokens is a batch of token ids spread over the vocabulary, the same
// for every forward benchmark.
func benchTokens(batch, seq, vocab int) [][]int {
	tokens := make([][]int, batch)
	for i := range tokens {
		tokens[i] = make([]int, seq)
		for t := range tokens[i] {
			tokens[i][t] = (i*7919 + t*104729) % vocab
		}
	}
	return tokens
}
