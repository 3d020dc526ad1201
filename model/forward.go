package model

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"tdb/internal/parallel"
	"tdb/kernels"
)

// Hook sees a site's activations during the forward pass, in the semantic
// shape [B, T, ...] (attn.qk_* as [B, Tq, Tk, H]), and may modify them in
// place: the change flows downstream. For the backward pass a hook is
// transparent (its Jacobian is taken as the identity), which is what splicing
// an autoencoder with its error term needs.
type Hook struct {
	Site Site
	Fn   func(t *Tensor) error
}

// Intervention sets elements of a site to a constant (ablation, patching).
// Index holds flat indices into the site's [B, T, ...] tensor. The set
// elements are constants for the backward pass: no gradient flows through.
type Intervention struct {
	Site  Site
	Index []int
	Value float32
}

// Request is one batched forward pass.
type Request struct {
	// Tokens holds one sequence per batch row; ragged rows are padded at the
	// end (padding never influences real tokens: attention is causal).
	Tokens [][]int
	// Capture lists the sites whose activations are returned. Only these are
	// kept: memory grows with what is captured, not with the model.
	Capture       []Site
	Hooks         []Hook
	Interventions []Intervention
	// Backward keeps what Result.Backward needs (all intermediate tensors).
	Backward bool
}

// Result of a forward pass.
type Result struct {
	Lengths []int // real length of each sequence
	T       int   // padded length
	// Acts holds the captured activations, [B, T, ...], zero at padding.
	Acts map[Site]*Tensor
	// LastLayer is the last block that ran (the pass stops early when
	// nothing later is needed).
	LastLayer int

	m    *Model
	tape *tape
}

// pass is the state of one forward pass.
type pass struct {
	m       *Model
	B, T, N int
	lengths []int
	want    map[Site]bool
	hooks   map[Site][]Hook
	sets    map[Site][]Intervention
	res     *Result
	ws      *workspace        // nil when the tape keeps every buffer
	owned   map[*float32]bool // site buffers handed to the result as they are
}

// allocSite returns the buffer of a site that is never modified after its
// visit: a captured one gets a buffer of its own that becomes the result
// (no copy), one a released Result handed back when there is one; others
// come from alloc. Contents are undefined.
func (p *pass) allocSite(s Site, n int) []float32 {
	if !p.want[s] || p.ws == nil {
		return p.alloc(n)
	}
	buf := p.m.spare.get(n)
	if buf == nil {
		buf = make([]float32, n)
	}
	if p.owned == nil {
		p.owned = map[*float32]bool{}
	}
	p.owned[&buf[0]] = true
	return buf
}

// alloc returns a buffer for the pass: from the workspace's current arena,
// or fresh when the tape must keep it. Contents are undefined.
func (p *pass) alloc(n int) []float32 {
	if p.ws == nil {
		return make([]float32, n)
	}
	return p.ws.cur.alloc(n)
}

// Release hands the memory of the captured activations back to the model,
// for its later passes to capture into instead of allocating afresh: the
// logits of a batch of 32 × 64 tokens are 412 MB, which a new allocation
// makes the OS fault in and zero on every pass (about 0.2 s on a 2-core
// EPYC, against 0.5 s of GEMM for the unembedding itself). Optional: a caller
// that keeps its activations simply does not call it. After Release, Acts is
// nil and no tensor taken from it may be used; Backward still works.
func (r *Result) Release() {
	if r.m == nil {
		return
	}
	for _, t := range r.Acts {
		r.m.spare.put(t.Data)
	}
	r.Acts = nil
}

// spareBufs holds buffers released by Results until a pass captures a site
// of a size they fit.
type spareBufs struct {
	mu   sync.Mutex
	bufs [][]float32
}

// maxSpare bounds how many buffers the model keeps: a pass capturing every
// site of GPT-2 small releases about 200.
const maxSpare = 256

// get returns the smallest spare buffer of capacity n to 2n, resliced to n,
// or nil.
func (s *spareBufs) get(n int) []float32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	best := -1
	for i, b := range s.bufs {
		if c := cap(b); c >= n && c <= 2*n && (best < 0 || c < cap(s.bufs[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	b := s.bufs[best][:n]
	last := len(s.bufs) - 1
	s.bufs[best], s.bufs[last] = s.bufs[last], nil
	s.bufs = s.bufs[:last]
	return b
}

func (s *spareBufs) put(b []float32) {
	if cap(b) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bufs) < maxSpare {
		s.bufs = append(s.bufs, b)
	}
}

// arena hands out slices of one buffer until reset; what does not fit is
// allocated and the buffer grows at the next reset, so steady state
// allocates nothing.
type arena struct {
	buf        []float32
	off, spill int
}

func (a *arena) alloc(n int) []float32 {
	if a.off+n <= len(a.buf) {
		s := a.buf[a.off : a.off+n : a.off+n]
		a.off += n
		return s
	}
	a.spill += n
	return make([]float32, n)
}

func (a *arena) reset() {
	if a.spill > 0 {
		a.buf = make([]float32, a.off+a.spill)
	}
	a.off, a.spill = 0, 0
}

// workspace holds two arenas used by alternate layers: a layer reads the
// previous layer's output from one while writing its own into the other.
type workspace struct {
	arenas [2]arena
	cur    *arena
}

func (w *workspace) use(i int) {
	w.cur = &w.arenas[i]
	w.cur.reset()
}

func (m *Model) workspace() *workspace {
	if w, ok := m.pool.Get().(*workspace); ok {
		return w
	}
	return &workspace{}
}

// Forward runs the model. It stops after the last layer anything needs and
// skips the unembedding when nothing reads logits.
func (m *Model) Forward(ctx context.Context, req Request) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidateTokens(m.Config, req.Tokens); err != nil {
		return nil, err
	}
	p := &pass{m: m, B: len(req.Tokens), want: map[Site]bool{}, hooks: map[Site][]Hook{}, sets: map[Site][]Intervention{}}
	for _, seq := range req.Tokens {
		p.lengths = append(p.lengths, len(seq))
		p.T = max(p.T, len(seq))
	}
	p.N = p.B * p.T
	last := -1
	needFinal := req.Backward
	note := func(s Site) error {
		if err := m.check(s); err != nil {
			return err
		}
		if s.Loc.HasLayer() {
			last = max(last, s.Layer)
		} else if s.Loc != ResidPostEmb {
			needFinal = true
		}
		return nil
	}
	for _, s := range req.Capture {
		if err := note(s); err != nil {
			return nil, err
		}
		p.want[s] = true
	}
	for _, h := range req.Hooks {
		if err := note(h.Site); err != nil {
			return nil, err
		}
		p.hooks[h.Site] = append(p.hooks[h.Site], h)
	}
	for _, iv := range req.Interventions {
		if err := note(iv.Site); err != nil {
			return nil, err
		}
		n := p.B
		for _, d := range m.SiteShape(iv.Site.Loc, p.T) {
			n *= d
		}
		for _, i := range iv.Index {
			if i < 0 || i >= n {
				return nil, fmt.Errorf("intervention on %s: index %d outside the tensor of %d elements", iv.Site, i, n)
			}
		}
		p.sets[iv.Site] = append(p.sets[iv.Site], iv)
	}
	if needFinal {
		last = m.NLayer - 1
	}
	p.res = &Result{Lengths: p.lengths, T: p.T, Acts: map[Site]*Tensor{}, LastLayer: last, m: m}
	var tp *tape
	if req.Backward {
		tp = &tape{layers: make([]layerTape, m.NLayer), sets: p.sets, B: p.B, T: p.T}
		p.res.tape = tp
	}
	if err := p.run(ctx, req.Tokens, last, needFinal, tp); err != nil {
		return nil, err
	}
	return p.res, nil
}

// layerTape holds what the backward pass needs from one block.
type layerTape struct {
	x, mean1, scale1, ln1, qkv, probs, vout []float32
	mid, mean2, scale2, ln2, pre, post      []float32
}

// tape holds the forward pass for Backward.
type tape struct {
	B, T                 int
	layers               []layerTape
	final, meanF, scaleF []float32
	sets                 map[Site][]Intervention
}

func (p *pass) run(ctx context.Context, tokens [][]int, last int, final bool, tp *tape) error {
	m, N, d := p.m, p.N, p.m.DModel
	var ws *workspace
	if tp == nil { // nothing outlives the pass: reuse buffers across layers and calls
		ws = m.workspace()
		defer m.pool.Put(ws)
		p.ws = ws
		ws.use(1)
	}
	resid := p.alloc(N * d)
	for b, seq := range tokens {
		for t := range p.T {
			tok := 0
			if t < len(seq) {
				tok = seq[t]
			}
			row := resid[(b*p.T+t)*d : (b*p.T+t+1)*d]
			e, pos := m.WTE[tok*d:(tok+1)*d], m.WPE[t*d:(t+1)*d]
			for i := range row {
				row[i] = e[i] + pos[i]
			}
		}
	}
	if err := p.visit(At(ResidPostEmb, NoLayer), resid); err != nil {
		return err
	}
	var lt layerTape
	for l := 0; l <= last; l++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if tp != nil {
			lt = layerTape{}
		} else {
			ws.use(l % 2) // layer l's buffers; the previous layer's output stays in the other arena
		}
		var err error
		if resid, err = p.block(l, resid, &lt); err != nil {
			return err
		}
		if tp != nil {
			tp.layers[l] = lt
		}
	}
	if !final {
		return nil
	}
	if ws != nil {
		ws.use((last + 1) % 2)
	}
	mean, scale, out := p.alloc(N), p.alloc(N), p.alloc(N*d)
	layerNormStats(mean, scale, resid, N, d, m.Eps)
	if err := p.visit(At(LnFScale, NoLayer), scale); err != nil {
		return err
	}
	layerNormApply(out, resid, mean, scale, m.LnFG, m.LnFB, N, d)
	if err := p.visit(At(LnFOut, NoLayer), out); err != nil {
		return err
	}
	if tp != nil {
		tp.final, tp.meanF, tp.scaleF = resid, mean, scale
	}
	s := At(Logits, NoLayer)
	if !p.want[s] && len(p.hooks[s]) == 0 && len(p.sets[s]) == 0 && tp == nil {
		return nil
	}
	logits := p.allocSite(s, N*m.Vocab)
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, general(N, d, d, out), general(m.Vocab, d, d, m.WTE), 0, general(N, m.Vocab, m.Vocab, logits))
	return p.visit(s, logits)
}

// block runs one transformer block on resid and returns the new residual
// stream. Its buffers come from p.alloc: fresh when the tape keeps them,
// otherwise from the workspace arena of this layer.
func (p *pass) block(l int, resid []float32, lt *layerTape) ([]float32, error) {
	m, N, d, mlp := p.m, p.N, p.m.DModel, p.m.DMLP
	w := &m.Blocks[l]
	site := func(loc Location) Site { return At(loc, l) }

	lt.x = resid
	lt.mean1, lt.scale1, lt.ln1 = p.alloc(N), p.alloc(N), p.alloc(N*d)
	layerNormStats(lt.mean1, lt.scale1, resid, N, d, m.Eps)
	if err := p.visit(site(AttnLnScale), lt.scale1); err != nil {
		return nil, err
	}
	layerNormApply(lt.ln1, resid, lt.mean1, lt.scale1, w.Ln1G, w.Ln1B, N, d)
	if err := p.visit(site(AttnLnOut), lt.ln1); err != nil {
		return nil, err
	}
	lt.qkv = p.alloc(N * 3 * d)
	linear(lt.qkv, lt.ln1, N, d, w.AttnW, 3*d, w.AttnB)
	for _, loc := range []Location{AttnQ, AttnK, AttnV} {
		if err := p.visit(site(loc), lt.qkv); err != nil {
			return nil, err
		}
	}
	var err error
	if lt.probs, lt.vout, err = p.attention(l, lt.qkv); err != nil {
		return nil, err
	}
	delta := p.alloc(N * d)
	linear(delta, lt.vout, N, d, w.ProjW, d, w.ProjB)
	if err := p.visit(site(ResidDeltaAtt), delta); err != nil {
		return nil, err
	}
	mid := delta // captures are copies, so delta's buffer can become resid + delta
	add(mid, resid, delta)
	if err := p.visit(site(ResidPostAttn), mid); err != nil {
		return nil, err
	}
	lt.mid = mid
	lt.mean2, lt.scale2, lt.ln2 = p.alloc(N), p.alloc(N), p.alloc(N*d)
	layerNormStats(lt.mean2, lt.scale2, mid, N, d, m.Eps)
	if err := p.visit(site(MLPLnScale), lt.scale2); err != nil {
		return nil, err
	}
	layerNormApply(lt.ln2, mid, lt.mean2, lt.scale2, w.Ln2G, w.Ln2B, N, d)
	if err := p.visit(site(MLPLnOut), lt.ln2); err != nil {
		return nil, err
	}
	lt.pre, lt.post = p.allocSite(site(MLPPreAct), N*mlp), p.allocSite(site(MLPPostAct), N*mlp)
	linear(lt.pre, lt.ln2, N, d, w.FcW, mlp, w.FcB)
	if err := p.visit(site(MLPPreAct), lt.pre); err != nil {
		return nil, err
	}
	gelu(lt.post, lt.pre)
	if err := p.visit(site(MLPPostAct), lt.post); err != nil {
		return nil, err
	}
	out := p.alloc(N * d)
	linear(out, lt.post, N, mlp, w.OutW, d, w.OutB)
	if err := p.visit(site(ResidDeltaMLP), out); err != nil {
		return nil, err
	}
	add(out, out, mid)
	if err := p.visit(site(ResidPostMLP), out); err != nil {
		return nil, err
	}
	return out, nil
}

// attention computes per (sequence, head) the causal softmax attention and
// returns probs [B, H, T, T] and v_out [N, d] (heads concatenated).
func (p *pass) attention(l int, qkv []float32) (probs, vout []float32, err error) {
	m, B, T, d := p.m, p.B, p.T, p.m.DModel
	H, dh := m.NHead, m.DHead()
	logits := p.alloc(B * H * T * T)
	inv := float32(1 / math.Sqrt(float64(dh)))
	parallel.Rows(B*H, 1, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			q := qkv[b*T*3*d+h*dh:]
			k := qkv[b*T*3*d+d+h*dh:]
			s := logits[bh*T*T : (bh+1)*T*T]
			blas32.Gemm(blas.NoTrans, blas.Trans, inv, general(T, dh, 3*d, q), general(T, dh, 3*d, k), 0, general(T, T, T, s))
			for i := range T {
				for j := i + 1; j < T; j++ {
					s[i*T+j] = float32(math.Inf(-1))
				}
			}
		}
	})
	if err := p.visit(At(AttnQKLogits, l), logits); err != nil {
		return nil, nil, err
	}
	probs = logits // captures are copies: softmax in place
	parallel.Rows(B*H*T, 1, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			q := r % T // keys after the query are masked: probability 0
			kernels.Softmax(probs[r*T:r*T+q+1], logits[r*T:r*T+q+1])
			clear(probs[r*T+q+1 : (r+1)*T])
		}
	})
	if err := p.visit(At(AttnQKProbs, l), probs); err != nil {
		return nil, nil, err
	}
	vout = p.alloc(p.N * d)
	parallel.Rows(B*H, 1, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			v := qkv[b*T*3*d+2*d+h*dh:]
			blas32.Gemm(blas.NoTrans, blas.NoTrans, 1, general(T, T, T, probs[bh*T*T:]), general(T, dh, 3*d, v), 0, general(T, dh, d, vout[b*T*d+h*dh:]))
		}
	})
	return probs, vout, p.visit(At(AttnVOut, l), vout)
}

func (p *pass) wanted(s Site) bool {
	return p.want[s] || len(p.hooks[s]) > 0 || len(p.sets[s]) > 0
}

// visit runs hooks and interventions on a site and captures it.
func (p *pass) visit(s Site, buf []float32) error {
	if !p.wanted(s) {
		return nil
	}
	t, writeBack := p.semantic(s.Loc, buf)
	for _, h := range p.hooks[s] {
		if err := h.Fn(t); err != nil {
			return fmt.Errorf("hook on %s: %w", s, err)
		}
	}
	for _, iv := range p.sets[s] {
		for _, i := range iv.Index {
			t.Data[i] = iv.Value
		}
	}
	if writeBack != nil && (len(p.hooks[s]) > 0 || len(p.sets[s]) > 0) {
		writeBack()
	}
	if p.want[s] {
		c := t
		if writeBack == nil && !p.owned[&buf[0]] {
			c = t.Clone()
		}
		zeroPadding(c, p.lengths, p.T)
		p.res.Acts[s] = c
	}
	return nil
}

// zeroPadding clears the positions beyond each sequence's length.
func zeroPadding(t *Tensor, lengths []int, T int) {
	perTok := t.Stride(1)
	for b, n := range lengths {
		if n < T {
			clear(t.Data[(b*T+n)*perTok : (b+1)*T*perTok])
		}
	}
}

// semantic presents an internal buffer in the site's semantic layout. When the
// layouts differ it returns a copy and a function that writes it back.
func (p *pass) semantic(loc Location, buf []float32) (*Tensor, func()) {
	return toSemantic(p.m.Config, loc, p.B, p.T, buf)
}

func toSemantic(c Config, loc Location, B, T int, buf []float32) (*Tensor, func()) {
	shape := append([]int{B}, c.SiteShape(loc, T)...)
	d, H := c.DModel, c.NHead
	switch loc {
	case AttnQ, AttnK, AttnV:
		part := slices.Index([]Location{AttnQ, AttnK, AttnV}, loc)
		t := NewTensor(shape...)
		for r := range B * T {
			copy(t.Data[r*d:(r+1)*d], buf[r*3*d+part*d:r*3*d+(part+1)*d])
		}
		return t, func() {
			for r := range B * T {
				copy(buf[r*3*d+part*d:r*3*d+(part+1)*d], t.Data[r*d:(r+1)*d])
			}
		}
	case AttnQKLogits, AttnQKProbs:
		t := NewTensor(shape...)
		for b := range B {
			for h := range H {
				for i := range T {
					for j := range T {
						t.Data[((b*T+i)*T+j)*H+h] = buf[((b*H+h)*T+i)*T+j]
					}
				}
			}
		}
		return t, func() {
			for b := range B {
				for h := range H {
					for i := range T {
						for j := range T {
							buf[((b*H+h)*T+i)*T+j] = t.Data[((b*T+i)*T+j)*H+h]
						}
					}
				}
			}
		}
	}
	return &Tensor{Shape: shape, Data: buf}, nil
}
