package debugger

import (
	"container/heap"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"tdb/model"
)

// nodeSpace numbers every node of one prompt: embeddings, then neurons
// ((layer·T + token)·d_mlp + neuron), then head pairs
// (((layer·T + query)·T + key)·H + head; key > query is not a node).
type nodeSpace struct {
	L, T, dmlp, H   int
	offMLP, offAttn int
	// extra holds sparse nodes (active autoencoder latents) after the heads.
	offExtra    int
	extra       []Node
	extraRef    []latentRef
	skipNeurons []bool // layers whose neurons are replaced by MLP latents
	total       int
}

func (s *nodeSpace) addLatents(nodes []Node, refs []latentRef) {
	s.extra, s.extraRef = nodes, refs
	s.total = s.offExtra + len(nodes)
}

func newNodeSpace(L, T, dmlp, H int) nodeSpace {
	s := nodeSpace{L: L, T: T, dmlp: dmlp, H: H, offMLP: T}
	s.offAttn = s.offMLP + L*T*dmlp
	s.offExtra = s.offAttn + L*T*T*H
	s.total = s.offExtra
	s.skipNeurons = make([]bool, L)
	return s
}

func (s nodeSpace) node(i int) Node {
	switch {
	case i < s.offMLP:
		return Node{Type: Embedding, Token: i, Layer: 0}
	case i < s.offAttn:
		i -= s.offMLP
		return Node{Type: MLPNeuron, Layer: i / (s.T * s.dmlp), Token: i / s.dmlp % s.T, Index: i % s.dmlp}
	case i >= s.offExtra:
		return s.extra[i-s.offExtra]
	}
	i -= s.offAttn
	h, k, q, l := i%s.H, i/s.H%s.T, i/(s.H*s.T)%s.T, i/(s.H*s.T*s.T)
	return Node{Type: AttnHead, Layer: l, Token: q, KeyToken: k, Index: h}
}

func (s nodeSpace) valid(i int) bool {
	if i >= s.offExtra {
		return true
	}
	if i < s.offAttn {
		return i < s.offMLP || !s.skipNeurons[(i-s.offMLP)/(s.T*s.dmlp)]
	}
	i -= s.offAttn
	return i/s.H%s.T <= i/(s.H*s.T)%s.T
}

// metrics holds the four columns over a node space, one number per node.
type metrics struct {
	activation     []float32 // ColActivation
	writeNorm      []float32 // ColWriteNorm
	actTimesGrad   []float32 // ColActTimesGrad
	directionWrite []float32 // ColDirectEffect
}

func newMetrics(n int) *metrics {
	return &metrics{make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)}
}

// column returns the column named by one of Columns.
func (mt *metrics) column(name string) []float32 {
	switch name {
	case ColActivation:
		return mt.activation
	case ColWriteNorm:
		return mt.writeNorm
	case ColActTimesGrad:
		return mt.actTimesGrad
	case ColDirectEffect:
		return mt.directionWrite
	}
	panic("debugger: unknown column " + name) // Columns is fixed: a programming error
}

// metrics computes the four numbers of every node of batch row r.
func (e *Engine) metrics(s nodeSpace, fwd *model.Result, grads map[model.Site]*model.Tensor, gstar []float32, r int, at point) *metrics {
	e.init()
	m := e.Model
	T, D, dmlp, H := s.T, m.DModel, m.DMLP, m.NHead
	mt := newMetrics(s.total)
	// positions where g* is non-zero (the loss's last token, the traced node's tokens)
	var live []int
	for t := range T {
		for _, v := range gstar[t*D : (t+1)*D] {
			if v != 0 {
				live = append(live, t)
				break
			}
		}
	}
	emb := fwd.Acts[model.At(model.ResidPostEmb, model.NoLayer)].Data[r*T*D:]
	gEmb := grads[model.At(model.ResidPostEmb, model.NoLayer)].Data[r*T*D:]
	embDirect := before(point{0, false}, at)
	for t := range T {
		x := emb[t*D : (t+1)*D]
		mt.activation[t] = 1
		mt.writeNorm[t] = norm(x)
		mt.actTimesGrad[t] = float32(dot(x, gEmb[t*D:(t+1)*D]))
		if embDirect {
			mt.directionWrite[t] = float32(dot(x, gstar[t*D:(t+1)*D]))
		}
	}
	proj := make([]float32, max(dmlp, D))
	for l := range s.L {
		post := fwd.Acts[model.At(model.MLPPostAct, l)].Data[r*T*dmlp:]
		gPost := grads[model.At(model.MLPPostAct, l)].Data[r*T*dmlp:]
		base := s.offMLP + l*T*dmlp
		for i := range T * dmlp {
			a := post[i]
			mt.activation[base+i] = a
			mt.writeNorm[base+i] = a * e.outNorms[l][i%dmlp]
			mt.actTimesGrad[base+i] = a * gPost[i]
		}
		if before(point{l + 1, false}, at) {
			for _, t := range live {
				gemv(m.Blocks[l].OutW, dmlp, D, gstar[t*D:(t+1)*D], proj[:dmlp]) // W_out·g*[t]
				for n := range dmlp {
					mt.directionWrite[base+t*dmlp+n] = post[t*dmlp+n] * proj[n]
				}
			}
		}
		// heads: write vector of (key, head) is V[k,h]·W_O[h]
		probs := fwd.Acts[model.At(model.AttnQKProbs, l)].Data[r*T*T*H:]
		gProbs := grads[model.At(model.AttnQKProbs, l)].Data[r*T*T*H:]
		v := fwd.Acts[model.At(model.AttnV, l)].Data[r*T*D:]
		vw := e.valueWrites(l, v, T)
		vwNorm := make([]float32, T*H)
		for i := range vwNorm {
			vwNorm[i] = norm(vw[i*D : (i+1)*D])
		}
		direct := before(point{l, true}, at)
		base = s.offAttn + l*T*T*H
		for q := range T {
			for k := 0; k <= q; k++ {
				for h := range H {
					i := (q*T+k)*H + h
					p := probs[i]
					mt.activation[base+i] = p
					mt.writeNorm[base+i] = p * vwNorm[k*H+h]
					mt.actTimesGrad[base+i] = p * gProbs[i]
				}
			}
		}
		if direct {
			for _, q := range live {
				for k := 0; k <= q; k++ {
					for h := range H {
						i := (q*T+k)*H + h
						mt.directionWrite[base+i] = probs[i] * float32(dot(vw[(k*H+h)*D:(k*H+h+1)*D], gstar[q*D:(q+1)*D]))
					}
				}
			}
		}
	}
	return mt
}

// valueWrites returns V[k,h]·W_O[h] for every key token and head: [T, H, D],
// one strided GEMM per head.
func (e *Engine) valueWrites(l int, v []float32, T int) []float32 {
	m := e.Model
	D, H, dh := m.DModel, m.NHead, m.DHead()
	out := make([]float32, T*H*D)
	w := m.Blocks[l].ProjW
	for h := range H {
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
			blas32.General{Rows: T, Cols: dh, Stride: H * dh, Data: v[h*dh:]},
			blas32.General{Rows: dh, Cols: D, Stride: D, Data: w[h*dh*D:]},
			0, blas32.General{Rows: T, Cols: D, Stride: H * D, Data: out[h*D:]})
	}
	return out
}

func (s nodeSpace) tokenEffects(axg []float32) TokenEffects {
	te := TokenEffects{Embedding: make([]float64, s.T), MLP: make([]float64, s.T), AttentionFrom: make([]float64, s.T), AttentionTo: make([]float64, s.T)}
	if len(s.extra) > 0 {
		te.Latents = make([]float64, s.T)
		for j, n := range s.extra {
			te.Latents[n.Token] += float64(axg[s.offExtra+j])
		}
	}
	for t := range s.T {
		te.Embedding[t] = float64(axg[t])
	}
	for l := range s.L {
		for t := range s.T {
			for n := range s.dmlp {
				if !s.skipNeurons[l] {
					te.MLP[t] += float64(axg[s.offMLP+(l*s.T+t)*s.dmlp+n])
				}
			}
			for k := 0; k <= t; k++ {
				for h := range s.H {
					v := float64(axg[s.offAttn+((l*s.T+t)*s.T+k)*s.H+h])
					te.AttentionFrom[t] += v
					te.AttentionTo[k] += v
				}
			}
		}
	}
	return te
}

// ranked is a bounded heap keeping the k largest (value, -index) pairs.
type ranked struct {
	idx []int
	val []float64
}

func (h *ranked) Len() int { return len(h.idx) }
func (h *ranked) Less(i, j int) bool {
	if h.val[i] != h.val[j] {
		return h.val[i] < h.val[j]
	}
	return h.idx[i] > h.idx[j]
}
func (h *ranked) Swap(i, j int) {
	h.idx[i], h.idx[j] = h.idx[j], h.idx[i]
	h.val[i], h.val[j] = h.val[j], h.val[i]
}
func (h *ranked) Push(x any) {
	p := x.([2]float64)
	h.idx = append(h.idx, int(p[0]))
	h.val = append(h.val, p[1])
}
func (h *ranked) Pop() any {
	n := len(h.idx) - 1
	p := [2]float64{float64(h.idx[n]), h.val[n]}
	h.idx, h.val = h.idx[:n], h.val[:n]
	return p
}

// topK returns the indices of the k largest values (ties: lower index first), best first.
func topK(s nodeSpace, k int, value func(i int) float64) []int {
	h := &ranked{}
	for i := range s.total {
		v := value(i)
		if math.IsNaN(v) || !s.valid(i) {
			continue
		}
		if h.Len() < k {
			heap.Push(h, [2]float64{float64(i), v})
		} else if v > h.val[0] || v == h.val[0] && i < h.idx[0] {
			h.idx[0], h.val[0] = i, v
			heap.Fix(h, 0)
		}
	}
	out := make([]int, h.Len())
	for j := len(out) - 1; j >= 0; j-- {
		out[j] = int(heap.Pop(h).([2]float64)[0])
	}
	return out
}

// table builds the node table: top-k and bottom-k of each column (and of
// each column's difference when comparing), their union, all numbers.
func (e *Engine) table(p *prepared, s nodeSpace, rows []*metrics) []NodeRow {
	k := p.req.TopK
	main := rows[0]
	// Diff compares with the baseline when there are ablations, else with
	// the second prompt (rows: main, [baseline], [right]).
	var other *metrics
	if len(rows) > 1 {
		other = rows[1]
	}
	reasons := map[int][]string{}
	var order []int
	add := func(ids []int, why string) {
		for _, i := range ids {
			if _, ok := reasons[i]; !ok {
				order = append(order, i)
			}
			reasons[i] = append(reasons[i], why)
		}
	}
	for _, col := range Columns {
		vals := main.column(col)
		add(topK(s, k, func(i int) float64 { return float64(vals[i]) }), "top "+col)
		add(topK(s, k, func(i int) float64 { return -float64(vals[i]) }), "bottom "+col)
		if other != nil {
			ov := other.column(col)
			add(topK(s, k, func(i int) float64 { return float64(vals[i] - ov[i]) }), "top diff "+col)
			add(topK(s, k, func(i int) float64 { return float64(ov[i] - vals[i]) }), "bottom diff "+col)
		}
	}
	out := make([]NodeRow, 0, len(order))
	for _, i := range order {
		n := s.node(i)
		nr := NodeRow{Node: n, Name: n.Name(), Metrics: map[string]Values{}, Reason: reasons[i]}
		for _, col := range Columns {
			v := Values{Value: float64(main.column(col)[i])}
			for r := 1; r < len(rows); r++ {
				x := float64(rows[r].column(col)[i])
				if p.rows[r].label == "baseline" {
					v.Baseline = &x
				} else {
					v.Right = &x
				}
			}
			if other != nil {
				d := float64(main.column(col)[i] - other.column(col)[i])
				v.Diff = &d
			}
			nr.Metrics[col] = v
		}
		out = append(out, nr)
	}
	return out
}

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

// String renders a node row compactly (for logs and tests).
func (r NodeRow) String() string {
	return fmt.Sprintf("%s act=%.4g write=%.4g axg=%.4g direct=%.4g", r.Name, r.Metrics[ColActivation].Value,
		r.Metrics[ColWriteNorm].Value, r.Metrics[ColActTimesGrad].Value, r.Metrics[ColDirectEffect].Value)
}
