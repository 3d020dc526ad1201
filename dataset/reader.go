package dataset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"tdb/store"
)

// ReadComponent reads one component of a dataset: its top records (best
// first), random sample, quantile samples and statistics. It reads the
// manifest (a dataset without one does not exist) and then only the row
// group holding the component from each of the layer's two files.
func ReadComponent(ctx context.Context, st store.Store, dataset, location string, layer, index int) (*ComponentView, error) {
	m, err := ReadManifest(ctx, st, dataset)
	if err != nil {
		return nil, err
	}
	return ReadComponentFrom(ctx, st, m, location, layer, index)
}

// ReadComponentFrom is ReadComponent with a manifest the caller already read
// (the query service caches manifests).
func ReadComponentFrom(ctx context.Context, st store.Store, m *Manifest, location string, layer, index int) (*ComponentView, error) {
	loc, ok := m.Location(location)
	if !ok {
		var names []string
		for _, l := range m.Locations {
			names = append(names, l.Name)
		}
		return nil, fmt.Errorf("dataset: dataset %s has no location %q (it has %v): %w", m.Name, location, names, store.ErrNotFound)
	}
	if !slices.Contains(loc.Layers, layer) {
		return nil, fmt.Errorf("dataset: dataset %s has no layer %d of %s (it has %v): %w", m.Name, layer, location, loc.Layers, store.ErrNotFound)
	}
	if index < 0 || index >= loc.Components {
		return nil, fmt.Errorf("dataset: dataset %s: %s has components 0..%d, not %d: %w", m.Name, location, loc.Components-1, index, store.ErrNotFound)
	}
	v := &ComponentView{Location: location, Layer: layer, Index: index, Pairs: loc.Pairs}
	if err := readComponentRows(ctx, st, RecordsKey(m.Name, location, layer), index, func(rec arrow.RecordBatch, i int) error {
		return v.addRecordRow(rec, i)
	}); err != nil {
		return nil, err
	}
	found := false
	if err := readComponentRows(ctx, st, StatsKey(m.Name, location, layer), index, func(rec arrow.RecordBatch, i int) error {
		found = true
		return v.setStatsRow(rec, i)
	}); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("dataset: %s has no statistics row for component %d", StatsKey(m.Name, location, layer), index)
	}
	return v, nil
}

// readComponentRows calls row for every row of component index in the
// Parquet file key, reading only the row group(s) that can hold it.
func readComponentRows(ctx context.Context, st store.Store, key string, index int, row func(rec arrow.RecordBatch, i int) error) error {
	ra, err := openBlob(ctx, st, key)
	if err != nil {
		return err
	}
	pf, err := file.NewParquetReader(ra)
	if err != nil {
		return fmt.Errorf("dataset: opening %s: %w", key, err)
	}
	defer pf.Close()
	groups := componentGroups(pf.MetaData(), index)
	if len(groups) == 0 {
		return nil
	}
	for _, g := range groups {
		if err := prefetchRowGroup(ra, pf.MetaData().RowGroup(g)); err != nil {
			return fmt.Errorf("dataset: reading %s: %w", key, err)
		}
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("dataset: opening %s: %w", key, err)
	}
	cols := make([]int, pf.MetaData().Schema.NumColumns())
	for i := range cols {
		cols[i] = i
	}
	tbl, err := fr.ReadRowGroups(ctx, cols, groups)
	if err != nil {
		return fmt.Errorf("dataset: reading %s: %w", key, err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 1<<16)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		comp, ok := rec.Column(0).(*array.Int32)
		if !ok || rec.Schema().Field(0).Name != ColComponent {
			return fmt.Errorf("dataset: %s: first column is not the int32 component", key)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if int(comp.Value(i)) != index {
				continue
			}
			if err := row(rec, i); err != nil {
				return fmt.Errorf("dataset: %s row of component %d: %w", key, index, err)
			}
		}
	}
	return tr.Err()
}

// componentGroups returns the row groups whose component statistics may
// hold index; without statistics, the group the layout metadata names.
func componentGroups(md *metadata.FileMetaData, index int) []int {
	var out []int
	for g := 0; g < md.NumRowGroups(); g++ {
		rg := md.RowGroup(g)
		if rg.NumColumns() == 0 {
			continue
		}
		cc, err := rg.ColumnChunk(0)
		if err != nil {
			return layoutGroup(md, index)
		}
		stats, err := cc.Statistics()
		s, ok := stats.(*metadata.Int32Statistics)
		if err != nil || !ok || !s.HasMinMax() {
			return layoutGroup(md, index)
		}
		if int(s.Min()) <= index && index <= int(s.Max()) {
			out = append(out, g)
		}
	}
	return out
}

func layoutGroup(md *metadata.FileMetaData, index int) []int {
	per, err := -1, error(nil)
	if v := md.KeyValueMetadata().FindValue(MetaPerRowGroup); v != nil {
		per, err = strconv.Atoi(*v)
	}
	g := index / max(per, 1)
	if err != nil || per <= 0 || g >= md.NumRowGroups() {
		all := make([]int, md.NumRowGroups())
		for i := range all {
			all[i] = i
		}
		return all
	}
	return []int{g}
}

func (v *ComponentView) addRecordRow(rec arrow.RecordBatch, i int) error {
	if len(rec.Schema().FieldIndices(ColActivationPositions)) > 0 {
		return v.addSparseRecordRow(rec, i)
	}
	cols, err := columns(rec, ColKind, ColRank, ColBucket, ColMaxActivation, ColDoc, ColOffset, ColTokens, ColActivations)
	if err != nil {
		return err
	}
	kind, ok1 := cols[0].(*array.String)
	rank, ok2 := cols[1].(*array.Int32)
	bucket, ok3 := cols[2].(*array.Int8)
	mx, ok4 := cols[3].(*array.Float32)
	doc, ok5 := cols[4].(*array.Int64)
	off, ok6 := cols[5].(*array.Int64)
	toks, ok7 := cols[6].(*array.List)
	acts, ok8 := cols[7].(*array.List)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8) {
		return errors.New("unexpected column types")
	}
	tv, ok9 := toks.ListValues().(*array.Int32)
	av, ok10 := acts.ListValues().(*array.Float32)
	if !ok9 || !ok10 {
		return errors.New("unexpected list types")
	}
	t0, t1 := toks.ValueOffsets(i)
	a0, a1 := acts.ValueOffsets(i)
	r := Record{
		Source:        Source{Doc: doc.Value(i), Offset: off.Value(i)},
		MaxActivation: mx.Value(i),
		Tokens:        slices.Clone(tv.Int32Values()[t0:t1]),
		Activations:   slices.Clone(av.Float32Values()[a0:a1]),
	}
	return v.placeRecord(kind.Value(i), int(rank.Value(i)), int(bucket.Value(i)), r)
}

// addSparseRecordRow reads row i of a records.parquet in the sparse layout
// (SparseRecordsSchema): per-token records of as many activations as
// tokens, given by their nonzero positions and values.
func (v *ComponentView) addSparseRecordRow(rec arrow.RecordBatch, i int) error {
	cols, err := columns(rec, ColKind, ColRank, ColBucket, ColMaxActivation, ColDoc, ColOffset, ColTokens, ColActivationPositions, ColActivationValues)
	if err != nil {
		return err
	}
	kind, ok1 := cols[0].(*array.String)
	rank, ok2 := cols[1].(*array.Int32)
	bucket, ok3 := cols[2].(*array.Int8)
	mx, ok4 := cols[3].(*array.Float32)
	doc, ok5 := cols[4].(*array.Int64)
	off, ok6 := cols[5].(*array.Int64)
	toks, ok7 := cols[6].(*array.List)
	pos, ok8 := cols[7].(*array.List)
	vals, ok9 := cols[8].(*array.List)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8 && ok9) {
		return errors.New("unexpected column types")
	}
	tv, ok10 := toks.ListValues().(*array.Int32)
	pv, ok11 := pos.ListValues().(*array.Int32)
	vv, ok12 := vals.ListValues().(*array.Float32)
	if !ok10 || !ok11 || !ok12 {
		return errors.New("unexpected list types")
	}
	t0, t1 := toks.ValueOffsets(i)
	p0, p1 := pos.ValueOffsets(i)
	v0, v1 := vals.ValueOffsets(i)
	acts, err := DenseActivations(pv.Int32Values()[p0:p1], vv.Float32Values()[v0:v1], int(t1-t0))
	if err != nil {
		return err
	}
	r := Record{
		Source:        Source{Doc: doc.Value(i), Offset: off.Value(i)},
		MaxActivation: mx.Value(i),
		Tokens:        slices.Clone(tv.Int32Values()[t0:t1]),
		Activations:   acts,
	}
	return v.placeRecord(kind.Value(i), int(rank.Value(i)), int(bucket.Value(i)), r)
}

// placeRecord puts a record read from a row in its list.
func (v *ComponentView) placeRecord(kind string, rk, b int, r Record) error {
	place := func(list *[]Record) error {
		if rk != len(*list) {
			return fmt.Errorf("%s record rank %d out of order", kind, rk)
		}
		*list = append(*list, r)
		return nil
	}
	switch kind {
	case KindTop:
		return place(&v.Top)
	case KindRandom:
		return place(&v.Random)
	case KindQuantile:
		if b < 0 || b >= MaxQuantileBuckets {
			return fmt.Errorf("quantile bucket %d out of range", b)
		}
		for len(v.Quantiles) <= b {
			v.Quantiles = append(v.Quantiles, nil)
		}
		v.Quantiles[b] = append(v.Quantiles[b], r)
		return nil
	}
	return fmt.Errorf("unknown record kind %q", kind)
}

func (v *ComponentView) setStatsRow(rec arrow.RecordBatch, i int) error {
	names := []string{ColCount, ColMean, ColVariance, ColSkewness, ColKurtosis, ColMax, ColMin, ColFracNonzero, ColQuantileBoundaries, ColHistogram}
	cols, err := columns(rec, names...)
	if err != nil {
		return err
	}
	f64 := func(j int) (float64, bool) {
		a, ok := cols[j].(*array.Float64)
		if !ok {
			return 0, false
		}
		return a.Value(i), true
	}
	count, ok := cols[0].(*array.Int64)
	if !ok {
		return errors.New("count is not int64")
	}
	s := &v.Stats
	s.Count = count.Value(i)
	for j, dst := range map[int]*float64{1: &s.Mean, 2: &s.Variance, 3: &s.Skewness, 4: &s.Kurtosis, 7: &s.FracNonzero} {
		if *dst, ok = f64(j); !ok {
			return fmt.Errorf("%s is not float64", names[j])
		}
	}
	mx, ok1 := cols[5].(*array.Float32)
	mn, ok2 := cols[6].(*array.Float32)
	qb, ok3 := cols[8].(*array.List)
	hist, ok4 := cols[9].(*array.List)
	if !(ok1 && ok2 && ok3 && ok4) {
		return errors.New("unexpected column types")
	}
	qv, ok5 := qb.ListValues().(*array.Float32)
	hv, ok6 := hist.ListValues().(*array.Int64)
	if !ok5 || !ok6 {
		return errors.New("unexpected list types")
	}
	s.Max, s.Min = mx.Value(i), mn.Value(i)
	q0, q1 := qb.ValueOffsets(i)
	s.QuantileBoundaries = slices.Clone(qv.Float32Values()[q0:q1])
	h0, h1 := hist.ValueOffsets(i)
	s.Histogram = slices.Clone(hv.Int64Values()[h0:h1])
	if n := len(s.QuantileBoundaries) - 1; n > 0 {
		for len(v.Quantiles) < n {
			v.Quantiles = append(v.Quantiles, nil)
		}
	}
	return nil
}

// columns finds the named columns of rec.
func columns(rec arrow.RecordBatch, names ...string) ([]arrow.Array, error) {
	out := make([]arrow.Array, len(names))
	for j, n := range names {
		idx := rec.Schema().FieldIndices(n)
		if len(idx) != 1 {
			return nil, fmt.Errorf("missing column %q", n)
		}
		out[j] = rec.Column(idx[0])
	}
	return out, nil
}

// tailBytes is prefetched on open: enough for a typical footer.
const tailBytes = 16 << 10

// openBlob opens a Parquet blob for ranged reads with its footer prefetched,
// so that reading one component costs a handful of requests, not one per
// column page.
func openBlob(ctx context.Context, st store.Store, key string) (*store.Reader, error) {
	r, err := store.NewReader(ctx, st, key)
	if err != nil {
		return nil, fmt.Errorf("dataset: %s in %s: %w", key, st, err)
	}
	size := r.Size()
	if err := r.Prefetch(max(0, size-tailBytes), min(size, tailBytes)); err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	return r, nil
}

// prefetchRowGroup reads the byte range of every column chunk of rg at once.
func prefetchRowGroup(r *store.Reader, rg *metadata.RowGroupMetaData) error {
	lo, hi := int64(-1), int64(0)
	for c := 0; c < rg.NumColumns(); c++ {
		cc, err := rg.ColumnChunk(c)
		if err != nil {
			return err
		}
		start := cc.DataPageOffset()
		if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 {
			start = min(start, cc.DictionaryPageOffset())
		}
		if lo < 0 || start < lo {
			lo = start
		}
		hi = max(hi, start+cc.TotalCompressedSize())
	}
	if lo < 0 || hi > r.Size() || lo >= hi {
		return nil // let the reader fetch (and report) by itself
	}
	return r.Prefetch(lo, hi-lo)
}
