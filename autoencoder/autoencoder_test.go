package autoencoder

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEncodeDecodeMatchesReference(t *testing.T) {
	const in, lat, n = 48, 200, 37
	for _, tc := range []struct {
		name, act, postact string
		k                  int
		o                  ptOptions
	}{
		{name: "default-relu"},
		{name: "relu", act: "ReLU"},
		{name: "identity", act: "Identity"},
		{name: "topk-relu", act: "TopK", postact: "ReLU", k: 7},
		{name: "topk-identity", act: "TopK", postact: "Identity", k: 150},
		{name: "strided-decoder", act: "ReLU", o: ptOptions{transposedDecoder: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := randomWeights(1, in, lat)
			w.activation, w.postact, w.k = tc.act, tc.postact, tc.k
			a, err := Load(context.Background(), writePT(t, w, tc.o), Options{})
			if err != nil {
				t.Fatal(err)
			}
			x := randomInputs(2, n*in)
			c, err := a.Encode(x, n)
			if err != nil {
				t.Fatal(err)
			}
			recon := make([]float32, n*in)
			if err := a.Decode(c, recon); err != nil {
				t.Fatal(err)
			}
			for r := range n {
				wantLat, wantRecon := refEncode(w, x[r*in:(r+1)*in])
				assertClose(t, "latents", c.Latents[r*lat:(r+1)*lat], f32s(wantLat), 1e-5)
				assertClose(t, "recon", recon[r*in:(r+1)*in], f32s(wantRecon), 1e-5)
			}
		})
	}
}

func TestDecodeSparseMatchesDense(t *testing.T) {
	w := randomWeights(3, 64, 512)
	w.activation = "ReLU"
	a, err := Load(context.Background(), writePT(t, w, ptOptions{}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 9
	c, err := a.Encode(randomInputs(4, n*64), n)
	if err != nil {
		t.Fatal(err)
	}
	dense := make([]float32, n*64)
	if err := a.Decode(c, dense); err != nil { // about half the latents fire: GEMM path
		t.Fatal(err)
	}
	// Keep 3 latents per token: sparse path; compare with the GEMM path on
	// the same codes by padding one token densely.
	for r := range n {
		row := c.Latents[r*512 : (r+1)*512]
		kept := 0
		for i := range row {
			if row[i] != 0 {
				if kept++; kept > 3 {
					row[i] = 0
				}
			}
		}
	}
	sparse := make([]float32, n*64)
	if err := a.Decode(c, sparse); err != nil {
		t.Fatal(err)
	}
	for r := range n {
		want := make([]float32, 64)
		copy(want, a.outBias)
		for i, z := range c.Latents[r*512 : (r+1)*512] {
			for j := range want {
				want[j] += z * a.dec[i*64+j]
			}
		}
		assertClose(t, "sparse decode", sparse[r*64:(r+1)*64], want, 1e-5)
	}
}

func TestLoadErrors(t *testing.T) {
	good := randomWeights(5, 16, 32)
	goodBytes := encodePT(good, ptOptions{})
	for _, tc := range []struct {
		name  string
		make  func() []byte
		wants []string
	}{
		{"unknown activation", func() []byte {
			w := *good
			w.activation = "GELU"
			return encodePT(&w, ptOptions{})
		}, []string{"unknown activation", `"GELU"`}},
		{"unknown postact", func() []byte {
			w := *good
			w.activation, w.k, w.postact = "TopK", 4, "Softplus"
			return encodePT(&w, ptOptions{})
		}, []string{"postact_fn", "Softplus"}},
		{"k too large", func() []byte {
			w := *good
			w.activation, w.k, w.postact = "TopK", 33, "ReLU"
			return encodePT(&w, ptOptions{})
		}, []string{"k = 33"}},
		{"decoder shape", func() []byte { return encodePT(good, ptOptions{decoderLatents: 31}) },
			[]string{`tensor "decoder.weight" has shape [16 31], want [16 32]`}},
		{"missing encoder", func() []byte { return encodePT(good, ptOptions{skip: "encoder.weight"}) },
			[]string{`"encoder.weight"`, "missing"}},
		{"missing latent bias", func() []byte { return encodePT(good, ptOptions{skip: "latent_bias"}) },
			[]string{`"latent_bias"`, "missing from the state dict"}},
		{"truncated", func() []byte { return goodBytes[:len(goodBytes)-200] },
			[]string{"truncated or corrupted"}},
		{"corrupted storage", func() []byte {
			b := append([]byte(nil), goodBytes...)
			i := bytes.Index(b, binary.LittleEndian.AppendUint32(nil, math.Float32bits(good.enc[3])))
			b[i] ^= 0x55
			return b
		}, []string{`tensor "encoder.weight"`, "checksum"}},
		{"compressed storage", func() []byte { return encodePT(good, ptOptions{compress: true}) },
			[]string{"compressed"}},
		{"legacy format", func() []byte { return []byte("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.") },
			[]string{"legacy"}},
		{"not a zip", func() []byte { return []byte("hello, world") }, []string{"not a torch.save zip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.pt")
			if err := os.WriteFile(path, tc.make(), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(context.Background(), path, Options{})
			if err == nil {
				t.Fatal("loaded a bad file")
			}
			msg := err.Error()
			for _, w := range append(tc.wants, path) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}

func TestShapeMismatch(t *testing.T) {
	w := randomWeights(6, 16, 32)
	w.preBias = w.preBias[:15]
	path := writePT(t, w, ptOptions{})
	_, err := Load(context.Background(), path, Options{})
	if err == nil || !strings.Contains(err.Error(), `tensor "pre_bias" has shape [15], want [16]`) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v", err)
	}
}

func TestDropDead(t *testing.T) {
	const in, lat, n = 24, 40, 11
	w := randomWeights(7, in, lat)
	w.activation = "ReLU"
	dead := map[int]bool{0: true, 5: true, 6: true, 39: true}
	for i := range dead {
		w.freq[i] = 0
	}
	w.lastNZ[10] = 5000 // dead only by the step rule
	path := writePT(t, w, ptOptions{})
	full, err := Load(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		steps int64
		gone  []int
	}{
		{0, []int{0, 5, 6, 39}},
		{1000, []int{0, 5, 6, 10, 39}},
	} {
		a, err := Load(context.Background(), path, Options{DropDead: true, DeadSteps: tc.steps})
		if err != nil {
			t.Fatal(err)
		}
		if a.NLatents != lat-len(tc.gone) || len(a.Original) != a.NLatents {
			t.Fatalf("steps %d: kept %d latents, want %d", tc.steps, a.NLatents, lat-len(tc.gone))
		}
		x := randomInputs(8, n*in)
		cf, _ := full.Encode(x, n)
		cd, _ := a.Encode(x, n)
		for j, orig := range a.Original {
			for _, g := range tc.gone {
				if orig == g {
					t.Fatalf("dead latent %d kept", g)
				}
			}
			if k, ok := a.IndexOf(orig); !ok || k != j || a.OriginalIndex(j) != orig {
				t.Fatalf("index maps disagree for latent %d (original %d)", j, orig)
			}
			for r := range n {
				if cd.Latents[r*a.NLatents+j] != cf.Latents[r*lat+orig] {
					t.Fatalf("latent %d (original %d) of token %d differs after dropping", j, orig, r)
				}
			}
		}
		if _, ok := a.IndexOf(tc.gone[0]); ok {
			t.Fatalf("IndexOf found dropped latent %d", tc.gone[0])
		}
	}
}

func TestDropDeadNeedsStats(t *testing.T) {
	w := randomWeights(9, 8, 8)
	w.freq, w.lastNZ = nil, nil
	_, err := Load(context.Background(), writePT(t, w, ptOptions{}), Options{DropDead: true})
	if err == nil || !strings.Contains(err.Error(), "latents_activation_frequency") {
		t.Fatalf("got %v", err)
	}
}

// PreActivation agrees with Encode wherever the latent is active.
func TestPreActivationMatchesEncode(t *testing.T) {
	for _, name := range []string{"sae_relu.pt", "sae_topk.pt"} {
		path := filepath.Join(fixtureDir(t), name)
		a, err := Load(context.Background(), path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		x := make([]float32, a.NInputs)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		c, err := a.Encode(x, 1)
		if err != nil {
			t.Fatal(err)
		}
		active := 0
		for i, v := range c.Latents {
			if v <= 0 {
				continue
			}
			active++
			pre, err := a.PreActivation(x, i)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(float64(pre-v)) > 1e-4*math.Max(1, math.Abs(float64(v))) {
				t.Errorf("%s latent %d: pre-activation %g, encoded latent %g", name, i, pre, v)
			}
		}
		if active == 0 {
			t.Fatalf("%s: no active latent", name)
		}
	}
}
