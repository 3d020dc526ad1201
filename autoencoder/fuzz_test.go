package autoencoder

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fixturePickles returns the data.pkl of the shared fixture .pt files, when
// they are present, as fuzz seeds.
func fixturePickles(f *testing.F) [][]byte {
	var out [][]byte
	dir := filepath.Join("..", "..", "shared", "fixtures", "hf-gpt2", "tiny")
	for _, name := range []string{"sae_relu.pt", "sae_topk.pt"} {
		zr, err := zip.OpenReader(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		for _, zf := range zr.File {
			if filepath.Base(zf.Name) == "data.pkl" {
				rc, err := zf.Open()
				if err != nil {
					f.Fatal(err)
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					f.Fatal(err)
				}
				out = append(out, b)
			}
		}
		zr.Close()
	}
	return out
}

// syntheticPickle extracts data.pkl from a file written by encodePT.
func syntheticPickle(f *testing.F, w *weights) []byte {
	b := encodePT(w, ptOptions{})
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		f.Fatal(err)
	}
	data, err := readRecord(zr.File[0], maxPickleBytes)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzOpenTorch runs the whole loader (zip directory, pickle, storage
// reads, state-dict checks) on mutated small archives. The test binary is
// large, so minimising a new input is slow: run it with a bounded
// minimisation, e.g.
//
//	go test ./autoencoder -run XXX -fuzz FuzzOpenTorch -fuzztime 60s -fuzzminimizetime 200x
func FuzzOpenTorch(f *testing.F) {
	w := randomWeights(2, 3, 5)
	f.Add(encodePT(w, ptOptions{}))
	f.Add(encodePT(w, ptOptions{transposedDecoder: true}))
	f.Add(encodePT(w, ptOptions{extra: "encoder.bias"})) // refused: an unexpected tensor
	w.activation, w.k, w.postact = "TopK", 2, "Identity"
	f.Add(encodePT(w, ptOptions{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		tf, err := openTorch(bytes.NewReader(data), int64(len(data)), "fuzz.pt")
		if err != nil {
			return
		}
		for _, k := range tf.keys() {
			if tf.has(k) {
				if x, err := tf.tensor(k); err == nil && int64(len(x.Data))*4 > 8*int64(len(data))+64 {
					t.Fatalf("tensor %q of %d elements from a %d-byte file", k, len(x.Data), len(data))
				}
			}
		}
		info, headerErr := describeStateDict(tf)
		a, err := fromStateDict(tf)
		if headerErr == nil && err == nil && (info.NInputs != a.NInputs || info.NLatents != a.NLatents) {
			t.Fatalf("header %d→%d, loaded %d→%d", info.NInputs, info.NLatents, a.NInputs, a.NLatents)
		}
		if headerErr != nil && err == nil {
			t.Fatalf("header refused (%v) but the file loaded", headerErr)
		}
		if err != nil {
			return
		}
		x := make([]float32, 2*a.NInputs)
		c, err := a.Encode(x, 2)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Decode(c, x); err != nil {
			t.Fatal(err)
		}
	})
}

// TestFixturePickles checks the seed corpus is meaningful: the fixture
// pickles decode into a state dict holding the expected keys.
func TestFixturePickles(t *testing.T) {
	dir := fixtureDir(t)
	f, err := os.Open(filepath.Join(dir, "sae_topk.pt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	tf, err := openTorch(f, fi.Size(), f.Name())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"pre_bias", "encoder.weight", "latent_bias", "decoder.weight", "stats_last_nonzero",
		"latents_activation_frequency", "latents_mean_square", "activation", "activation_state_dict"}
	got := tf.keys()
	if len(got) != len(want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("keys %v, want %v", got, want)
		}
	}
	if tf.prefix != "sae_topk/" {
		t.Fatalf("prefix %q", tf.prefix)
	}
}
