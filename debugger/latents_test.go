package debugger

import (
	"context"
	"math"
	"testing"

	"tdb/autoencoder"
	"tdb/autoencoder/saetest"
	"tdb/model"
)

// writeSAE writes a random SAELens autoencoder (so the test runs on a fresh clone) and loads it.
func writeSAE(t *testing.T, in, lat int, cfg map[string]any, seed uint64) *autoencoder.Autoencoder {
	t.Helper()
	dir := t.TempDir()
	if err := saetest.Random(in, lat, seed, 0.2).Write(dir, cfg); err != nil {
		t.Fatal(err)
	}
	ae, err := autoencoder.Load(context.Background(), dir, autoencoder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ae
}

func latentEngine(t *testing.T) *Engine {
	e := loudEngine(t)
	m := e.Model
	mlpAE := writeSAE(t, m.DMLP, 96, map[string]any{"architecture": "standard", "apply_b_dec_to_input": true}, 1)
	attnAE := writeSAE(t, m.DModel, 48, map[string]any{"architecture": "topk", "k": 8, "normalize_activations": "layer_norm"}, 2)
	if err := e.AddAutoencoder(mlpAE, 1, model.MLPPostAct); err != nil {
		t.Fatal(err)
	}
	if err := e.AddAutoencoder(attnAE, 0, model.ResidDeltaAtt); err != nil {
		t.Fatal(err)
	}
	return e
}

func latentRequest() Request {
	r := baseRequest()
	r.UseMLPAutoencoders, r.UseAttnAutoencoders = true, true
	r.TopK = 8
	return r
}

func TestLatentsAreNodesAndKeepTheModelExact(t *testing.T) {
	e := latentEngine(t)
	plain := run(t, e, baseRequest())
	withAE := run(t, e, latentRequest())
	if math.Abs(plain.Runs[0].Loss-withAE.Runs[0].Loss) > 1e-6 {
		t.Fatalf("splicing changed the loss: %g vs %g", withAE.Runs[0].Loss, plain.Runs[0].Loss)
	}
	kinds := map[NodeType]int{}
	for _, r := range withAE.Nodes {
		kinds[r.Node.Type]++
		if r.Node.Type == MLPNeuron && r.Node.Layer == 1 {
			t.Errorf("%s: neurons of a layer with an MLP autoencoder stay in the table", r.Name)
		}
		if r.Node.Type == MLPLatent || r.Node.Type == AttnLatent {
			if r.Metrics[ColActivation].Value == 0 {
				t.Errorf("%s: inactive latent listed", r.Name)
			}
		}
	}
	if kinds[MLPLatent] == 0 || kinds[AttnLatent] == 0 {
		t.Fatalf("node kinds in the table: %v", kinds)
	}
	if withAE.Runs[0].TokenEffects.Latents == nil {
		t.Error("no latent token effects")
	}
}

// Ablating a latent to its own value changes nothing; act×grad / a is
// dL/da, checked by a difference quotient of ablations (loosely: the
// gradient freezes ln_f's scale and the TopK std, ablations do not).
func TestLatentAblationAndGradient(t *testing.T) {
	e := latentEngine(t)
	resp := run(t, e, latentRequest())
	var lat *NodeRow
	for i := range resp.Nodes {
		if resp.Nodes[i].Node.Type == AttnLatent && math.Abs(resp.Nodes[i].Metrics[ColActTimesGrad].Value) > 1e-3 {
			lat = &resp.Nodes[i]
			break
		}
	}
	if lat == nil {
		t.Fatal("no attention latent with an effect")
	}
	a := lat.Metrics[ColActivation].Value
	grad := lat.Metrics[ColActTimesGrad].Value / a
	loss := func(v float64) float64 {
		req := latentRequest()
		req.Ablations = []Ablation{{Node: lat.Node, Value: float32(v)}}
		return run(t, e, req).Runs[0].Loss
	}
	if got := loss(a); math.Abs(got-resp.Runs[0].Loss) > 1e-5 {
		t.Errorf("ablating %s to its own value changed the loss: %g vs %g", lat.Name, got, resp.Runs[0].Loss)
	}
	const eps = 1e-2
	fd := (loss(a+eps) - loss(a-eps)) / (2 * eps)
	// the gradient freezes ln_f's scale and the TopK std, the difference quotient does not: loose tolerance
	if math.Abs(fd-grad) > 0.15*math.Max(math.Abs(grad), 0.05) {
		t.Errorf("%s: dL/da %g, finite difference %g", lat.Name, grad, fd)
	}
	if zero := loss(0); zero == resp.Runs[0].Loss {
		t.Errorf("ablating %s to 0 changed nothing", lat.Name)
	}
}

func TestTraceLatent(t *testing.T) {
	e := latentEngine(t)
	first := run(t, e, latentRequest())
	var target Node
	for _, r := range first.Nodes {
		if r.Node.Type == MLPLatent {
			target = r.Node
			break
		}
	}
	req := latentRequest()
	req.Trace = &Trace{Node: target}
	req.Inspect = []Node{target}
	resp := run(t, e, req)
	rp := readPoint(target)
	for _, r := range resp.Nodes {
		if r.Node.Type != Embedding && !before(writePoint(r.Node), rp) {
			if r.Metrics[ColActTimesGrad].Value != 0 || r.Metrics[ColDirectEffect].Value != 0 {
				t.Errorf("%s after the traced latent has non-zero effects %+v", r.Name, r.Metrics)
			}
		}
	}
	// the traced scalar is the latent's pre-activation: ReLU latent, active, so it equals the activation
	var act float64
	for _, r := range first.Nodes {
		if r.Node == target {
			act = r.Metrics[ColActivation].Value
		}
	}
	if math.Abs(resp.Runs[0].Loss-act) > 1e-4*math.Max(1, act) {
		t.Errorf("traced pre-activation %g, latent activation %g", resp.Runs[0].Loss, act)
	}
	if len(resp.Details) != 1 || len(resp.Details[0].Upvoted) == 0 || len(resp.Details[0].InputTokens) == 0 {
		t.Fatalf("latent detail %+v", resp.Details)
	}
	// The tokens that most lower the latent's pre-activation: as many as
	// raise it, negative, most negative first, none of them among those.
	d := resp.Details[0]
	if len(d.InputTokensDown) != len(d.InputTokens) {
		t.Fatalf("%d input tokens down, %d up", len(d.InputTokensDown), len(d.InputTokens))
	}
	up := map[int]bool{}
	for _, s := range d.InputTokens {
		up[s.ID] = true
	}
	for i, s := range d.InputTokensDown {
		if s.Score >= 0 || i > 0 && s.Score < d.InputTokensDown[i-1].Score || up[s.ID] {
			t.Errorf("input token down %d: %+v (all: %+v)", i, s, d.InputTokensDown)
		}
	}
}

func TestLatentRequestErrors(t *testing.T) {
	e := latentEngine(t)
	req := baseRequest() // autoencoders not enabled
	req.Ablations = []Ablation{{Node: Node{Type: MLPLatent, Layer: 1, Index: 3, Token: -1}}}
	if _, err := e.Run(context.Background(), req); err == nil {
		t.Error("latent ablation accepted without use_mlp_autoencoders")
	}
	req = latentRequest()
	req.Ablations = []Ablation{{Node: Node{Type: MLPLatent, Layer: 0, Index: 3, Token: -1}}}
	if _, err := e.Run(context.Background(), req); err == nil {
		t.Error("latent of a layer without autoencoder accepted")
	}
	req.Ablations = []Ablation{{Node: Node{Type: MLPLatent, Layer: 1, Index: 999, Token: -1}}}
	if _, err := e.Run(context.Background(), req); err == nil {
		t.Error("latent index out of range accepted")
	}
}
