package model

import (
	"context"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"

	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"tdb/kernels"
	"testing"
)

// fixtureDir finds a reference fixture: ../shared (always in CI) or, for
// small-vocab, the copy in testdata so parity also runs on a fresh clone.
func fixtureDir(t testing.TB, name string) string {
	t.Helper()
	shared := filepath.Join("..", "..", "shared", "fixtures", "hf-gpt2", name)
	if _, err := os.Stat(filepath.Join(shared, "reference.safetensors")); err == nil {
		return shared
	}
	local := filepath.Join("testdata", name)
	if _, err := os.Stat(filepath.Join(local, "reference.safetensors")); err == nil {
		return local
	}
	t.Skipf("fixture %s not found (../shared/fixtures/hf-gpt2/%s is missing): parity NOT checked", name, name)
	return ""
}

type reference struct {
	*SafetensorsFile
	tokens     [][]int
	target     int
	distractor int
}

func loadReference(t testing.TB, dir string) *reference {
	t.Helper()
	sf, err := OpenSafetensors(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sf.Close() })
	ids, err := sf.Float32("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	r := &reference{SafetensorsFile: sf}
	B, T := ids.Shape[0], ids.Shape[1]
	for b := range B {
		seq := make([]int, T)
		for i := range T {
			seq[i] = int(ids.Data[b*T+i])
		}
		r.tokens = append(r.tokens, seq)
	}
	r.target, _ = strconv.Atoi(sf.Metadata["target"])
	r.distractor, _ = strconv.Atoi(sf.Metadata["distractor"])
	return r
}

func (r *reference) get(t testing.TB, name string) *Tensor {
	t.Helper()
	x, err := r.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// loadFixture loads a fixture's reference and its model.safetensors.
func loadFixture(t testing.TB, fixture string) (*reference, *Model) {
	t.Helper()
	dir := fixtureDir(t, fixture)
	ref := loadReference(t, dir)
	cfg, err := LoadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := loadFile(cfg, filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return ref, m
}

// compare checks got against want with the fixture README's tolerance
// max|Δ| ≤ 1e-4·(1 + max|ref|) and returns the max difference.
func compare(t testing.TB, what string, got, want []float32) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, reference has %d", what, len(got), len(want))
	}
	var maxDiff, maxRef float64
	for i := range got {
		maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-float64(want[i])))
		maxRef = math.Max(maxRef, math.Abs(float64(want[i])))
	}
	if tol := 1e-4 * (1 + maxRef); maxDiff > tol || math.IsNaN(maxDiff) {
		t.Errorf("%s: max |Δ| = %.3g > %.3g", what, maxDiff, tol)
	}
	return maxDiff
}

// fromHF converts a reference tensor to our semantic layout.
func fromHF(c Config, name string, ref *Tensor) *Tensor {
	if name != "attn_probs" {
		return ref
	}
	B, H, T := ref.Shape[0], ref.Shape[1], ref.Shape[2]
	out := NewTensor(B, T, T, H)
	for b := range B {
		for h := range H {
			for i := range T {
				for j := range T {
					out.Data[((b*T+i)*T+j)*H+h] = ref.Data[((b*H+h)*T+i)*T+j]
				}
			}
		}
	}
	return out
}

// hfSites maps the reference's activation names to our sites.
func hfSites(name string, layer int) []Site {
	switch name {
	case "resid_pre":
		if layer == 0 {
			return []Site{At(ResidPostEmb, NoLayer)}
		}
		return []Site{At(ResidPostMLP, layer-1)}
	case "qkv":
		return []Site{At(AttnQ, layer), At(AttnK, layer), At(AttnV, layer)}
	case "ln_f":
		return []Site{At(LnFOut, NoLayer)}
	}
	loc := map[string]Location{
		"ln1": AttnLnOut, "attn_probs": AttnQKProbs, "z": AttnVOut, "attn_out": ResidDeltaAtt,
		"resid_mid": ResidPostAttn, "mlp_pre": MLPPreAct, "mlp_post": MLPPostAct, "mlp_out": ResidDeltaMLP,
		"resid_post": ResidPostMLP,
	}[name]
	return []Site{At(loc, layer)}
}

var hfNames = []string{"resid_pre", "ln1", "qkv", "attn_probs", "z", "attn_out", "resid_mid", "mlp_pre", "mlp_post", "mlp_out", "resid_post"}

// gather concatenates several sites along the last axis (for qkv).
func gather(c Config, acts map[Site]*Tensor, sites []Site) []float32 {
	if len(sites) == 1 {
		return acts[sites[0]].Data
	}
	rows := len(acts[sites[0]].Data) / c.DModel
	out := make([]float32, 0, rows*c.DModel*len(sites))
	for r := range rows {
		for _, s := range sites {
			out = append(out, acts[s].Data[r*c.DModel:(r+1)*c.DModel]...)
		}
	}
	return out
}

// forEachFixture runs fn per fixture under gonum's GEMM with the portable
// vector kernels, and under package kernels on each kernel path this CPU
// runs (AVX-512, AVX2, NEON, portable Go: kernels.Paths), so parity holds
// whichever path a machine picks.
func forEachFixture(t *testing.T, fn func(t *testing.T, fixture string)) {
	defer blas32.Use(gonum.Implementation{})
	defer kernels.Use(kernels.Paths()[0])
	type setup struct {
		name, path string
		impl       blas.Float32
	}
	setups := []setup{{"gonum", "generic", gonum.Implementation{}}}
	for _, p := range kernels.Paths() {
		setups = append(setups, setup{"kernels-" + p, p, kernels.Implementation{}})
	}
	for _, s := range setups {
		for _, fixture := range []string{"small-vocab", "tiny"} {
			t.Run(s.name+"/"+fixture, func(t *testing.T) {
				if err := kernels.Use(s.path); err != nil {
					t.Fatal(err)
				}
				blas32.Use(s.impl)
				fn(t, fixture)
			})
		}
	}
}

func TestParityForward(t *testing.T) {
	forEachFixture(t, func(t *testing.T, fixture string) {
		{
			dir := fixtureDir(t, fixture)
			ref := loadReference(t, dir)
			for _, weights := range []string{"model.safetensors", "model.hub-naming.safetensors"} {
				path := filepath.Join(dir, weights)
				if _, err := os.Stat(path); err != nil {
					continue
				}
				cfg, err := LoadConfig(dir)
				if err != nil {
					t.Fatal(err)
				}
				m, err := loadFile(cfg, path)
				if err != nil {
					t.Fatal(err)
				}
				req := Request{Tokens: ref.tokens, Capture: []Site{At(Logits, NoLayer), At(LnFOut, NoLayer)}}
				for l := range cfg.NLayer {
					for _, n := range hfNames {
						req.Capture = append(req.Capture, hfSites(n, l)...)
					}
				}
				res, err := m.Forward(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				// Logits: the bar TDB used against HF.
				got, want := res.Acts[At(Logits, NoLayer)].Data, ref.get(t, "logits").Data
				var maxD, sumD float64
				for i := range got {
					dv := math.Abs(float64(got[i]) - float64(want[i]))
					maxD = math.Max(maxD, dv)
					sumD += dv
				}
				meanD := sumD / float64(len(got))
				t.Logf("%s: logits max |Δ| %.2g, mean |Δ| %.2g", weights, maxD, meanD)
				if maxD > 1e-3 || meanD > 5e-5 || math.IsNaN(maxD) {
					t.Errorf("%s: logits max |Δ| %.3g (≤ 1e-3), mean %.3g (≤ 5e-5)", weights, maxD, meanD)
				}
				for l := range cfg.NLayer {
					for _, n := range hfNames {
						key := fmt.Sprintf("act.%s.%d", n, l)
						compare(t, weights+" "+key, gather(cfg, res.Acts, hfSites(n, l)), fromHF(cfg, n, ref.get(t, key)).Data)
					}
				}
				compare(t, weights+" act.ln_f", res.Acts[At(LnFOut, NoLayer)].Data, ref.get(t, "act.ln_f").Data)
			}
		}
	})
}
