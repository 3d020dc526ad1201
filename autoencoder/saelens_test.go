package autoencoder

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tdb/model"
)

// writeSAELens writes w as a SAELens folder with the given cfg.json fields.
func writeSAELens(t testing.TB, w *weights, cfg map[string]any, threshold []float32) string {
	t.Helper()
	dir := t.TempDir()
	wEnc := model.NewTensor(w.in, w.lat)
	for i := range w.lat {
		for j := range w.in {
			wEnc.Data[j*w.lat+i] = w.enc[i*w.in+j]
		}
	}
	wDec := model.NewTensor(w.lat, w.in)
	for j := range w.in {
		for i := range w.lat {
			wDec.Data[i*w.in+j] = w.dec[j*w.lat+i]
		}
	}
	ts := []model.NamedTensor{
		{Name: "W_enc", Tensor: wEnc},
		{Name: "W_dec", Tensor: wDec},
		{Name: "b_enc", Tensor: &model.Tensor{Shape: []int{w.lat}, Data: w.latentBias}},
		{Name: "b_dec", Tensor: &model.Tensor{Shape: []int{len(w.preBias)}, Data: w.preBias}},
	}
	if threshold != nil {
		ts = append(ts, model.NamedTensor{Name: "threshold", Tensor: &model.Tensor{Shape: []int{len(threshold)}, Data: threshold}})
	}
	if err := model.WriteSafetensors(filepath.Join(dir, saeLensWeights), ts, nil); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, saeLensConfig), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSAELensMatchesOpenAI(t *testing.T) {
	const in, lat, n = 32, 80, 13
	for _, tc := range []struct {
		name   string
		cfg    map[string]any
		openai string
		k      int
	}{
		{"standard", map[string]any{"architecture": "standard", "activation_fn_str": "relu", "d_in": in, "d_sae": lat,
			"apply_b_dec_to_input": true, "normalize_activations": "none", "hook_name": "blocks.3.hook_mlp_out"}, "ReLU", 0},
		{"topk-layer-norm", map[string]any{"architecture": "topk", "k": 6, "d_in": in, "d_sae": lat,
			"normalize_activations": "layer_norm", "hook_name": "blocks.0.mlp.hook_post"}, "TopK", 6},
		{"old-topk-kwargs", map[string]any{"activation_fn_str": "topk", "activation_fn_kwargs": map[string]any{"k": 5},
			"normalize_activations": "layer_norm"}, "TopK", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := randomWeights(21, in, lat)
			w.activation, w.k, w.postact = tc.openai, tc.k, "ReLU"
			ref, err := Load(context.Background(), writePT(t, w, ptOptions{}), Options{})
			if err != nil {
				t.Fatal(err)
			}
			a, err := Load(context.Background(), writeSAELens(t, w, tc.cfg, nil), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if a.Format != "saelens" || a.Activation != ref.Activation || a.K != ref.K || a.Normalize != ref.Normalize {
				t.Fatalf("loaded %s, want like %s", a, ref)
			}
			x := randomInputs(22, n*in)
			c1, _ := ref.Encode(x, n)
			c2, _ := a.Encode(x, n)
			assertClose(t, "latents", c2.Latents, c1.Latents, 1e-6)
			r1, r2 := make([]float32, n*in), make([]float32, n*in)
			ref.Decode(c1, r1)
			a.Decode(c2, r2)
			assertClose(t, "recon", r2, r1, 1e-6)
		})
	}
}

func TestSAELensDetails(t *testing.T) {
	const in, lat, n = 16, 40, 7
	w := randomWeights(23, in, lat)
	x := randomInputs(24, n*in)

	// JumpReLU: a latent passes when its pre-activation exceeds its threshold.
	thr := make([]float32, lat)
	for i := range thr {
		thr[i] = float32(i%4) * 0.3
	}
	a, err := Load(context.Background(), writeSAELens(t, w, map[string]any{"architecture": "jumprelu", "d_in": in, "d_sae": lat,
		"hook_name": "blocks.2.hook_attn_out"}, thr), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.Location != model.ResidDeltaAtt || a.Layer != 2 {
		t.Fatalf("hook_name mapped to %s/%d", a.Location, a.Layer)
	}
	c, _ := a.Encode(x, n)
	fired := 0
	for r := range n {
		pre, _ := refEncode(&weights{in: in, lat: lat, enc: w.enc, dec: w.dec, preBias: w.preBias, latentBias: w.latentBias, activation: "Identity"}, x[r*in:(r+1)*in])
		for i, h := range pre {
			want := 0.0
			if h > float64(thr[i]) && h > 0 {
				want = h
				fired++
			}
			if got := float64(c.Latents[r*lat+i]); got-want > 1e-5 || want-got > 1e-5 {
				t.Fatalf("token %d latent %d: %g, want %g (pre %g, threshold %g)", r, i, got, want, h, thr[i])
			}
		}
	}
	if fired == 0 || fired == n*lat {
		t.Fatalf("%d of %d latents fired: the threshold is not exercised", fired, n*lat)
	}

	// apply_b_dec_to_input false: b_dec is only added to the output.
	a, err = Load(context.Background(), filepath.Join(writeSAELens(t, w, map[string]any{"d_in": in, "d_sae": lat, "apply_b_dec_to_input": false}, nil), saeLensWeights), Options{})
	if err != nil {
		t.Fatal(err)
	}
	noBias := *w
	noBias.preBias = make([]float32, in)
	c, _ = a.Encode(x, n)
	for r := range n {
		want, _ := refEncode(&noBias, x[r*in:(r+1)*in])
		assertClose(t, "latents without input bias", c.Latents[r*lat:(r+1)*lat], f32s(want), 1e-5)
	}
}

func TestSAELensErrors(t *testing.T) {
	w := randomWeights(25, 8, 12)
	for _, tc := range []struct {
		name string
		cfg  map[string]any
		want string
	}{
		{"architecture", map[string]any{"architecture": "gated"}, `unsupported architecture "gated"`},
		{"activation", map[string]any{"activation_fn_str": "tanh-relu"}, `unsupported activation_fn "tanh-relu"`},
		{"normalisation", map[string]any{"normalize_activations": "expected_average_only_in"}, "normalize_activations"},
		{"topk without k", map[string]any{"architecture": "topk"}, "positive k"},
		{"d_sae", map[string]any{"d_sae": 13}, "d_sae 13"},
		{"jumprelu without threshold", map[string]any{"architecture": "jumprelu"}, `"threshold" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(context.Background(), writeSAELens(t, w, tc.cfg, nil), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
	dir := writeSAELens(t, w, map[string]any{}, nil)
	os.Remove(filepath.Join(dir, saeLensConfig))
	if _, err := Load(context.Background(), dir, Options{}); err == nil || !strings.Contains(err.Error(), "cfg.json") {
		t.Fatalf("missing cfg.json: %v", err)
	}
}
