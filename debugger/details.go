package debugger

import (
	"math"

	"tdb/model"
)

// detail computes the token views of one node on the main row.
func (e *Engine) detail(n Node, fwd *model.Result, p *prepared) NodeDetail {
	m := e.Model
	T, D, H, dh := p.T, m.DModel, m.NHead, m.DHead()
	d := NodeDetail{Node: n, Name: n.Name()}
	const k = 10
	switch n.Type {
	case MLPNeuron:
		a := fwd.Acts[model.At(model.MLPPostAct, n.Layer)].Data[n.Token*m.DMLP+n.Index]
		write := m.Blocks[n.Layer].OutW[n.Index*D : (n.Index+1)*D]
		d.Upvoted, d.Downvoted = e.outputTokens(write, float64(a), k)
		u := make([]float32, D)
		for i := range u {
			u[i] = m.Blocks[n.Layer].Ln2G[i] * m.Blocks[n.Layer].FcW[i*m.DMLP+n.Index]
		}
		d.InputTokens = e.inputTokens(u, k)
	case AttnHead:
		l := n.Layer
		v := fwd.Acts[model.At(model.AttnV, l)].Data
		key := n.KeyToken
		if key < 0 {
			key = n.Token
		}
		vw := e.valueWrites(l, v[:T*H*dh], T)
		d.Upvoted, d.Downvoted = e.outputTokens(vw[(key*H+n.Index)*D:(key*H+n.Index+1)*D], 1, k)
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
		e.latentDetail(&d, fwd, p, k)
	}
	return d
}

// latentDetail: the latent's write through the unembedding, the input
// tokens that upvote it (MLP latents), and for attention latents the key
// tokens whose attention writes most along its encoder direction.
func (e *Engine) latentDetail(d *NodeDetail, fwd *model.Result, p *prepared, k int) {
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
		wr := make([]float32, D)
		for j, x := range w { // W_outᵀ·w
			row := m.Blocks[n.Layer].OutW[j*D : (j+1)*D]
			for o := range wr {
				wr[o] += x * row[o]
			}
		}
		w = wr
	}
	d.Upvoted, d.Downvoted = e.outputTokens(w, float64(a), k)
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
			d.InputTokens = e.inputTokens(u, k)
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

// outputTokens: write × (W_U ⊙ ln_f gain), mean-subtracted; swapped when act < 0, none when 0.
func (e *Engine) outputTokens(write []float32, act float64, k int) (up, down []ScoredToken) {
	if act == 0 {
		return nil, nil
	}
	m := e.Model
	w := make([]float32, m.DModel)
	for i := range w {
		w[i] = write[i] * m.LnFG[i]
	}
	scores := e.vocabScores(w)
	up, down = e.extremes(scores, k)
	if act < 0 {
		up, down = down, up
	}
	return up, down
}

// inputTokens projects a residual-stream direction (mean-removed, as the
// LayerNorm removes it) on the token embeddings.
func (e *Engine) inputTokens(u []float32, k int) []ScoredToken {
	var mean float64
	for _, v := range u {
		mean += float64(v) / float64(len(u))
	}
	for i := range u {
		u[i] -= float32(mean)
	}
	up, _ := e.extremes(e.vocabScores(u), k)
	return up
}

func (e *Engine) vocabScores(w []float32) []float64 {
	m := e.Model
	out := make([]float32, m.Vocab)
	gemv(m.WTE, m.Vocab, m.DModel, w, out)
	var mean float64
	for _, v := range out {
		mean += float64(v)
	}
	mean /= float64(len(out))
	scores := make([]float64, len(out))
	for i, v := range out {
		scores[i] = float64(v) - mean
	}
	return scores
}

func (e *Engine) extremes(scores []float64, k int) (top, bottom []ScoredToken) {
	s := nodeSpace{total: len(scores), offMLP: len(scores), offAttn: len(scores)}
	mk := func(ids []int) []ScoredToken {
		out := make([]ScoredToken, len(ids))
		for i, id := range ids {
			out[i] = ScoredToken{Token: Token{id, e.Tok.Display([]int{id})[0]}, Score: scores[id]}
		}
		return out
	}
	return mk(topK(s, k, func(i int) float64 { return scores[i] })), mk(topK(s, k, func(i int) float64 { return -scores[i] }))
}
