package query

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"tdb/dataset"
	"tdb/explain"
	"tdb/store"
)

// gpt2SmallExplanations writes a manifest shaped like GPT-2 small's neurons
// (12 × 3072) and one builtin-style explanation with a simulation score per
// neuron (no records: the explanation routes read only the manifest and
// the explanation files).
func gpt2SmallExplanations(b *testing.B) store.Store {
	ctx := context.Background()
	st := store.NewMemory()
	layers := make([]int, 12)
	for i := range layers {
		layers[i] = i
	}
	m := &dataset.Manifest{Name: "gpt2s", Model: "gpt2", Corpus: "synthetic", NCtx: 64, Tokens: 1,
		Locations: []dataset.ManifestLocation{{Name: "mlp.post_act", Layers: layers, Components: 3072}}}
	if err := dataset.WriteManifest(ctx, st, m); err != nil {
		b.Fatal(err)
	}
	v, err := explain.GPT2Vocab()
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var rows []explain.Row
	for _, l := range layers {
		for c := range 3072 {
			text := fmt.Sprintf("%q after %q", v.Text(int32(rng.IntN(50000))), v.Text(int32(rng.IntN(50000))))
			rows = append(rows, explain.Row{Location: "mlp.post_act", Layer: l, Component: c, Explanation: explain.Explanation{
				Explanation: text, Method: explain.Method{Explainer: "builtin"}, Created: time.Unix(0, 0).UTC(),
				Scores: explain.Scores{Simulation: &explain.Score{Value: rng.Float64(), Judge: "builtin"}}}})
		}
	}
	if err := explain.Write(ctx, st, "gpt2s", rows); err != nil {
		b.Fatal(err)
	}
	return st
}

// BenchmarkExplanationSearch: ?explanation=after (a word of every one of
// the 36,864 explanations: the worst case of ranking),
// warm (the per-dataset cache holds them) and cold (read every file).
func BenchmarkExplanationSearch(b *testing.B) {
	st := gpt2SmallExplanations(b)
	ctx := context.Background()
	warmAndCold(b, st, func(b *testing.B, r *Reader) {
		o := SearchOptions{Layer: -1, Limit: 20}
		if _, err := r.SearchExplanations(ctx, "gpt2s", "after", o); err != nil { // warm up (outside the timer)
			b.Fatal(err)
		}
		for b.Loop() {
			res, err := r.SearchExplanations(ctx, "gpt2s", "after", o)
			if err != nil || len(res.Hits) != 20 {
				b.Fatal(err, res)
			}
		}
	})
}

// BenchmarkComponentExplanations: one component's explanations, warm and
// cold (one 1024-component file read and decoded).
func BenchmarkComponentExplanations(b *testing.B) {
	st := gpt2SmallExplanations(b)
	ctx := context.Background()
	warmAndCold(b, st, func(b *testing.B, r *Reader) {
		i := 0
		for l := range 12 { // warm up (outside the timer)
			if _, err := r.Explanations(ctx, "gpt2s", "mlp.post_act", l, 0); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			i = (i + 7919) % 3072
			got, err := r.Explanations(ctx, "gpt2s", "mlp.post_act", i%12, i)
			if err != nil || len(got) != 1 {
				b.Fatal(err, got)
			}
		}
	})
}

// warmAndCold runs bench on a Reader of st whose explanations are cached
// ("warm") and on one that reads them at every request ("cold").
func warmAndCold(b *testing.B, st store.Store, bench func(b *testing.B, r *Reader)) {
	for _, cold := range []bool{false, true} {
		b.Run(map[bool]string{false: "warm", true: "cold"}[cold], func(b *testing.B) {
			r := NewReader(st, nil, 256<<20)
			if cold {
				r.explTTL = -1
			}
			bench(b, r)
		})
	}
}
