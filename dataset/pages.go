package dataset

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"

	"tdb/store"
)

// Reading one component by page. A row group holds the records of many
// components (ComponentsPerRowGroup), and decoding its token and activation
// lists is most of the cost of a first read: a records.parquet written
// with small data pages and a page index (offset index; collate writes
// them) lets a reader decode only the pages that hold one component's rows.
// The columns with one value per record are small and read whole; the list
// columns from the page that holds the component's first row to the page
// that holds the next component's first row. Files without a page index
// (written before it) are read a row group at a time.

// ReadComponentRecords reads the records of one component (Location, Layer
// and Stats left empty; no records when the file has none): from a file
// with a page index only the pages that hold them, from an older file the
// whole row group.
func (f *File) ReadComponentRecords(ctx context.Context, st store.Store, index int) (*ComponentView, error) {
	for _, g := range f.Groups(index) {
		var v *ComponentView
		var err error
		if f.PageIndexed(g) {
			v, err = f.readComponentPages(ctx, st, g, index)
		} else {
			var views map[int]*ComponentView
			views, err = f.ReadRecords(ctx, st, g)
			v = views[index]
		}
		if err != nil {
			return nil, err
		}
		if v != nil {
			return v, nil
		}
	}
	return &ComponentView{Index: index}, nil
}

// PageIndexed reports whether row group g can be read by page: every
// column has an offset index and no list column a dictionary (collate
// writes them so; ReadComponentRecords reads other row groups whole).
func (f *File) PageIndexed(g int) bool {
	rg := f.Meta.RowGroup(g)
	for c := range rg.NumColumns() {
		if _, ok := rg.OffsetIndexLocation(c); !ok {
			return false
		}
		cc, err := rg.ColumnChunk(c)
		if err != nil || (cc.HasDictionaryPage() && f.Meta.Schema.Column(c).MaxRepetitionLevel() > 0) {
			return false
		}
	}
	return rg.NumColumns() > 0
}

// pageReadProps read column chunks through a small buffer (not whole):
// with a seek to a page, only that page's bytes are read.
var pageReadProps = func() *parquet.ReaderProperties {
	p := parquet.NewReaderProperties(memory.DefaultAllocator)
	p.BufferedStreamEnabled = true
	return p
}()

// readComponentPages reads component index from page-indexed row group g
// (nil when the group does not hold it) in a ranged read each for the
// group's columns with one value per record and the component's pages of
// each list column (and its offset indexes, unless OpenFile kept them).
func (f *File) readComponentPages(ctx context.Context, st store.Store, g, index int) (v *ComponentView, err error) {
	defer recoverCorrupt(f.Key, &err)
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("dataset: %w: %s row group %d: %s", ErrCorrupt, f.Key, g, fmt.Sprintf(format, a...))
	}
	rg := f.Meta.RowGroup(g)
	cols, err := recordLeaves(f.Meta)
	if err != nil {
		return nil, corrupt("%v", err)
	}
	ra := store.NewReaderSize(ctx, st, f.Key, f.Size)
	var src parquet.ReaderAtSeeker = ra
	if f.offsetIndexes != nil {
		src = withBytes{ra, f.offsetIndexesAt, f.offsetIndexes}
	} else if off, n := offsetIndexSpan(rg); n > 0 {
		if err := ra.Prefetch(off, n); err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
	}
	// The columns with one value per record come first in the row
	// group: one read for all.
	if err := prefetchColumns(ra, rg, cols.scalars()); err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	pf, err := file.NewParquetReader(src, file.WithMetadata(f.Meta), file.WithReadProps(pageReadProps))
	if err != nil {
		return nil, corrupt("%v", err)
	}
	defer pf.Close()
	rgr := pf.RowGroup(g)
	n := rg.NumRows()
	comp, err := readColumn[int32](rgr, cols.component, 0, n, nil)
	if err != nil {
		return nil, corrupt("%s: %v", ColComponent, err)
	}
	r0 := sort.Search(len(comp), func(i int) bool { return int(comp[i]) >= index })
	r1 := sort.Search(len(comp), func(i int) bool { return int(comp[i]) > index })
	if r0 == r1 {
		return nil, nil
	}
	if !sort.SliceIsSorted(comp, func(i, j int) bool { return comp[i] < comp[j] }) {
		return nil, corrupt("rows are not sorted by component")
	}
	rows, err := readScalarRows(rgr, cols, int64(r0), int64(r1))
	if err != nil {
		return nil, corrupt("%v", err)
	}
	pir := pf.GetPageIndexReader()
	rgi, err := pir.RowGroup(g)
	if err != nil || rgi == nil {
		return nil, corrupt("no page index: %v", err)
	}
	lists := cols.lists()
	values := make([]listRows, len(lists))
	for j, c := range lists {
		oi, err := rgi.GetOffsetIndex(c)
		if err != nil || oi == nil {
			return nil, corrupt("no offset index of column %d: %v", c, err)
		}
		if values[j], err = readListRows(ra, rgr, rg, c, oi.GetPageLocations(), int64(r0), int64(r1)); err != nil {
			return nil, corrupt("%s: %v", f.Meta.Schema.Column(c).Path(), err)
		}
	}
	v = &ComponentView{Index: index}
	for j := range r1 - r0 {
		r := Record{
			Source:        Source{Doc: rows.doc[j], Offset: rows.off[j]},
			MaxActivation: rows.max[j],
			Tokens:        values[0].int32s(j),
		}
		if cols.sparse {
			if r.Activations, err = DenseActivations(values[1].int32s(j), values[2].float32s(j), len(r.Tokens)); err != nil {
				return nil, corrupt("%v", err)
			}
		} else {
			r.Activations = values[1].float32s(j)
		}
		if err := v.addRecord(rows.kind[j], int(rows.rank[j]), int(rows.bucket[j]), r); err != nil {
			return nil, corrupt("%v", err)
		}
	}
	return v, nil
}

// scalarRows are rows [r0, r1) of the columns with one value per record.
type scalarRows struct {
	kind         []string
	rank, bucket []int32
	max          []float32
	doc, off     []int64
}

func readScalarRows(rgr *file.RowGroupReader, cols recordColumns, r0, r1 int64) (rows scalarRows, err error) {
	rows.kind = make([]string, 0, r1-r0)
	_, err = readColumn(rgr, cols.kind, r0, r1, func(b []parquet.ByteArray) {
		// Copied: the decoder reuses its buffers from page to page.
		for _, s := range b {
			rows.kind = append(rows.kind, string(s))
		}
	})
	if err == nil {
		if rows.rank, err = readColumn[int32](rgr, cols.rank, r0, r1, nil); err == nil {
			if rows.bucket, err = readColumn[int32](rgr, cols.bucket, r0, r1, nil); err == nil {
				if rows.max, err = readColumn[float32](rgr, cols.max, r0, r1, nil); err == nil {
					if rows.doc, err = readColumn[int64](rgr, cols.doc, r0, r1, nil); err == nil {
						rows.off, err = readColumn[int64](rgr, cols.off, r0, r1, nil)
					}
				}
			}
		}
	}
	return rows, err
}

// recordColumns are the leaf column indexes of a records file.
type recordColumns struct {
	component, kind, rank, bucket, max, doc, off int
	// tokens, then activations (dense) or activation positions and
	// values (sparse).
	tokens, acts, vals int
	sparse             bool
}

func (c recordColumns) scalars() []int {
	return []int{c.component, c.kind, c.rank, c.bucket, c.max, c.doc, c.off}
}

func (c recordColumns) lists() []int {
	if c.sparse {
		return []int{c.tokens, c.acts, c.vals}
	}
	return []int{c.tokens, c.acts}
}

// recordLeaves finds the leaf columns of a records file by name and checks
// their physical types.
func recordLeaves(md *metadata.FileMetaData) (recordColumns, error) {
	byName := map[string]int{}
	for i := range md.Schema.NumColumns() {
		byName[md.Schema.ColumnRoot(i).Name()] = i
	}
	var c recordColumns
	_, c.sparse = byName[ColActivationPositions]
	acts, vals := ColActivations, ""
	if c.sparse {
		acts, vals = ColActivationPositions, ColActivationValues
	}
	want := []struct {
		name string
		dst  *int
		typ  parquet.Type
		list bool
	}{
		{ColComponent, &c.component, parquet.Types.Int32, false},
		{ColKind, &c.kind, parquet.Types.ByteArray, false},
		{ColRank, &c.rank, parquet.Types.Int32, false},
		{ColBucket, &c.bucket, parquet.Types.Int32, false},
		{ColMaxActivation, &c.max, parquet.Types.Float, false},
		{ColDoc, &c.doc, parquet.Types.Int64, false},
		{ColOffset, &c.off, parquet.Types.Int64, false},
		{ColTokens, &c.tokens, parquet.Types.Int32, true},
		{acts, &c.acts, map[bool]parquet.Type{false: parquet.Types.Float, true: parquet.Types.Int32}[c.sparse], true},
		{vals, &c.vals, parquet.Types.Float, true},
	}
	for _, w := range want {
		if w.name == "" {
			continue
		}
		i, ok := byName[w.name]
		if !ok {
			return c, fmt.Errorf("missing column %q", w.name)
		}
		col := md.Schema.Column(i)
		if col.PhysicalType() != w.typ || (col.MaxRepetitionLevel() == 1) != w.list || col.MaxRepetitionLevel() > 1 {
			return c, fmt.Errorf("column %q has an unexpected type", w.name)
		}
		*w.dst = i
	}
	return c, nil
}

// offsetIndexSpan is the byte range [off, off+n) of the offset indexes of
// the row groups' columns (n = 0 without any).
func offsetIndexSpan(rgs ...*metadata.RowGroupMetaData) (off, n int64) {
	lo, hi := int64(-1), int64(0)
	for _, rg := range rgs {
		for c := range rg.NumColumns() {
			if l, ok := rg.OffsetIndexLocation(c); ok {
				if lo < 0 || l.Offset < lo {
					lo = l.Offset
				}
				hi = max(hi, l.Offset+int64(l.Length))
			}
		}
	}
	if lo < 0 || lo >= hi {
		return 0, 0
	}
	return lo, hi - lo
}

// withBytes serves reads inside [at, at+len(data)) from data, the others
// from the Reader.
type withBytes struct {
	*store.Reader
	at   int64
	data []byte
}

func (w withBytes) ReadAt(p []byte, off int64) (int, error) {
	if off >= w.at && off+int64(len(p)) <= w.at+int64(len(w.data)) {
		return copy(p, w.data[off-w.at:]), nil
	}
	return w.Reader.ReadAt(p, off)
}

// prefetchColumns reads the column chunks cols of rg (nil: all) at once,
// in one range from the first to the end of the last.
func prefetchColumns(r *store.Reader, rg *metadata.RowGroupMetaData, cols []int) error {
	off, n, err := chunksRange(rg, cols)
	if err != nil {
		return err
	}
	if n == 0 || off+n > r.Size() {
		return nil // let the reader fetch (and report) by itself
	}
	return r.Prefetch(off, n)
}

// RowGroupRange is the byte range [off, off+n) that holds every column
// chunk of rg (n = 0 when the metadata gives none): a reader fetches a row
// group in one ranged read, not one per page.
func RowGroupRange(rg *metadata.RowGroupMetaData) (off, n int64, err error) {
	return chunksRange(rg, nil)
}

// chunksRange is the byte range from the first to the end of the last of
// the column chunks cols of rg (nil: all).
func chunksRange(rg *metadata.RowGroupMetaData, cols []int) (off, n int64, err error) {
	lo, hi := int64(-1), int64(0)
	for c := range rg.NumColumns() {
		if cols != nil && !slices.Contains(cols, c) {
			continue
		}
		start, size, err := chunkRange(rg, c)
		if err != nil {
			return 0, 0, err
		}
		if lo < 0 || start < lo {
			lo = start
		}
		hi = max(hi, start+size)
	}
	if lo < 0 || lo >= hi {
		return 0, 0, nil
	}
	return lo, hi - lo, nil
}

// chunkRange is the byte range of column chunk c of rg (its dictionary
// page included).
func chunkRange(rg *metadata.RowGroupMetaData, c int) (start, size int64, err error) {
	cc, err := rg.ColumnChunk(c)
	if err != nil {
		return 0, 0, err
	}
	start = cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 {
		start = min(start, cc.DictionaryPageOffset())
	}
	return start, cc.TotalCompressedSize(), nil
}

// columnValue are the Go types of the physical column types read here.
type columnValue interface {
	int32 | int64 | float32 | parquet.ByteArray
}

// readColumn reads rows [from, to) of a required column with one value
// per row; keep (if not nil) is called on every batch as it is read.
func readColumn[T columnValue](rgr *file.RowGroupReader, c int, from, to int64, keep func([]T)) ([]T, error) {
	cr, err := rgr.Column(c)
	if err != nil {
		return nil, err
	}
	defer cr.Close()
	if from > 0 {
		sk, ok := cr.(interface{ Skip(int64) (int64, error) })
		if !ok {
			return nil, fmt.Errorf("unexpected column reader %T", cr)
		}
		if _, err := sk.Skip(from); err != nil {
			return nil, err
		}
	}
	n := to - from
	out := make([]T, n)
	read := 0
	for read < len(out) && cr.HasNext() {
		var got int64
		switch r := cr.(type) {
		case *file.Int32ColumnChunkReader:
			got, _, err = r.ReadBatch(n-int64(read), any(out[read:]).([]int32), nil, nil)
		case *file.Int64ColumnChunkReader:
			got, _, err = r.ReadBatch(n-int64(read), any(out[read:]).([]int64), nil, nil)
		case *file.Float32ColumnChunkReader:
			got, _, err = r.ReadBatch(n-int64(read), any(out[read:]).([]float32), nil, nil)
		case *file.ByteArrayColumnChunkReader:
			got, _, err = r.ReadBatch(n-int64(read), any(out[read:]).([]parquet.ByteArray), nil, nil)
		default:
			return nil, fmt.Errorf("unexpected column reader %T", cr)
		}
		if err != nil {
			return nil, err
		}
		if got == 0 {
			break
		}
		if keep != nil {
			keep(out[read : read+int(got)])
		}
		read += int(got)
	}
	if read != len(out) {
		return nil, fmt.Errorf("%d values for %d rows", read, len(out))
	}
	return out, nil
}

// listRows are the values of consecutive rows of a list column: row j is
// values[offsets[j]:offsets[j+1]], of one of the two types.
type listRows struct {
	offsets []int
	i32     []int32
	f32     []float32
}

func (l listRows) int32s(j int) []int32 {
	a, b := l.offsets[j], l.offsets[j+1]
	return l.i32[a:b:b]
}

func (l listRows) float32s(j int) []float32 {
	a, b := l.offsets[j], l.offsets[j+1]
	return l.f32[a:b:b]
}

// listBatch is the number of levels read at a time.
const listBatch = 4096

// readListRows reads rows [r0, r1) of list column c: it prefetches the
// pages from the one holding row r0 to the one holding row r1 (whose first
// level ends row r1-1), seeks to the first and decodes only those.
func readListRows(ra *store.Reader, rgr *file.RowGroupReader, rg *metadata.RowGroupMetaData, c int, pages []*metadata.PageLocation, r0, r1 int64) (listRows, error) {
	var out listRows
	pageOf := func(row int64) int {
		return sort.Search(len(pages), func(i int) bool { return pages[i].FirstRowIndex > row }) - 1
	}
	p0, p1 := pageOf(r0), pageOf(min(r1, rg.NumRows()-1))
	if p0 < 0 || p1 < p0 {
		return out, fmt.Errorf("offset index has no page for rows %d..%d", r0, r1)
	}
	start, size, err := chunkRange(rg, c)
	if err != nil {
		return out, err
	}
	// The column reader reads through a buffer of BufferSize bytes: take
	// as much after the last page (within the chunk) so that no read
	// leaves the prefetched range.
	lo := pages[p0].Offset
	hi := min(pages[p1].Offset+int64(pages[p1].CompressedPageSize)+pageReadProps.BufferSize, start+size)
	if err := ra.Prefetch(lo, hi-lo); err != nil {
		return out, err
	}
	cr, err := rgr.Column(c)
	if err != nil {
		return out, err
	}
	defer cr.Close()
	first := pages[p0].FirstRowIndex
	if err := cr.SeekToRow(first); err != nil {
		return out, err
	}
	maxDef := cr.Descriptor().MaxDefinitionLevel()
	defs, reps := make([]int16, listBatch), make([]int16, listBatch)
	var i32 []int32
	var f32 []float32
	switch cr.(type) {
	case *file.Int32ColumnChunkReader:
		i32 = make([]int32, listBatch)
	case *file.Float32ColumnChunkReader:
		f32 = make([]float32, listBatch)
	default:
		return out, fmt.Errorf("unexpected column reader %T", cr)
	}
	row := first - 1 // the row of the last level read
	for row < r1 && cr.HasNext() {
		var n int64
		switch r := cr.(type) {
		case *file.Int32ColumnChunkReader:
			n, _, err = r.ReadBatchInPage(listBatch, i32, defs, reps)
		case *file.Float32ColumnChunkReader:
			n, _, err = r.ReadBatchInPage(listBatch, f32, defs, reps)
		}
		if err != nil {
			return out, err
		}
		if n == 0 {
			break
		}
		if row == first-1 && reps[0] != 0 {
			// The offset index's rows are only right when pages start
			// at a record (arrow-go's writer aligns them).
			return out, fmt.Errorf("page at row %d does not start at a record", first)
		}
		v := 0
		for k := range n {
			if reps[k] == 0 {
				row++
				if row >= r1 {
					break
				}
				if row >= r0 {
					out.offsets = append(out.offsets, len(out.i32)+len(out.f32))
				}
			}
			if defs[k] == maxDef {
				if row >= r0 {
					if i32 != nil {
						out.i32 = append(out.i32, i32[v])
					} else {
						out.f32 = append(out.f32, f32[v])
					}
				}
				v++
			}
		}
	}
	// Row r1-1 ends where row r1 starts, or at the end of the chunk.
	if row < r1-1 || (row == r1-1 && r1 < rg.NumRows()) {
		return out, fmt.Errorf("rows %d..%d: the column ends at row %d", r0, r1, row)
	}
	out.offsets = append(out.offsets, len(out.i32)+len(out.f32))
	if int64(len(out.offsets)) != r1-r0+1 {
		return out, fmt.Errorf("rows %d..%d: read %d", r0, r1, len(out.offsets)-1)
	}
	return out, nil
}
