package debugger

import (
	"context"
	"math"
	"slices"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"tdb/model"
	"tdb/model/tokenizer"
)

// Engine answers requests for one model. It is safe for concurrent use.
type Engine struct {
	Model *model.Model
	Tok   *tokenizer.Tokenizer

	once     sync.Once
	outNorms [][]float32 // ‖W_out[n,:]‖ per layer
	aes      map[aeSlot]*registered
}

// New makes an engine.
func New(m *model.Model, tok *tokenizer.Tokenizer) *Engine {
	return &Engine{Model: m, Tok: tok}
}

func (e *Engine) init() {
	e.once.Do(func() {
		m := e.Model
		e.outNorms = make([][]float32, m.NLayer)
		for l, b := range m.Blocks {
			norms := make([]float32, m.DMLP)
			for n := range norms {
				norms[n] = norm(b.OutW[n*m.DModel : (n+1)*m.DModel])
			}
			e.outNorms[l] = norms
		}
	})
}

func norm(x []float32) float32 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return float32(math.Sqrt(s))
}

func dot(x, y []float32) float64 {
	var s float64
	for i := range x {
		s += float64(x[i]) * float64(y[i])
	}
	return s
}

// point is a place in the residual stream: before block layer's attention
// (mlp false) or before its MLP (mlp true); layer NLayer is the final one.
type point struct {
	layer int
	mlp   bool
}

// readPoint is where a traced node reads the residual stream.
func readPoint(n Node) point {
	return point{n.Layer, n.Type == MLPNeuron || n.Type == MLPLatent}
}

// writePoint is where a node writes: just after its sublayer.
func writePoint(n Node) point {
	if n.Type == MLPNeuron || n.Type == MLPLatent {
		return point{n.Layer + 1, false}
	}
	return point{n.Layer, true}
}

// before reports whether a write at w reaches the residual stream read at r.
func before(w, r point) bool {
	return w.layer < r.layer || w.layer == r.layer && !w.mlp && r.mlp || w == r
}

// gradSite is the residual-stream site whose gradient is g* at point r.
func (e *Engine) gradSite(r point) model.Site {
	switch {
	case r.layer >= e.Model.NLayer:
		return model.At(model.ResidPostMLP, e.Model.NLayer-1)
	case r.mlp:
		return model.At(model.ResidPostAttn, r.layer)
	case r.layer == 0:
		return model.At(model.ResidPostEmb, model.NoLayer)
	}
	return model.At(model.ResidPostMLP, r.layer-1)
}

// forward runs the prepared rows with the autoencoders spliced in and the
// ablations applied, ready for a backward pass, and finds the scalar to
// explain.
func (e *Engine) forward(ctx context.Context, p *prepared, capture []model.Site) (*model.Result, *scalarSpec, error) {
	batch := make([][]int, len(p.rows))
	for i, r := range p.rows {
		batch[i] = r.tokens
	}
	var hooks []model.Hook
	var err error
	if p.splices, hooks, err = e.splices(p); err != nil {
		return nil, nil, err
	}
	fwd, err := e.Model.Forward(ctx, model.Request{Tokens: batch, Capture: capture, Hooks: hooks, Interventions: e.interventions(p), Backward: true})
	if err != nil {
		return nil, nil, err
	}
	sc, err := e.scalar(p, fwd)
	if err != nil {
		return nil, nil, err
	}
	return fwd, sc, nil
}

// Run answers a request.
func (e *Engine) Run(ctx context.Context, req Request) (*Response, error) {
	e.init()
	p, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	m := e.Model
	L, T, H, D := m.NLayer, p.T, m.NHead, m.DModel
	capture := []model.Site{model.At(model.ResidPostEmb, model.NoLayer), model.At(model.Logits, model.NoLayer)}
	for l := range L {
		capture = append(capture, model.At(model.MLPPostAct, l), model.At(model.AttnQKProbs, l), model.At(model.AttnV, l))
	}
	for _, n := range p.req.Inspect {
		if n.Type == MLPLatent {
			capture = append(capture, model.At(model.MLPPreAct, n.Layer))
		}
	}
	if p.req.InspectTable && p.req.UseMLPAutoencoders { // the table's MLP latents are not known yet
		for l := range L {
			capture = append(capture, model.At(model.MLPPreAct, l))
		}
	}
	for tr := p.req.Trace; tr != nil; tr = tr.Downstream {
		capture = append(capture, e.traceSites(tr.Node, tr.Path)...)
	}
	fwd, sc, err := e.forward(ctx, p, capture)
	if err != nil {
		return nil, err
	}
	keep := []model.Site{model.At(model.ResidPostEmb, model.NoLayer), e.gradSite(sc.gstar)}
	for l := range L {
		keep = append(keep, model.At(model.MLPPostAct, l), model.At(model.AttnQKProbs, l))
	}
	for _, sp := range p.splices {
		keep = append(keep, sp.s.Site)
	}
	grads, err := fwd.Backward(sc.seeds, model.BackwardOptions{Stop: sc.stops, Keep: keep})
	if err != nil {
		return nil, err
	}
	for _, sp := range p.splices {
		if sp.grad, err = sp.s.LatentGrad(grads[sp.s.Site]); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	gstar := grads[e.gradSite(sc.gstar)]
	space := newNodeSpace(L, T, m.DMLP, H)
	space.addLatents(activeLatents(p.splices, T))
	for _, sp := range p.splices {
		if sp.slot.kind == MLPLatent {
			space.skipNeurons[sp.slot.layer] = true // latents replace the neurons
		}
	}
	resp := &Response{Columns: Columns, Scalar: sc.describe}
	perRow := make([]*metrics, len(p.rows))
	for r, rw := range p.rows {
		mt := e.metrics(space, fwd, grads, gstar.Data[r*T*D:(r+1)*T*D], r, sc.gstar)
		e.latentMetrics(mt, space, r, gstar.Data[r*T*D:(r+1)*T*D], sc.gstar)
		perRow[r] = mt
		run := Run{
			Label:        rw.label,
			Tokens:       e.tokens(rw.tokens),
			Loss:         sc.values[r],
			Candidates:   e.candidates(p, fwd, r, sc.position),
			TokenEffects: space.tokenEffects(mt.actTimesGrad),
		}
		if p.req.AttentionPairs {
			run.AttentionPairs = space.attentionPairs(mt.actTimesGrad)
		}
		resp.Runs = append(resp.Runs, run)
	}
	resp.Nodes = e.table(p, space, perRow)
	inspect := p.req.Inspect
	if p.req.InspectTable {
		inspect = slices.Clone(inspect)
		for _, nr := range resp.Nodes {
			if nr.Node.Type != Embedding && !slices.Contains(inspect, nr.Node) {
				inspect = append(inspect, nr.Node)
			}
		}
	}
	if len(inspect) > 0 {
		resp.Details = e.details(inspect, fwd, p)
	}
	return resp, nil
}

func (e *Engine) tokens(ids []int) []Token {
	disp := e.Tok.Display(ids)
	out := make([]Token, len(ids))
	for i, id := range ids {
		out[i] = Token{id, disp[i]}
	}
	return out
}

// interventions turns ablations into model interventions on the ablated rows.
func (e *Engine) interventions(p *prepared) []model.Intervention {
	m := e.Model
	T, H := p.T, m.NHead
	var ivs []model.Intervention
	for _, a := range p.req.Ablations {
		positions := []int{a.Node.Token}
		if a.Node.Token == allPosition {
			positions = positions[:0]
			for t := range T {
				positions = append(positions, t)
			}
		}
		for r, rw := range p.rows {
			if !rw.ablated {
				continue
			}
			switch a.Node.Type {
			case MLPNeuron:
				iv := model.Intervention{Site: model.At(model.MLPPostAct, a.Node.Layer), Value: a.Value}
				for _, t := range positions {
					iv.Index = append(iv.Index, (r*T+t)*m.DMLP+a.Node.Index)
				}
				ivs = append(ivs, iv)
			case AttnHead: // the whole attention row of each query position
				iv := model.Intervention{Site: model.At(model.AttnQKProbs, a.Node.Layer), Value: a.Value}
				for _, q := range positions {
					for k := range T {
						iv.Index = append(iv.Index, ((r*T+q)*T+k)*H+a.Node.Index)
					}
				}
				ivs = append(ivs, iv)
			}
		}
	}
	return ivs
}

// traceSites are the extra captures a trace needs.
func (e *Engine) traceSites(n Node, path string) []model.Site {
	switch n.Type {
	case MLPNeuron:
		return []model.Site{model.At(model.MLPPreAct, n.Layer)}
	case AttnHead:
		return []model.Site{model.At(model.AttnQKLogits, n.Layer)}
	}
	return nil
}

// gemv computes y = A·x for row-major A [rows×cols].
func gemv(a []float32, rows, cols int, x, y []float32) {
	blas32.Gemv(blas.NoTrans, 1, blas32.General{Rows: rows, Cols: cols, Stride: cols, Data: a}, blas32.Vector{N: cols, Inc: 1, Data: x}, 0, blas32.Vector{N: rows, Inc: 1, Data: y})
}
