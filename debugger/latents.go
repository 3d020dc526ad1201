package debugger

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"tdb/autoencoder"
	"tdb/model"
)

// aeSlot names an autoencoder available to requests: MLP latents (reading
// mlp.post_act or resid.delta_mlp) or attention latents (resid.delta_attn).
type aeSlot struct {
	kind  NodeType
	layer int
}

type registered struct {
	ae  *autoencoder.Autoencoder
	loc model.Location
	// norms caches ‖W_outᵀ·decoder column‖ for mlp.post_act autoencoders
	// (the column mapped into the residual stream), filled lazily.
	mu    sync.Mutex
	norms map[int]float32
}

// AddAutoencoder makes an autoencoder on loc of layer available to requests
// (Request.UseMLPAutoencoders / UseAttnAutoencoders). Call before serving.
func (e *Engine) AddAutoencoder(ae *autoencoder.Autoencoder, layer int, loc model.Location) error {
	kind := MLPLatent
	switch loc {
	case model.MLPPostAct, model.ResidDeltaMLP:
	case model.ResidDeltaAtt:
		kind = AttnLatent
	default:
		return fmt.Errorf("autoencoder %s: location %s is not supported by the debugger (mlp.post_act, resid.delta_mlp, resid.delta_attn)", ae.Source, loc)
	}
	s, err := ae.Splice(layer, loc)
	if err != nil {
		return err
	}
	if err := s.Check(e.Model.Config); err != nil {
		return err
	}
	if e.aes == nil {
		e.aes = map[aeSlot]*registered{}
	}
	slot := aeSlot{kind, layer}
	if _, dup := e.aes[slot]; dup {
		return fmt.Errorf("two %s autoencoders for layer %d", kind, layer)
	}
	e.aes[slot] = &registered{ae: ae, loc: loc, norms: map[int]float32{}}
	return nil
}

// splice is one autoencoder attached for one request.
type splice struct {
	slot aeSlot
	reg  *registered
	s    *autoencoder.Spliced
	x    *model.Tensor // the site's input before the splice (for traced pre-activations)
	grad *model.Tensor // dLoss/dlatents [B, T, NLatents]
}

// latentRef locates a sparse latent node: its splice and internal index.
type latentRef struct {
	sp *splice
	i  int
}

func (e *Engine) useSlot(req Request, slot aeSlot) bool {
	if _, ok := e.aes[slot]; !ok {
		return false
	}
	return slot.kind == MLPLatent && req.UseMLPAutoencoders || slot.kind == AttnLatent && req.UseAttnAutoencoders
}

// splices attaches the autoencoders the request uses, with latent ablations
// on the ablated rows, and returns them with their hooks.
func (e *Engine) splices(p *prepared) ([]*splice, []model.Hook, error) {
	var out []*splice
	var hooks []model.Hook
	slots := make([]aeSlot, 0, len(e.aes))
	for slot := range e.aes {
		if e.useSlot(p.req, slot) {
			slots = append(slots, slot)
		}
	}
	slices.SortFunc(slots, func(a, b aeSlot) int {
		if a.layer != b.layer {
			return a.layer - b.layer
		}
		return slices.Index([]NodeType{AttnLatent, MLPLatent}, a.kind) - slices.Index([]NodeType{AttnLatent, MLPLatent}, b.kind)
	})
	for _, slot := range slots {
		reg := e.aes[slot]
		s, err := reg.ae.Splice(slot.layer, reg.loc)
		if err != nil {
			return nil, nil, err
		}
		sp := &splice{slot: slot, reg: reg, s: s}
		for _, a := range p.req.Ablations {
			if a.Node.Type != slot.kind || a.Node.Layer != slot.layer {
				continue
			}
			i, _ := reg.ae.IndexOf(a.Node.Index)
			for r, rw := range p.rows {
				if rw.ablated {
					s.Ablations = append(s.Ablations, autoencoder.LatentAblation{Batch: r, Token: a.Node.Token, Latent: i, Value: a.Value})
				}
			}
		}
		hooks = append(hooks, model.Hook{Site: s.Site, Fn: func(x *model.Tensor) error { sp.x = x.Clone(); return nil }}, s.Hook())
		out = append(out, sp)
	}
	return out, hooks, nil
}

// checkLatent validates a latent node against the registered autoencoders.
func (e *Engine) checkLatent(req Request, n Node) error {
	slot := aeSlot{n.Type, n.Layer}
	if _, ok := e.aes[slot]; ok && !e.useSlot(req, slot) {
		return fmt.Errorf("the request does not use %s autoencoders (set use_%s_autoencoders)", aeKind[n.Type], strings.ToLower(aeKind[n.Type]))
	}
	_, _, err := e.latent(n)
	return err
}

// aeKind names the autoencoders of a latent node type in messages.
var aeKind = map[NodeType]string{MLPLatent: "MLP", AttnLatent: "attention"}

// latent finds a latent node's autoencoder and the latent's index in it;
// the error is a BadRequest.
func (e *Engine) latent(n Node) (*registered, int, error) {
	reg, ok := e.aes[aeSlot{n.Type, n.Layer}]
	if !ok {
		return nil, 0, badf("no %s autoencoder is loaded for layer %d", aeKind[n.Type], n.Layer)
	}
	i, ok := reg.ae.IndexOf(n.Index)
	if !ok {
		return nil, 0, badf("latent %d does not exist in %s (or was dropped as dead)", n.Index, reg.ae.Source)
	}
	return reg, i, nil
}

// spliceLatent is latent plus a fresh splice of its autoencoder, for a
// forward pass of its own.
func (e *Engine) spliceLatent(n Node) (*registered, int, *autoencoder.Spliced, error) {
	reg, i, err := e.latent(n)
	if err != nil {
		return nil, 0, nil, err
	}
	s, err := reg.ae.Splice(n.Layer, reg.loc)
	return reg, i, s, err
}

// activeLatents lists the latents that are non-zero in any row, as sparse nodes.
func activeLatents(sps []*splice, T int) ([]Node, []latentRef) {
	var nodes []Node
	var refs []latentRef
	for _, sp := range sps {
		lat := sp.s.Latents
		B, NL := lat.Shape[0], lat.Shape[2]
		for t := range T {
			for i := range NL {
				for b := range B {
					if lat.Data[(b*lat.Shape[1]+t)*NL+i] != 0 {
						nodes = append(nodes, Node{Type: sp.slot.kind, Layer: sp.slot.layer, Index: sp.reg.ae.OriginalIndex(i), Token: t})
						refs = append(refs, latentRef{sp, i})
						break
					}
				}
			}
		}
	}
	return nodes, refs
}

// residNorms returns ‖column i mapped into the residual stream‖ (before the
// token's std) for the given latents, computing missing ones with one GEMM.
func (e *Engine) residNorms(reg *registered, layer int, ids []int) map[int]float32 {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var missing []int
	for _, i := range ids {
		if _, ok := reg.norms[i]; !ok && !slices.Contains(missing, i) {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		in, D := reg.ae.NInputs, e.Model.DModel
		cols := make([]float32, len(missing)*in)
		for j, i := range missing {
			copy(cols[j*in:], reg.ae.DecoderColumn(i))
		}
		if reg.loc == model.MLPPostAct {
			mapped := make([]float32, len(missing)*D)
			blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, blas32.General{Rows: len(missing), Cols: in, Stride: in, Data: cols},
				blas32.General{Rows: in, Cols: D, Stride: D, Data: e.Model.Blocks[layer].OutW}, 0, blas32.General{Rows: len(missing), Cols: D, Stride: D, Data: mapped})
			cols, in = mapped, D
		}
		for j, i := range missing {
			reg.norms[i] = norm(cols[j*in : (j+1)*in])
		}
	}
	out := make(map[int]float32, len(ids))
	for _, i := range ids {
		out[i] = reg.norms[i]
	}
	return out
}

// latentMetrics fills the four numbers of the sparse latent nodes of row r.
func (e *Engine) latentMetrics(mt *metrics, s nodeSpace, r int, gstar []float32, at point) {
	m := e.Model
	T, D := s.T, m.DModel
	bySplice := map[*splice][]int{}
	for j, ref := range s.extraRef {
		bySplice[ref.sp] = append(bySplice[ref.sp], j)
	}
	for sp, js := range bySplice {
		ids := make([]int, len(js))
		for k, j := range js {
			ids[k] = s.extraRef[j].i
		}
		norms := e.residNorms(sp.reg, sp.slot.layer, ids)
		lat, NL := sp.s.Latents, sp.reg.ae.NLatents
		Tp := lat.Shape[1]
		node := s.extra[js[0]]
		direct := before(writePoint(node), at)
		// g* seen from the autoencoder's input space, per live token
		proj := map[int][]float32{}
		if direct {
			for t := range T {
				g := gstar[t*D : (t+1)*D]
				if norm(g) == 0 {
					continue
				}
				if sp.reg.loc == model.MLPPostAct {
					p := make([]float32, m.DMLP)
					gemv(m.Blocks[sp.slot.layer].OutW, m.DMLP, D, g, p)
					proj[t] = p
				} else {
					proj[t] = g
				}
			}
		}
		for _, j := range js {
			n, i := s.extra[j], s.extraRef[j].i
			a := lat.Data[(r*Tp+n.Token)*NL+i]
			if a == 0 {
				continue
			}
			std := float32(1)
			if sp.s.Std != nil {
				std = sp.s.Std.Data[r*Tp+n.Token]
			}
			k := s.offExtra + j
			mt.activation[k] = a
			mt.writeNorm[k] = a * std * norms[i]
			if before(writePoint(n), at) {
				mt.actTimesGrad[k] = a * sp.grad.Data[(r*Tp+n.Token)*NL+i]
			}
			if p, ok := proj[n.Token]; ok {
				w, err := sp.s.WriteVector(r, n.Token, i)
				if err == nil {
					mt.directionWrite[k] = a * float32(dot(w, p))
				}
			}
		}
	}
}

// latentTraceSeed seeds the site of a traced latent with the gradient of
// its pre-activation and returns the pre-activation per row.
func (e *Engine) latentTraceSeed(sps []*splice, n Node, B int) (*splice, *model.Tensor, []float64, error) {
	for _, sp := range sps {
		if sp.slot != (aeSlot{n.Type, n.Layer}) {
			continue
		}
		i, _ := sp.reg.ae.IndexOf(n.Index)
		in := sp.reg.ae.NInputs
		T := sp.x.Shape[1]
		seed := model.NewTensor(sp.x.Shape...)
		var values []float64
		for r := range B {
			g, err := sp.s.PreActGrad(r, n.Token, i)
			if err != nil {
				return nil, nil, nil, err
			}
			copy(seed.Data[(r*T+n.Token)*in:], g)
			pre, err := sp.reg.ae.PreActivation(sp.x.Data[(r*T+n.Token)*in:(r*T+n.Token+1)*in], i)
			if err != nil {
				return nil, nil, nil, err
			}
			values = append(values, float64(pre))
		}
		return sp, seed, values, nil
	}
	return nil, nil, nil, fmt.Errorf("latent %s is not spliced in", n.Name())
}
