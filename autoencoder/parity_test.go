package autoencoder

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"tdb/model"
)

// fixtureDir is the shared Hugging Face reference data (not part of the
// repository); tests that need it skip when it is absent.
func fixtureDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "fixtures", "hf-gpt2", "tiny")
	if _, err := os.Stat(filepath.Join(dir, "reference.safetensors")); err != nil {
		t.Skipf("reference fixtures not available (%s): %v", dir, err)
	}
	return dir
}

func readRef(t testing.TB, dir, name string) *model.Tensor {
	t.Helper()
	sf, err := model.OpenSafetensors(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	x, err := sf.Float32(name)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// assertClose checks max|got−want| ≤ tol·(1+max|want|).
func assertClose(t testing.TB, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var maxDiff, maxRef float64
	at := 0
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > maxDiff || math.IsNaN(d) {
			maxDiff, at = d, i
		}
		maxRef = max(maxRef, math.Abs(float64(want[i])))
	}
	if !(maxDiff <= tol*(1+maxRef)) {
		t.Fatalf("%s: max |Δ| = %g at %d (got %g, want %g), allowed %g", what, maxDiff, at, got[at], want[at], tol*(1+maxRef))
	}
}

func TestOpenAIParity(t *testing.T) {
	dir := fixtureDir(t)
	x := readRef(t, dir, "act.mlp_post.1")
	B, T, in := x.Shape[0], x.Shape[1], x.Shape[2]
	for _, tc := range []struct {
		name      string
		act       Activation
		k         int
		normalize bool
	}{
		{"relu", ReLU, 0, false},
		{"topk", TopK, 16, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Load(context.Background(), filepath.Join(dir, "sae_"+tc.name+".pt"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if a.Activation != tc.act || a.K != tc.k || a.Normalize != tc.normalize || a.NInputs != in || a.NLatents != 512 {
				t.Fatalf("loaded %s", a)
			}
			// The loader must return exactly the tensors of the state dict.
			prefix := "sae_" + tc.name + "_weights."
			enc := readRef(t, dir, prefix+"encoder.weight")
			dec := readRef(t, dir, prefix+"decoder.weight")
			for _, i := range []int{0, 7, 511} {
				assertClose(t, "encoder row", a.EncoderRow(i), enc.Data[i*in:(i+1)*in], 0)
				col := make([]float32, in)
				for j := range col {
					col[j] = dec.Data[j*a.NLatents+i]
				}
				assertClose(t, "decoder column", a.DecoderColumn(i), col, 0)
			}
			assertClose(t, "pre_bias", a.inBias, readRef(t, dir, prefix+"pre_bias").Data, 0)
			assertClose(t, "latent_bias", a.latentBias, readRef(t, dir, prefix+"latent_bias").Data, 0)

			c, err := a.Encode(x.Data, B*T)
			if err != nil {
				t.Fatal(err)
			}
			assertClose(t, "latents", c.Latents, readRef(t, dir, "sae."+tc.name+".latents").Data, 1e-4)
			recon := make([]float32, B*T*in)
			if err := a.Decode(c, recon); err != nil {
				t.Fatal(err)
			}
			assertClose(t, "recon", recon, readRef(t, dir, "sae."+tc.name+".recon").Data, 1e-4)
			if tc.act == TopK {
				for r := range B * T {
					nz := 0
					for _, v := range c.Latents[r*512 : (r+1)*512] {
						if v != 0 {
							nz++
						}
					}
					if nz > tc.k {
						t.Fatalf("token %d has %d non-zero latents, k = %d", r, nz, tc.k)
					}
				}
			}
		})
	}
}
