package debugger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"tdb/model"
	"tdb/model/tokenizer"
)

// BadRequest marks errors in the request itself (HTTP 400 in the viewer).
type BadRequest struct{ Err error }

func (e BadRequest) Error() string { return e.Err.Error() }
func (e BadRequest) Unwrap() error { return e.Err }

func badf(format string, a ...any) error { return BadRequest{fmt.Errorf(format, a...)} }

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

// row is one batch row of the pass: the main run, its baseline, or the second prompt.
type row struct {
	label   string
	tokens  []int
	ablated bool
}

// prepared is a validated request.
type prepared struct {
	req         Request
	rows        []row
	targets     []int
	distractors []int
	T           int
	splices     []*splice
}

func (e *Engine) prepare(req Request) (*prepared, error) {
	m := e.Model
	p := &prepared{req: req}
	if req.TopK == 0 {
		p.req.TopK = 10
	}
	if req.Candidates == 0 {
		p.req.Candidates = 100
	}
	if p.req.TopK < 0 || p.req.Candidates < 0 {
		return nil, badf("top_k and candidates must be positive")
	}
	switch req.Loss {
	case "":
		p.req.Loss = "logit_diff"
	case "logit_diff", "logit_minus_mean", "probs", "zero":
	default:
		return nil, badf("unknown loss %q (logit_diff, logit_minus_mean, probs, zero)", req.Loss)
	}
	tokens := req.Tokens
	if len(tokens) == 0 {
		if req.Prompt == "" {
			return nil, badf("empty prompt")
		}
		tokens = e.Tok.Encode(req.Prompt)
	} else if req.Prompt != "" {
		return nil, badf("give prompt or tokens, not both")
	}
	p.T = len(tokens)
	if p.T > m.NCtx {
		return nil, badf("the prompt has %d tokens, more than the model's context of %d", p.T, m.NCtx)
	}
	for _, t := range tokens {
		if t < 0 || t >= m.Vocab {
			return nil, badf("token id %d is outside the vocabulary [0, %d)", t, m.Vocab)
		}
	}
	if len(req.Targets) == 0 && req.Loss != "zero" {
		return nil, badf("give at least one target token")
	}
	one := func(s string) (int, error) {
		id, err := e.Tok.SingleToken(s)
		if err != nil {
			return 0, BadRequest{err}
		}
		if id >= m.Vocab {
			return 0, badf("token %q (id %d) is outside the model's vocabulary of %d", s, id, m.Vocab)
		}
		return id, nil
	}
	for _, s := range req.Targets {
		id, err := one(s)
		if err != nil {
			return nil, err
		}
		p.targets = append(p.targets, id)
	}
	for _, s := range req.Distractors {
		id, err := one(s)
		if err != nil {
			return nil, err
		}
		p.distractors = append(p.distractors, id)
	}
	for _, a := range req.Ablations {
		if err := e.checkNode(req, a.Node, p.T, true); err != nil {
			return nil, badf("ablation %s: %v", a.Node.Name(), err)
		}
	}
	for tr := req.Trace; tr != nil; tr = tr.Downstream {
		if err := e.checkNode(req, tr.Node, p.T, false); err != nil {
			return nil, badf("trace %s: %v", tr.Node.Name(), err)
		}
		switch {
		case tr.Node.Type == AttnHead && !slices.Contains([]string{"", "q", "k", "qk", "v"}, tr.Path):
			return nil, badf("trace path %q: want q, k, qk or v", tr.Path)
		case tr.Node.Type != AttnHead && tr.Path != "":
			return nil, badf("trace path %q is only for attention heads", tr.Path)
		case tr.Downstream != nil && tr.Path != "v":
			return nil, badf("a downstream node is only for a trace through v")
		}
		if d := tr.Downstream; d != nil && !before(writePoint(tr.Node), readPoint(d.Node)) {
			return nil, badf("downstream node %s does not read what %s writes", d.Node.Name(), tr.Node.Name())
		}
	}
	for _, n := range req.Inspect {
		if err := e.checkNode(req, n, p.T, false); err != nil {
			return nil, badf("inspect %s: %v", n.Name(), err)
		}
	}
	p.rows = []row{{label: "main", tokens: tokens, ablated: true}}
	if len(req.Ablations) > 0 {
		p.rows = append(p.rows, row{label: "baseline", tokens: tokens})
	}
	if req.SecondPrompt != "" {
		second := e.Tok.Encode(req.SecondPrompt)
		if len(second) != p.T {
			return nil, badf("the second prompt has %d tokens, the first %d: they must have equal token length", len(second), p.T)
		}
		p.rows = append(p.rows, row{label: "right", tokens: second, ablated: true})
	}
	return p, nil
}

func (e *Engine) checkNode(req Request, n Node, T int, allowAll bool) error {
	m := e.Model
	if n.Layer < 0 || n.Layer >= m.NLayer {
		return fmt.Errorf("layer %d out of range 0..%d", n.Layer, m.NLayer-1)
	}
	limit := map[NodeType]int{MLPNeuron: m.DMLP, AttnHead: m.NHead}[n.Type]
	switch n.Type {
	case MLPNeuron, AttnHead:
		if n.Index < 0 || n.Index >= limit {
			return fmt.Errorf("index %d out of range 0..%d", n.Index, limit-1)
		}
	case MLPLatent, AttnLatent:
		if err := e.checkLatent(req, n); err != nil {
			return err
		}
	default:
		return fmt.Errorf("node type %q cannot be used here", n.Type)
	}
	if n.Token == allPosition && !allowAll {
		return errors.New("give the token position (name@token)")
	}
	if n.Token < allPosition || n.Token >= T {
		return fmt.Errorf("token %d out of range 0..%d", n.Token, T-1)
	}
	if n.Type == AttnHead && n.Token >= 0 && n.KeyToken > n.Token {
		return fmt.Errorf("key token %d is after query token %d (attention is causal)", n.KeyToken, n.Token)
	}
	return nil
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

// Run answers a request.
func (e *Engine) Run(ctx context.Context, req Request) (*Response, error) {
	e.init()
	p, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	m := e.Model
	L, T, H, D := m.NLayer, p.T, m.NHead, m.DModel
	batch := make([][]int, len(p.rows))
	for i, r := range p.rows {
		batch[i] = r.tokens
	}
	capture := []model.Site{model.At(model.ResidPostEmb, model.NoLayer), model.At(model.Logits, model.NoLayer)}
	for l := range L {
		capture = append(capture, model.At(model.MLPPostAct, l), model.At(model.AttnQKProbs, l), model.At(model.AttnV, l))
	}
	for _, n := range p.req.Inspect {
		if n.Type == MLPLatent {
			capture = append(capture, model.At(model.MLPPreAct, n.Layer))
		}
	}
	for tr := p.req.Trace; tr != nil; tr = tr.Downstream {
		capture = append(capture, e.traceSites(tr.Node, tr.Path)...)
	}
	var hooks []model.Hook
	if p.splices, hooks, err = e.splices(p); err != nil {
		return nil, err
	}
	fwd, err := m.Forward(ctx, model.Request{Tokens: batch, Capture: capture, Hooks: hooks, Interventions: e.interventions(p), Backward: true})
	if err != nil {
		return nil, err
	}
	sc, err := e.scalar(p, fwd)
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
		resp.Runs = append(resp.Runs, Run{
			Label:        rw.label,
			Tokens:       e.tokens(rw.tokens),
			Loss:         sc.values[r],
			Candidates:   e.candidates(p, fwd, r, sc.position),
			TokenEffects: space.tokenEffects(mt[2]),
		})
	}
	resp.Nodes = e.table(p, space, perRow)
	for _, n := range p.req.Inspect {
		resp.Details = append(resp.Details, e.detail(n, fwd, p))
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

// scalarSpec is what the backward pass explains.
type scalarSpec struct {
	seeds    map[model.Site]*model.Tensor
	stops    []model.Site
	gstar    point     // where g* is read
	position int       // position for the next-token candidates
	values   []float64 // the scalar per row
	describe string
}

func (e *Engine) scalar(p *prepared, fwd *model.Result) (*scalarSpec, error) {
	if p.req.Trace == nil {
		return e.lossScalar(p, fwd), nil
	}
	return e.traceScalar(p, fwd, *p.req.Trace)
}

// lossScalar seeds the logits at the last position; ln_f's scale is frozen.
func (e *Engine) lossScalar(p *prepared, fwd *model.Result) *scalarSpec {
	m := e.Model
	V, T := m.Vocab, p.T
	logits := fwd.Acts[model.At(model.Logits, model.NoLayer)]
	seed := model.NewTensor(len(p.rows), T, V)
	sc := &scalarSpec{seeds: map[model.Site]*model.Tensor{model.At(model.Logits, model.NoLayer): seed},
		stops: []model.Site{model.At(model.LnFScale, model.NoLayer)}, gstar: point{m.NLayer, false}, position: T - 1,
		describe: p.req.Loss}
	for r := range p.rows {
		lg := logits.Data[(r*T+T-1)*V : (r*T+T)*V]
		g := seed.Data[(r*T+T-1)*V : (r*T+T)*V]
		var loss float64
		switch p.req.Loss {
		case "logit_diff", "logit_minus_mean":
			for _, t := range p.targets {
				loss += float64(lg[t]) / float64(len(p.targets))
				g[t] += 1 / float32(len(p.targets))
			}
			if p.req.Loss == "logit_diff" {
				for _, d := range p.distractors {
					loss -= float64(lg[d]) / float64(len(p.distractors))
					g[d] -= 1 / float32(len(p.distractors))
				}
			} else {
				var mean float64
				for i, v := range lg {
					mean += float64(v) / float64(V)
					g[i] -= 1 / float32(V)
				}
				loss -= mean
			}
		case "probs":
			probs := softmax(lg)
			var sum float64
			for _, t := range p.targets {
				sum += probs[t]
			}
			loss = sum
			for i := range g {
				g[i] = float32(-probs[i] * sum)
			}
			for _, t := range p.targets {
				g[t] += float32(probs[t])
			}
		}
		sc.values = append(sc.values, loss)
	}
	return sc
}

func softmax(lg []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range lg {
		mx = math.Max(mx, float64(v))
	}
	out := make([]float64, len(lg))
	var z float64
	for i, v := range lg {
		out[i] = math.Exp(float64(v) - mx)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

// traceSeed is the seed for a traced node (not through v).
func (e *Engine) traceScalar(p *prepared, fwd *model.Result, tr Trace) (*scalarSpec, error) {
	m := e.Model
	T, H := p.T, m.NHead
	n := tr.Node
	B := len(p.rows)
	sc := &scalarSpec{seeds: map[model.Site]*model.Tensor{}, position: n.Token, gstar: readPoint(n)}
	switch {
	case n.Type == MLPNeuron:
		s := model.At(model.MLPPreAct, n.Layer)
		seed := model.NewTensor(B, T, m.DMLP)
		for r := range B {
			i := (r*T+n.Token)*m.DMLP + n.Index
			seed.Data[i] = 1
			sc.values = append(sc.values, float64(fwd.Acts[s].Data[i]))
		}
		sc.seeds[s] = seed
		sc.stops = []model.Site{model.At(model.MLPLnScale, n.Layer)}
		sc.describe = "pre-activation of " + n.Name()
	case n.Type == AttnHead && tr.Path != "v":
		s := model.At(model.AttnQKLogits, n.Layer)
		seed := model.NewTensor(B, T, T, H)
		for r := range B {
			i := ((r*T+n.Token)*T+n.KeyToken)*H + n.Index
			seed.Data[i] = 1
			sc.values = append(sc.values, float64(fwd.Acts[s].Data[i]))
		}
		sc.seeds[s] = seed
		sc.stops = []model.Site{model.At(model.AttnLnScale, n.Layer)}
		path := tr.Path
		if path == "" {
			path = "qk"
		}
		switch path {
		case "q":
			sc.stops = append(sc.stops, model.At(model.AttnK, n.Layer))
		case "k":
			sc.stops = append(sc.stops, model.At(model.AttnQ, n.Layer))
			sc.position = n.KeyToken
		}
		sc.describe = fmt.Sprintf("attention logit of %s through %s", n.Name(), strings.ToUpper(path))
	case n.Type == MLPLatent || n.Type == AttnLatent:
		sp, seed, values, err := e.latentTraceSeed(p.splices, n, B)
		if err != nil {
			return nil, err
		}
		sc.seeds[sp.s.Site] = seed
		sc.values = values
		ln := model.MLPLnScale
		if n.Type == AttnLatent {
			ln = model.AttnLnScale
		}
		sc.stops = []model.Site{model.At(ln, n.Layer)}
		sc.describe = "pre-activation of " + n.Name()
	case n.Type == AttnHead: // through V: the head's direct effect on the loss or the downstream node
		var down *scalarSpec
		var err error
		if tr.Downstream != nil {
			down, err = e.traceScalar(p, fwd, *tr.Downstream)
		} else {
			down = e.lossScalar(p, fwd)
		}
		if err != nil {
			return nil, err
		}
		g, err := fwd.Backward(down.seeds, model.BackwardOptions{Stop: down.stops, Keep: []model.Site{e.gradSite(down.gstar)}})
		if err != nil {
			return nil, err
		}
		gs := g[e.gradSite(down.gstar)].Data
		probs := fwd.Acts[model.At(model.AttnQKProbs, n.Layer)].Data
		v := fwd.Acts[model.At(model.AttnV, n.Layer)].Data
		D, dh := m.DModel, m.DHead()
		wo := m.Blocks[n.Layer].ProjW[n.Index*dh*D : (n.Index+1)*dh*D] // rows of c_proj for this head: [dh, D]
		seed := model.NewTensor(B, T, H, dh)
		for r := range B {
			prob := probs[((r*T+n.Token)*T+n.KeyToken)*H+n.Index]
			gq := gs[(r*T+n.Token)*D : (r*T+n.Token+1)*D]
			vk := v[((r*T+n.KeyToken)*H+n.Index)*dh:]
			sd := seed.Data[((r*T+n.KeyToken)*H+n.Index)*dh:]
			var val float64
			for j := range dh {
				w := dot(wo[j*D:(j+1)*D], gq) // (W_O[h]·g*)_j
				sd[j] = float32(float64(prob) * w)
				val += float64(prob) * float64(vk[j]) * w
			}
			sc.values = append(sc.values, val)
		}
		sc.seeds[model.At(model.AttnV, n.Layer)] = seed
		sc.stops = []model.Site{model.At(model.AttnLnScale, n.Layer), model.At(model.AttnQKProbs, n.Layer)}
		sc.position = n.KeyToken
		sc.describe = fmt.Sprintf("direct effect of %s through V on %s", n.Name(), down.describe)
	default:
		return nil, badf("cannot trace %s", n.Name())
	}
	return sc, nil
}

// candidates lists the next-token view of one row.
func (e *Engine) candidates(p *prepared, fwd *model.Result, r, pos int) Candidates {
	V, T := e.Model.Vocab, p.T
	lg := fwd.Acts[model.At(model.Logits, model.NoLayer)].Data[(r*T+pos)*V : (r*T+pos+1)*V]
	probs := softmax(lg)
	ref := 0.0
	if len(p.targets) > 0 {
		ref = float64(lg[p.targets[0]])
	}
	mk := func(id int, role string) Candidate {
		return Candidate{Token: Token{id, e.Tok.Display([]int{id})[0]}, Logit: float64(lg[id]), Relative: float64(lg[id]) - ref, Prob: probs[id], Role: role}
	}
	order := make([]int, V)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case lg[a] > lg[b]:
			return -1
		case lg[a] < lg[b]:
			return 1
		}
		return 0
	})
	k := min(p.req.Candidates, V)
	c := Candidates{Position: pos}
	role := func(id int) string {
		switch {
		case slices.Contains(p.targets, id):
			return "target"
		case slices.Contains(p.distractors, id):
			return "distractor"
		}
		return ""
	}
	for _, id := range order[:k] {
		c.Top = append(c.Top, mk(id, role(id)))
	}
	for i := V - 1; i >= V-k; i-- {
		c.Bottom = append(c.Bottom, mk(order[i], role(order[i])))
	}
	for _, id := range p.targets {
		c.Pinned = append(c.Pinned, mk(id, "target"))
	}
	for _, id := range p.distractors {
		c.Pinned = append(c.Pinned, mk(id, "distractor"))
	}
	return c
}

// gemv computes y = A·x for row-major A [rows×cols].
func gemv(a []float32, rows, cols int, x, y []float32) {
	blas32.Gemv(blas.NoTrans, 1, blas32.General{Rows: rows, Cols: cols, Stride: cols, Data: a}, blas32.Vector{N: cols, Inc: 1, Data: x}, 0, blas32.Vector{N: rows, Inc: 1, Data: y})
}
