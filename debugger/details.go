package debugger

import (
	"math"

	"tdb/model"
)

// details computes the token views of nodes on the main row; the views
// through the vocabulary are scored together, in one GEMM.
func (e *Engine) details(nodes []Node, fwd *model.Result, p *prepared) []NodeDetail {
	const k = 10
	out := make([]NodeDetail, len(nodes))
	lens := &tokenLens{k: k}
	for i, n := range nodes {
		out[i] = NodeDetail{Node: n, Name: n.Name()}
		e.detail(&out[i], fwd, p, lens, k)
	}
	lens.run(e)
	return out
}

// detail fills what d's node shows, queueing its vocabulary views on lens.
func (e *Engine) detail(d *NodeDetail, fwd *model.Result, p *prepared, lens *tokenLens, k int) {
	m := e.Model
	n := d.Node
	T, D, H, dh := p.T, m.DModel, m.NHead, m.DHead()
	switch n.Type {
	case MLPNeuron:
		a := fwd.Acts[model.At(model.MLPPostAct, n.Layer)].Data[n.Token*m.DMLP+n.Index]
		write := m.Blocks[n.Layer].OutW[n.Index*D : (n.Index+1)*D]
		lens.output(e, write, float64(a), &d.Upvoted, &d.Downvoted)
		lens.input(e.neuronInput(n), &d.InputTokens, &d.InputTokensDown)
	case AttnHead:
		l := n.Layer
		v := fwd.Acts[model.At(model.AttnV, l)].Data
		key := n.KeyToken
		if key < 0 {
			key = n.Token
		}
		vw := e.valueWrites(l, v[:T*H*dh], T)
		lens.output(e, vw[(key*H+n.Index)*D:(key*H+n.Index+1)*D], 1, &d.Upvoted, &d.Downvoted)
		probs := fwd.Acts[model.At(model.AttnQKProbs, l)].Data
		toks := p.rows[0].tokens
		disp := e.Tok.Display(toks)
		var to, from []ScoredToken
		for j := 0; j <= n.Token; j++ {
			to = append(to, ScoredToken{Token: Token{toks[j], disp[j]}, Position: j, Score: float64(probs[(n.Token*T+j)*H+n.Index])})
		}
		for q := key; q < T; q++ {
			from = append(from, ScoredToken{Token: Token{toks[q], disp[q]}, Position: q, Score: float64(probs[(q*T+key)*H+n.Index])})
		}
		d.AttendedTo, d.AttendedFrom = bestScored(to, k), bestScored(from, k)
	case MLPLatent, AttnLatent:
		e.latentDetail(d, fwd, p, lens, k)
	}
}

// latentDetail: the latent's write through the unembedding, the input
// tokens that upvote it (MLP latents), and for attention latents the key
// tokens whose attention writes most along its encoder direction.
func (e *Engine) latentDetail(d *NodeDetail, fwd *model.Result, p *prepared, lens *tokenLens, k int) {
	m := e.Model
	n := d.Node
	var sp *splice
	for _, x := range p.splices {
		if x.slot == (aeSlot{n.Type, n.Layer}) {
			sp = x
		}
	}
	if sp == nil {
		return
	}
	i, _ := sp.reg.ae.IndexOf(n.Index)
	T, D := p.T, m.DModel
	a := sp.s.Latents.Data[n.Token*sp.reg.ae.NLatents+i]
	w, err := sp.s.WriteVector(0, n.Token, i)
	if err != nil {
		return
	}
	if sp.reg.loc == model.MLPPostAct {
		w = e.neuronsWrite(n.Layer, w)
	}
	lens.output(e, w, float64(a), &d.Upvoted, &d.Downvoted)
	g, err := sp.s.PreActGrad(0, n.Token, i)
	if err != nil {
		return
	}
	if n.Type == MLPLatent {
		// back through the MLP at this token to its input, then ln_2's gain
		// (scale frozen); the LayerNorm's centring is applied in inputTokens
		b := &m.Blocks[n.Layer]
		gPost := g
		if sp.reg.loc == model.ResidDeltaMLP {
			gPost = make([]float32, m.DMLP)
			gemv(b.OutW, m.DMLP, D, g, gPost)
		}
		pre := fwd.Acts[model.At(model.MLPPreAct, n.Layer)]
		u := make([]float32, D)
		if pre != nil {
			pt := pre.Data[n.Token*m.DMLP : (n.Token+1)*m.DMLP]
			for j := range gPost {
				x := float64(pt[j])
				t := math.Tanh(0.7978845608028654 * (x + 0.044715*x*x*x))
				gPost[j] *= float32(0.5*(1+t) + 0.5*x*(1-t*t)*0.7978845608028654*(1+3*0.044715*x*x))
			}
			gemv(b.FcW, D, m.DMLP, gPost, u)
			for o := range u {
				u[o] *= b.Ln2G[o]
			}
			lens.input(u, &d.InputTokens, &d.InputTokensDown)
		}
		return
	}
	// attention latent: key tokens by (Σ_heads write from that key)·encoder direction
	H := m.NHead
	probs := fwd.Acts[model.At(model.AttnQKProbs, n.Layer)].Data
	vw := e.valueWrites(n.Layer, fwd.Acts[model.At(model.AttnV, n.Layer)].Data[:T*D], T)
	toks := p.rows[0].tokens
	disp := e.Tok.Display(toks)
	var keys []ScoredToken
	for key := 0; key <= n.Token; key++ {
		var score float64
		for h := range H {
			score += float64(probs[(n.Token*T+key)*H+h]) * dot(vw[(key*H+h)*D:(key*H+h+1)*D], g)
		}
		keys = append(keys, ScoredToken{Token: Token{toks[key], disp[key]}, Position: key, Score: score})
	}
	d.AttendedTo = bestScored(keys, 3)
}

func bestScored(xs []ScoredToken, k int) []ScoredToken {
	for i := 1; i < len(xs); i++ { // insertion sort: short lists
		for j := i; j > 0 && xs[j].Score > xs[j-1].Score; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
	return xs[:min(k, len(xs))]
}

// neuronsWrite maps a vector over layer l's neurons into the residual
// stream: W_outᵀ·w.
func (e *Engine) neuronsWrite(l int, w []float32) []float32 {
	m := e.Model
	D := m.DModel
	wr := make([]float32, D)
	for j, x := range w {
		row := m.Blocks[l].OutW[j*D : (j+1)*D]
		for o := range wr {
			wr[o] += x * row[o]
		}
	}
	return wr
}

// neuronInput is what an MLP neuron reads from the residual stream through
// ln_2 (gain applied, scale frozen): ln_2 gain ⊙ W_fc's column.
func (e *Engine) neuronInput(n Node) []float32 {
	m := e.Model
	b := &m.Blocks[n.Layer]
	u := make([]float32, m.DModel)
	for i := range u {
		u[i] = b.Ln2G[i] * b.FcW[i*m.DMLP+n.Index]
	}
	return u
}
