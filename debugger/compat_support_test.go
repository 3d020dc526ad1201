package debugger

import (
	"context"
	"math"
	"testing"
)

func close32(a, b float64) bool {
	return math.Abs(a-b) <= 1e-4*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// The single-node views give the node table's own numbers.
func TestNodeViewsMatchTheNodeTable(t *testing.T) {
	e := latentEngine(t)
	req := latentRequest()
	req.TopK = 8
	resp := run(t, e, req)
	req.UseMLPAutoencoders, req.UseAttnAutoencoders = false, false
	resp.Nodes = append(resp.Nodes, run(t, e, req).Nodes...)
	tokens := e.Tok.Encode(req.Prompt)
	ctx := context.Background()
	checked := map[NodeType]int{}
	for _, nr := range resp.Nodes {
		n := nr.Node
		switch n.Type {
		case MLPNeuron, MLPLatent, AttnLatent:
			acts, err := e.NodeActivations(ctx, tokens, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(acts) != len(tokens) || !close32(float64(acts[n.Token]), nr.Metrics[ColActivation].Value) {
				t.Fatalf("%s: activation %v at %d, node table %v", nr.Name, acts[n.Token], n.Token, nr.Metrics[ColActivation].Value)
			}
			checked[n.Type]++
		case AttnHead:
			tri, err := e.HeadWriteNorms(ctx, tokens, n.Layer, n.Index)
			if err != nil {
				t.Fatal(err)
			}
			if len(tri) != len(tokens) || len(tri[n.Token]) != n.Token+1 || !close32(float64(tri[n.Token][n.KeyToken]), nr.Metrics[ColWriteNorm].Value) {
				t.Fatalf("%s: write norm %v, node table %v", nr.Name, tri[n.Token][n.KeyToken], nr.Metrics[ColWriteNorm].Value)
			}
			checked[n.Type]++
		}
	}
	if checked[AttnHead] == 0 || checked[MLPLatent]+checked[AttnLatent] == 0 {
		t.Fatalf("the table gave too few nodes to check: %v", checked)
	}
	if _, err := e.NodeActivations(ctx, tokens, Node{Type: MLPNeuron, Layer: 9}); err == nil {
		t.Fatal("layer 9 accepted")
	}
	if _, err := e.HeadWriteNorms(ctx, nil, 0, 0); err == nil {
		t.Fatal("empty prompt accepted")
	}
}

// Pair effects sum to the token effects, by row (attended from) and by column (attended to).
func TestAttentionPairEffectsSumToTokenEffects(t *testing.T) {
	e := loudEngine(t)
	req := baseRequest()
	req.Ablations = []Ablation{{Node: Node{Type: MLPNeuron, Layer: 0, Index: 3, Token: -1}}}
	req.SecondPrompt = "<|endoftext|>Paris, Italy. Ottawa,"
	resp := run(t, e, req)
	pairs, err := e.AttentionPairEffects(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(pairs) != len(resp.Runs) || len(resp.Runs) != 3 {
		t.Fatalf("%d pair sets for %d runs", len(pairs), len(resp.Runs))
	}
	for r, run := range resp.Runs {
		T := len(run.Tokens)
		nonzero := false
		for q := range T {
			var row, col float64
			for k := range T {
				row += pairs[r][q][k]
				col += pairs[r][k][q]
				if k > q && pairs[r][q][k] != 0 {
					t.Fatalf("run %s: pair (%d,%d) above the diagonal is %v", run.Label, q, k, pairs[r][q][k])
				}
			}
			nonzero = nonzero || row != 0
			if !close32(row, run.TokenEffects.AttentionFrom[q]) || !close32(col, run.TokenEffects.AttentionTo[q]) {
				t.Fatalf("run %s token %d: rows %v cols %v, token effects %v %v", run.Label, q, row, col, run.TokenEffects.AttentionFrom[q], run.TokenEffects.AttentionTo[q])
			}
		}
		if !nonzero {
			t.Fatalf("run %s: all pair effects are zero", run.Label)
		}
	}
}

// The weights-only lenses agree with the node table's token views.
func TestTokenLensesMatchNodeDetails(t *testing.T) {
	e := latentEngine(t)
	req := latentRequest()
	var neuron, latent *NodeRow
	resp := run(t, e, req)
	for i, nr := range resp.Nodes {
		if nr.Node.Type == MLPLatent && nr.Metrics[ColActivation].Value > 0 && latent == nil {
			latent = &resp.Nodes[i]
		}
	}
	req.UseMLPAutoencoders = false
	resp = run(t, e, req)
	for i, nr := range resp.Nodes {
		if nr.Node.Type == MLPNeuron && nr.Metrics[ColActivation].Value > 0 && neuron == nil {
			neuron = &resp.Nodes[i]
		}
	}
	if neuron == nil || latent == nil {
		t.Fatal("no active neuron or latent in the table")
	}
	req.Inspect = []Node{neuron.Node}
	d := run(t, e, req).Details[0]
	up, down, err := e.OutputTokenLens(neuron.Node, 10)
	if err != nil {
		t.Fatal(err)
	}
	sameTokens(t, "neuron upvoted", up, d.Upvoted)
	sameTokens(t, "neuron downvoted", down, d.Downvoted)
	in, inDown, err := e.InputTokenLens(neuron.Node, 10)
	if err != nil {
		t.Fatal(err)
	}
	sameTokens(t, "neuron input", in, d.InputTokens)
	if len(inDown) != 10 || inDown[0].Score >= in[9].Score || inDown[0].Score > inDown[9].Score {
		t.Fatalf("bottom input tokens not below the top ones, most negative first: %v vs %v", inDown, in)
	}
	req = latentRequest()
	req.Inspect = []Node{latent.Node}
	d = run(t, e, req).Details[0]
	up, down, err = e.OutputTokenLens(latent.Node, 10)
	if err != nil {
		t.Fatal(err)
	}
	sameTokens(t, "latent upvoted", up, d.Upvoted)
	sameTokens(t, "latent downvoted", down, d.Downvoted)
	if _, _, err := e.OutputTokenLens(Node{Type: AttnHead, Layer: 0}, 10); err == nil {
		t.Fatal("a head's output lens needs a prompt, yet was answered")
	}
	if _, _, err := e.InputTokenLens(latent.Node, 10); err == nil {
		t.Fatal("a latent's weights-only input lens was answered")
	}
}

func sameTokens(t *testing.T, what string, got, want []ScoredToken) {
	t.Helper()
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%s: %d tokens, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || !close32(got[i].Score, want[i].Score) {
			t.Fatalf("%s[%d]: %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestLatentPairAttribution(t *testing.T) {
	e := latentEngine(t)
	req := latentRequest()
	resp := run(t, e, req)
	var latent *NodeRow
	for i, nr := range resp.Nodes {
		if nr.Node.Type == AttnLatent && nr.Metrics[ColActivation].Value != 0 {
			latent = &resp.Nodes[i]
			break
		}
	}
	if latent == nil {
		t.Fatal("no active attention latent")
	}
	req.Inspect = []Node{latent.Node}
	d := run(t, e, req).Details[0]
	tri, err := e.LatentPairAttribution(context.Background(), e.Tok.Encode(req.Prompt), latent.Node)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range d.AttendedTo { // the node's top keys, scored the same way
		if !close32(float64(tri[latent.Node.Token][s.Position]), s.Score) {
			t.Fatalf("pair (%d,%d): %v, node detail %v", latent.Node.Token, s.Position, tri[latent.Node.Token][s.Position], s.Score)
		}
	}
}
