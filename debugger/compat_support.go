package debugger

// Single-node views the original TDB front end asks for on its node pages
// (package compat): a component's activation on every token of a prompt,
// a head's per-pair write magnitudes, and a node's logit lens from the
// weights. They reuse the engine's maths (valueWrites, outputTokens,
// inputTokens) so that a number is the same wherever it is shown.

import (
	"context"
	"fmt"
	"slices"

	"tdb/model"
)

// AutoencoderSlot describes an autoencoder registered with AddAutoencoder.
type AutoencoderSlot struct {
	Kind     NodeType // MLPLatent or AttnLatent
	Layer    int
	Location model.Location
	Latents  int
}

// Autoencoders lists the registered autoencoders by layer, attention first.
func (e *Engine) Autoencoders() []AutoencoderSlot {
	var out []AutoencoderSlot
	for slot, reg := range e.aes {
		out = append(out, AutoencoderSlot{Kind: slot.kind, Layer: slot.layer, Location: reg.loc, Latents: reg.ae.NLatents})
	}
	slices.SortFunc(out, func(a, b AutoencoderSlot) int {
		if a.Layer != b.Layer {
			return a.Layer - b.Layer
		}
		return slices.Index([]NodeType{AttnLatent, MLPLatent}, a.Kind) - slices.Index([]NodeType{AttnLatent, MLPLatent}, b.Kind)
	})
	return out
}

// checkTokens validates a prompt's token ids against the model.
func (e *Engine) checkTokens(tokens []int) error {
	m := e.Model
	switch {
	case len(tokens) == 0:
		return badf("empty prompt")
	case len(tokens) > m.NCtx:
		return badf("the prompt has %d tokens, more than the model's context of %d", len(tokens), m.NCtx)
	}
	for _, t := range tokens {
		if t < 0 || t >= m.Vocab {
			return badf("token id %d is outside the vocabulary [0, %d)", t, m.Vocab)
		}
	}
	return nil
}

// NodeActivations returns the activation of an MLP neuron (mlp.post_act)
// or an autoencoder latent at every token of one prompt (the node's Token
// is ignored): the node table's activation column, for every position.
func (e *Engine) NodeActivations(ctx context.Context, tokens []int, n Node) ([]float32, error) {
	if err := e.checkTokens(tokens); err != nil {
		return nil, err
	}
	m := e.Model
	T := len(tokens)
	if n.Layer < 0 || n.Layer >= m.NLayer {
		return nil, badf("layer %d out of range 0..%d", n.Layer, m.NLayer-1)
	}
	switch n.Type {
	case MLPNeuron:
		if n.Index < 0 || n.Index >= m.DMLP {
			return nil, badf("neuron %d out of range 0..%d", n.Index, m.DMLP-1)
		}
		site := model.At(model.MLPPostAct, n.Layer)
		fwd, err := m.Forward(ctx, model.Request{Tokens: [][]int{tokens}, Capture: []model.Site{site}})
		if err != nil {
			return nil, err
		}
		out := make([]float32, T)
		for t := range T {
			out[t] = fwd.Acts[site].Data[t*m.DMLP+n.Index]
		}
		return out, nil
	case MLPLatent, AttnLatent:
		reg, i, s, err := e.spliceLatent(n)
		if err != nil {
			return nil, err
		}
		if _, err := m.Forward(ctx, model.Request{Tokens: [][]int{tokens}, Hooks: []model.Hook{s.Hook()}}); err != nil {
			return nil, err
		}
		NL := reg.ae.NLatents
		out := make([]float32, T)
		for t := range T {
			out[t] = s.Latents.Data[t*NL+i]
		}
		return out, nil
	}
	return nil, badf("node type %q has no per-token activation", n.Type)
}

// HeadWriteNorms returns, for one attention head on one prompt, the write
// magnitude of every token pair (the node table's write_norm of the head
// node (query, key): prob·‖V[key]·W_O[head]‖) as the lower triangle, row
// q holding keys 0..q.
func (e *Engine) HeadWriteNorms(ctx context.Context, tokens []int, layer, head int) ([][]float32, error) {
	if err := e.checkTokens(tokens); err != nil {
		return nil, err
	}
	m := e.Model
	T, H, D := len(tokens), m.NHead, m.DModel
	if layer < 0 || layer >= m.NLayer {
		return nil, badf("layer %d out of range 0..%d", layer, m.NLayer-1)
	}
	if head < 0 || head >= H {
		return nil, badf("head %d out of range 0..%d", head, H-1)
	}
	ps, vs := model.At(model.AttnQKProbs, layer), model.At(model.AttnV, layer)
	fwd, err := m.Forward(ctx, model.Request{Tokens: [][]int{tokens}, Capture: []model.Site{ps, vs}})
	if err != nil {
		return nil, err
	}
	vw := e.valueWrites(layer, fwd.Acts[vs].Data, T)
	probs := fwd.Acts[ps].Data
	out := make([][]float32, T)
	for q := range T {
		out[q] = make([]float32, q+1)
		for k := 0; k <= q; k++ {
			out[q][k] = probs[(q*T+k)*H+head] * norm(vw[(k*H+head)*D:(k*H+head+1)*D])
		}
	}
	return out, nil
}

// OutputTokenLens is a node's logit lens from the weights: the tokens its
// unit write direction (a neuron's W_out row, a latent's decoder column
// mapped into the residual stream) upvotes and downvotes most, k each, as
// the node table's upvoted output tokens compute them for activation 1.
func (e *Engine) OutputTokenLens(n Node, k int) (up, down []ScoredToken, err error) {
	m := e.Model
	if n.Layer < 0 || n.Layer >= m.NLayer {
		return nil, nil, badf("layer %d out of range 0..%d", n.Layer, m.NLayer-1)
	}
	var w []float32
	switch n.Type {
	case MLPNeuron:
		if n.Index < 0 || n.Index >= m.DMLP {
			return nil, nil, badf("neuron %d out of range 0..%d", n.Index, m.DMLP-1)
		}
		w = m.Blocks[n.Layer].OutW[n.Index*m.DModel : (n.Index+1)*m.DModel]
	case MLPLatent, AttnLatent:
		reg, i, err := e.latent(n)
		if err != nil {
			return nil, nil, err
		}
		w = reg.ae.DecoderColumn(i)
		if reg.loc == model.MLPPostAct {
			w = e.neuronsWrite(n.Layer, w) // as latentDetail maps it
		}
	default:
		return nil, nil, badf("no output-token lens for %s nodes (it depends on the prompt)", n.Type)
	}
	lens := &tokenLens{k: k}
	lens.output(e, w, 1, &up, &down)
	lens.run(e)
	return up, down, nil
}

// InputTokenLens is an MLP neuron's input-token lens: the token embeddings
// that most raise and most lower its pre-activation through ln_2 (gain
// applied, centring removed), k each, as the node table's "input tokens
// that upvote" compute them. The bottom list's scores are negative.
func (e *Engine) InputTokenLens(n Node, k int) (up, down []ScoredToken, err error) {
	m := e.Model
	if n.Type != MLPNeuron {
		return nil, nil, badf("the weights-only input-token lens is for MLP neurons, not %s", n.Type)
	}
	if n.Layer < 0 || n.Layer >= m.NLayer || n.Index < 0 || n.Index >= m.DMLP {
		return nil, nil, badf("no neuron %d in layer %d", n.Index, n.Layer)
	}
	lens := &tokenLens{k: k}
	lens.input(e.neuronInput(n), &up, &down)
	lens.run(e)
	return up, down, nil
}

// LatentPairAttribution returns, for an attention-autoencoder latent on one
// prompt, how much each token pair's attention write (summed over heads)
// moves the latent's pre-activation: Σ_h prob[q,k,h]·(V[k,h]·W_O[h])·g_q
// with g_q the gradient of the pre-activation at query q (the score the
// node table's "tokens attended to" of a latent ranks by). Lower triangle.
func (e *Engine) LatentPairAttribution(ctx context.Context, tokens []int, n Node) ([][]float32, error) {
	if err := e.checkTokens(tokens); err != nil {
		return nil, err
	}
	m := e.Model
	if n.Type != AttnLatent {
		return nil, badf("token-pair attribution is for attention autoencoder latents, not %s", n.Type)
	}
	_, i, s, err := e.spliceLatent(n)
	if err != nil {
		return nil, err
	}
	T, H, D := len(tokens), m.NHead, m.DModel
	ps, vs := model.At(model.AttnQKProbs, n.Layer), model.At(model.AttnV, n.Layer)
	fwd, err := m.Forward(ctx, model.Request{Tokens: [][]int{tokens}, Capture: []model.Site{ps, vs}, Hooks: []model.Hook{s.Hook()}})
	if err != nil {
		return nil, err
	}
	probs := fwd.Acts[ps].Data
	vw := e.valueWrites(n.Layer, fwd.Acts[vs].Data, T)
	out := make([][]float32, T)
	for q := range T {
		g, err := s.PreActGrad(0, q, i)
		if err != nil {
			return nil, fmt.Errorf("latent %s: %w", n.Name(), err)
		}
		out[q] = make([]float32, q+1)
		for k := 0; k <= q; k++ {
			var score float64
			for h := range H {
				score += float64(probs[(q*T+k)*H+h]) * dot(vw[(k*H+h)*D:(k*H+h+1)*D], g)
			}
			out[q][k] = float32(score)
		}
	}
	return out, nil
}

// AttentionPairEffects returns, for each run of the request (main, then
// baseline and right as Run would list them), the estimated total effect
// (act_times_grad) of attention summed over layers and heads for every
// token pair: [run][query][key], zero above the diagonal. Row sums are the
// Response's TokenEffects.AttentionFrom and column sums its AttentionTo.
func (e *Engine) AttentionPairEffects(ctx context.Context, req Request) ([][][]float64, error) {
	e.init()
	p, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	m := e.Model
	L, T, H := m.NLayer, p.T, m.NHead
	capture := []model.Site{model.At(model.Logits, model.NoLayer)}
	for l := range L {
		capture = append(capture, model.At(model.AttnQKProbs, l))
	}
	for tr := p.req.Trace; tr != nil; tr = tr.Downstream {
		capture = append(capture, e.traceSites(tr.Node, tr.Path)...)
		if tr.Node.Type == AttnHead && tr.Path == "v" {
			capture = append(capture, model.At(model.AttnV, tr.Node.Layer))
		}
	}
	fwd, sc, err := e.forward(ctx, p, capture)
	if err != nil {
		return nil, err
	}
	var keep []model.Site
	for l := range L {
		keep = append(keep, model.At(model.AttnQKProbs, l))
	}
	grads, err := fwd.Backward(sc.seeds, model.BackwardOptions{Stop: sc.stops, Keep: keep})
	if err != nil {
		return nil, err
	}
	out := make([][][]float64, len(p.rows))
	for r := range p.rows {
		out[r] = make([][]float64, T)
		for q := range T {
			out[r][q] = make([]float64, T)
		}
		for l := range L {
			probs := fwd.Acts[model.At(model.AttnQKProbs, l)].Data[r*T*T*H:]
			gProbs := grads[model.At(model.AttnQKProbs, l)].Data[r*T*T*H:]
			for q := range T {
				for k := 0; k <= q; k++ {
					for h := range H {
						i := (q*T+k)*H + h
						out[r][q][k] += float64(probs[i] * gProbs[i])
					}
				}
			}
		}
	}
	return out, nil
}
