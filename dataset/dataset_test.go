package dataset_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"tdb/dataset"
	"tdb/store"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"demo", true}, {"gpt2-small_v1.2", true}, {"layer=3", true}, {"", false}, {"../x", false}, {"a/b", false}, {".hidden", false}, {strings.Repeat("a", 129), false}} {
		err := dataset.CheckName("dataset", tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, dataset.ErrBadName) {
			t.Errorf("CheckName(%q) = %v, does not wrap ErrBadName", tc.name, err)
		}
	}
}

func TestKeys(t *testing.T) {
	if got, want := dataset.RecordsKey("d", "mlp.post_act", 3), "datasets/d/mlp.post_act/layer=3/records.parquet"; got != want {
		t.Errorf("RecordsKey = %q, want %q", got, want)
	}
	if got, want := dataset.StatsKey("d", "attn.heads", 0), "datasets/d/attn.heads/layer=0/stats.parquet"; got != want {
		t.Errorf("StatsKey = %q, want %q", got, want)
	}
	if got, want := dataset.ManifestKey("d"), "datasets/d/manifest.json"; got != want {
		t.Errorf("ManifestKey = %q, want %q", got, want)
	}
}

func TestHistogramEdges(t *testing.T) {
	e := dataset.HistogramEdges()
	if len(e) != dataset.HistogramBins+1 {
		t.Fatalf("%d edges for %d bins", len(e), dataset.HistogramBins)
	}
	if !math.IsInf(e[0], -1) || !math.IsInf(e[len(e)-1], 1) {
		t.Errorf("ends %v %v, want ±Inf", e[0], e[len(e)-1])
	}
	zero := dataset.HistogramMagnitudes
	if e[zero] != 0 || e[zero+1] != 0 {
		t.Errorf("zero bin edges %v %v", e[zero], e[zero+1])
	}
	for i := 1; i < len(e); i++ {
		if e[i] < e[i-1] || (e[i] == e[i-1] && i != zero+1) {
			t.Errorf("edges not ascending at %d: %v %v", i, e[i-1], e[i])
		}
		if e[i] != -e[len(e)-1-i] {
			t.Errorf("edges not mirrored at %d", i)
		}
	}
	if e[zero+2] != 1.5/256 {
		t.Errorf("lowest positive edge %v, want 1.5·2^-8", e[zero+2])
	}
	j := dataset.HistogramEdgesJSON()
	if j[0] != -math.MaxFloat64 || j[len(j)-1] != math.MaxFloat64 || j[5] != e[5] {
		t.Errorf("JSON edges %v ... %v", j[0], j[len(j)-1])
	}
}

func TestSourceOrder(t *testing.T) {
	a, b, c := dataset.Source{Doc: 1, Offset: 9}, dataset.Source{Doc: 2, Offset: 0}, dataset.Source{Doc: 2, Offset: 3}
	if !a.Less(b) || !b.Less(c) || c.Less(a) || b.Less(b) {
		t.Error("Less is not (doc, offset) order")
	}
	if a.Compare(b) != -1 || c.Compare(b) != 1 || b.Compare(b) != 0 {
		t.Error("Compare disagrees with Less")
	}
}

func TestManifestRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	if _, err := dataset.ReadManifest(ctx, st, "demo"); !errors.Is(err, dataset.ErrNoDataset) || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing manifest: %v", err)
	}
	if _, err := dataset.ReadManifest(ctx, st, "../x"); !errors.Is(err, dataset.ErrBadName) {
		t.Fatalf("bad name: %v", err)
	}
	m := &dataset.Manifest{Name: "demo", Model: "gpt2", Corpus: "synthetic:ioi", Tokens: 640, NCtx: 64,
		Locations:             []dataset.ManifestLocation{{Name: "mlp.post_act", Layers: []int{0, 1}, Components: 3072}},
		Settings:              dataset.Settings{TopK: 32, RandomK: 16, QuantileBuckets: 10, PerBucket: 5, QuantilePool: 150, Seed: 7},
		ComponentsPerRowGroup: 64, CreatedBy: "test"}
	if err := dataset.WriteManifest(ctx, st, m); err != nil {
		t.Fatal(err)
	}
	back, err := dataset.ReadManifest(ctx, st, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != dataset.SchemaVersion || !reflect.DeepEqual(back, m) {
		t.Errorf("manifest round trip:\n got %+v\nwant %+v", back, m)
	}
	if l, ok := back.Location("mlp.post_act"); !ok || l.Components != 3072 {
		t.Errorf("Location = %+v, %v", l, ok)
	}
	bad := *m
	bad.Locations = []dataset.ManifestLocation{{Name: "a/b"}}
	if err := dataset.WriteManifest(ctx, st, &bad); !errors.Is(err, dataset.ErrBadName) {
		t.Errorf("location a/b: %v", err)
	}
	future := *m
	future.Name, future.SchemaVersion = "future", dataset.SchemaVersion+1
	if err := dataset.WriteManifest(ctx, st, &future); err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.ReadManifest(ctx, st, "future"); err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("newer schema: %v", err)
	}
	if err := st.Put(ctx, dataset.ManifestKey("junk"), strings.NewReader("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.ReadManifest(ctx, st, "junk"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("corrupt manifest: %v", err)
	}
}

// writeLayer writes a layer's two files from views with the dataset schemas
// (what a writer must produce), perGroup components per row group, the
// records in the sparse layout if sparse; extra writer properties choose
// the layout (none: the layout before page indexes).
func writeLayer(t *testing.T, st store.Store, name, loc string, layer int, views []dataset.ComponentView, perGroup int, sparse bool, extra ...parquet.WriterProperty) {
	t.Helper()
	ctx := context.Background()
	props := parquet.NewWriterProperties(append([]parquet.WriterProperty{parquet.WithStats(false), parquet.WithStatsFor(dataset.ColComponent, true),
		parquet.WithMaxRowGroupLength(1 << 30), parquet.WithDictionaryDefault(false), parquet.WithDictionaryFor(dataset.ColKind, true)}, extra...)...)
	write := func(key string, fill func(b *array.RecordBuilder, v *dataset.ComponentView), schemaRecords bool) {
		schema := dataset.StatsSchema()
		switch {
		case schemaRecords && sparse:
			schema = dataset.SparseRecordsSchema()
		case schemaRecords:
			schema = dataset.RecordsSchema()
		}
		var buf bytes.Buffer
		fw, err := pqarrow.NewFileWriter(schema, &buf, props, pqarrow.NewArrowWriterProperties())
		if err != nil {
			t.Fatal(err)
		}
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		for c0 := 0; c0 < len(views); c0 += perGroup {
			for c := c0; c < min(c0+perGroup, len(views)); c++ {
				fill(b, &views[c])
			}
			rec := b.NewRecordBatch()
			if err := fw.Write(rec); err != nil {
				t.Fatal(err)
			}
			rec.Release()
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, key, &buf); err != nil {
			t.Fatal(err)
		}
	}
	write(dataset.RecordsKey(name, loc, layer), func(b *array.RecordBuilder, v *dataset.ComponentView) {
		add := func(kind string, rank int, bucket int8, r *dataset.Record) {
			b.Field(0).(*array.Int32Builder).Append(int32(v.Index))
			b.Field(1).(*array.StringBuilder).Append(kind)
			b.Field(2).(*array.Int32Builder).Append(int32(rank))
			b.Field(3).(*array.Int8Builder).Append(bucket)
			b.Field(4).(*array.Float32Builder).Append(r.MaxActivation)
			b.Field(5).(*array.Int64Builder).Append(r.Source.Doc)
			b.Field(6).(*array.Int64Builder).Append(r.Source.Offset)
			tl := b.Field(7).(*array.ListBuilder)
			tl.Append(true)
			tl.ValueBuilder().(*array.Int32Builder).AppendValues(r.Tokens, nil)
			if sparse {
				pos, vals := dataset.SparseActivations(r.Activations)
				pl, vl := b.Field(8).(*array.ListBuilder), b.Field(9).(*array.ListBuilder)
				pl.Append(true)
				pl.ValueBuilder().(*array.Int32Builder).AppendValues(pos, nil)
				vl.Append(true)
				vl.ValueBuilder().(*array.Float32Builder).AppendValues(vals, nil)
				return
			}
			al := b.Field(8).(*array.ListBuilder)
			al.Append(true)
			al.ValueBuilder().(*array.Float32Builder).AppendValues(r.Activations, nil)
		}
		for i := range v.Top {
			add(dataset.KindTop, i, -1, &v.Top[i])
		}
		for i := range v.Random {
			add(dataset.KindRandom, i, -1, &v.Random[i])
		}
		rank := 0
		for bk := range v.Quantiles {
			for i := range v.Quantiles[bk] {
				add(dataset.KindQuantile, rank, int8(bk), &v.Quantiles[bk][i])
				rank++
			}
		}
	}, true)
	write(dataset.StatsKey(name, loc, layer), func(b *array.RecordBuilder, v *dataset.ComponentView) {
		s := v.Stats
		b.Field(0).(*array.Int32Builder).Append(int32(v.Index))
		b.Field(1).(*array.Int64Builder).Append(s.Count)
		for j, x := range []float64{s.Mean, s.Variance, s.Skewness, s.Kurtosis} {
			b.Field(2 + j).(*array.Float64Builder).Append(x)
		}
		b.Field(6).(*array.Float32Builder).Append(s.Max)
		b.Field(7).(*array.Float32Builder).Append(s.Min)
		b.Field(8).(*array.Float64Builder).Append(s.FracNonzero)
		ql := b.Field(9).(*array.ListBuilder)
		ql.Append(true)
		ql.ValueBuilder().(*array.Float32Builder).AppendValues(s.QuantileBoundaries, nil)
		hl := b.Field(10).(*array.ListBuilder)
		hl.Append(true)
		hl.ValueBuilder().(*array.Int64Builder).AppendValues(s.Histogram, nil)
	}, false)
}

func synthViews(loc string, layer, n int) []dataset.ComponentView {
	views := make([]dataset.ComponentView, n)
	rec := func(c, k int) dataset.Record {
		return dataset.Record{Source: dataset.Source{Doc: int64(c*100 + k), Offset: int64(k)},
			MaxActivation: float32(c) + 1/float32(k+1), Tokens: []int32{int32(c), int32(k), 7},
			Activations: []float32{0, float32(k), 1 / float32(k+1)}}
	}
	for c := range views {
		v := dataset.ComponentView{Location: loc, Layer: layer, Index: c}
		for k := 0; k < 3; k++ {
			v.Top = append(v.Top, rec(c, k))
		}
		v.Random = []dataset.Record{rec(c, 5), rec(c, 6)}
		v.Quantiles = [][]dataset.Record{{rec(c, 8)}, {}, {rec(c, 9), rec(c, 10)}}
		hist := make([]int64, dataset.HistogramBins)
		hist[c%dataset.HistogramBins] = int64(c + 1)
		v.Stats = dataset.Stats{Count: int64(100 + c), Mean: float64(c) / 3, Variance: 2, Skewness: -0.5, Kurtosis: 1.25,
			Max: float32(c) + 1, Min: -1, FracNonzero: 0.25, QuantileBoundaries: []float32{0, 1, 2, float32(c) + 1}, Histogram: hist}
		views[c] = v
	}
	return views
}

// pageIndexed is the layout collate writes: small data pages (here tiny,
// so that records span pages) and a page index, which readers use to
// decode only one component's pages.
// (The writer checks the page size after every batch of levels.)
var pageIndexed = []parquet.WriterProperty{parquet.WithDataPageSize(64), parquet.WithBatchSize(5), parquet.WithPageIndexEnabled(true)}

func TestReadComponent(t *testing.T) {
	t.Run("page-indexed", func(t *testing.T) { testReadComponent(t, true, false, pageIndexed...) })
	t.Run("page-indexed-sparse", func(t *testing.T) { testReadComponent(t, true, true, pageIndexed...) })
	// Datasets written before the page index read the same, and so do
	// files whose list columns have a dictionary (read a row group at a
	// time).
	t.Run("row-groups", func(t *testing.T) { testReadComponent(t, false, false) })
	t.Run("row-groups-sparse", func(t *testing.T) { testReadComponent(t, false, true) })
	t.Run("dictionary", func(t *testing.T) {
		testReadComponent(t, false, false, parquet.WithPageIndexEnabled(true), parquet.WithDictionaryDefault(true))
	})
}

func testReadComponent(t *testing.T, byPage, sparse bool, layout ...parquet.WriterProperty) {
	ctx := context.Background()
	st := store.NewMemory()
	views := synthViews("mlp.post_act", 2, 40)
	writeLayer(t, st, "demo", "mlp.post_act", 2, views, 16, sparse, layout...)
	rf, err := dataset.OpenFile(ctx, st, dataset.RecordsKey("demo", "mlp.post_act", 2))
	if err != nil {
		t.Fatal(err)
	}
	for g := range rf.NumGroups() {
		if rf.PageIndexed(g) != byPage {
			t.Fatalf("row group %d: PageIndexed %v, want %v", g, !byPage, byPage)
		}
		// Every component of the group reads the same alone as with its
		// row group (the first and last rows of a group included).
		group, err := rf.ReadRecords(ctx, st, g)
		if err != nil {
			t.Fatal(err)
		}
		for c, want := range group {
			got, err := rf.ReadComponentRecords(ctx, st, c)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("component %d alone:\n got %+v\nwant %+v", c, got, want)
			}
		}
	}
	if _, err := dataset.ReadComponent(ctx, st, "demo", "mlp.post_act", 2, 0); !errors.Is(err, dataset.ErrNoDataset) {
		t.Fatalf("layer files without a manifest are visible: %v", err)
	}
	m := &dataset.Manifest{Name: "demo", Locations: []dataset.ManifestLocation{{Name: "mlp.post_act", Layers: []int{2}, Components: len(views)}}}
	if err := dataset.WriteManifest(ctx, st, m); err != nil {
		t.Fatal(err)
	}
	for _, c := range []int{0, 15, 16, 39} {
		got, err := dataset.ReadComponent(ctx, st, "demo", "mlp.post_act", 2, c)
		if err != nil {
			t.Fatal(err)
		}
		want := views[c]
		want.Quantiles[1] = nil
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("component %d:\n got %+v\nwant %+v", c, got, &want)
		}
	}
	for _, bad := range []struct {
		loc          string
		layer, index int
	}{{"attn.heads", 2, 0}, {"mlp.post_act", 3, 0}, {"mlp.post_act", 2, 40}, {"mlp.post_act", 2, -1}} {
		if _, err := dataset.ReadComponent(ctx, st, "demo", bad.loc, bad.layer, bad.index); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ReadComponent(%v): %v, want not found", bad, err)
		}
	}
	// A corrupt file is an error naming the file, not a panic or not-found.
	if err := st.Put(ctx, dataset.StatsKey("demo", "mlp.post_act", 2), strings.NewReader("PAR1 this is not parquet PAR1")); err != nil {
		t.Fatal(err)
	}
	_, err = dataset.ReadComponent(ctx, st, "demo", "mlp.post_act", 2, 1)
	if err == nil || errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "stats.parquet") {
		t.Errorf("corrupt stats file: %v", err)
	}
}
