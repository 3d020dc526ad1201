package viewer

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tdb/autoencoder"
	"tdb/debugger"
	"tdb/model"
)

// testSAE writes and loads a random SAELens-format autoencoder.
func testSAE(t *testing.T, in, lat int, cfg map[string]any, seed uint64) *autoencoder.Autoencoder {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	randT := func(scale float32, shape ...int) *model.Tensor {
		x := model.NewTensor(shape...)
		for i := range x.Data {
			x.Data[i] = scale * float32(r.NormFloat64())
		}
		return x
	}
	dir := t.TempDir()
	ts := []model.NamedTensor{
		{Name: "W_enc", Tensor: randT(0.5, in, lat)},
		{Name: "W_dec", Tensor: randT(0.3, lat, in)},
		{Name: "b_enc", Tensor: randT(0.1, lat)},
		{Name: "b_dec", Tensor: randT(0.1, in)},
	}
	if err := model.WriteSafetensors(filepath.Join(dir, "sae_weights.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	cfg["d_in"], cfg["d_sae"] = in, lat
	raw, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "cfg.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	ae, err := autoencoder.Load(context.Background(), dir, autoencoder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ae
}

// The lens endpoint answers, for neurons and both kinds of latents, the
// token views the debugger computes for the same node set to 1 on a
// one-token prompt (details.go's path, not OutputTokenLens'): the same
// tokens with the same scores.
func TestLensEqualsDebuggerDetail(t *testing.T) {
	e := testEngine(t)
	m := e.Model
	if err := e.AddAutoencoder(testSAE(t, m.DMLP, 96, map[string]any{"architecture": "standard"}, 1), 1, model.MLPPostAct); err != nil {
		t.Fatal(err)
	}
	if err := e.AddAutoencoder(testSAE(t, m.DModel, 48, map[string]any{"architecture": "standard"}, 2), 0, model.ResidDeltaAtt); err != nil {
		t.Fatal(err)
	}
	_, ts := newTestServer(t, Options{Engine: e})
	for _, c := range []struct {
		loc          string
		layer, index int
		node         string // the debugger's node JSON at token 0
		use          string
		inputs       bool
	}{
		{"mlp.post_act", 1, 7, `{"type":"mlp_neuron","layer":1,"index":7,"token":0}`, "", true},
		{"ae.mlp.post_act", 1, 5, `{"type":"mlp_autoencoder_latent","layer":1,"index":5,"token":0}`, `"use_mlp_autoencoders":true,`, false},
		{"ae.resid.delta_attn", 0, 3, `{"type":"attention_autoencoder_latent","layer":0,"index":3,"token":0}`, `"use_attention_autoencoders":true,`, false},
	} {
		t.Run(c.loc, func(t *testing.T) {
			code, r, raw := call(t, "POST", ts.URL+"/api/v1/lens", fmt.Sprintf(`{"location":%q,"layer":%d,"index":%d,"k":10}`, c.loc, c.layer, c.index))
			if code != 200 {
				t.Fatalf("lens: %d %s", code, raw)
			}
			var lens LensResponse
			if err := json.Unmarshal(r.Data, &lens); err != nil {
				t.Fatal(err)
			}
			body := fmt.Sprintf(`{"prompt":"<|endoftext|>","targets":["#0"],"loss":"zero","top_k":1,"candidates":1,%s"ablations":[{"node":%s,"value":1}],"inspect":[%s]}`, c.use, c.node, c.node)
			code, r, raw = call(t, "POST", ts.URL+"/api/v1/tdb", body)
			if code != 200 {
				t.Fatalf("tdb: %d %s", code, raw)
			}
			var resp debugger.Response
			if err := json.Unmarshal(r.Data, &resp); err != nil || len(resp.Details) != 1 {
				t.Fatalf("tdb details: %v %s", err, raw)
			}
			d := resp.Details[0]
			if !strings.HasPrefix(d.Name, lens.Name) {
				t.Errorf("lens names %s, the debugger %s", lens.Name, d.Name)
			}
			same := func(what string, got, want []debugger.ScoredToken) {
				if len(got) != 10 || len(got) != len(want) {
					t.Fatalf("%s: %d tokens from the lens, %d from the debugger (want 10)", what, len(got), len(want))
				}
				for i := range got {
					if got[i].ID != want[i].ID || math.Abs(got[i].Score-want[i].Score) > 1e-5*math.Max(1, math.Abs(want[i].Score)) {
						t.Errorf("%s %d: lens %q %.6f, debugger %q %.6f", what, i, got[i].Text, got[i].Score, want[i].Text, want[i].Score)
					}
				}
			}
			same("upvoted", lens.Upvoted, d.Upvoted)
			same("downvoted", lens.Downvoted, d.Downvoted)
			if c.inputs {
				same("input tokens", lens.InputTokens, d.InputTokens)
			} else if len(lens.InputTokens) != 0 {
				t.Errorf("%d input tokens for a latent", len(lens.InputTokens))
			}
		})
	}
	for _, c := range []struct{ body, want string }{
		{`{"location":"attn.heads","layer":0,"index":0}`, "depend on the prompt"},
		{`{"location":"ae.mlp.post_act","layer":0,"index":0}`, "no autoencoder reading mlp.post_act at layer 0"},
		{`{"location":"mlp.post_act","layer":9,"index":0}`, "layer 9"},
		{`{"location":"mlp.post_act","layer":0,"index":0,"k":1000}`, "k must be"},
		{`{"location":"resid.post_emb","layer":0,"index":0}`, "no logit lens"},
	} {
		code, r, raw := call(t, "POST", ts.URL+"/api/v1/lens", c.body)
		if code != 400 || !strings.Contains(r.Error, c.want) {
			t.Errorf("%s: %d %s, want 400 with %q", c.body, code, raw, c.want)
		}
	}
}
