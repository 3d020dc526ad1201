package collate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tdb/dataset"
	"tdb/store"
)

// shardPartials encodes nShards partials of one location and layer from
// consecutive slices of wins.
func shardPartials(t *testing.T, wins []window, loc string, layer, C, nShards int, cfg Config) [][]byte {
	t.Helper()
	var out [][]byte
	per := (len(wins) + nShards - 1) / nShards
	for s := 0; s < len(wins); s += per {
		a, err := NewLayerAccumulator(loc, layer, C, cfg)
		if err != nil {
			t.Fatal(err)
		}
		feed(t, a, wins[s:min(s+per, len(wins))])
		b, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func bytesPartials(name string, bs [][]byte, reads *atomic.Int64) []Partial {
	var ps []Partial
	for i, b := range bs {
		ps = append(ps, Partial{Name: fmt.Sprintf("%s/%d", name, i), Read: func(context.Context) ([]byte, error) {
			if reads != nil {
				reads.Add(1)
			}
			return b, nil
		}})
	}
	return ps
}

func readAll(t *testing.T, st store.Store, key string) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// AssembleDataset writes, for each layer, the same bytes as merging the
// partials by hand and writing the layer, whatever its parallelism, and a
// manifest listing the layers sorted.
func TestAssembleDataset(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	mlp := synthCorpus(3, 40, 8, 20, false)
	heads := synthCorpus(4, 30, 5, 4, true)
	var layers []LayerPartials
	var reads atomic.Int64
	// Given out of order: the manifest lists them sorted.
	for _, l := range []struct {
		loc   string
		layer int
		wins  []window
		C     int
	}{{"mlp.post_act", 1, mlp, 20}, {"attn.heads", 0, heads, 4}, {"mlp.post_act", 0, mlp[5:], 20}} {
		layers = append(layers, LayerPartials{Location: l.loc, Layer: l.layer,
			Partials: bytesPartials(fmt.Sprintf("%s/%d", l.loc, l.layer), shardPartials(t, l.wins, l.loc, l.layer, l.C, 3, cfg), &reads)})
	}
	tmpl := dataset.Manifest{Name: "ds", Model: "random:tiny", Corpus: "synthetic:ioi", Tokens: 1234, NCtx: 8, CreatedBy: "test"}
	var files [][]byte
	for _, parallel := range []int{1, 3} {
		st := memStore(t)
		var done atomic.Int64
		m, err := AssembleDataset(ctx, st, tmpl, layers, AssembleOptions{Parallel: parallel, LayerDone: func(string, int, time.Duration) { done.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		if done.Load() != 3 {
			t.Fatalf("LayerDone called %d times, want 3", done.Load())
		}
		want := []dataset.ManifestLocation{{Name: "attn.heads", Layers: []int{0}, Components: 4, Pairs: true}, {Name: "mlp.post_act", Layers: []int{0, 1}, Components: 20}}
		if fmt.Sprint(m.Locations) != fmt.Sprint(want) || m.Settings != dataset.Settings(cfg) || m.Tokens != 1234 || m.ComponentsPerRowGroup != DefaultComponentsPerRowGroup {
			t.Fatalf("manifest %+v", m)
		}
		back, err := dataset.ReadManifest(ctx, st, "ds")
		if err != nil || fmt.Sprint(back.Locations) != fmt.Sprint(want) || back.CreatedBy != "test" {
			t.Fatalf("manifest read back %+v, %v", back, err)
		}
		var got [][]byte
		for _, k := range []string{dataset.ManifestKey("ds"), "datasets/ds/mlp.post_act/layer=1/records.parquet", "datasets/ds/attn.heads/layer=0/stats.parquet"} {
			got = append(got, readAll(t, st, k))
		}
		if files != nil {
			for i := range got {
				if !bytes.Equal(got[i], files[i]) {
					t.Fatalf("file %d differs between parallel 1 and %d", i, parallel)
				}
			}
		}
		files = got
	}
	if reads.Load() != 2*9 {
		t.Errorf("%d partial reads, want each of 9 read once per run", reads.Load())
	}
	// The same as merging and writing by hand.
	acc, err := MergePartials(ctx, layers[0])
	if err != nil {
		t.Fatal(err)
	}
	st := memStore(t)
	if err := WriteLayer(ctx, st, "ds", acc, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, st, "datasets/ds/mlp.post_act/layer=1/records.parquet"), files[1]) {
		t.Fatal("AssembleDataset's records differ from MergePartials + WriteLayer")
	}
}

func TestAssembleDatasetErrors(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	good := shardPartials(t, synthCorpus(5, 12, 6, 8, false), "mlp.post_act", 0, 8, 2, cfg)
	other := shardPartials(t, synthCorpus(5, 12, 6, 8, false), "mlp.post_act", 1, 8, 1, cfg)
	refused := errors.New("checksum mismatch")
	tmpl := dataset.Manifest{Name: "ds", Model: "m", Corpus: "c", NCtx: 6}
	tests := []struct {
		name     string
		partials []Partial
		want     string
	}{
		{"undecodable", append(bytesPartials("p", good, nil), Partial{Name: "bad", Read: func(context.Context) ([]byte, error) { return []byte("junk"), nil }}), "decoding partial bad"},
		{"read error", append(bytesPartials("p", good, nil), Partial{Name: "gone", Read: func(context.Context) ([]byte, error) { return nil, refused }}), "checksum mismatch"},
		{"wrong layer", append(bytesPartials("p", good, nil), bytesPartials("other", other, nil)...), "partial other/0 holds mlp.post_act layer 1, want mlp.post_act layer 0"},
		{"no partials", nil, "mlp.post_act layer 0 has no partials"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := memStore(t)
			_, err := AssembleDataset(ctx, st, tmpl, []LayerPartials{{Location: "mlp.post_act", Layer: 0, Partials: tc.partials}}, AssembleOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if tc.name == "read error" && !errors.Is(err, refused) {
				t.Fatalf("the reader's error is not wrapped: %v", err)
			}
			if _, err := st.Size(ctx, dataset.ManifestKey("ds")); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("a failed assembly wrote a manifest (%v)", err)
			}
		})
	}
	if _, err := AssembleDataset(ctx, memStore(t), tmpl, nil, AssembleOptions{}); err == nil || !strings.Contains(err.Error(), "no layers") {
		t.Fatalf("no layers: %v", err)
	}
}
