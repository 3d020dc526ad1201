package worker

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tdb/autoencoder"
	"tdb/corpus"
	"tdb/internal/jobs"
	"tdb/model"
)

var testCfg = model.Config{NLayer: 2, NHead: 2, DModel: 32, DMLP: 128, NCtx: 64, Vocab: 50257, Eps: 1e-5}

func TestValidateLocation(t *testing.T) {
	tests := []struct {
		loc  string
		want int
		err  string
	}{
		{"mlp.post_act", 128, ""},
		{"attn.heads", 2, ""},
		{"resid.delta_mlp", 32, ""},
		{"attn.q", 32, ""},
		{"mlp_ln.scale", 1, ""},
		{"logits", 0, "has no layer"},
		{"attn.qk_probs", 0, "attn.heads"},
		{"mlp.post_akt", 0, "unknown location"},
	}
	for _, tc := range tests {
		n, err := ValidateLocation(testCfg, tc.loc)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.loc, err, tc.err)
			}
			continue
		}
		if err != nil || n != tc.want {
			t.Errorf("%s: %d, %v; want %d", tc.loc, n, err, tc.want)
		}
	}
}

func TestParseAutoencoderSpec(t *testing.T) {
	tests := []struct {
		in   string
		want AutoencoderSpec
		err  bool
	}{
		{"ae.pt@3", AutoencoderSpec{Path: "ae.pt", Layer: 3}, false},
		{"dir/sae@mlp.post_act/5", AutoencoderSpec{Path: "dir/sae", Location: model.MLPPostAct, Layer: 5}, false},
		{"a@b@2", AutoencoderSpec{Path: "a@b", Layer: 2}, false},
		{"ae.pt", AutoencoderSpec{}, true},
		{"@3", AutoencoderSpec{}, true},
		{"ae.pt@", AutoencoderSpec{}, true},
		{"ae.pt@-1", AutoencoderSpec{}, true},
		{"ae.pt@nope/1", AutoencoderSpec{}, true},
	}
	for _, tc := range tests {
		got, err := ParseAutoencoderSpec(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("%q: %+v, %v", tc.in, got, err)
		}
	}
}

func FuzzParseAutoencoderSpec(f *testing.F) {
	for _, s := range []string{"ae.pt@3", "x@mlp.post_act/1", "@", "a@b/c/d", "a@99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAutoencoderSpec(s)
		if err != nil {
			return
		}
		if got.Path == "" || got.Layer < 0 || !strings.HasPrefix(s, got.Path+"@") {
			t.Fatalf("%q parsed to %+v", s, got)
		}
	})
}

// writeSAELens saves a small ReLU autoencoder over mlp.post_act of layer 1.
func writeSAELens(t *testing.T, dir string, dIn, dSAE int) {
	t.Helper()
	m, err := model.NewRandom(model.Config{NLayer: 1, NHead: 1, DModel: dIn, DMLP: dSAE, NCtx: 1, Vocab: 1, Eps: 1e-5}, 9)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Blocks[0]
	wenc := &model.Tensor{Shape: []int{dIn, dSAE}, Data: b.FcW}
	wdec := &model.Tensor{Shape: []int{dSAE, dIn}, Data: b.OutW}
	benc := &model.Tensor{Shape: []int{dSAE}, Data: make([]float32, dSAE)}
	bdec := &model.Tensor{Shape: []int{dIn}, Data: make([]float32, dIn)}
	for i := range benc.Data {
		benc.Data[i] = 0.01
	}
	if err := model.WriteSafetensors(filepath.Join(dir, "sae_weights.safetensors"), []model.NamedTensor{{Name: "W_enc", Tensor: wenc}, {Name: "W_dec", Tensor: wdec}, {Name: "b_enc", Tensor: benc}, {Name: "b_dec", Tensor: bdec}}, nil); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "standard", "d_in": dIn, "d_sae": dSAE, "hook_name": "blocks.1.mlp.hook_post"})
	if err := os.WriteFile(filepath.Join(dir, "cfg.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The collated top record of every component (MLP neurons, attention heads
// by write norm, autoencoder latents) has the largest activation found by
// running the model over every window directly.
func TestJobRunMatchesDirectComputation(t *testing.T) {
	ctx := context.Background()
	m, err := model.NewRandom(testCfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	aeDir := t.TempDir()
	writeSAELens(t, aeDir, testCfg.DMLP, 16)
	spec := jobs.JobSpec{Model: "test", Corpus: "synthetic:facts?docs=60&seed=2", Locations: []string{"mlp.post_act", "attn.heads"},
		Autoencoders: []string{aeDir + "@1"}, NCtx: 16, TopK: 3, RandomK: 2, QuantileBuckets: 2, PerBucket: 1, BatchSize: 3}
	job, err := NewJob(ctx, spec, m, corpus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	shards, err := job.Corpus.Plan(ctx, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	res, err := job.Run(ctx, shards[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Accumulators) != 2*2+1 {
		t.Fatalf("%d accumulators, want 5", len(res.Accumulators))
	}
	ae, err := autoencoder.Load(ctx, aeDir, autoencoder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Direct computation, one window at a time.
	want := map[string][]float64{}
	key := func(loc string, layer int) string { return loc + "/" + string(rune('0'+layer)) }
	update := func(k string, c int, v float64, n int) {
		if want[k] == nil {
			want[k] = make([]float64, n)
			for i := range want[k] {
				want[k][i] = math.Inf(-1)
			}
		}
		want[k][c] = max(want[k][c], v)
	}
	H, dh, d := testCfg.NHead, testCfg.DHead(), testCfg.DModel
	if _, err := job.Corpus.Windows(ctx, shards[0], spec.NCtx, func(w corpus.Window) error {
		toks := make([]int, len(w.Tokens))
		for i, x := range w.Tokens {
			toks[i] = int(x)
		}
		var sites []model.Site
		for l := range 2 {
			sites = append(sites, model.At(model.MLPPostAct, l), model.At(model.AttnQKProbs, l), model.At(model.AttnV, l))
		}
		r, err := m.Forward(ctx, model.Request{Tokens: [][]int{toks}, Capture: sites})
		if err != nil {
			return err
		}
		T := len(toks)
		for l := range 2 {
			acts := r.Acts[model.At(model.MLPPostAct, l)].Data
			for tk := range T {
				for c := range testCfg.DMLP {
					update(key("mlp.post_act", l), c, float64(acts[tk*testCfg.DMLP+c]), testCfg.DMLP)
				}
			}
			p := r.Acts[model.At(model.AttnQKProbs, l)].Data
			v := r.Acts[model.At(model.AttnV, l)].Data
			W := m.Blocks[l].ProjW
			for h := range H {
				for i := range T {
					for j := 0; j <= i; j++ {
						var norm float64
						for o := range d {
							var s float64
							for e := range dh {
								s += float64(p[(i*T+j)*H+h]) * float64(v[(j*H+h)*dh+e]) * float64(W[(h*dh+e)*d+o])
							}
							norm += s * s
						}
						update(key("attn.heads", l), h, math.Sqrt(norm), H)
					}
				}
			}
			if l == 1 {
				codes, err := ae.Encode(acts, T)
				if err != nil {
					return err
				}
				for i, x := range codes.Latents {
					update(key("ae.mlp.post_act", 1), i%16, float64(x), 16)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, acc := range res.Accumulators {
		k := key(acc.Location(), acc.Layer())
		w := want[k]
		if len(w) != acc.Components() {
			t.Fatalf("%s: %d components, want %d", k, acc.Components(), len(w))
		}
		for c := range acc.Components() {
			v, err := acc.Component(c)
			if err != nil {
				t.Fatal(err)
			}
			got := float64(v.Top[0].MaxActivation)
			if math.Abs(got-w[c]) > 1e-5*max(1, math.Abs(w[c])) {
				t.Fatalf("%s component %d: top max %g, direct %g", k, c, got, w[c])
			}
		}
	}
}
