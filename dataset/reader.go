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

// CheckComponent reports whether the manifest has the location, layer and
// component; the error wraps store.ErrNotFound and says what exists.
func CheckComponent(m *Manifest, location string, layer, index int) error {
	loc, ok := m.Location(location)
	if !ok {
		var names []string
		for _, l := range m.Locations {
			names = append(names, l.Name)
		}
		return fmt.Errorf("dataset %s has no location %q (it has %v): %w", m.Name, location, names, store.ErrNotFound)
	}
	if !slices.Contains(loc.Layers, layer) {
		return fmt.Errorf("dataset %s has no layer %d of %s (it has %v): %w", m.Name, layer, location, loc.Layers, store.ErrNotFound)
	}
	if index < 0 || index >= loc.Components {
		return fmt.Errorf("dataset %s: %s has components 0..%d, not %d: %w", m.Name, location, loc.Components-1, index, store.ErrNotFound)
	}
	return nil
}

// ReadComponentFrom is ReadComponent with a manifest the caller already read
// (the query service caches manifests).
func ReadComponentFrom(ctx context.Context, st store.Store, m *Manifest, location string, layer, index int) (*ComponentView, error) {
	if err := CheckComponent(m, location, layer, index); err != nil {
		return nil, err
	}
	loc, _ := m.Location(location)
	v := &ComponentView{Location: location, Layer: layer, Index: index, Pairs: loc.Pairs}
	rf, err := OpenFile(ctx, st, RecordsKey(m.Name, location, layer))
	if err != nil {
		return nil, err
	}
	r, err := rf.ReadComponentRecords(ctx, st, index)
	if err != nil {
		return nil, err
	}
	v.Top, v.Random, v.Quantiles = r.Top, r.Random, r.Quantiles
	sf, err := OpenFile(ctx, st, StatsKey(m.Name, location, layer))
	if err != nil {
		return nil, err
	}
	found := false
	for _, g := range sf.Groups(index) {
		stats, err := sf.ReadStats(ctx, st, g)
		if err != nil {
			return nil, err
		}
		if s, ok := stats[index]; ok {
			v.Stats, found = s, true
		}
	}
	if !found {
		return nil, fmt.Errorf("dataset: %s has no statistics row for component %d", sf.Key, index)
	}
	v.padQuantiles()
	return v, nil
}

// padQuantiles makes Quantiles as long as the statistics' buckets.
func (v *ComponentView) padQuantiles() {
	if n := len(v.Stats.QuantileBoundaries) - 1; n > 0 {
		for len(v.Quantiles) < n {
			v.Quantiles = append(v.Quantiles, nil)
		}
	}
}

// File is an opened layer file: its key, size and footer. It is immutable
// once opened and safe to share (readers cache it: a dataset never changes
// once its manifest exists).
type File struct {
	Key  string
	Size int64
	Meta *metadata.FileMetaData
	// ranges are the row groups' component ranges, decoded once from the
	// statistics (nil: decoded at each call).
	ranges []componentRange
	// offsetIndexes are the bytes of every row group's offset indexes
	// from offset offsetIndexesAt (read on open in a page-indexed file),
	// so that reading a component by page needs no request for them.
	offsetIndexes   []byte
	offsetIndexesAt int64
}

// componentRange is a row group's range of components [lo, hi]; ok is
// false without statistics.
type componentRange struct {
	lo, hi int
	ok     bool
}

// OpenFile reads a Parquet file's footer with ranged reads (one size
// request, usually one read of the file's tail).
func OpenFile(ctx context.Context, st store.Store, key string) (f *File, err error) {
	defer recoverCorrupt(key, &err)
	ra, err := openBlob(ctx, st, key)
	if err != nil {
		return nil, err
	}
	pf, err := file.NewParquetReader(ra)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w: opening %s: %w", ErrCorrupt, key, err)
	}
	defer pf.Close()
	md := pf.MetaData()
	if md.Schema.NumColumns() == 0 || md.Schema.Column(0).Name() != ColComponent {
		return nil, fmt.Errorf("dataset: %w: %s: first column is not %q", ErrCorrupt, key, ColComponent)
	}
	f = &File{Key: key, Size: ra.Size(), Meta: md, ranges: componentRanges(md)}
	var rgs []*metadata.RowGroupMetaData
	for g := range md.NumRowGroups() {
		rgs = append(rgs, md.RowGroup(g))
	}
	if off, n := offsetIndexSpan(rgs...); n > 0 && n <= maxOffsetIndexBytes && off+n <= f.Size {
		// Written together just before the footer: one read.
		buf := make([]byte, n)
		if _, err := ra.ReadAt(buf, off); err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		f.offsetIndexes, f.offsetIndexesAt = buf, off
	}
	return f, nil
}

// maxOffsetIndexBytes bounds the offset indexes a File keeps (a
// records.parquet of 48 row groups has 68 KB).
const maxOffsetIndexBytes = 8 << 20

// ErrCorrupt is wrapped by errors about files that cannot be decoded
// (truncated, corrupted or of an unexpected schema).
var ErrCorrupt = errors.New("corrupt dataset file")

// recoverCorrupt turns a panic of the Parquet decoder on a damaged file into
// an error naming the file.
func recoverCorrupt(key string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("dataset: %w: %s: %v", ErrCorrupt, key, r)
	}
}

// NumGroups is the number of row groups.
func (f *File) NumGroups() int { return f.Meta.NumRowGroups() }

// GroupBytes is the compressed size of row group g.
func (f *File) GroupBytes(g int) int64 { return f.Meta.RowGroup(g).TotalCompressedSize() }

// Groups returns the row groups that may hold component index (pruned by
// the component column's min/max statistics).
func (f *File) Groups(index int) []int {
	if len(f.ranges) != f.NumGroups() {
		return componentGroups(f.Meta, index)
	}
	return groupsHolding(f.Meta, f.ranges, index)
}

// readGroup calls row for every row of row group g (g < 0: every row
// group, fetched with one ranged read).
func (f *File) readGroup(ctx context.Context, st store.Store, g int, row func(rec arrow.RecordBatch, i int) error) (err error) {
	defer recoverCorrupt(f.Key, &err)
	if g >= f.NumGroups() {
		return fmt.Errorf("dataset: %s has no row group %d", f.Key, g)
	}
	ra := store.NewReaderSize(ctx, st, f.Key, f.Size)
	groups := []int{g}
	if g < 0 {
		groups = groups[:0]
		for i := range f.NumGroups() {
			groups = append(groups, i)
		}
		if err := ra.Prefetch(0, f.Size); err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
	} else if err := prefetchColumns(ra, f.Meta.RowGroup(g), nil); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	pf, err := file.NewParquetReader(ra, file.WithMetadata(f.Meta))
	if err != nil {
		return fmt.Errorf("dataset: %w: opening %s: %w", ErrCorrupt, f.Key, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("dataset: %w: opening %s: %w", ErrCorrupt, f.Key, err)
	}
	cols := make([]int, f.Meta.Schema.NumColumns())
	for i := range cols {
		cols[i] = i
	}
	tbl, err := fr.ReadRowGroups(ctx, cols, groups)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("dataset: %w: reading %s row group %d: %w", ErrCorrupt, f.Key, g, err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 1<<16)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		if _, ok := rec.Column(0).(*array.Int32); !ok || rec.Schema().Field(0).Name != ColComponent {
			return fmt.Errorf("dataset: %w: %s: first column is not the int32 component", ErrCorrupt, f.Key)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if err := row(rec, i); err != nil {
				return fmt.Errorf("dataset: %w: %s row group %d: %w", ErrCorrupt, f.Key, g, err)
			}
		}
	}
	return tr.Err()
}

// ReadRecords decodes row group g of a records file: the records of every
// component in it (Location, Layer and Stats are left empty).
func (f *File) ReadRecords(ctx context.Context, st store.Store, g int) (map[int]*ComponentView, error) {
	out := map[int]*ComponentView{}
	var cols recordCols
	err := f.readGroup(ctx, st, g, func(rec arrow.RecordBatch, i int) error {
		c := int(rec.Column(0).(*array.Int32).Value(i))
		v := out[c]
		if v == nil {
			v = &ComponentView{Index: c}
			out[c] = v
		}
		return v.addRow(&cols, rec, i)
	})
	return out, err
}

// ReadStats decodes row group g of a stats file (g < 0: the whole file, in
// one ranged read).
func (f *File) ReadStats(ctx context.Context, st store.Store, g int) (map[int]Stats, error) {
	out := map[int]Stats{}
	err := f.readGroup(ctx, st, g, func(rec arrow.RecordBatch, i int) error {
		var v ComponentView
		if err := v.setStatsRow(rec, i); err != nil {
			return err
		}
		out[int(rec.Column(0).(*array.Int32).Value(i))] = v.Stats
		return nil
	})
	return out, err
}

// componentGroups returns the row groups whose component statistics may
// hold index; without statistics, the group the layout metadata names.
func componentGroups(md *metadata.FileMetaData, index int) []int {
	return groupsHolding(md, componentRanges(md), index)
}

// componentRanges decodes the component range of every row group.
func componentRanges(md *metadata.FileMetaData) []componentRange {
	out := make([]componentRange, md.NumRowGroups())
	for g := range out {
		if s, ok := int32Range(md, g, 0); ok {
			out[g] = componentRange{int(s.Min()), int(s.Max()), true}
		}
	}
	return out
}

// groupsHolding returns the row groups whose range holds index.
func groupsHolding(md *metadata.FileMetaData, ranges []componentRange, index int) []int {
	var out []int
	for g, r := range ranges {
		if !r.ok {
			return layoutGroup(md, index)
		}
		if r.lo <= index && index <= r.hi {
			out = append(out, g)
		}
	}
	return out
}

// int32Range returns the min/max statistics of int32 column col in row
// group g.
func int32Range(md *metadata.FileMetaData, g, col int) (*metadata.Int32Statistics, bool) {
	rg := md.RowGroup(g)
	if rg.NumColumns() <= col {
		return nil, false
	}
	cc, err := rg.ColumnChunk(col)
	if err != nil {
		return nil, false
	}
	stats, err := cc.Statistics()
	s, ok := stats.(*metadata.Int32Statistics)
	if err != nil || !ok || !s.HasMinMax() {
		return nil, false
	}
	return s, true
}

// groupMayHold reports whether row group g's int32 column col may hold v
// (true without statistics).
func groupMayHold(md *metadata.FileMetaData, g, col, v int) bool {
	s, ok := int32Range(md, g, col)
	return !ok || (int(s.Min()) <= v && v <= int(s.Max()))
}

func parquetReader(r *store.Reader) (*file.Reader, error) { return file.NewParquetReader(r) }

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

// recordCols are the typed columns of one records batch.
type recordCols struct {
	rec        arrow.RecordBatch
	kind       *array.String
	rank       *array.Int32
	bucket     *array.Int8
	mx         *array.Float32
	doc, off   *array.Int64
	toks, acts *array.List
	tv         *array.Int32
	av         *array.Float32
	// tvals and avals copy the batch's list values once (records
	// sub-slice them: two allocations per batch, not two per record).
	tvals []int32
	avals []float32
	// The sparse layout (SparseRecordsSchema): acts lists the positions
	// (pvals), vals the values (avals).
	sparse bool
	vals   *array.List
	pvals  []int32
}

// resolve looks rec's columns up once per batch.
func (c *recordCols) resolve(rec arrow.RecordBatch) error {
	if c.rec == rec {
		return nil
	}
	c.sparse = len(rec.Schema().FieldIndices(ColActivationPositions)) > 0
	names := []string{ColKind, ColRank, ColBucket, ColMaxActivation, ColDoc, ColOffset, ColTokens, ColActivations}
	if c.sparse {
		names = append(names[:7], ColActivationPositions, ColActivationValues)
	}
	cols, err := columns(rec, names...)
	if err != nil {
		return err
	}
	var ok [9]bool
	c.kind, ok[0] = cols[0].(*array.String)
	c.rank, ok[1] = cols[1].(*array.Int32)
	c.bucket, ok[2] = cols[2].(*array.Int8)
	c.mx, ok[3] = cols[3].(*array.Float32)
	c.doc, ok[4] = cols[4].(*array.Int64)
	c.off, ok[5] = cols[5].(*array.Int64)
	c.toks, ok[6] = cols[6].(*array.List)
	c.acts, ok[7] = cols[7].(*array.List)
	ok[8] = true
	if c.sparse {
		c.vals, ok[8] = cols[8].(*array.List)
	}
	if slices.Contains(ok[:], false) {
		return errors.New("unexpected column types")
	}
	// The dense activations, or the sparse values with their positions.
	values, pos := c.acts, (*array.List)(nil)
	if c.sparse {
		values, pos = c.vals, c.acts
	}
	var okT, okA, okP bool
	c.tv, okT = c.toks.ListValues().(*array.Int32)
	c.av, okA = values.ListValues().(*array.Float32)
	var pv *array.Int32
	if okP = !c.sparse; c.sparse {
		pv, okP = pos.ListValues().(*array.Int32)
	}
	if !okT || !okA || !okP {
		return errors.New("unexpected list types")
	}
	c.tvals, c.avals = slices.Clone(c.tv.Int32Values()), slices.Clone(c.av.Float32Values())
	if pv != nil {
		c.pvals = pv.Int32Values()
	}
	c.rec = rec
	return nil
}

// addRow files row i of a records batch.
func (v *ComponentView) addRow(c *recordCols, rec arrow.RecordBatch, i int) error {
	if err := c.resolve(rec); err != nil {
		return err
	}
	kind, rank, bucket, mx, doc, off, toks, acts := c.kind, c.rank, c.bucket, c.mx, c.doc, c.off, c.toks, c.acts
	t0, t1 := toks.ValueOffsets(i)
	a0, a1 := acts.ValueOffsets(i)
	r := Record{
		Source:        Source{Doc: doc.Value(i), Offset: off.Value(i)},
		MaxActivation: mx.Value(i),
		Tokens:        c.tvals[t0:t1:t1],
	}
	if c.sparse {
		v0, v1 := c.vals.ValueOffsets(i)
		dense, err := DenseActivations(c.pvals[a0:a1], c.avals[v0:v1], int(t1-t0))
		if err != nil {
			return err
		}
		r.Activations = dense
	} else {
		r.Activations = c.avals[a0:a1:a1]
	}
	return v.addRecord(kind.Value(i), int(rank.Value(i)), int(bucket.Value(i)), r)
}

// addRecord files record r of a kind ("top", "random", "quantile") at its
// rank (records come in rank order) and, for quantile records, bucket.
func (v *ComponentView) addRecord(kind string, rank, bucket int, r Record) error {
	place := func(list *[]Record) error {
		if rank != len(*list) {
			return fmt.Errorf("%s record rank %d out of order", kind, rank)
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
		if bucket < 0 || bucket >= MaxQuantileBuckets {
			return fmt.Errorf("quantile bucket %d out of range", bucket)
		}
		for len(v.Quantiles) <= bucket {
			v.Quantiles = append(v.Quantiles, nil)
		}
		v.Quantiles[bucket] = append(v.Quantiles[bucket], r)
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
