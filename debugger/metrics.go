package debugger

import (
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

// attentionPairs sums attention nodes' values over layers and heads per
// (query, key) pair: [query][key], zero above the diagonal.
func (s nodeSpace) attentionPairs(v []float32) [][]float64 {
	out := make([][]float64, s.T)
	for q := range s.T {
		out[q] = make([]float64, s.T)
	}
	for l := range s.L {
		for q := range s.T {
			for k := 0; k <= q; k++ {
				for h := range s.H {
					out[q][k] += float64(v[s.offAttn+((l*s.T+q)*s.T+k)*s.H+h])
				}
			}
		}
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
