package autoencoder

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"tdb/model"
)

var smallCfg = model.Config{NLayer: 2, NHead: 2, DModel: 16, DMLP: 64, NCtx: 16, Vocab: 50, Eps: 1e-5}

func smallModel(t testing.TB) *model.Model {
	t.Helper()
	m, err := model.NewRandom(smallCfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var smallTokens = [][]int{{1, 7, 3, 9, 22, 4}, {5, 5, 31, 2}}

// spliceCases are autoencoders (plain and normalising) on each kind of site.
var spliceCases = []struct {
	name  string
	loc   model.Location
	layer int
	act   string
	in    int
}{
	{"mlp-relu", model.MLPPostAct, 0, "ReLU", 64},
	{"mlp-topk", model.MLPPostAct, 1, "TopK", 64},
	{"delta-mlp-relu", model.ResidDeltaMLP, 1, "ReLU", 16},
	{"delta-attn-topk", model.ResidDeltaAtt, 0, "TopK", 16},
}

func loadCase(t testing.TB, act string, in int) *Autoencoder {
	t.Helper()
	w := randomWeights(11, in, 96)
	w.activation = act
	if act == "TopK" {
		w.k, w.postact = 8, "ReLU"
	}
	a, err := Load(context.Background(), writePT(t, w, ptOptions{}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func forward(t testing.TB, m *model.Model, req model.Request) *model.Result {
	t.Helper()
	req.Tokens = smallTokens
	res, err := m.Forward(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

var logitsSite = model.At(model.Logits, model.NoLayer)

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func TestSpliceWithoutAblationIsTheModel(t *testing.T) {
	m := smallModel(t)
	base := forward(t, m, model.Request{Capture: []model.Site{logitsSite}})
	for _, tc := range spliceCases {
		t.Run(tc.name, func(t *testing.T) {
			a := loadCase(t, tc.act, tc.in)
			s, err := a.Splice(tc.layer, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Check(m.Config); err != nil {
				t.Fatal(err)
			}
			res := forward(t, m, model.Request{Capture: []model.Site{logitsSite, s.Site}, Hooks: []model.Hook{s.Hook()}})
			if d := maxAbsDiff(res.Acts[logitsSite].Data, base.Acts[logitsSite].Data); d > 1e-6 {
				t.Fatalf("spliced logits differ by %g", d)
			}
			// The exposed latents are the autoencoder's encoding of the site.
			x := res.Acts[s.Site]
			B, T := x.Shape[0], x.Shape[1]
			if s.Latents == nil || len(s.Latents.Shape) != 3 || s.Latents.Shape[0] != B || s.Latents.Shape[1] != T || s.Latents.Shape[2] != a.NLatents {
				t.Fatalf("latents tensor %v", s.Latents)
			}
			for b, n := range res.Lengths {
				c, err := a.Encode(x.Data[b*T*a.NInputs:(b*T+n)*a.NInputs], n)
				if err != nil {
					t.Fatal(err)
				}
				assertClose(t, "latents", s.Latents.Data[b*T*a.NLatents:(b*T+n)*a.NLatents], c.Latents, 1e-6)
			}
			if (s.Std != nil) != a.Normalize {
				t.Fatalf("std exposed = %v for Normalize = %v", s.Std != nil, a.Normalize)
			}
		})
	}
}

func TestSpliceAblation(t *testing.T) {
	m := smallModel(t)
	for _, tc := range spliceCases {
		t.Run(tc.name, func(t *testing.T) {
			a := loadCase(t, tc.act, tc.in)
			s, _ := a.Splice(tc.layer, tc.loc)
			base := forward(t, m, model.Request{Capture: []model.Site{logitsSite, s.Site}, Hooks: []model.Hook{s.Hook()}})
			z := s.Latents.Clone()
			T := z.Shape[1]
			// Ablate the strongest latent of token (0, 2) and set a silent one
			// everywhere in sequence 1.
			r := 0*T + 2
			row := z.Data[r*a.NLatents : (r+1)*a.NLatents]
			top := 0
			for i, v := range row {
				if v > row[top] {
					top = i
				}
			}
			s.Ablations = []LatentAblation{{Batch: 0, Token: 2, Latent: top, Value: 0}, {Batch: 1, Token: All, Latent: 5, Value: 1.5}}
			ablated := forward(t, m, model.Request{Capture: []model.Site{logitsSite, s.Site}, Hooks: []model.Hook{s.Hook()}})
			if d := maxAbsDiff(ablated.Acts[logitsSite].Data, base.Acts[logitsSite].Data); d < 1e-4 {
				t.Fatalf("ablation changed the logits by only %g", d)
			}
			if s.Latents.Data[r*a.NLatents+top] != 0 || s.Latents.Data[(T+1)*a.NLatents+5] != 1.5 {
				t.Fatal("exposed latents do not show the ablation")
			}
			// The same change made by hand: x += std·(new − old)·W_dec[:, i].
			want := base.Acts[s.Site].Clone()
			in := a.NInputs
			edit := func(b, t int, i int, v float32) {
				r := b*T + t
				d := v - z.Data[r*a.NLatents+i]
				if a.Normalize {
					d *= s.Std.Data[r]
				}
				for j := range in {
					want.Data[r*in+j] += d * a.dec[i*in+j]
				}
			}
			edit(0, 2, top, 0)
			for t := range ablated.Lengths[1] {
				edit(1, t, 5, 1.5)
			}
			x := ablated.Acts[s.Site]
			for b, n := range ablated.Lengths {
				assertClose(t, "ablated site", x.Data[b*T*in:(b*T+n)*in], want.Data[b*T*in:(b*T+n)*in], 1e-6)
			}
			// A second, plain hook writing the same edit gives the same logits.
			manual := forward(t, m, model.Request{Capture: []model.Site{logitsSite}, Hooks: []model.Hook{{Site: s.Site, Fn: func(x *model.Tensor) error {
				copy(x.Data, want.Data)
				return nil
			}}}})
			if d := maxAbsDiff(ablated.Acts[logitsSite].Data, manual.Acts[logitsSite].Data); d > 1e-5 {
				t.Fatalf("spliced ablation and manual edit differ by %g", d)
			}
		})
	}
}

func TestSpliceErrors(t *testing.T) {
	m := smallModel(t)
	a := loadCase(t, "ReLU", 64)
	if _, err := a.Splice(0, model.AttnQ); err == nil {
		t.Fatal("spliced into attn.q")
	}
	if _, err := a.Splice(0, "mlp.nope"); err == nil {
		t.Fatal("spliced into an unknown location")
	}
	s, err := a.Splice(0, model.ResidDeltaMLP) // 16 values per token, not 64
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(m.Config); err == nil {
		t.Fatal("Check accepted a size mismatch")
	}
	if _, err := m.Forward(context.Background(), model.Request{Tokens: smallTokens, Hooks: []model.Hook{s.Hook()}}); err == nil {
		t.Fatal("forward accepted a size mismatch")
	}
	s, _ = a.Splice(0, model.MLPPostAct)
	s.Ablations = []LatentAblation{{Batch: 0, Token: 0, Latent: a.NLatents}}
	if _, err := m.Forward(context.Background(), model.Request{Tokens: smallTokens, Hooks: []model.Hook{s.Hook()}}); err == nil {
		t.Fatal("forward accepted an out-of-range latent")
	}
}

// TestLatentGrad checks LatentGrad against finite differences of the model
// through the splice (moving one latent by ±ε via an ablation), and
// WriteVector and PreActGrad against their definitions.
func TestLatentGrad(t *testing.T) {
	m := smallModel(t)
	for _, tc := range spliceCases {
		t.Run(tc.name, func(t *testing.T) {
			a := loadCase(t, tc.act, tc.in)
			s, _ := a.Splice(tc.layer, tc.loc)
			res, err := m.Forward(context.Background(), model.Request{Tokens: smallTokens, Hooks: []model.Hook{s.Hook()}, Backward: true})
			if err != nil {
				t.Fatal(err)
			}
			const target = 7
			T := res.T
			seed := model.NewTensor(len(smallTokens), T, m.Vocab)
			last := res.Lengths[0] - 1
			seed.Data[last*m.Vocab+target] = 1 // scalar: logits[0, last, target]
			grads, err := res.Backward(map[model.Site]*model.Tensor{logitsSite: seed}, model.BackwardOptions{Keep: []model.Site{s.Site}})
			if err != nil {
				t.Fatal(err)
			}
			z := s.Latents.Clone()
			lg, err := s.LatentGrad(grads[s.Site])
			if err != nil {
				t.Fatal(err)
			}
			scalar := func(tok, i int, v float32) float64 {
				s.Ablations = []LatentAblation{{Batch: 0, Token: tok, Latent: i, Value: v}}
				defer func() { s.Ablations = nil }()
				r := forward(t, m, model.Request{Capture: []model.Site{logitsSite}, Hooks: []model.Hook{s.Hook()}})
				return float64(r.Acts[logitsSite].Data[last*m.Vocab+target])
			}
			const eps = 1e-2
			checked := 0
			for _, tok := range []int{0, last} {
				for _, i := range []int{1, 17, 60} {
					v := z.Data[tok*a.NLatents+i]
					fd := (scalar(tok, i, v+eps) - scalar(tok, i, v-eps)) / (2 * eps)
					got := float64(lg.Data[tok*a.NLatents+i])
					if math.Abs(fd-got) > 2e-3*(1+math.Abs(fd)) {
						t.Errorf("token %d latent %d: LatentGrad %g, finite difference %g", tok, i, got, fd)
					}
					checked++
				}
			}
			// WriteVector is the change of the site per unit of latent.
			wv, err := s.WriteVector(0, 1, 3)
			if err != nil {
				t.Fatal(err)
			}
			before := forward(t, m, model.Request{Capture: []model.Site{s.Site}, Hooks: []model.Hook{s.Hook()}}).Acts[s.Site]
			s.Ablations = []LatentAblation{{Batch: 0, Token: 1, Latent: 3, Value: s.Latents.Data[1*a.NLatents+3] + 1}}
			after := forward(t, m, model.Request{Capture: []model.Site{s.Site}, Hooks: []model.Hook{s.Hook()}}).Acts[s.Site]
			s.Ablations = nil
			in := a.NInputs
			diff := make([]float32, in)
			for j := range diff {
				diff[j] = after.Data[in+j] - before.Data[in+j]
			}
			assertClose(t, "write vector", diff, wv, 1e-5)
		})
	}
}

// TestPreActGrad compares PreActGrad with finite differences of the encoder
// along a direction that leaves the token's std unchanged to first order
// (the approximation holds std constant; along it, it is exact).
func TestPreActGrad(t *testing.T) {
	m := smallModel(t)
	for _, act := range []string{"ReLU", "TopK"} {
		a := loadCase(t, act, 64)
		s, _ := a.Splice(0, model.MLPPostAct)
		res := forward(t, m, model.Request{Capture: []model.Site{s.Site}, Hooks: []model.Hook{s.Hook()}})
		const b, tok, lat = 1, 2, 9
		T := res.T
		x := res.Acts[s.Site].Data[(b*T+tok)*64 : (b*T+tok+1)*64]
		g, err := s.PreActGrad(b, tok, lat)
		if err != nil {
			t.Fatal(err)
		}
		preAct := func(v []float64) float64 {
			xs := make([]float32, len(v))
			for i := range v {
				xs[i] = float32(v[i])
			}
			// Identity activation exposes the pre-activation.
			id := *a
			id.Activation = Identity
			c, err := id.Encode(xs, 1)
			if err != nil {
				t.Fatal(err)
			}
			return float64(c.Latents[lat])
		}
		rng := rand.New(rand.NewPCG(4, 5))
		u := make([]float64, 64)
		for i := range u {
			u[i] = rng.NormFloat64()
		}
		// Remove the component along x − mean(x): along the rest std is
		// unchanged to first order, and a shift along 1 moves only the mean
		// (which PreActGrad treats exactly).
		var mu float64
		for _, v := range x {
			mu += float64(v) / 64
		}
		c := make([]float64, 64)
		for i, v := range x {
			c[i] = float64(v) - mu
		}
		for i := range u {
			u[i] += 0.5 // a sizeable component along 1
		}
		project(u, func(i int) float64 { return c[i] })
		// Unit direction, step small against the token's spread.
		var un, cn float64
		for i := range u {
			un += u[i] * u[i]
			cn += c[i] * c[i]
		}
		for i := range u {
			u[i] /= math.Sqrt(un)
		}
		eps := 1e-2 * math.Sqrt(cn)
		plus, minus := make([]float64, 64), make([]float64, 64)
		for i := range u {
			plus[i] = float64(x[i]) + eps*u[i]
			minus[i] = float64(x[i]) - eps*u[i]
		}
		fd := (preAct(plus) - preAct(minus)) / (2 * eps)
		var dot float64
		for i := range u {
			dot += float64(g[i]) * u[i]
		}
		if math.Abs(fd-dot) > 1e-3*(1+math.Abs(fd)) {
			t.Errorf("%s: PreActGrad·u = %g, finite difference %g", act, dot, fd)
		}
	}
}

// project removes from u its component along the vector f(i).
func project(u []float64, f func(int) float64) {
	var uv, vv float64
	for i := range u {
		uv += u[i] * f(i)
		vv += f(i) * f(i)
	}
	for i := range u {
		u[i] -= uv / vv * f(i)
	}
}

// TestSpliceFixture splices the fixture's TopK autoencoder into the tiny
// HF-parity model: the latents it exposes match the reference ones.
func TestSpliceFixture(t *testing.T) {
	dir := fixtureDir(t)
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids := readRef(t, dir, "input_ids")
	B, T := ids.Shape[0], ids.Shape[1]
	tokens := make([][]int, B)
	for b := range tokens {
		for _, v := range ids.Data[b*T : (b+1)*T] {
			tokens[b] = append(tokens[b], int(v))
		}
	}
	for _, name := range []string{"relu", "topk"} {
		a, err := Load(context.Background(), filepath.Join(dir, "sae_"+name+".pt"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := a.Splice(1, model.MLPPostAct)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Check(m.Config); err != nil {
			t.Fatal(err)
		}
		res, err := m.Forward(context.Background(), model.Request{Tokens: tokens, Capture: []model.Site{logitsSite}, Hooks: []model.Hook{s.Hook()}})
		if err != nil {
			t.Fatal(err)
		}
		assertClose(t, name+" latents", s.Latents.Data, readRef(t, dir, "sae."+name+".latents").Data, 1e-4)
		assertClose(t, name+" logits", res.Acts[logitsSite].Data, readRef(t, dir, "logits").Data, 1e-4)
	}
}
