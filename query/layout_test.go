package query

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"tdb/dataset"
	"tdb/store"
	"tdb/store/storetest"
)

// Datasets written before records.parquet had a page index (one data page
// per column chunk, no offset index) are served the same: a row group at a
// time instead of by page.
func TestOlderRecordsLayout(t *testing.T) {
	ctx := context.Background()
	paged := store.NewMemory()
	makeDataset(t, paged, "demo", 40, 8, 300, 1)
	older := store.NewMemory()
	for k, b := range storetest.Blobs(t, paged, "datasets/") {
		if strings.HasSuffix(k, "/records.parquet") {
			b = withoutPageIndex(t, b)
		}
		if err := older.Put(ctx, "datasets/"+k, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := dataset.OpenFile(ctx, older, dataset.RecordsKey("demo", "mlp.post_act", 1))
	if err != nil {
		t.Fatal(err)
	}
	if f.NumGroups() < 2 || f.PageIndexed(0) {
		t.Fatalf("the rewritten file has %d row groups, page index %v", f.NumGroups(), f.PageIndexed(0))
	}
	a, b := newAPI(t, paged, testOpts(t)), newAPI(t, older, testOpts(t))
	for _, p := range []string{"mlp.post_act/0/0", "mlp.post_act/1/7", "mlp.post_act/1/39", "attn.heads/0/3", "mlp.post_act/1/8?k=2"} {
		p = "/api/v1/datasets/demo/" + p
		codeA, ansA, _ := get(t, a, p)
		codeB, ansB, _ := get(t, b, p)
		if codeA != 200 || codeB != 200 || !bytes.Equal(ansA.Data, ansB.Data) {
			t.Errorf("%s: %d and %d; the answers differ: %v", p, codeA, codeB, !bytes.Equal(ansA.Data, ansB.Data))
		}
	}
}

// withoutPageIndex rewrites a Parquet file row group by row group with
// arrow-go's default pages and no page index, keeping its metadata.
func withoutPageIndex(t *testing.T, b []byte) []byte {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	schema, err := fr.Schema()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	props := parquet.NewWriterProperties(parquet.WithStats(false), parquet.WithStatsFor(dataset.ColComponent, true),
		parquet.WithMaxRowGroupLength(1<<30), parquet.WithDictionaryDefault(false))
	fw, err := pqarrow.NewFileWriter(schema, &out, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		t.Fatal(err)
	}
	leaves := make([]int, pf.MetaData().Schema.NumColumns())
	for i := range leaves {
		leaves[i] = i
	}
	for g := range pf.NumRowGroups() {
		tbl, err := fr.ReadRowGroups(context.Background(), leaves, []int{g})
		if err != nil {
			t.Fatal(err)
		}
		cols := make([]arrow.Array, tbl.NumCols())
		for i := range cols {
			cols[i], err = array.Concatenate(tbl.Column(i).Data().Chunks(), memory.DefaultAllocator)
			if err != nil {
				t.Fatal(err)
			}
		}
		rec := array.NewRecordBatch(schema, cols, tbl.NumRows())
		if err := fw.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		tbl.Release()
	}
	md := pf.MetaData().KeyValueMetadata()
	for i, k := range md.Keys() {
		if err := fw.AppendKeyValueMetadata(k, md.Values()[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
