package collate

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"tdb/dataset"
)

// sparseWindows makes windows of latents that are zero at most tokens (a
// few fire, some at -0 to check that the sign of zero survives).
func sparseWindows(seed uint64, nWin, T, C int) []window {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([]window, nWin)
	for w := range out {
		win := window{src: dataset.Source{Doc: int64(w / 3), Offset: int64(w%3) * int64(T)}, tokens: make([]int32, T), acts: make([]float32, T*C)}
		for i := range win.tokens {
			win.tokens[i] = int32(rng.IntN(50257))
		}
		for i := range win.acts {
			switch r := rng.IntN(40); {
			case r == 0:
				win.acts[i] = float32(rng.ExpFloat64())
			case r == 1:
				win.acts[i] = float32(math.Copysign(0, -1))
			}
		}
		out[w] = win
	}
	return out
}

// TestSparsePartial: records of sparse components are written as their
// nonzero values, read back to the same state and the same bytes, and the
// partial is several times smaller than the dense records would be.
func TestSparsePartial(t *testing.T) {
	const T, C = 32, 5
	a, _ := NewLayerAccumulator("autoencoder_latent", 2, C, testConfig())
	feed(t, a, sparseWindows(1, 200, T, C))
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// The records' share of the partial: all of it less the window table's
	// tokens (and a little header and statistics).
	dense := 0
	used := map[int32]bool{}
	for c := range C {
		dense += 4 * T * (len(a.top[c]) + len(a.pool[c]))
		for _, e := range a.top[c] {
			used[e.win] = true
		}
		for _, e := range a.pool[c] {
			used[e.win] = true
		}
	}
	if recs := len(b) - 4*T*len(used) - C*200; recs*4 > dense {
		t.Fatalf("records take about %d bytes of the partial, dense records %d", recs, dense)
	}
	back, err := DecodePartial(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := back.MarshalBinary()
	if !bytes.Equal(b, b2) {
		t.Fatal("a sparse partial does not re-encode to the same bytes")
	}
	negZero := false
	for c := range C {
		v1, _ := a.Component(c)
		v2, _ := back.Component(c)
		if !reflect.DeepEqual(v1, v2) {
			t.Fatalf("component %d differs after the round trip", c)
		}
		for _, r := range v2.Random {
			for _, x := range r.Activations {
				negZero = negZero || (x == 0 && math.Signbit(float64(x)))
			}
		}
	}
	if !negZero {
		t.Fatal("no -0 survived in the random records")
	}
	// Corrupt sparse records are refused, not panics.
	for _, cut := range []int{1, 7, 100, len(b) / 2} {
		if _, err := DecodePartial(b[:len(b)-cut]); err == nil {
			t.Fatalf("truncated by %d bytes: decoded", cut)
		}
	}
}

// TestSparseRecordsParquet: a layer of mostly-zero components writes
// records.parquet in the sparse layout, which dataset.ReadComponent reads
// back to the same views (-0 included), in no more bytes than the dense
// layout; a dense layer keeps the dense layout.
func TestSparseRecordsParquet(t *testing.T) {
	ctx := context.Background()
	const T, C = 32, 40
	acc, _ := NewLayerAccumulator("autoencoder_latent", 1, C, testConfig())
	feed(t, acc, sparseWindows(2, 300, T, C))
	if !acc.SparseRecords() {
		t.Fatal("a layer with 5% nonzero activations is not sparse")
	}
	dense, _ := NewLayerAccumulator("mlp.post_act", 1, 6, testConfig())
	feed(t, dense, synthCorpus(3, 40, 8, 6, false))
	if dense.SparseRecords() {
		t.Fatal("a dense layer takes the sparse layout")
	}
	st := memStore(t)
	if err := WriteLayer(ctx, st, "sp", acc, 16); err != nil {
		t.Fatal(err)
	}
	m := &dataset.Manifest{Name: "sp", Model: "gpt2", Corpus: "synthetic", Tokens: 300 * T, NCtx: T,
		Locations: []dataset.ManifestLocation{{Name: "autoencoder_latent", Layers: []int{1}, Components: C}},
		Settings:  dataset.Settings(testConfig()), ComponentsPerRowGroup: 16, CreatedBy: "collate test"}
	if err := dataset.WriteManifest(ctx, st, m); err != nil {
		t.Fatal(err)
	}
	for c := range C {
		want, _ := acc.Component(c)
		got, err := dataset.ReadComponent(ctx, st, "sp", "autoencoder_latent", 1, c)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("component %d differs after the sparse Parquet round trip", c)
		}
	}
	var sparseBuf, denseBuf bytes.Buffer
	if err := acc.WriteRecords(&sparseBuf, 16); err != nil {
		t.Fatal(err)
	}
	if err := acc.writeDenseRecords(&denseBuf, 16); err != nil {
		t.Fatal(err)
	}
	// zstd already squeezes the dense layout's runs of zeros, so the
	// files are close; the sparse one must not be bigger.
	if sparseBuf.Len() > denseBuf.Len() {
		t.Fatalf("sparse records.parquet %d bytes, dense %d", sparseBuf.Len(), denseBuf.Len())
	}
	t.Logf("records.parquet: sparse %d bytes, dense %d", sparseBuf.Len(), denseBuf.Len())
}

// TestSparseSlots: mostly-zero records are kept sparse in memory (through
// both the row path and the column path), and every record's activations
// read back bit for bit (-0 included), as views, after encoding and after a
// merge.
func TestSparseSlots(t *testing.T) {
	for _, C := range []int{5, 40} { // the column path, the row path (AVX2)
		const T = 32
		wins := sparseWindows(4, 240, T, C)
		bySrc := map[dataset.Source]window{}
		for _, w := range wins {
			bySrc[w.src] = w
		}
		a, _ := NewLayerAccumulator("autoencoder_latent", 0, C, testConfig())
		feed(t, a, wins[:120])
		b, _ := NewLayerAccumulator("autoencoder_latent", 0, C, testConfig())
		feed(t, b, wins[120:])
		kept := 0
		for c := range C {
			kept += len(a.top[c]) + len(a.pool[c])
		}
		if a.acts.inUse*3 > int64(kept*T) {
			t.Errorf("C=%d: %d values in use for %d records of %d (not sparse)", C, a.acts.inUse, kept, T)
		}
		check := func(what string, acc *LayerAccumulator) {
			for c := range C {
				v, err := acc.Component(c)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range append(append([]dataset.Record{}, v.Top...), v.Random...) {
					w := bySrc[r.Source]
					for i, x := range r.Activations {
						if math.Float32bits(x) != math.Float32bits(w.acts[i*C+c]) {
							t.Fatalf("C=%d %s: component %d record %v value %d is %v, want %v", C, what, c, r.Source, i, x, w.acts[i*C+c])
						}
					}
				}
			}
		}
		check("a", a)
		p, _ := a.MarshalBinary()
		a2, err := DecodePartial(p)
		if err != nil {
			t.Fatal(err)
		}
		check("decoded", a2)
		if err := a2.Merge(b); err != nil {
			t.Fatal(err)
		}
		check("merged", a2)
	}
}
