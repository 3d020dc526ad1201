package debugger

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"tdb/model"
)

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
	for r, rw := range p.rows {
		lg := logits.Data[(r*T+T-1)*V : (r*T+T)*V]
		g := seed.Data[(r*T+T-1)*V : (r*T+T)*V]
		targets, distractors := rw.targets, rw.distractors
		var loss float64
		switch p.req.Loss {
		case "logit_diff", "logit_minus_mean":
			for _, t := range targets {
				loss += float64(lg[t]) / float64(len(targets))
				g[t] += 1 / float32(len(targets))
			}
			if p.req.Loss == "logit_diff" {
				for _, d := range distractors {
					loss -= float64(lg[d]) / float64(len(distractors))
					g[d] -= 1 / float32(len(distractors))
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
			for _, t := range targets {
				sum += probs[t]
			}
			loss = sum
			for i := range g {
				g[i] = float32(-probs[i] * sum)
			}
			for _, t := range targets {
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
	targets, distractors := p.rows[r].targets, p.rows[r].distractors
	ref := 0.0
	if len(targets) > 0 {
		ref = float64(lg[targets[0]])
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
		case slices.Contains(targets, id):
			return "target"
		case slices.Contains(distractors, id):
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
	for _, id := range targets {
		c.Pinned = append(c.Pinned, mk(id, "target"))
	}
	for _, id := range distractors {
		c.Pinned = append(c.Pinned, mk(id, "distractor"))
	}
	return c
}
