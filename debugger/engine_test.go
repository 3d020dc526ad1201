package debugger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"tdb/model"
	"tdb/model/tokenizer"
)

// loudEngine is a small random full-vocabulary model with loud weights, so
// that every term of every metric matters.
func loudEngine(t testing.TB) *Engine {
	t.Helper()
	cfg := model.Config{NLayer: 2, NHead: 4, DModel: 32, DMLP: 64, NCtx: 32, Vocab: 50257, Eps: 1e-5}
	m, err := model.NewLoud(cfg, 3, 0.3, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		t.Fatal(err)
	}
	return New(m, tok)
}

const prompt = "<|endoftext|>Paris, France. Ottawa,"

func baseRequest() Request {
	return Request{Prompt: prompt, Targets: []string{" Canada"}, Distractors: []string{" Germany"}, TopK: 5}
}

func run(t *testing.T, e *Engine, req Request) *Response {
	t.Helper()
	resp, err := e.Run(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// With ln_f's scale frozen the loss is linear in the final residual stream,
// so the direct effects of all nodes plus the bias terms add up to the loss.
func TestDirectEffectsSumToLoss(t *testing.T) {
	e := loudEngine(t)
	for _, loss := range []string{"logit_diff", "logit_minus_mean"} {
		req := baseRequest()
		req.Loss = loss
		p, err := e.prepare(req)
		if err != nil {
			t.Fatal(err)
		}
		m := e.Model
		fwd, err := m.Forward(context.Background(), model.Request{Tokens: [][]int{p.rows[0].tokens}, Capture: e.captures(), Backward: true})
		if err != nil {
			t.Fatal(err)
		}
		sc := e.lossScalar(p, fwd)
		gs := e.gradSite(sc.gstar)
		grads, err := fwd.Backward(sc.seeds, model.BackwardOptions{Stop: sc.stops})
		if err != nil {
			t.Fatal(err)
		}
		s := newNodeSpace(m.NLayer, p.T, m.DMLP, m.NHead)
		mt := e.metrics(s, fwd, grads, grads[gs].Data, 0, sc.gstar)
		var sum float64
		for i := range s.total {
			if s.valid(i) {
				sum += float64(mt.directionWrite[i])
			}
		}
		D, last := m.DModel, p.T-1
		g := grads[gs].Data[last*D : (last+1)*D]
		for _, b := range m.Blocks {
			sum += dot(b.ProjB, g) + dot(b.OutB, g)
		}
		gOut := grads[model.At(model.LnFOut, model.NoLayer)].Data[last*D : (last+1)*D]
		sum += dot(gOut, m.LnFB)
		if math.Abs(sum-sc.values[0]) > 1e-3*math.Max(1, math.Abs(sc.values[0])) {
			t.Errorf("%s: Σ direct effects + biases = %.6f, loss = %.6f", loss, sum, sc.values[0])
		}
		t.Logf("%s: loss %.5f, Σ direct + biases %.5f", loss, sc.values[0], sum)
	}
}

func (e *Engine) captures() []model.Site {
	c := []model.Site{model.At(model.ResidPostEmb, model.NoLayer), model.At(model.Logits, model.NoLayer)}
	for l := range e.Model.NLayer {
		c = append(c, model.At(model.MLPPostAct, l), model.At(model.AttnQKProbs, l), model.At(model.AttnV, l))
	}
	return c
}

func TestHeadActTimesGradIsProbTimesGradient(t *testing.T) {
	e := loudEngine(t)
	req := baseRequest()
	req.TopK = 50
	resp := run(t, e, req)
	// independent: the model's own backward with the same loss seed
	p, _ := e.prepare(req)
	fwd, err := e.Model.Forward(context.Background(), model.Request{Tokens: [][]int{p.rows[0].tokens}, Capture: e.captures(), Backward: true})
	if err != nil {
		t.Fatal(err)
	}
	sc := e.lossScalar(p, fwd)
	grads, err := fwd.Backward(sc.seeds, model.BackwardOptions{Stop: sc.stops})
	if err != nil {
		t.Fatal(err)
	}
	heads := 0
	for _, r := range resp.Nodes {
		if r.Node.Type != AttnHead {
			continue
		}
		heads++
		n := r.Node
		i := ((n.Token*p.T)+n.KeyToken)*e.Model.NHead + n.Index
		want := float64(fwd.Acts[model.At(model.AttnQKProbs, n.Layer)].Data[i]) * float64(grads[model.At(model.AttnQKProbs, n.Layer)].Data[i])
		if got := r.Metrics[ColActTimesGrad].Value; math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("%s: act×grad %.6g, prob·dL/dprob %.6g", r.Name, got, want)
		}
	}
	if heads == 0 {
		t.Fatal("no heads in the node table")
	}
}

func TestAblationInvariants(t *testing.T) {
	e := loudEngine(t)
	base := run(t, e, baseRequest())
	// Ablating a neuron to its own value changes nothing.
	var neuron *NodeRow
	for i := range base.Nodes {
		if base.Nodes[i].Node.Type == MLPNeuron {
			neuron = &base.Nodes[i]
			break
		}
	}
	if neuron == nil {
		t.Fatal("no neuron in the table")
	}
	req := baseRequest()
	req.Ablations = []Ablation{{Node: neuron.Node, Value: float32(neuron.Metrics[ColActivation].Value)}}
	same := run(t, e, req)
	if d := math.Abs(same.Runs[0].Loss - base.Runs[0].Loss); d > 1e-5 {
		t.Errorf("ablating %s to its own value changed the loss by %g", neuron.Name, d)
	}
	// Ablating to 0 changes the loss, the baseline equals the unablated run,
	// and ablating an already-zero node again changes nothing more.
	req.Ablations = []Ablation{{Node: neuron.Node}}
	abl := run(t, e, req)
	if len(abl.Runs) != 2 || abl.Runs[1].Label != "baseline" {
		t.Fatalf("runs %+v", abl.Runs)
	}
	if abl.Runs[1].Loss != base.Runs[0].Loss {
		t.Errorf("baseline loss %g != unablated %g", abl.Runs[1].Loss, base.Runs[0].Loss)
	}
	if abl.Runs[0].Loss == base.Runs[0].Loss {
		t.Errorf("ablating %s (activation %g) changed nothing", neuron.Name, neuron.Metrics[ColActivation].Value)
	}
	req.Ablations = append(req.Ablations, Ablation{Node: neuron.Node})
	twice := run(t, e, req)
	if twice.Runs[0].Loss != abl.Runs[0].Loss {
		t.Errorf("ablating a node whose activation is already 0 changed the loss: %g vs %g", twice.Runs[0].Loss, abl.Runs[0].Loss)
	}
	for _, r := range abl.Nodes {
		if r.Node == neuron.Node {
			if v := r.Metrics[ColActivation]; v.Value != 0 || v.Baseline == nil || *v.Diff != -*v.Baseline {
				t.Errorf("ablated node row %+v", v)
			}
		}
	}
	// Head ablation: the whole attention row goes to 0.
	req.Ablations = []Ablation{{Node: Node{Type: AttnHead, Layer: 1, Index: 2, Token: -1, KeyToken: -1}}}
	headAbl := run(t, e, req)
	for _, r := range headAbl.Nodes {
		if r.Node.Type == AttnHead && r.Node.Layer == 1 && r.Node.Index == 2 && r.Metrics[ColActivation].Value != 0 {
			t.Errorf("%s has probability %g after ablating the head", r.Name, r.Metrics[ColActivation].Value)
		}
	}
}

func TestBatchedEqualsSingle(t *testing.T) {
	e := loudEngine(t)
	second := "<|endoftext|>London, England. Ottawa,"
	req := baseRequest()
	req.SecondPrompt = second
	both := run(t, e, req)
	left := run(t, e, baseRequest())
	r2 := baseRequest()
	r2.Prompt = second
	right := run(t, e, r2)
	if len(both.Runs) != 2 || both.Runs[1].Label != "right" {
		t.Fatalf("runs: %+v", both.Runs)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(1, math.Abs(b)) }
	if !near(both.Runs[0].Loss, left.Runs[0].Loss) || !near(both.Runs[1].Loss, right.Runs[0].Loss) {
		t.Errorf("batched losses %g/%g, single %g/%g", both.Runs[0].Loss, both.Runs[1].Loss, left.Runs[0].Loss, right.Runs[0].Loss)
	}
	idx := map[string]NodeRow{}
	for _, r := range left.Nodes {
		idx[r.Name] = r
	}
	matched := 0
	for _, r := range both.Nodes {
		if l, ok := idx[r.Name]; ok {
			matched++
			for _, c := range Columns {
				if !near(r.Metrics[c].Value, l.Metrics[c].Value) {
					t.Errorf("%s %s: batched %g, single %g", r.Name, c, r.Metrics[c].Value, l.Metrics[c].Value)
				}
			}
			if r.Metrics[ColActTimesGrad].Right == nil || r.Metrics[ColActTimesGrad].Diff == nil {
				t.Errorf("%s: no right/diff values", r.Name)
			}
		}
	}
	if matched == 0 {
		t.Fatal("no common nodes")
	}
}

// Two prompts with different answers (IOI-style): each side's loss and
// pinned candidates are its own tokens', as when each runs alone.
func TestSecondPromptOwnTargets(t *testing.T) {
	e := loudEngine(t)
	second := "<|endoftext|>London, England. Ottawa,"
	req := baseRequest()
	req.SecondPrompt, req.SecondTargets, req.SecondDistractors = second, []string{" England"}, []string{" Canada"}
	both := run(t, e, req)
	r2 := baseRequest()
	r2.Prompt, r2.Targets, r2.Distractors = second, []string{" England"}, []string{" Canada"}
	right := run(t, e, r2)
	left := run(t, e, baseRequest())
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-5*math.Max(1, math.Abs(b)) }
	if !near(both.Runs[0].Loss, left.Runs[0].Loss) || !near(both.Runs[1].Loss, right.Runs[0].Loss) {
		t.Fatalf("batched losses %g/%g, single %g/%g", both.Runs[0].Loss, both.Runs[1].Loss, left.Runs[0].Loss, right.Runs[0].Loss)
	}
	same := baseRequest()
	same.SecondPrompt = second
	if shared := run(t, e, same); near(shared.Runs[1].Loss, both.Runs[1].Loss) {
		t.Fatalf("the right side's loss %g does not depend on its own targets", shared.Runs[1].Loss)
	}
	pinned := both.Runs[1].Candidates.Pinned
	if len(pinned) != 2 || pinned[0].Text != " England" || pinned[0].Role != "target" || pinned[1].Text != " Canada" || pinned[1].Role != "distractor" {
		t.Fatalf("right side pinned %+v", pinned)
	}
	if p := both.Runs[0].Candidates.Pinned; p[0].Text != " Canada" {
		t.Fatalf("left side pinned %+v", p)
	}
	// The node table's gradients are of each side's own loss: the right
	// column of a node is its value when the second prompt runs alone.
	idx := map[string]NodeRow{}
	for _, r := range right.Nodes {
		idx[r.Name] = r
	}
	matched := 0
	for _, r := range both.Nodes {
		if rr, ok := idx[r.Name]; ok && r.Metrics[ColActTimesGrad].Right != nil {
			matched++
			if !near(*r.Metrics[ColActTimesGrad].Right, rr.Metrics[ColActTimesGrad].Value) {
				t.Errorf("%s: right %g, alone %g", r.Name, *r.Metrics[ColActTimesGrad].Right, rr.Metrics[ColActTimesGrad].Value)
			}
		}
	}
	if matched == 0 {
		t.Fatal("no common nodes")
	}
}

func TestTableIsTopAndBottom(t *testing.T) {
	e := loudEngine(t)
	resp := run(t, e, baseRequest())
	// brute force: the best act_times_grad over all nodes is in the table with reason "top act_times_grad"
	p, _ := e.prepare(baseRequest())
	fwd, _ := e.Model.Forward(context.Background(), model.Request{Tokens: [][]int{p.rows[0].tokens}, Capture: e.captures(), Backward: true})
	sc := e.lossScalar(p, fwd)
	grads, _ := fwd.Backward(sc.seeds, model.BackwardOptions{Stop: sc.stops})
	s := newNodeSpace(e.Model.NLayer, p.T, e.Model.DMLP, e.Model.NHead)
	mt := e.metrics(s, fwd, grads, grads[e.gradSite(sc.gstar)].Data, 0, sc.gstar)
	best, worst := -1, -1
	for i := range s.total {
		if !s.valid(i) {
			continue
		}
		if best < 0 || mt.actTimesGrad[i] > mt.actTimesGrad[best] {
			best = i
		}
		if worst < 0 || mt.actTimesGrad[i] < mt.actTimesGrad[worst] {
			worst = i
		}
	}
	found := map[string]bool{}
	for _, r := range resp.Nodes {
		for _, why := range r.Reason {
			found[why+" "+r.Name] = true
		}
	}
	for why, i := range map[string]int{"top act_times_grad": best, "bottom act_times_grad": worst} {
		if !found[why+" "+s.node(i).Name()] {
			t.Errorf("%s: %s (%g) missing from the table", why, s.node(i).Name(), mt.actTimesGrad[i])
		}
	}
	if len(resp.Nodes) < 5 || len(resp.Nodes) > 8*5 {
		t.Errorf("table has %d rows for k=5", len(resp.Nodes))
	}
	// JSON round trip
	b, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var back Response
	if err := json.Unmarshal(b, &back); err != nil || len(back.Nodes) != len(resp.Nodes) {
		t.Fatalf("JSON round trip: %v", err)
	}
}

func TestTracing(t *testing.T) {
	e := loudEngine(t)
	p, _ := e.prepare(baseRequest())
	last := p.T - 1
	cases := []struct {
		trace Trace
		want  string
	}{
		{Trace{Node: Node{Type: MLPNeuron, Layer: 1, Index: 3, Token: last}}, "pre-activation"},
		{Trace{Node: Node{Type: AttnHead, Layer: 1, Index: 1, Token: last, KeyToken: 2}, Path: "q"}, "through Q"},
		{Trace{Node: Node{Type: AttnHead, Layer: 1, Index: 1, Token: last, KeyToken: 2}, Path: "k"}, "through K"},
		{Trace{Node: Node{Type: AttnHead, Layer: 1, Index: 1, Token: last, KeyToken: 2}}, "through QK"},
		{Trace{Node: Node{Type: AttnHead, Layer: 0, Index: 1, Token: last, KeyToken: 2}, Path: "v"}, "through V"},
		{Trace{Node: Node{Type: AttnHead, Layer: 0, Index: 1, Token: last, KeyToken: 2}, Path: "v",
			Downstream: &Trace{Node: Node{Type: MLPNeuron, Layer: 1, Index: 3, Token: last}}}, "pre-activation of mlp_L1_3"},
	}
	for _, c := range cases {
		req := baseRequest()
		req.Trace = &c.trace
		req.TopK = 20
		resp := run(t, e, req)
		if !strings.Contains(resp.Scalar, c.want) {
			t.Errorf("scalar %q, want %q", resp.Scalar, c.want)
		}
		rp := readPoint(c.trace.Node)
		for _, r := range resp.Nodes {
			if r.Node.Type == Embedding {
				continue
			}
			if !before(writePoint(r.Node), rp) {
				if v := r.Metrics[ColActTimesGrad].Value; v != 0 {
					t.Errorf("%s: node %s after the traced point has act×grad %g", resp.Scalar, r.Name, v)
				}
				if v := r.Metrics[ColDirectEffect].Value; v != 0 {
					t.Errorf("%s: node %s after the traced point has direct effect %g", resp.Scalar, r.Name, v)
				}
			}
		}
		if c.trace.Node.Type == MLPNeuron {
			// the traced scalar is the neuron's pre-activation
			fwd, _ := e.Model.Forward(context.Background(), model.Request{Tokens: [][]int{p.rows[0].tokens}, Capture: []model.Site{model.At(model.MLPPreAct, 1)}})
			want := float64(fwd.Acts[model.At(model.MLPPreAct, 1)].Data[last*e.Model.DMLP+3])
			if math.Abs(resp.Runs[0].Loss-want) > 1e-6 {
				t.Errorf("traced value %g, pre-activation %g", resp.Runs[0].Loss, want)
			}
		}
	}
}

func TestBadRequests(t *testing.T) {
	e := loudEngine(t)
	for _, c := range []struct {
		mut  func(*Request)
		want string
	}{
		{func(r *Request) { r.Targets = []string{" Canada is"} }, `" Canada is"`},
		{func(r *Request) { r.Distractors = []string{"Germanyy"} }, `"Germanyy"`},
		{func(r *Request) { r.Loss = "bogus" }, "unknown loss"},
		{func(r *Request) { r.Prompt = "" }, "empty prompt"},
		{func(r *Request) { r.SecondPrompt = "a b" }, "equal token length"},
		{func(r *Request) { r.SecondTargets = []string{" Paris"} }, "give second_prompt"},
		{func(r *Request) {
			r.SecondPrompt, r.SecondDistractors = "<|endoftext|>London, England. Ottawa,", []string{" Paris"}
		}, "second target"},
		{func(r *Request) {
			r.SecondPrompt, r.SecondTargets = "<|endoftext|>London, England. Ottawa,", []string{" Paris is"}
		}, `" Paris is"`},
		{func(r *Request) { r.Ablations = []Ablation{{Node: Node{Type: MLPNeuron, Layer: 9}}} }, "layer 9"},
		{func(r *Request) { r.Trace = &Trace{Node: Node{Type: AttnHead, Layer: 1, Token: 2, KeyToken: 5}} }, "causal"},
		{func(r *Request) { r.Prompt = strings.Repeat(" x", 40) }, "context"},
		{func(r *Request) {
			r.Ablations = []Ablation{{Node: Node{Type: MLPNeuron, Layer: 0, Index: 1, Token: -1}, Value: float32(math.NaN())}}
		}, "value NaN is not a finite number"},
		{func(r *Request) {
			r.Ablations = []Ablation{{Node: Node{Type: AttnHead, Layer: 1, Index: 0, Token: 1}, Value: float32(math.Inf(-1))}}
		}, "value -Inf is not a finite number"},
	} {
		req := baseRequest()
		c.mut(&req)
		_, err := e.Run(context.Background(), req)
		// A caller that wraps the error still finds the kind (errors.As).
		var bad BadRequest
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(fmt.Errorf("serving: %w", err), &bad) || bad.Err == nil {
			t.Errorf("want a BadRequest mentioning %q, got %v", c.want, err)
		}
	}
}

func TestNodeNames(t *testing.T) {
	for _, s := range []string{"mlp_L5_123@7", "attn_L3_7@7>2", "mlp_ae_L2_9@4", "attn_ae_L0_1@0", "mlp_L0_1"} {
		n, err := ParseNode(s)
		if err != nil {
			t.Fatal(err)
		}
		if n.Name() != s {
			t.Errorf("%s -> %+v -> %s", s, n, n.Name())
		}
	}
	for _, s := range []string{"mlp_5_1", "mlp_L1_2@3>1", "attn_L1", ""} {
		if _, err := ParseNode(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestDetails(t *testing.T) {
	e := loudEngine(t)
	req := baseRequest()
	p, _ := e.prepare(req)
	req.Inspect = []Node{{Type: MLPNeuron, Layer: 0, Index: 5, Token: 2}, {Type: AttnHead, Layer: 1, Index: 0, Token: p.T - 1, KeyToken: 1}}
	resp := run(t, e, req)
	if len(resp.Details) != 2 {
		t.Fatalf("%d details", len(resp.Details))
	}
	n := resp.Details[0]
	if len(n.Upvoted) != 10 || len(n.InputTokens) != 10 || n.Upvoted[0].Score < n.Upvoted[9].Score {
		t.Errorf("neuron detail %+v", n)
	}
	h := resp.Details[1]
	if len(h.AttendedTo) != p.T || len(h.AttendedFrom) == 0 {
		t.Errorf("head detail: %d attended-to tokens, want %d", len(h.AttendedTo), p.T)
	}
	var sum float64
	for _, s := range h.AttendedTo {
		sum += s.Score
	}
	if math.Abs(sum-1) > 1e-4 {
		t.Errorf("attention row sums to %g", sum)
	}
}

// Tracing a head through V on the loss explains exactly its direct effect.
func TestTraceVValueIsDirectEffect(t *testing.T) {
	e := loudEngine(t)
	p, _ := e.prepare(baseRequest())
	head := Node{Type: AttnHead, Layer: 0, Index: 3, Token: p.T - 1, KeyToken: 4}
	req := baseRequest()
	req.Trace = &Trace{Node: head, Path: "v"}
	traced := run(t, e, req)
	fwd, _ := e.Model.Forward(context.Background(), model.Request{Tokens: [][]int{p.rows[0].tokens}, Capture: e.captures(), Backward: true})
	sc := e.lossScalar(p, fwd)
	grads, _ := fwd.Backward(sc.seeds, model.BackwardOptions{Stop: sc.stops})
	s := newNodeSpace(e.Model.NLayer, p.T, e.Model.DMLP, e.Model.NHead)
	mt := e.metrics(s, fwd, grads, grads[e.gradSite(sc.gstar)].Data, 0, sc.gstar)
	i := s.offAttn + ((head.Layer*p.T+head.Token)*p.T+head.KeyToken)*s.H + head.Index
	if s.node(i) != head {
		t.Fatalf("node space: %+v != %+v", s.node(i), head)
	}
	want := float64(mt.directionWrite[i])
	if got := traced.Runs[0].Loss; math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) || want == 0 {
		t.Errorf("V-traced scalar %g, direct effect in the loss table %g", got, want)
	}
}

// The probs loss is Σ target probabilities, and its seed on the logits is
// the derivative of that sum (checked by finite differences of the softmax);
// the zero loss has no gradient anywhere.
func TestOtherLosses(t *testing.T) {
	e := loudEngine(t)
	req := baseRequest()
	req.Loss = "probs"
	req.Targets = []string{" Canada", " France"}
	resp := run(t, e, req)
	var sum float64
	for _, c := range resp.Runs[0].Candidates.Pinned {
		if c.Role == "target" {
			sum += c.Prob
		}
	}
	if math.Abs(resp.Runs[0].Loss-sum) > 1e-9 || sum <= 0 {
		t.Errorf("probs loss %g, Σ target probabilities %g", resp.Runs[0].Loss, sum)
	}
	p, err := e.prepare(req)
	if err != nil {
		t.Fatal(err)
	}
	fwd, err := e.Model.Forward(context.Background(), model.Request{Tokens: [][]int{p.rows[0].tokens}, Capture: e.captures()})
	if err != nil {
		t.Fatal(err)
	}
	sc := e.lossScalar(p, fwd)
	V, last := e.Model.Vocab, p.T-1
	logits := fwd.Acts[model.At(model.Logits, model.NoLayer)].Data[last*V : (last+1)*V]
	seed := sc.seeds[model.At(model.Logits, model.NoLayer)].Data[last*V : (last+1)*V]
	loss := func(j int, eps float32) float64 {
		row := append([]float32(nil), logits...)
		row[j] += eps
		pr := softmax(row)
		return pr[p.targets[0]] + pr[p.targets[1]]
	}
	for _, j := range []int{p.targets[0], p.targets[1], p.distractors[0], 0, 1234} {
		fd := (loss(j, 1e-2) - loss(j, -1e-2)) / 2e-2
		if math.Abs(fd-float64(seed[j])) > 1e-4*math.Max(1e-3, math.Abs(fd)) {
			t.Errorf("dL/dlogit[%d] = %g, finite difference %g", j, seed[j], fd)
		}
	}
	req.Loss = "zero"
	zero := run(t, e, req)
	if zero.Runs[0].Loss != 0 {
		t.Errorf("zero loss = %g", zero.Runs[0].Loss)
	}
	for _, r := range zero.Nodes {
		if v := r.Metrics[ColActTimesGrad].Value; v != 0 {
			t.Errorf("zero loss: %s has act×grad %g", r.Name, v)
		}
	}
}

// A neuron that fires negatively upvotes what its write vector downvotes:
// its upvoted list is the positive-activation view's downvoted list, in
// the same order, with the scores negated (upvoted positive, downvoted
// negative, whatever the activation's sign).
func TestUpvotedTokensFollowActivationSign(t *testing.T) {
	e := loudEngine(t)
	req := baseRequest()
	p, _ := e.prepare(req)
	fwd, err := e.Model.Forward(context.Background(), model.Request{Tokens: [][]int{p.rows[0].tokens}, Capture: []model.Site{model.At(model.MLPPostAct, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	acts := fwd.Acts[model.At(model.MLPPostAct, 0)].Data
	neg := -1
	for i := range e.Model.DMLP {
		if acts[2*e.Model.DMLP+i] < -1e-3 {
			neg = i
			break
		}
	}
	if neg < 0 {
		t.Fatal("no neuron of layer 0 fires negatively at token 2")
	}
	req.Inspect = []Node{{Type: MLPNeuron, Layer: 0, Index: neg, Token: 2}}
	d := run(t, e, req).Details[0]
	if len(d.Upvoted) != 10 || len(d.Downvoted) != 10 {
		t.Fatalf("%d upvoted, %d downvoted", len(d.Upvoted), len(d.Downvoted))
	}
	for i := range d.Upvoted {
		if d.Upvoted[i].Score <= 0 || d.Downvoted[i].Score >= 0 || i > 0 && d.Upvoted[i].Score > d.Upvoted[i-1].Score {
			t.Fatalf("activation %g: upvoted %+v, downvoted %+v", acts[2*e.Model.DMLP+neg], d.Upvoted, d.Downvoted)
		}
	}
	// The write vector's own view, as for a positive activation.
	var up, down []ScoredToken
	lens := &tokenLens{k: 10}
	lens.output(e, e.Model.Blocks[0].OutW[neg*e.Model.DModel:(neg+1)*e.Model.DModel], 1, &up, &down)
	lens.run(e)
	for i := range up {
		if d.Upvoted[i].ID != down[i].ID || math.Abs(d.Upvoted[i].Score+down[i].Score) > 1e-6 {
			t.Errorf("upvoted %d: %d (%g), want %d (%g)", i, d.Upvoted[i].ID, d.Upvoted[i].Score, down[i].ID, -down[i].Score)
		}
		if d.Downvoted[i].ID != up[i].ID {
			t.Errorf("downvoted %d: %d, want %d", i, d.Downvoted[i].ID, up[i].ID)
		}
	}
}
