package model

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"tdb/kernels"
)

// BackwardOptions shape a backward pass.
type BackwardOptions struct {
	// Stop lists sites where the gradient is recorded but not propagated
	// further upstream. Freezing a LayerNorm scale is Stop at its
	// *.scale site (TDB freezes resid.ln_f.scale); tracing through the query
	// only is Stop at attn.k of that layer, the key only at attn.q, the value
	// path only at attn.qk_probs.
	Stop []Site
	// Keep lists the sites whose gradients are returned (zeros for sites
	// downstream of every seed); nil keeps all the pass reached.
	Keep []Site
}

// Backward computes the gradient of the scalar Σ_site Σ seed·activation,
// i.e. seeds are dScalar/dActivation at the sites the scalar is built from
// ([B, T, ...] like the activations). It returns the gradient at every site
// of the forward pass (or those in opts.Keep), in the same layout.
// Interventions are constants: no gradient flows through the set elements.
func (r *Result) Backward(seeds map[Site]*Tensor, opts BackwardOptions) (map[Site]*Tensor, error) {
	tp := r.tape
	if tp == nil {
		return nil, errors.New("backward: the forward pass did not keep its tape (set Request.Backward)")
	}
	m := r.m
	b := &backward{m: m, tp: tp, lengths: r.Lengths, seeds: map[Site][]float32{}, stop: map[Site]bool{}, out: map[Site]*Tensor{}}
	if opts.Keep != nil {
		b.keep = map[Site]bool{}
		for _, s := range opts.Keep {
			b.keep[s] = true
		}
	}
	for _, s := range opts.Stop {
		if err := m.check(s); err != nil {
			return nil, fmt.Errorf("backward: %w", err)
		}
		b.stop[s] = true
	}
	top := -1
	final := false
	for s, t := range seeds {
		if err := m.check(s); err != nil {
			return nil, fmt.Errorf("backward seed: %w", err)
		}
		want := append([]int{tp.B}, m.SiteShape(s.Loc, tp.T)...)
		if !slices.Equal(t.Shape, want) {
			return nil, fmt.Errorf("backward seed %s: shape %v, want %v", s, t.Shape, want)
		}
		internal := make([]float32, internalLen(m.Config, s.Loc, tp.B, tp.T))
		sem, writeBack := toSemantic(m.Config, s.Loc, tp.B, tp.T, internal)
		copy(sem.Data, t.Data)
		zeroPadding(sem, r.Lengths, tp.T) // padding has no activations, so no seed
		if writeBack != nil {
			writeBack()
		}
		b.seeds[s] = internal
		if s.Loc.HasLayer() {
			top = max(top, s.Layer)
		} else if s.Loc != ResidPostEmb {
			final = true
		}
	}
	if final {
		top = m.NLayer - 1
	}
	b.run(top, final)
	for _, s := range opts.Keep { // sites downstream of every seed have zero gradient
		if _, ok := b.out[s]; !ok {
			if err := m.check(s); err != nil {
				return nil, fmt.Errorf("backward keep: %w", err)
			}
			b.out[s] = NewTensor(append([]int{tp.B}, m.SiteShape(s.Loc, tp.T)...)...)
		}
	}
	return b.out, nil
}

func internalLen(c Config, loc Location, B, T int) int {
	if loc == AttnQ || loc == AttnK || loc == AttnV {
		return B * T * 3 * c.DModel
	}
	n := B
	for _, d := range c.SiteShape(loc, T) {
		n *= d
	}
	return n
}

type backward struct {
	m       *Model
	tp      *tape
	lengths []int
	seeds   map[Site][]float32
	stop    map[Site]bool
	keep    map[Site]bool
	out     map[Site]*Tensor
}

// at finishes the gradient g (internal layout) of a site: adds its seed,
// records it, then applies stops and interventions to what flows upstream.
// It returns false when nothing flows upstream.
func (b *backward) at(s Site, g []float32) bool {
	// A q/k/v seed fills only its part of the shared qkv layout, so adding
	// the whole buffer is right for them too.
	for i, v := range b.seeds[s] {
		g[i] += v
	}
	if b.keep == nil || b.keep[s] {
		sem, wb := toSemantic(b.m.Config, s.Loc, b.tp.B, b.tp.T, g)
		if wb == nil {
			sem = sem.Clone()
		}
		zeroPadding(sem, b.lengths, b.tp.T)
		b.out[s] = sem
	}
	if b.stop[s] {
		if s.Loc == AttnQ || s.Loc == AttnK || s.Loc == AttnV {
			sem, wb := toSemantic(b.m.Config, s.Loc, b.tp.B, b.tp.T, g)
			clear(sem.Data)
			wb()
			return true
		}
		clear(g)
		return false
	}
	if ivs := b.tp.sets[s]; len(ivs) > 0 {
		sem, wb := toSemantic(b.m.Config, s.Loc, b.tp.B, b.tp.T, g)
		for _, iv := range ivs {
			for _, i := range iv.Index {
				sem.Data[i] = 0
			}
		}
		if wb != nil {
			wb()
		}
	}
	return true
}

func (b *backward) run(top int, final bool) {
	m, tp := b.m, b.tp
	N, d := tp.B*tp.T, m.DModel
	g := make([]float32, N*d) // gradient flowing in the residual stream
	if final {
		gLogits := make([]float32, N*m.Vocab)
		b.at(At(Logits, NoLayer), gLogits)
		gOut := make([]float32, N*d)
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, general(N, m.Vocab, m.Vocab, gLogits), general(m.Vocab, d, d, m.WTE), 0, general(N, d, d, gOut))
		b.at(At(LnFOut, NoLayer), gOut)
		b.layerNorm(At(LnFScale, NoLayer), g, gOut, tp.final, tp.meanF, tp.scaleF, m.LnFG)
	}
	for l := top; l >= 0; l-- {
		b.block(l, g)
	}
	b.at(At(ResidPostEmb, NoLayer), g)
}

// layerNorm propagates dout through a LayerNorm into dx (accumulating).
func (b *backward) layerNorm(scaleSite Site, dx, dout, x, mean, scale, gain []float32) {
	N, d := b.tp.B*b.tp.T, b.m.DModel
	dscale := make([]float32, N)
	if seed := b.seeds[scaleSite]; seed != nil {
		copy(dscale, seed)
	}
	through := !b.stop[scaleSite] && len(b.tp.sets[scaleSite]) == 0
	saved := b.seeds[scaleSite]
	delete(b.seeds, scaleSite) // already folded into dscale
	layerNormBackward(dx, dscale, dout, x, mean, scale, gain, N, d, through)
	b.at(scaleSite, dscale)
	if saved != nil {
		b.seeds[scaleSite] = saved
	}
}

func (b *backward) block(l int, g []float32) {
	m, tp := b.m, b.tp
	lt := &tp.layers[l]
	w := &m.Blocks[l]
	B, T, N, d, mlp := tp.B, tp.T, tp.B*tp.T, m.DModel, m.DMLP
	H, dh := m.NHead, m.DHead()
	site := func(loc Location) Site { return At(loc, l) }

	// resid.post_mlp = mid + delta_mlp
	if !b.at(site(ResidPostMLP), g) {
		clear(g)
	}
	gDelta := append([]float32(nil), g...)
	if b.at(site(ResidDeltaMLP), gDelta) {
		gPost := make([]float32, N*mlp)
		linearBackward(gPost, gDelta, N, mlp, w.OutW, d)
		if b.at(site(MLPPostAct), gPost) {
			gPre := make([]float32, N*mlp)
			geluBackward(gPre, gPost, lt.pre)
			if b.at(site(MLPPreAct), gPre) {
				gLn := make([]float32, N*d)
				linearBackward(gLn, gPre, N, d, w.FcW, mlp)
				if b.at(site(MLPLnOut), gLn) {
					b.layerNorm(site(MLPLnScale), g, gLn, lt.mid, lt.mean2, lt.scale2, w.Ln2G)
				}
			}
		}
	}
	// resid.post_attn = x + delta_attn
	if !b.at(site(ResidPostAttn), g) {
		clear(g)
	}
	gDelta = append(gDelta[:0], g...)
	if !b.at(site(ResidDeltaAtt), gDelta) {
		return
	}
	gVout := make([]float32, N*d)
	linearBackward(gVout, gDelta, N, d, w.ProjW, d)
	if !b.at(site(AttnVOut), gVout) {
		return
	}
	gProbs := make([]float32, B*H*T*T)
	gQKV := make([]float32, N*3*d)
	parallel(B*H, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			bb, h := bh/H, bh%H
			v := lt.qkv[bb*T*3*d+2*d+h*dh:]
			gv := gQKV[bb*T*3*d+2*d+h*dh:]
			gvo := gVout[bb*T*d+h*dh:]
			p := lt.probs[bh*T*T:]
			// dP = dVout·V^T ; dV = P^T·dVout
			blas32.Gemm(blas.NoTrans, blas.Trans, 1, general(T, dh, d, gvo), general(T, dh, 3*d, v), 0, general(T, T, T, gProbs[bh*T*T:]))
			blas32.Gemm(blas.Trans, blas.NoTrans, 1, general(T, T, T, p), general(T, dh, d, gvo), 0, general(T, dh, 3*d, gv))
		}
	})
	if b.at(site(AttnQKProbs), gProbs) {
		gLogits := gProbs // softmax backward in place, row by row
		parallel(B*H*T, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				kernels.SoftmaxGrad(gLogits[r*T:(r+1)*T], lt.probs[r*T:(r+1)*T])
			}
		})
		if b.at(site(AttnQKLogits), gLogits) {
			inv := float32(1 / math.Sqrt(float64(dh)))
			parallel(B*H, func(lo, hi int) {
				for bh := lo; bh < hi; bh++ {
					bb, h := bh/H, bh%H
					gs := gLogits[bh*T*T:]
					for i := range T { // masked entries carry no gradient
						clear(gs[i*T+i+1 : (i+1)*T])
					}
					q, k := lt.qkv[bb*T*3*d+h*dh:], lt.qkv[bb*T*3*d+d+h*dh:]
					gq, gk := gQKV[bb*T*3*d+h*dh:], gQKV[bb*T*3*d+d+h*dh:]
					// S = inv·Q·K^T: dQ = inv·dS·K ; dK = inv·dS^T·Q
					blas32.Gemm(blas.NoTrans, blas.NoTrans, inv, general(T, T, T, gs), general(T, dh, 3*d, k), 0, general(T, dh, 3*d, gq))
					blas32.Gemm(blas.Trans, blas.NoTrans, inv, general(T, T, T, gs), general(T, dh, 3*d, q), 0, general(T, dh, 3*d, gk))
				}
			})
		}
	}
	for _, loc := range []Location{AttnQ, AttnK, AttnV} {
		b.at(site(loc), gQKV)
	}
	gLn := make([]float32, N*d)
	linearBackward(gLn, gQKV, N, d, w.AttnW, 3*d)
	if b.at(site(AttnLnOut), gLn) {
		b.layerNorm(site(AttnLnScale), g, gLn, lt.x, lt.mean1, lt.scale1, w.Ln1G)
	}
}
