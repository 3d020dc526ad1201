package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tdb/autoencoder/saetest"
	"tdb/model"
)

// saeFolder writes a SAELens autoencoder with in inputs and 8 latents (and
// cfg.json fields extra) into a fresh folder.
func saeFolder(t *testing.T, in int, extra map[string]any) string {
	t.Helper()
	const lat = 8
	dir := t.TempDir()
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i%7-3) / 10
		}
		return x
	}
	w := saetest.Weights{In: in, Lat: lat, WEnc: fill(in * lat), WDec: fill(lat * in), BEnc: fill(lat), BDec: fill(in)}
	if err := w.Write(dir, extra); err != nil {
		t.Fatal(err)
	}
	return dir
}

// copyModel copies the small fixture into a folder, letting edit change
// config.json and the weights' bytes.
func copyModel(t *testing.T, editConfig func(map[string]any), editWeights func([]byte) []byte) string {
	t.Helper()
	src := smallModel(t)
	dir := t.TempDir()
	cb, _ := os.ReadFile(filepath.Join(src, "config.json"))
	var cfg map[string]any
	json.Unmarshal(cb, &cfg)
	if editConfig != nil {
		editConfig(cfg)
	}
	cb, _ = json.Marshal(cfg)
	os.WriteFile(filepath.Join(dir, "config.json"), cb, 0o644)
	wb, _ := os.ReadFile(filepath.Join(src, "model.safetensors"))
	if editWeights != nil {
		wb = editWeights(wb)
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors"), wb, 0o644)
	return dir
}

// Every mistake in what run / debug / bench are given is exit code 2 with a
// message saying what is wrong, before any work is done.
func TestBadInputIsExitTwo(t *testing.T) {
	dir := smallModel(t) // d_mlp 128, d_model 32, 2 layers, context 32, vocab 512
	truncated := copyModel(t, nil, func(b []byte) []byte { return b[:len(b)-100] })
	oneLayer := copyModel(t, func(c map[string]any) { c["n_layer"] = 1 }, nil)
	mlpAE := saeFolder(t, 128, nil)
	residAE := saeFolder(t, 32, nil)
	notAE := filepath.Join(t.TempDir(), "notes.pt")
	os.WriteFile(notAE, []byte("not an autoencoder"), 0o644)
	extraAE := saeFolder(t, 128, nil)
	ts := []model.NamedTensor{{Name: "W_enc", Tensor: model.NewTensor(128, 8)}, {Name: "W_dec", Tensor: model.NewTensor(8, 128)},
		{Name: "b_enc", Tensor: model.NewTensor(8)}, {Name: "b_dec", Tensor: model.NewTensor(128)}, {Name: "W_gate", Tensor: model.NewTensor(8)}}
	model.WriteSafetensors(filepath.Join(extraAE, "sae_weights.safetensors"), ts, nil)
	run := func(extra ...string) []string {
		return append([]string{"run", "--model", dir, "--tokens", "1,2,3"}, extra...)
	}
	debug := func(extra ...string) []string {
		return append([]string{"debug", "--model", "random:tiny", "--prompt", "<|endoftext|>ab", "--target", "#7"}, extra...)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--model", truncated, "--tokens", "1"}, "truncated file"},
		{[]string{"run", "--model", oneLayer, "--tokens", "1"}, "the weights have layers up to 1 but config.json says n_layer 1"},
		{[]string{"run", "--model", "./no/such/model", "--tokens", "1"}, "does not exist"},
		{[]string{"run", "--model", dir, "--prompt", strings.Repeat(" x", 40)}, "--prompt: sequence 0 has 40 tokens, more than the model's context of 32"},
		{[]string{"run", "--model", dir, "--tokens", "1,512"}, "--tokens: sequence 0, position 1: token id 512 is outside the vocabulary [0, 512)"},
		{run("--target", "#600", "--distractor", "#1"), "outside the model's vocabulary"},
		{run("--top", "0"), "--top must be at least 1"},
		{run("--autoencoder", filepath.Join(t.TempDir(), "missing.pt")+"@0"), "does not exist"},
		{run("--autoencoder", notAE+"@0"), "not a torch.save zip archive"},
		{run("--autoencoder", mlpAE+"@mlp.post_act/99"), "layer 99 is out of range: the model has layers 0..1"},
		{run("--autoencoder", mlpAE+"@9"), "layer 9 is out of range"},
		{run("--autoencoder", mlpAE+"@0:resid.delta_mlp"), "has 128 inputs but resid.delta_mlp/0 has 32 values per token"},
		{run("--autoencoder", residAE+"@1"), "does not say where"},
		{run("--autoencoder", mlpAE+"@mlp.bogus/1"), "unknown location"},
		{run("--autoencoder", extraAE+"@1"), `unexpected tensors "W_gate"`},
		{debug("--ablate", "mlp_L0_1=NaN"), "want a finite number"},
		{debug("--ablate", "mlp_L0_1=Inf"), "want a finite number"},
		{debug("--ablate", "mlp_L0_1=-inf"), "want a finite number"},
		{debug("--ablate", "mlp_L0_1=1e39"), "want a finite number"},
		{debug("--ablate", "mlp_L5_1"), "layer 5 out of range"},
		{debug("--inspect", "mlp_L0_1@9"), "token 9 out of range"},
		{debug("--trace", "attn_L0_1@1>0:z"), "trace path"},
		{debug("--top", "0"), "--top must be at least 1"},
		{debug("--mlp-autoencoders", mlpAE+"@0:resid.delta_mlp"), "values per token"},
		{[]string{"debug", "--model", "random:tiny", "--prompt", strings.Repeat(" x", 70), "--target", "#7"}, "context of 64"},
		{[]string{"bench", "forward", "--model", "random:tiny", "--time", "0s"}, "--time must be positive"},
		{[]string{"bench", "forward", "--model", "random:tiny", "--batch", "0"}, "must be positive"},
		{[]string{"bench", "forward", "--model", "random:nope"}, "unknown preset"},
	} {
		code, _, stderr := runTDB(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, stderr, c.want)
		}
	}
}

// PATH@LAYER takes the location from the width (mlp.post_act for d_mlp
// inputs), PATH@LOCATION/LAYER (the form tdb collate documents) works too.
func TestRunAutoencoderSpecForms(t *testing.T) {
	dir := smallModel(t)
	mlpAE := saeFolder(t, 128, nil)
	residAE := saeFolder(t, 32, nil)
	for _, c := range []struct{ spec, want string }{
		{mlpAE + "@1", "mlp.post_act.latents/1"},
		{residAE + "@resid.delta_attn/0", "resid.delta_attn.latents/0"},
		{residAE + "@1:resid.delta_mlp", "resid.delta_mlp.latents/1"},
	} {
		out := filepath.Join(t.TempDir(), "acts.safetensors")
		code, _, stderr := runTDB(t, "run", "--model", dir, "--tokens", "1,2,3", "--autoencoder", c.spec, "--out", out)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", c.spec, code, stderr)
		}
		sf, err := model.OpenSafetensors(out)
		if err != nil {
			t.Fatal(err)
		}
		if ti, ok := sf.Tensors[c.want]; !ok || ti.Shape[2] != 8 {
			t.Errorf("%s: no %s of 8 latents in %v", c.spec, c.want, sf.Names())
		}
		sf.Close()
	}
}
