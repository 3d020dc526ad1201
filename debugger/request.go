package debugger

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// BadRequest marks errors in the request itself (HTTP 400 in the viewer).
type BadRequest struct{ Err error }

func (e BadRequest) Error() string { return e.Err.Error() }
func (e BadRequest) Unwrap() error { return e.Err }

func badf(format string, a ...any) error { return BadRequest{fmt.Errorf(format, a...)} }

// row is one batch row of the pass: the main run, its baseline, or the
// second prompt, with the tokens its loss and candidates are about.
type row struct {
	label                string
	tokens               []int
	ablated              bool
	targets, distractors []int
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
	ids := func(ss []string) ([]int, error) {
		var out []int
		for _, s := range ss {
			id, err := one(s)
			if err != nil {
				return nil, err
			}
			out = append(out, id)
		}
		return out, nil
	}
	var err error
	if p.targets, err = ids(req.Targets); err != nil {
		return nil, err
	}
	if p.distractors, err = ids(req.Distractors); err != nil {
		return nil, err
	}
	secondTargets, secondDistractors := p.targets, p.distractors
	if len(req.SecondTargets)+len(req.SecondDistractors) > 0 {
		if req.SecondPrompt == "" {
			return nil, badf("second_targets and second_distractors are for a second prompt: give second_prompt")
		}
		if len(req.SecondTargets) == 0 && req.Loss != "zero" {
			return nil, badf("give at least one second target token with second distractors")
		}
		if secondTargets, err = ids(req.SecondTargets); err != nil {
			return nil, err
		}
		if secondDistractors, err = ids(req.SecondDistractors); err != nil {
			return nil, err
		}
	}
	for _, a := range req.Ablations {
		if v := float64(a.Value); math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, badf("ablation %s: value %g is not a finite number", a.Node.Name(), v)
		}
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
	p.rows = []row{{label: "main", tokens: tokens, ablated: true, targets: p.targets, distractors: p.distractors}}
	if len(req.Ablations) > 0 {
		p.rows = append(p.rows, row{label: "baseline", tokens: tokens, targets: p.targets, distractors: p.distractors})
	}
	if req.SecondPrompt != "" {
		second := e.Tok.Encode(req.SecondPrompt)
		if len(second) != p.T {
			return nil, badf("the second prompt has %d tokens, the first %d: they must have equal token length", len(second), p.T)
		}
		p.rows = append(p.rows, row{label: "right", tokens: second, ablated: true, targets: secondTargets, distractors: secondDistractors})
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
