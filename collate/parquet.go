package collate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"tdb/dataset"
	"tdb/store"
)

// DefaultComponentsPerRowGroup keeps one row group small enough that reading
// one component is one small ranged read.
const DefaultComponentsPerRowGroup = 64

// RecordsPageBytes bounds a data page of records.parquet. Pages are small
// and the file carries a page index (offset index), so that a reader
// decodes the pages of one component's records, not the whole row group
// of DefaultComponentsPerRowGroup components
// (dataset.File.ReadComponentRecords). Smaller pages compress worse (each
// is compressed alone); 8 KiB pages read no faster (docs/performance.md).
const RecordsPageBytes = 32 << 10

// writerProps are fixed so that the same accumulator always gives the same
// bytes: no timestamps, a fixed created_by, zstd at a fixed level. extra
// adds the properties of one kind of file.
func writerProps(extra ...parquet.WriterProperty) *parquet.WriterProperties {
	return parquet.NewWriterProperties(append([]parquet.WriterProperty{
		parquet.WithCreatedBy("tdb collate"),
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(3),
		parquet.WithMaxRowGroupLength(1 << 40),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor("kind", true),
		parquet.WithStats(false),
		parquet.WithStatsFor("component", true),
		parquet.WithAllocator(memory.DefaultAllocator),
	}, extra...)...)
}

// recordsProps are the writer properties of records.parquet: small data
// pages, aligned on records, with a page index.
func recordsProps() *parquet.WriterProperties {
	return writerProps(parquet.WithDataPageSize(RecordsPageBytes), parquet.WithPageIndexEnabled(true))
}

// WriteLayer finalizes a merged accumulator and writes its records.parquet,
// stats.parquet and the search index (index.parquet, dataset.WriteIndex)
// under the dataset. Rows are sorted by component, then
// kind (top, random, quantile), then rank; every row group holds
// componentsPerRowGroup whole components (0: the default).
func WriteLayer(ctx context.Context, st store.Store, name string, a *LayerAccumulator, componentsPerRowGroup int) error {
	if err := dataset.CheckName("dataset", name); err != nil {
		return err
	}
	if err := dataset.CheckName("location", a.location); err != nil {
		return err
	}
	if componentsPerRowGroup <= 0 {
		componentsPerRowGroup = DefaultComponentsPerRowGroup
	}
	var index []dataset.IndexRow
	for _, f := range []struct {
		key   string
		write func(io.Writer) error
	}{
		{dataset.RecordsKey(name, a.location, a.layer), func(w io.Writer) error {
			return a.writeRecords(w, componentsPerRowGroup, func(v *dataset.ComponentView) { index = append(index, dataset.IndexRowsOf(v)...) })
		}},
		{dataset.StatsKey(name, a.location, a.layer), func(w io.Writer) error { return a.WriteStats(w, componentsPerRowGroup) }},
	} {
		if err := putStreaming(ctx, st, f.key, f.write); err != nil {
			return fmt.Errorf("collate: writing %s to %s: %w", f.key, st, err)
		}
	}
	return dataset.WriteIndex(ctx, st, dataset.IndexKey(name, a.location, a.layer), index)
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
	return layerMeta(a.location, a.layer, a.components, perGroup, a.kind == kindPairs)
}

func layerMeta(location string, layer, components, perGroup int, pairs bool) map[string]string {
	edges, _ := json.Marshal(dataset.HistogramEdgesJSON())
	return map[string]string{
		dataset.MetaSchemaVersion:  strconv.Itoa(dataset.SchemaVersion),
		dataset.MetaLocation:       location,
		dataset.MetaLayer:          strconv.Itoa(layer),
		dataset.MetaComponents:     strconv.Itoa(components),
		dataset.MetaPerRowGroup:    strconv.Itoa(perGroup),
		dataset.MetaPairs:          strconv.FormatBool(pairs),
		dataset.MetaHistogramEdges: string(edges),
	}
}

// writeParquet writes one row group per group of components; fill appends
// the rows of components [c0, c1) to the builder.
func writeParquet(w io.Writer, props *parquet.WriterProperties, schema *arrow.Schema, meta map[string]string, n, perGroup int, fill func(b *array.RecordBuilder, c0, c1 int) error) error {
	fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties())
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

// SparseRecords reports whether the layer's records.parquet takes the
// sparse layout (dataset.SparseRecordsSchema): per-token components of
// which at most one activation in sparseDensity is nonzero over
// everything seen (autoencoder latents; never GPT-2's GELU neurons).
func (a *LayerAccumulator) SparseRecords() bool {
	if a.kind != kindTokens {
		return false
	}
	var nz int64
	for c := range a.components {
		nz += a.nonzero[c]
	}
	n := (a.exactCount + a.count) * int64(a.components)
	return n > 0 && nz*sparseDensity <= n
}

// sparseDensity: a layer with at most one nonzero activation in this many
// stores its records sparse.
const sparseDensity = 8

// WriteRecords writes the layer's records.parquet to w, in the sparse
// layout when SparseRecords.
func (a *LayerAccumulator) WriteRecords(w io.Writer, perGroup int) error {
	return a.writeRecords(w, perGroup, nil)
}

// writeRecords is WriteRecords calling seen (if not nil) with every
// component's view as it is written.
func (a *LayerAccumulator) writeRecords(w io.Writer, perGroup int, seen func(*dataset.ComponentView)) error {
	if a.SparseRecords() {
		meta := a.fileMeta(perGroup)
		meta[dataset.MetaActivations] = "sparse"
		return writeSparseRecordsOf(w, meta, a.components, perGroup, a.Component, seen)
	}
	return writeRecordsOf(w, a.fileMeta(perGroup), a.components, perGroup, a.Component, seen)
}

// writeDenseRecords writes records.parquet with every activation, whatever
// SparseRecords says (tests compare the layouts).
func (a *LayerAccumulator) writeDenseRecords(w io.Writer, perGroup int) error {
	return writeRecordsOf(w, a.fileMeta(perGroup), a.components, perGroup, a.Component, nil)
}

// writeRecordsOf writes the records of components 0..n-1 as view returns
// them.
func writeRecordsOf(w io.Writer, meta map[string]string, n, perGroup int, view func(c int) (*dataset.ComponentView, error), seen func(*dataset.ComponentView)) error {
	return writeParquet(w, recordsProps(), dataset.RecordsSchema(), meta, n, perGroup, func(b *array.RecordBuilder, c0, c1 int) error {
		lead := newLeadingBuilders(b)
		acts := b.Field(8).(*array.ListBuilder)
		actv := acts.ValueBuilder().(*array.Float32Builder)
		add := func(c int, k string, r int, bk int8, rc *dataset.Record) {
			lead.append(c, k, r, bk, rc)
			acts.Append(true)
			actv.AppendValues(rc.Activations, nil)
		}
		return eachRecord(c0, c1, view, seen, add)
	})
}

// leadingBuilders append the columns that both records layouts start with
// (component, kind, rank, bucket, max_activation, doc, offset, tokens).
type leadingBuilders struct {
	comp, rank *array.Int32Builder
	kind       *array.StringBuilder
	bucket     *array.Int8Builder
	maxAct     *array.Float32Builder
	doc, off   *array.Int64Builder
	toks       *array.ListBuilder
	tokv       *array.Int32Builder
}

func newLeadingBuilders(b *array.RecordBuilder) leadingBuilders {
	toks := b.Field(7).(*array.ListBuilder)
	return leadingBuilders{
		comp: b.Field(0).(*array.Int32Builder), kind: b.Field(1).(*array.StringBuilder), rank: b.Field(2).(*array.Int32Builder),
		bucket: b.Field(3).(*array.Int8Builder), maxAct: b.Field(4).(*array.Float32Builder),
		doc: b.Field(5).(*array.Int64Builder), off: b.Field(6).(*array.Int64Builder),
		toks: toks, tokv: toks.ValueBuilder().(*array.Int32Builder),
	}
}

// append adds record rc of component c (kind k, rank r, quantile bucket bk).
func (l leadingBuilders) append(c int, k string, r int, bk int8, rc *dataset.Record) {
	l.comp.Append(int32(c))
	l.kind.Append(k)
	l.rank.Append(int32(r))
	l.bucket.Append(bk)
	l.maxAct.Append(rc.MaxActivation)
	l.doc.Append(rc.Source.Doc)
	l.off.Append(rc.Source.Offset)
	l.toks.Append(true)
	l.tokv.AppendValues(rc.Tokens, nil)
}

// writeSparseRecordsOf is writeRecordsOf in the sparse layout: the
// activations as the positions and values of those that are not +0.
func writeSparseRecordsOf(w io.Writer, meta map[string]string, n, perGroup int, view func(c int) (*dataset.ComponentView, error), seen func(*dataset.ComponentView)) error {
	return writeParquet(w, recordsProps(), dataset.SparseRecordsSchema(), meta, n, perGroup, func(b *array.RecordBuilder, c0, c1 int) error {
		lead := newLeadingBuilders(b)
		pos := b.Field(8).(*array.ListBuilder)
		posv := pos.ValueBuilder().(*array.Int32Builder)
		vals := b.Field(9).(*array.ListBuilder)
		valv := vals.ValueBuilder().(*array.Float32Builder)
		add := func(c int, k string, r int, bk int8, rc *dataset.Record) {
			lead.append(c, k, r, bk, rc)
			p, v := dataset.SparseActivations(rc.Activations)
			pos.Append(true)
			posv.AppendValues(p, nil)
			vals.Append(true)
			valv.AppendValues(v, nil)
		}
		return eachRecord(c0, c1, view, seen, add)
	})
}

// eachRecord calls add for every written record of components [c0, c1),
// in file order, and seen (if not nil) with every component's view.
func eachRecord(c0, c1 int, view func(c int) (*dataset.ComponentView, error), seen func(*dataset.ComponentView), add func(c int, k string, r int, bk int8, rc *dataset.Record)) error {
	for c := c0; c < c1; c++ {
		v, err := view(c)
		if err != nil {
			return err
		}
		if seen != nil {
			seen(v)
		}
		for i := range v.Top {
			add(c, dataset.KindTop, i, -1, &v.Top[i])
		}
		for i := range v.Random {
			add(c, dataset.KindRandom, i, -1, &v.Random[i])
		}
		r := 0
		for bk, recs := range v.Quantiles {
			for i := range recs {
				add(c, dataset.KindQuantile, r, int8(bk), &recs[i])
				r++
			}
		}
	}
	return nil
}

// WriteStats writes the layer's stats.parquet to w.
func (a *LayerAccumulator) WriteStats(w io.Writer, perGroup int) error {
	return writeStatsOf(w, a.fileMeta(perGroup), a.components, perGroup, a.stats)
}

// writeStatsOf writes the statistics of components 0..n-1.
func writeStatsOf(w io.Writer, meta map[string]string, n, perGroup int, stats func(c int) dataset.Stats) error {
	return writeParquet(w, writerProps(), dataset.StatsSchema(), meta, n, perGroup, func(b *array.RecordBuilder, c0, c1 int) error {
		bounds := b.Field(9).(*array.ListBuilder)
		boundv := bounds.ValueBuilder().(*array.Float32Builder)
		hist := b.Field(10).(*array.ListBuilder)
		histv := hist.ValueBuilder().(*array.Int64Builder)
		for c := c0; c < c1; c++ {
			s := stats(c)
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

// WriteViews writes a layer from finished component views (views[c] is
// component c; an importer's path, where no accumulator exists): the same
// records.parquet, stats.parquet and index.parquet as WriteLayer.
func WriteViews(ctx context.Context, st store.Store, name, location string, layer int, pairs bool, views []*dataset.ComponentView, componentsPerRowGroup int) error {
	if err := dataset.CheckName("dataset", name); err != nil {
		return err
	}
	if err := dataset.CheckName("location", location); err != nil {
		return err
	}
	if componentsPerRowGroup <= 0 {
		componentsPerRowGroup = DefaultComponentsPerRowGroup
	}
	meta := layerMeta(location, layer, len(views), componentsPerRowGroup, pairs)
	view := func(c int) (*dataset.ComponentView, error) {
		if views[c] == nil || views[c].Index != c {
			return nil, fmt.Errorf("collate: view %d of %s layer %d is missing or has another index", c, location, layer)
		}
		return views[c], nil
	}
	var index []dataset.IndexRow
	for _, f := range []struct {
		key   string
		write func(io.Writer) error
	}{
		{dataset.RecordsKey(name, location, layer), func(w io.Writer) error {
			return writeRecordsOf(w, meta, len(views), componentsPerRowGroup, view, func(v *dataset.ComponentView) {
				vv := *v
				vv.Pairs = pairs
				index = append(index, dataset.IndexRowsOf(&vv)...)
			})
		}},
		{dataset.StatsKey(name, location, layer), func(w io.Writer) error {
			return writeStatsOf(w, meta, len(views), componentsPerRowGroup, func(c int) dataset.Stats { return views[c].Stats })
		}},
	} {
		if err := putStreaming(ctx, st, f.key, f.write); err != nil {
			return fmt.Errorf("collate: writing %s to %s: %w", f.key, st, err)
		}
	}
	return dataset.WriteIndex(ctx, st, dataset.IndexKey(name, location, layer), index)
}
