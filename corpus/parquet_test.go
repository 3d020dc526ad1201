package corpus

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// nullDoc marks a null text value in writeParquet.
const nullDoc = "\x00null"

// writeParquet writes columns id (int64) and text (nullable string) with
// rowsPerGroup rows per row group.
func writeParquet(t testing.TB, path string, docs []string, rowsPerGroup int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i, d := range docs {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if d == nullDoc {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(d)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, f, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(rowsPerGroup)), pqarrow.DefaultWriterProps())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestParquet(t *testing.T) {
	tok := gpt2(t)
	dir := t.TempDir()
	docs := []string{"alpha beta", nullDoc, "gamma", "", "delta epsilon zeta", nullDoc, "eta"}
	p := filepath.Join(dir, "d.parquet")
	writeParquet(t, p, docs, 3)
	c := open(t, p, Options{})
	for _, per := range []int64{1, 1000} {
		ws, st := collect(t, c, per, 1)
		var ref []refDoc
		for i, d := range docs {
			if d != nullDoc {
				ref = append(ref, refDoc{int64(i), d})
			}
		}
		want, _ := flatWindows(tok, ref, 1)
		if !reflect.DeepEqual(ws, want) {
			t.Fatalf("per=%d: got %v\nwant %v", per, ws, want)
		}
		if st.Docs != 5 {
			t.Errorf("stats %+v, want 5 docs", st)
		}
	}
}

func TestParquetColumnErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.parquet")
	writeParquet(t, p, []string{"x"}, 10)
	for spec, want := range map[string]string{
		"parquet:" + p + "#body": `has no column "body"; its columns: id (INT64), text (BYTE_ARRAY)`,
		"parquet:" + p + "#id":   `has no top-level string column "id"; its columns: id (INT64), text (BYTE_ARRAY)`,
	} {
		_, err := Open(context.Background(), spec, Options{})
		if err == nil || !strings.Contains(err.Error(), p+" "+want) {
			t.Errorf("Open(%q) error %v, want %q", spec, err, want)
		}
	}
	// A later file with the wrong column fails the plan.
	q := filepath.Join(dir, "e.parquet")
	writeFile(t, q, nil)
	c := open(t, "parquet:"+filepath.Join(dir, "d.parquet"), Options{})
	if _, err := c.Plan(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), "parquet:"+filepath.Join(dir, "[e].parquet"), Options{}); err == nil || !strings.Contains(err.Error(), q) {
		t.Errorf("empty parquet file: %v", err)
	}
}
