package collate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"tdb/store"
)

// SchemaVersion is the version of the dataset layout written by this package.
const SchemaVersion = 1

// Record kinds as written in the kind column.
const (
	KindTop      = "top"
	KindRandom   = "random"
	KindQuantile = "quantile"
)

// DefaultComponentsPerRowGroup keeps one row group small enough that reading
// one component is one small ranged read.
const DefaultComponentsPerRowGroup = 64

// Parquet key-value metadata keys.
const (
	metaSchemaVersion  = "tdb.schema_version"
	metaLocation       = "tdb.location"
	metaLayer          = "tdb.layer"
	metaComponents     = "tdb.components"
	metaPerRowGroup    = "tdb.components_per_row_group"
	metaPairs          = "tdb.pairs"
	metaHistogramEdges = "tdb.histogram_edges"
)

var recordsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "component", Type: arrow.PrimitiveTypes.Int32},
	{Name: "kind", Type: arrow.BinaryTypes.String},
	{Name: "rank", Type: arrow.PrimitiveTypes.Int32},
	{Name: "bucket", Type: arrow.PrimitiveTypes.Int8},
	{Name: "max_activation", Type: arrow.PrimitiveTypes.Float32},
	{Name: "doc", Type: arrow.PrimitiveTypes.Int64},
	{Name: "offset", Type: arrow.PrimitiveTypes.Int64},
	{Name: "tokens", Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int32)},
	{Name: "activations", Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32)},
}, nil)

var statsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "component", Type: arrow.PrimitiveTypes.Int32},
	{Name: "count", Type: arrow.PrimitiveTypes.Int64},
	{Name: "mean", Type: arrow.PrimitiveTypes.Float64},
	{Name: "variance", Type: arrow.PrimitiveTypes.Float64},
	{Name: "skewness", Type: arrow.PrimitiveTypes.Float64},
	{Name: "kurtosis", Type: arrow.PrimitiveTypes.Float64},
	{Name: "max", Type: arrow.PrimitiveTypes.Float32},
	{Name: "min", Type: arrow.PrimitiveTypes.Float32},
	{Name: "frac_nonzero", Type: arrow.PrimitiveTypes.Float64},
	{Name: "quantile_boundaries", Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Float32)},
	{Name: "histogram", Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int64)},
}, nil)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._=-]{0,127}$`)

// checkName rejects dataset and location names that would escape their
// folder on the store or be ambiguous.
func checkName(what, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("collate: bad %s name %q (letters, digits, '.', '_', '-', '=' only)", what, name)
	}
	return nil
}

// LayerPrefix is the store folder of one location and layer of a dataset.
func LayerPrefix(dataset, location string, layer int) string {
	return fmt.Sprintf("datasets/%s/%s/layer=%d/", dataset, location, layer)
}

// RecordsKey and StatsKey are the store keys of a layer's two files.
func RecordsKey(dataset, location string, layer int) string {
	return LayerPrefix(dataset, location, layer) + "records.parquet"
}

// StatsKey is the store key of a layer's per-component statistics.
func StatsKey(dataset, location string, layer int) string {
	return LayerPrefix(dataset, location, layer) + "stats.parquet"
}

// writerProps are fixed so that the same accumulator always gives the same
// bytes: no timestamps, a fixed created_by, zstd at a fixed level.
func writerProps() *parquet.WriterProperties {
	return parquet.NewWriterProperties(
		parquet.WithCreatedBy("tdb collate"),
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(3),
		parquet.WithMaxRowGroupLength(1<<40),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor("kind", true),
		parquet.WithStats(false),
		parquet.WithStatsFor("component", true),
		parquet.WithAllocator(memory.DefaultAllocator),
	)
}

// WriteLayer finalizes a merged accumulator and writes its records.parquet
// and stats.parquet under the dataset. Rows are sorted by component, then
// kind (top, random, quantile), then rank; every row group holds
// componentsPerRowGroup whole components (0: the default).
func WriteLayer(ctx context.Context, st store.Store, dataset string, a *LayerAccumulator, componentsPerRowGroup int) error {
	if err := checkName("dataset", dataset); err != nil {
		return err
	}
	if err := checkName("location", a.location); err != nil {
		return err
	}
	if componentsPerRowGroup <= 0 {
		componentsPerRowGroup = DefaultComponentsPerRowGroup
	}
	for _, f := range []struct {
		key   string
		write func(io.Writer) error
	}{
		{RecordsKey(dataset, a.location, a.layer), func(w io.Writer) error { return a.WriteRecords(w, componentsPerRowGroup) }},
		{StatsKey(dataset, a.location, a.layer), func(w io.Writer) error { return a.WriteStats(w, componentsPerRowGroup) }},
	} {
		if err := putStreaming(ctx, st, f.key, f.write); err != nil {
			return fmt.Errorf("collate: writing %s to %s: %w", f.key, st, err)
		}
	}
	return nil
}

// putStreaming pipes write's output into st.Put without buffering the file.
func putStreaming(ctx context.Context, st store.Store, key string, write func(io.Writer) error) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	err := st.Put(ctx, key, pr)
	pr.CloseWithError(fmt.Errorf("store put ended"))
	if werr := <-done; werr != nil && err == nil {
		err = werr
	}
	return err
}

func (a *LayerAccumulator) fileMeta(perGroup int) map[string]string {
	edges, _ := json.Marshal(HistogramEdgesJSON())
	return map[string]string{
		metaSchemaVersion:  strconv.Itoa(SchemaVersion),
		metaLocation:       a.location,
		metaLayer:          strconv.Itoa(a.layer),
		metaComponents:     strconv.Itoa(a.components),
		metaPerRowGroup:    strconv.Itoa(perGroup),
		metaPairs:          strconv.FormatBool(a.kind == kindPairs),
		metaHistogramEdges: string(edges),
	}
}

// HistogramEdgesJSON returns HistogramEdges with the infinite ends as
// ±MaxFloat64 so that they survive JSON.
func HistogramEdgesJSON() []float64 {
	e := HistogramEdges()
	e[0], e[len(e)-1] = -math.MaxFloat64, math.MaxFloat64
	return e
}

// writeParquet writes one row group per group of components; fill appends
// the rows of components [c0, c1) to the builder.
func writeParquet(w io.Writer, schema *arrow.Schema, meta map[string]string, n, perGroup int, fill func(b *array.RecordBuilder, c0, c1 int) error) error {
	fw, err := pqarrow.NewFileWriter(schema, w, writerProps(), pqarrow.NewArrowWriterProperties())
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for c0 := 0; c0 < n; c0 += perGroup {
		c1 := min(c0+perGroup, n)
		if err := fill(b, c0, c1); err != nil {
			fw.Close()
			return err
		}
		rec := b.NewRecordBatch()
		err := fw.Write(rec)
		rec.Release()
		if err != nil {
			fw.Close()
			return err
		}
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fw.AppendKeyValueMetadata(k, meta[k]); err != nil {
			fw.Close()
			return err
		}
	}
	return fw.Close()
}

// WriteRecords writes the layer's records.parquet to w.
func (a *LayerAccumulator) WriteRecords(w io.Writer, perGroup int) error {
	return writeParquet(w, recordsSchema, a.fileMeta(perGroup), a.components, perGroup, func(b *array.RecordBuilder, c0, c1 int) error {
		comp := b.Field(0).(*array.Int32Builder)
		kind := b.Field(1).(*array.StringBuilder)
		rank := b.Field(2).(*array.Int32Builder)
		bucket := b.Field(3).(*array.Int8Builder)
		maxAct := b.Field(4).(*array.Float32Builder)
		doc := b.Field(5).(*array.Int64Builder)
		off := b.Field(6).(*array.Int64Builder)
		toks := b.Field(7).(*array.ListBuilder)
		tokv := toks.ValueBuilder().(*array.Int32Builder)
		acts := b.Field(8).(*array.ListBuilder)
		actv := acts.ValueBuilder().(*array.Float32Builder)
		add := func(c int, k string, r int, bk int8, rc *Record) {
			comp.Append(int32(c))
			kind.Append(k)
			rank.Append(int32(r))
			bucket.Append(bk)
			maxAct.Append(rc.MaxActivation)
			doc.Append(rc.Source.Doc)
			off.Append(rc.Source.Offset)
			toks.Append(true)
			tokv.AppendValues(rc.Tokens, nil)
			acts.Append(true)
			actv.AppendValues(rc.Activations, nil)
		}
		for c := c0; c < c1; c++ {
			v, err := a.Component(c)
			if err != nil {
				return err
			}
			for i := range v.Top {
				add(c, KindTop, i, -1, &v.Top[i])
			}
			for i := range v.Random {
				add(c, KindRandom, i, -1, &v.Random[i])
			}
			r := 0
			for bk, recs := range v.Quantiles {
				for i := range recs {
					add(c, KindQuantile, r, int8(bk), &recs[i])
					r++
				}
			}
		}
		return nil
	})
}

// WriteStats writes the layer's stats.parquet to w.
func (a *LayerAccumulator) WriteStats(w io.Writer, perGroup int) error {
	return writeParquet(w, statsSchema, a.fileMeta(perGroup), a.components, perGroup, func(b *array.RecordBuilder, c0, c1 int) error {
		bounds := b.Field(9).(*array.ListBuilder)
		boundv := bounds.ValueBuilder().(*array.Float32Builder)
		hist := b.Field(10).(*array.ListBuilder)
		histv := hist.ValueBuilder().(*array.Int64Builder)
		for c := c0; c < c1; c++ {
			s := a.stats(c)
			b.Field(0).(*array.Int32Builder).Append(int32(c))
			b.Field(1).(*array.Int64Builder).Append(s.Count)
			b.Field(2).(*array.Float64Builder).Append(s.Mean)
			b.Field(3).(*array.Float64Builder).Append(s.Variance)
			b.Field(4).(*array.Float64Builder).Append(s.Skewness)
			b.Field(5).(*array.Float64Builder).Append(s.Kurtosis)
			b.Field(6).(*array.Float32Builder).Append(s.Max)
			b.Field(7).(*array.Float32Builder).Append(s.Min)
			b.Field(8).(*array.Float64Builder).Append(s.FracNonzero)
			bounds.Append(true)
			boundv.AppendValues(s.QuantileBoundaries, nil)
			hist.Append(true)
			histv.AppendValues(s.Histogram, nil)
		}
		return nil
	})
}
