package explain

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"tdb/dataset"
	"tdb/store"
)

// Method names who wrote an explanation: the explainer ("builtin", "llm",
// "import") and, for a language model, which one.
type Method struct {
	Explainer string `json:"explainer"`
	Model     string `json:"model,omitempty"`
}

// String is "builtin" or "llm:MODEL".
func (m Method) String() string {
	if m.Model == "" {
		return m.Explainer
	}
	return m.Explainer + ":" + m.Model
}

// Score is one scoring method's result: its value, the judge that made the
// predictions ("builtin" or "llm:MODEL") and method-specific details (for
// detection and fuzzing the confusion counts).
type Score struct {
	Value   float64         `json:"value"`
	Judge   string          `json:"judge"`
	Details json.RawMessage `json:"details,omitempty"`
}

// Scores holds one score per scoring method that was run (nil: not run).
type Scores struct {
	Simulation *Score `json:"simulation,omitempty"`
	Detection  *Score `json:"detection,omitempty"`
	Fuzzing    *Score `json:"fuzzing,omitempty"`
}

// Explanation is one explanation of a component, as the query API serves it.
type Explanation struct {
	Explanation string    `json:"explanation"`
	Method      Method    `json:"method"`
	Scores      Scores    `json:"scores"`
	Created     time.Time `json:"created"`
}

// Row is a stored explanation with its component.
type Row struct {
	Location  string `json:"location"`
	Layer     int    `json:"layer"`
	Component int    `json:"component"`
	Explanation
}

// ChunkSize is how many components one explanations file covers. It is
// part of the layout: readers compute a component's file from it.
const ChunkSize = 1024

// checkName rejects names that would escape their folder (errors wrap
// dataset.ErrBadName).
func checkName(what, name string) error { return dataset.CheckName(what, name) }

// Prefix is the store folder of a dataset's explanations.
func Prefix(dataset string) string { return "datasets/" + dataset + "/explanations/" }

// LayerPrefix is the folder of one location and layer's explanation files.
func LayerPrefix(dataset, location string, layer int) string {
	return fmt.Sprintf("%s%s/layer=%d/", Prefix(dataset), location, layer)
}

// ChunkKey is the file holding component index's explanations:
// datasets/<name>/explanations/<location>/layer=<L>/components=<lo>-<hi>.parquet.
func ChunkKey(dataset, location string, layer, index int) string {
	lo := index / ChunkSize * ChunkSize
	return fmt.Sprintf("%scomponents=%d-%d.parquet", LayerPrefix(dataset, location, layer), lo, lo+ChunkSize)
}

var chunkKeyRE = regexp.MustCompile(`^datasets/([^/]+)/explanations/([^/]+)/layer=(\d+)/components=(\d+)-(\d+)\.parquet$`)

var rowSchema = arrow.NewSchema([]arrow.Field{
	{Name: "component", Type: arrow.PrimitiveTypes.Int32},
	{Name: "explanation", Type: arrow.BinaryTypes.String},
	{Name: "explainer", Type: arrow.BinaryTypes.String},
	{Name: "model", Type: arrow.BinaryTypes.String},
	{Name: "scores", Type: arrow.BinaryTypes.String},
	{Name: "created", Type: arrow.FixedWidthTypes.Timestamp_ms},
}, nil)

// Read returns the stored explanations of one component (empty, not an
// error, when it has none), ordered by method.
func Read(ctx context.Context, st store.Store, dataset, location string, layer, index int) ([]Explanation, error) {
	if err := checkKeyParts(dataset, location, layer, index); err != nil {
		return nil, err
	}
	rows, err := readChunk(ctx, st, ChunkKey(dataset, location, layer, index), location, layer)
	if err != nil {
		return nil, err
	}
	out := []Explanation{}
	for _, r := range rows {
		if r.Component == index {
			out = append(out, r.Explanation)
		}
	}
	return out, nil
}

func checkKeyParts(dataset, location string, layer, index int) error {
	if err := checkName("dataset", dataset); err != nil {
		return err
	}
	if err := checkName("location", location); err != nil {
		return err
	}
	if layer < 0 || index < 0 {
		return fmt.Errorf("explain: negative layer %d or component %d", layer, index)
	}
	return nil
}

// ReadChunk returns every stored explanation of the file holding component
// index: the ChunkSize components around it (callers that cache per file,
// like the query service, read each file once for all its components).
func ReadChunk(ctx context.Context, st store.Store, dataset, location string, layer, index int) ([]Row, error) {
	if err := checkKeyParts(dataset, location, layer, index); err != nil {
		return nil, err
	}
	return readChunk(ctx, st, ChunkKey(dataset, location, layer, index), location, layer)
}

// ReadLayer returns every stored explanation of one location and layer.
func ReadLayer(ctx context.Context, st store.Store, dataset, location string, layer int) ([]Row, error) {
	if err := checkKeyParts(dataset, location, layer, 0); err != nil {
		return nil, err
	}
	return readPrefix(ctx, st, LayerPrefix(dataset, location, layer))
}

// ReadAll returns every stored explanation of a dataset.
func ReadAll(ctx context.Context, st store.Store, dataset string) ([]Row, error) {
	if err := checkName("dataset", dataset); err != nil {
		return nil, err
	}
	return readPrefix(ctx, st, Prefix(dataset))
}

func readPrefix(ctx context.Context, st store.Store, prefix string) ([]Row, error) {
	keys, err := st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("explain: listing %s in %s: %w", prefix, st, err)
	}
	var out []Row
	for _, k := range keys {
		m := chunkKeyRE.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		layer, _ := strconv.Atoi(m[3])
		rows, err := readChunk(ctx, st, k, m[2], layer)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// Write stores rows, merged into what is stored: a row replaces the stored
// row of the same component and method; others are kept. Each affected
// chunk file is rewritten whole (Put is atomic); callers must not write the
// same chunk concurrently.
func Write(ctx context.Context, st store.Store, dataset string, rows []Row) error {
	if err := checkName("dataset", dataset); err != nil {
		return err
	}
	byKey := map[string][]Row{}
	for _, r := range rows {
		if err := checkKeyParts(dataset, r.Location, r.Layer, r.Component); err != nil {
			return err
		}
		k := ChunkKey(dataset, r.Location, r.Layer, r.Component)
		byKey[k] = append(byKey[k], r)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add := byKey[k]
		old, err := readChunk(ctx, st, k, add[0].Location, add[0].Layer)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := writeRows(&buf, Merge(old, add)); err != nil {
			return fmt.Errorf("explain: encoding %s: %w", k, err)
		}
		if err := st.Put(ctx, k, &buf); err != nil {
			return fmt.Errorf("explain: writing %s to %s: %w", k, st, err)
		}
	}
	return nil
}

// Merge returns old with add merged in (add wins for the same location,
// layer, component and method), sorted by location, layer, component and
// method.
func Merge(old, add []Row) []Row {
	type key struct {
		loc         string
		layer, comp int
		method      Method
	}
	idx := map[key]int{}
	var out []Row
	for _, list := range [][]Row{old, add} {
		for _, r := range list {
			k := key{r.Location, r.Layer, r.Component, r.Method}
			if i, ok := idx[k]; ok {
				out[i] = r
				continue
			}
			idx[k] = len(out)
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.Location, b.Location), cmp.Compare(a.Layer, b.Layer),
			cmp.Compare(a.Component, b.Component), cmp.Compare(a.Method.String(), b.Method.String()))
	})
	return out
}

func writerProps() *parquet.WriterProperties {
	return parquet.NewWriterProperties(
		parquet.WithCreatedBy("tdb explain"),
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(3),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor("explainer", true),
		parquet.WithDictionaryFor("model", true),
		parquet.WithAllocator(memory.DefaultAllocator),
	)
}

// writeRows encodes rows (all of one location and layer) as Parquet.
func writeRows(w io.Writer, rows []Row) error {
	fw, err := pqarrow.NewFileWriter(rowSchema, w, writerProps(), pqarrow.NewArrowWriterProperties())
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, rowSchema)
	defer b.Release()
	for _, r := range rows {
		sc, err := json.Marshal(r.Scores)
		if err != nil {
			fw.Close()
			return err
		}
		b.Field(0).(*array.Int32Builder).Append(int32(r.Component))
		b.Field(1).(*array.StringBuilder).Append(r.Explanation.Explanation)
		b.Field(2).(*array.StringBuilder).Append(r.Method.Explainer)
		b.Field(3).(*array.StringBuilder).Append(r.Method.Model)
		b.Field(4).(*array.StringBuilder).Append(string(sc))
		b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Created.UnixMilli()))
	}
	rec := b.NewRecordBatch()
	err = fw.Write(rec)
	rec.Release()
	if err != nil {
		fw.Close()
		return err
	}
	if len(rows) > 0 {
		if err := fw.AppendKeyValueMetadata("tdb.location", rows[0].Location); err != nil {
			fw.Close()
			return err
		}
		if err := fw.AppendKeyValueMetadata("tdb.layer", strconv.Itoa(rows[0].Layer)); err != nil {
			fw.Close()
			return err
		}
	}
	return fw.Close()
}

// maxChunkBytes bounds what readChunk loads.
const maxChunkBytes = 256 << 20

// readChunk reads one explanations file; a missing file has no rows.
func readChunk(ctx context.Context, st store.Store, key, location string, layer int) ([]Row, error) {
	rc, err := st.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("explain: reading %s from %s: %w", key, st, err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxChunkBytes+1))
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("explain: reading %s from %s: %w", key, st, err)
	}
	if len(data) > maxChunkBytes {
		return nil, fmt.Errorf("explain: %s is over %d bytes", key, maxChunkBytes)
	}
	rows, err := decodeRows(ctx, data, location, layer)
	if err != nil {
		return nil, fmt.Errorf("explain: %s: %w", key, err)
	}
	return rows, nil
}

func decodeRows(ctx context.Context, data []byte, location string, layer int) ([]Row, error) {
	pf, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 14}, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		return nil, err
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 1<<14)
	defer tr.Release()
	var out []Row
	for tr.Next() {
		rec := tr.RecordBatch()
		cols := make([]arrow.Array, len(rowSchema.Fields()))
		for j, f := range rowSchema.Fields() {
			idx := rec.Schema().FieldIndices(f.Name)
			if len(idx) != 1 {
				return nil, fmt.Errorf("missing column %q", f.Name)
			}
			cols[j] = rec.Column(idx[0])
		}
		comp, ok0 := cols[0].(*array.Int32)
		text, ok1 := cols[1].(*array.String)
		expl, ok2 := cols[2].(*array.String)
		model, ok3 := cols[3].(*array.String)
		scores, ok4 := cols[4].(*array.String)
		created, ok5 := cols[5].(*array.Timestamp)
		if !(ok0 && ok1 && ok2 && ok3 && ok4 && ok5) {
			return nil, errors.New("unexpected column types")
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			r := Row{Location: location, Layer: layer, Component: int(comp.Value(i))}
			r.Explanation.Explanation = text.Value(i)
			r.Method = Method{Explainer: expl.Value(i), Model: model.Value(i)}
			if s := scores.Value(i); s != "" {
				if err := json.Unmarshal([]byte(s), &r.Scores); err != nil {
					return nil, fmt.Errorf("scores of component %d: %w", r.Component, err)
				}
			}
			r.Created = time.UnixMilli(int64(created.Value(i))).UTC()
			out = append(out, r)
		}
	}
	return out, tr.Err()
}

// Done returns the components of one location and layer that already have
// an explanation by method (what a resumed job skips).
func Done(ctx context.Context, st store.Store, dataset, location string, layer int, method Method) (map[int]bool, error) {
	rows, err := ReadLayer(ctx, st, dataset, location, layer)
	if err != nil {
		return nil, err
	}
	done := map[int]bool{}
	for _, r := range rows {
		if r.Method == method {
			done[r.Component] = true
		}
	}
	return done, nil
}

// normalize lower-cases and splits text into search terms.
func terms(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127)
	})
}
