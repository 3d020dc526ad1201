package collate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"sync/atomic"
	"testing"

	"tdb/dataset"
	"tdb/store"
)

func memStore(t testing.TB) store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// countingStore counts ranged reads of a real store.
type countingStore struct {
	store.Store
	ranges, bytes atomic.Int64
}

func (c *countingStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	c.ranges.Add(1)
	c.bytes.Add(n)
	return c.Store.GetRange(ctx, key, off, n)
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	return c.Store.Get(ctx, key)
}

func TestParquetRoundTripAndDeterminism(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	for _, tc := range []struct {
		name  string
		loc   string
		pairs bool
		T, C  int
	}{
		{"tokens", "mlp.post_act", false, 12, 150},
		{"pairs", "attn.heads", true, 5, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wins := synthCorpus(11, 80, tc.T, tc.C, tc.pairs)
			var first [2][]byte
			for _, how := range []string{"forward", "reverse", "tree"} {
				acc := shardAndMerge(t, wins, tc.loc, 2, tc.C, cfg, 6, 3, how)
				var rb, sb bytes.Buffer
				if err := acc.WriteRecords(&rb, 16); err != nil {
					t.Fatal(err)
				}
				if err := acc.WriteStats(&sb, 16); err != nil {
					t.Fatal(err)
				}
				if first[0] == nil {
					first = [2][]byte{rb.Bytes(), sb.Bytes()}
				} else if !bytes.Equal(first[0], rb.Bytes()) || !bytes.Equal(first[1], sb.Bytes()) {
					t.Fatalf("merge order %s changes the Parquet bytes", how)
				}
			}

			acc := shardAndMerge(t, wins, tc.loc, 2, tc.C, cfg, 4, 8, "forward")
			mem := memStore(t)
			st := &countingStore{Store: mem}
			if _, err := dataset.ReadComponent(ctx, st, "demo", tc.loc, 2, 0); !errors.Is(err, store.ErrNotFound) || !errors.Is(err, dataset.ErrNoDataset) {
				t.Fatalf("reading a dataset without manifest: %v, want not found", err)
			}
			if err := WriteLayer(ctx, st, "demo", acc, 16); err != nil {
				t.Fatal(err)
			}
			if _, err := dataset.ReadComponent(ctx, st, "demo", tc.loc, 2, 0); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("layer files without manifest are visible: %v", err)
			}
			m := &dataset.Manifest{Name: "demo", Model: "gpt2", Corpus: "synthetic", Tokens: int64(len(wins) * tc.T), NCtx: tc.T,
				Locations: []dataset.ManifestLocation{{Name: tc.loc, Layers: []int{2}, Components: tc.C, Pairs: tc.pairs}},
				Settings:  dataset.Settings(cfg), ComponentsPerRowGroup: 16, CreatedBy: "collate test"}
			if err := dataset.WriteManifest(ctx, st, m); err != nil {
				t.Fatal(err)
			}
			back, err := dataset.ReadManifest(ctx, st, "demo")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, m) {
				t.Fatalf("manifest round trip\n got %+v\nwant %+v", back, m)
			}
			for c := 0; c < tc.C; c++ {
				want, err := acc.Component(c)
				if err != nil {
					t.Fatal(err)
				}
				st.ranges.Store(0)
				st.bytes.Store(0)
				got, err := dataset.ReadComponent(ctx, st, "demo", tc.loc, 2, c)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("component %d differs after Parquet round trip\n got %+v\nwant %+v", c, got.Stats, want.Stats)
				}
				// The footer of each file (with, for records.parquet,
				// its offset indexes), the row group of statistics, and
				// of the records (page-indexed) the columns with one
				// value per record and the pages of each list column (two
				// or three); nothing else.
				if n := st.ranges.Load(); n > 8 {
					t.Errorf("component %d took %d ranged reads, want at most 8", c, n)
				}
			}
			rsize, _ := mem.Size(ctx, dataset.RecordsKey("demo", tc.loc, 2))
			ssize, _ := mem.Size(ctx, dataset.StatsKey("demo", tc.loc, 2))
			size := rsize + ssize
			if tc.C >= 64 && st.bytes.Load() > size/2 {
				t.Errorf("reading one component read %d of %d bytes; row-group pruning is not working", st.bytes.Load(), size)
			}
			// The index written with the layer: one row per top record, at
			// its peak token, and BuildIndex (the lazy path for older
			// datasets) reproduces it byte for byte.
			all, err := dataset.ReadIndex(ctx, st, dataset.IndexKey("demo", tc.loc, 2), -1)
			if err != nil {
				t.Fatal(err)
			}
			nTop := 0
			for c := 0; c < tc.C; c++ {
				v, _ := acc.Component(c)
				nTop += len(v.Top)
				for _, r := range dataset.IndexRowsOf(v) {
					if r.Token != r.Tokens[r.Position] || v.Top[r.Rank].MaxActivation != r.MaxActivation {
						t.Fatalf("index row %+v does not match component %d", r, c)
					}
				}
			}
			if len(all) != nTop || nTop == 0 {
				t.Fatalf("index has %d rows, want %d top records", len(all), nTop)
			}
			one, err := dataset.ReadIndex(ctx, st, dataset.IndexKey("demo", tc.loc, 2), int(all[len(all)/2].Token))
			if err != nil || len(one) == 0 {
				t.Fatalf("index lookup: %d rows, %v", len(one), err)
			}
			for _, r := range one {
				if r.Token != all[len(all)/2].Token {
					t.Fatalf("lookup of token %d returned token %d", all[len(all)/2].Token, r.Token)
				}
			}
			written := readAll(t, mem, dataset.IndexKey("demo", tc.loc, 2))
			if err := dataset.BuildIndex(ctx, st, "demo", tc.loc, 2, tc.pairs); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readAll(t, mem, dataset.IndexKey("demo", tc.loc, 2)), written) {
				t.Error("BuildIndex differs from the index WriteLayer wrote")
			}
			for _, bad := range []struct {
				loc          string
				layer, index int
			}{{"nope", 2, 0}, {tc.loc, 3, 0}, {tc.loc, 2, tc.C}, {tc.loc, 2, -1}} {
				if _, err := dataset.ReadComponent(ctx, st, "demo", bad.loc, bad.layer, bad.index); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("dataset.ReadComponent(%v): %v, want not found", bad, err)
				}
			}
		})
	}
}
