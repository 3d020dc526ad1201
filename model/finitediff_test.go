package model

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
)

// loudModel is a small random model whose every weight matters, so that a
// wrong term in any backward op shows up in the finite differences.
func loudModel(t testing.TB) *Model {
	cfg := Config{NLayer: 2, NHead: 2, DModel: 8, DMLP: 16, NCtx: 8, Vocab: 40, Eps: 1e-5}
	m, err := NewLoud(cfg, 5, 0.5, 0.4)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type fdCase struct {
	name  string
	seed  Site   // the scalar is Σ r·act(seed) for a random r
	stops []Site // stopped sites (held at their baseline values in the FD runs)
	ivs   []Intervention
	check []Site
}

func TestFiniteDifferences(t *testing.T) {
	m := loudModel(t)
	tokens := [][]int{{1, 5, 9, 3, 7, 2}, {4, 4, 8, 1}}
	allSites := func(upTo int) []Site {
		var out []Site
		for l := range upTo {
			for _, loc := range allLocations {
				if loc.HasLayer() && loc != ResidPostMLP || loc == ResidPostMLP && l < upTo-1 {
					out = append(out, At(loc, l))
				}
			}
		}
		return append(out, At(ResidPostEmb, NoLayer))
	}
	cases := []fdCase{
		{name: "logits/full-ln", seed: At(Logits, NoLayer), check: append(allSites(2), At(LnFScale, NoLayer), At(ResidPostMLP, 1), At(LnFOut, NoLayer))},
		{name: "logits/frozen-ln_f", seed: At(Logits, NoLayer), stops: []Site{At(LnFScale, NoLayer)}, check: allSites(2)},
		{name: "frozen-block-ln", seed: At(ResidPostMLP, 1), stops: []Site{At(MLPLnScale, 1), At(AttnLnScale, 0)}, check: allSites(2)},
		{name: "query-only", seed: At(AttnQKLogits, 1), stops: []Site{At(AttnK, 1)}, check: allSites(1)},
		{name: "key-only", seed: At(AttnQKLogits, 1), stops: []Site{At(AttnQ, 1)}, check: allSites(1)},
		{name: "value-only", seed: At(AttnVOut, 1), stops: []Site{At(AttnQKProbs, 1)}, check: allSites(1)},
		{name: "neuron-ablated", seed: At(MLPPostAct, 1), ivs: []Intervention{{Site: At(MLPPostAct, 0), Index: []int{3, 19, 40}, Value: 0.5}}, check: allSites(1)},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base, err := m.Forward(ctx, Request{Tokens: tokens, Capture: append([]Site{c.seed}, c.stops...), Interventions: c.ivs, Backward: true})
			if err != nil {
				t.Fatal(err)
			}
			r := NewTensor(base.Acts[c.seed].Shape...)
			for i := range r.Data {
				if !math.IsInf(float64(base.Acts[c.seed].Data[i]), 0) {
					r.Data[i] = float32(rng.NormFloat64())
				}
			}
			grads, err := base.Backward(map[Site]*Tensor{c.seed: r}, BackwardOptions{Stop: c.stops})
			if err != nil {
				t.Fatal(err)
			}
			scalar := func(site Site, idx int, eps float32) float64 {
				// Stopped sites are held at their baseline values (first), then the
				// perturbation is applied (so a stopped site's own gradient is checked too).
				var hooks []Hook
				for _, s := range c.stops {
					frozen := base.Acts[s]
					hooks = append(hooks, Hook{Site: s, Fn: func(x *Tensor) error { copy(x.Data, frozen.Data); return nil }})
				}
				hooks = append(hooks, Hook{Site: site, Fn: func(x *Tensor) error { x.Data[idx] += eps; return nil }})
				res, err := m.Forward(ctx, Request{Tokens: tokens, Capture: []Site{c.seed}, Hooks: hooks, Interventions: c.ivs})
				if err != nil {
					t.Fatal(err)
				}
				var s float64
				for i, v := range res.Acts[c.seed].Data {
					if r.Data[i] != 0 {
						s += float64(r.Data[i]) * float64(v)
					}
				}
				return s
			}
			for _, site := range c.check {
				g := grads[site]
				if g == nil {
					t.Errorf("no gradient for %s", site)
					continue
				}
				for range 4 {
					idx := rng.IntN(len(g.Data))
					if site.Loc == AttnQKLogits || site.Loc == AttnQKProbs {
						// pick an unmasked entry of a real token: [b, q, k, h] with k <= q < len
						b := rng.IntN(2)
						q := rng.IntN(len(tokens[b]))
						k := rng.IntN(q + 1)
						idx = ((b*base.T+q)*base.T+k)*m.NHead + rng.IntN(m.NHead)
					}
					const eps = 2e-3
					fd := (scalar(site, idx, eps) - scalar(site, idx, -eps)) / (2 * eps)
					an := float64(g.Data[idx])
					if math.Abs(fd-an) > 2e-2*math.Max(1, math.Abs(an)) {
						t.Errorf("%s[%d]: backward %.5f, finite difference %.5f", site, idx, an, fd)
					}
				}
			}
		})
	}
}
