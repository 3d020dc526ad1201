package debugger

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// tokenLens collects directions in the residual stream to score against
// every token embedding (W_U = W_E in GPT-2), so that the token views of
// many nodes cost one GEMM [n×D]·[D×V] instead of a pass over the
// vocabulary each. Each direction's scores are mean-subtracted; its top
// and bottom k tokens go where add was told.
type tokenLens struct {
	k    int
	dirs []float32 // n×D
	outs [][2]*[]ScoredToken
}

// add queues a direction; up gets its top k, down (if not nil) its bottom k.
func (b *tokenLens) add(dir []float32, up, down *[]ScoredToken) {
	b.dirs = append(b.dirs, dir...)
	b.outs = append(b.outs, [2]*[]ScoredToken{up, down})
}

// output queues a write's output-token view: write × (W_U ⊙ ln_f gain),
// negated when act < 0, none when act is 0. Negating swaps the upvoted and
// downvoted lists (the node writes −write there) and keeps their scores'
// signs meaning what the lists say: upvoted positive, downvoted negative.
func (b *tokenLens) output(e *Engine, write []float32, act float64, up, down *[]ScoredToken) {
	if act == 0 {
		return
	}
	sign := float32(1)
	if act < 0 {
		sign = -1
	}
	w := make([]float32, len(write))
	for i := range w {
		w[i] = sign * write[i] * e.Model.LnFG[i]
	}
	b.add(w, up, down)
}

// input queues an input-token view: u with its mean removed (as the
// LayerNorm removes it) projected on the token embeddings. u is changed.
func (b *tokenLens) input(u []float32, up, down *[]ScoredToken) {
	var mean float64
	for _, v := range u {
		mean += float64(v) / float64(len(u))
	}
	for i := range u {
		u[i] -= float32(mean)
	}
	b.add(u, up, down)
}

// run scores every queued direction against the vocabulary in one GEMM and
// fills the lists.
func (b *tokenLens) run(e *Engine) {
	m := e.Model
	n, V, D := len(b.outs), m.Vocab, m.DModel
	if n == 0 {
		return
	}
	out := make([]float32, n*V)
	blas32.Gemm(blas.NoTrans, blas.Trans, 1,
		blas32.General{Rows: n, Cols: D, Stride: D, Data: b.dirs},
		blas32.General{Rows: V, Cols: D, Stride: D, Data: m.WTE},
		0, blas32.General{Rows: n, Cols: V, Stride: V, Data: out})
	scores := make([]float64, V)
	for r, o := range b.outs {
		row := out[r*V : (r+1)*V]
		var mean float64
		for _, v := range row {
			mean += float64(v)
		}
		mean /= float64(V)
		for i, v := range row {
			scores[i] = float64(v) - mean
		}
		*o[0] = e.extreme(scores, b.k, 1)
		if o[1] != nil {
			*o[1] = e.extreme(scores, b.k, -1)
		}
	}
	b.dirs, b.outs = b.dirs[:0], b.outs[:0]
}

// extreme returns the k tokens of highest sign·score, best first.
func (e *Engine) extreme(scores []float64, k int, sign float64) []ScoredToken {
	s := nodeSpace{total: len(scores), offMLP: len(scores), offAttn: len(scores)}
	ids := topK(s, k, func(i int) float64 { return sign * scores[i] })
	out := make([]ScoredToken, len(ids))
	disp := e.Tok.Display(ids)
	for i, id := range ids {
		out[i] = ScoredToken{Token: Token{id, disp[i]}, Score: scores[id]}
	}
	return out
}
