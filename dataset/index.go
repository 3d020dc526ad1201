package dataset

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"tdb/store"
)

// IndexKey is the store key of a layer's search index: one row per top
// record, sorted by the token at the record's maximum, so a search for one
// token reads only the row groups whose token range holds it.
func IndexKey(dataset, location string, layer int) string {
	return LayerPrefix(dataset, location, layer) + "index.parquet"
}

// IndexRow is one top record in the search index.
type IndexRow struct {
	// Token is the token id at the record's maximum activation (for pair
	// records: the query token of the maximum pair).
	Token         int32   `json:"token"`
	Component     int32   `json:"component"`
	Rank          int32   `json:"rank"`
	MaxActivation float32 `json:"max_activation"`
	// Position is the token position of the maximum within the record.
	Position int32   `json:"position"`
	Source   Source  `json:"source"`
	Tokens   []int32 `json:"tokens"`
}

var indexSchema = arrow.NewSchema([]arrow.Field{
	{Name: "token", Type: arrow.PrimitiveTypes.Int32},
	{Name: ColComponent, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColRank, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColMaxActivation, Type: arrow.PrimitiveTypes.Float32},
	{Name: "position", Type: arrow.PrimitiveTypes.Int32},
	{Name: ColDoc, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColOffset, Type: arrow.PrimitiveTypes.Int64},
	{Name: ColTokens, Type: arrow.ListOfNonNullable(arrow.PrimitiveTypes.Int32)},
}, nil)

// indexRowsPerGroup keeps index row groups small enough to prune by token.
const indexRowsPerGroup = 8192

// PeakPosition is the token position where a record's activation peaks:
// the first maximum; for pair records (lower triangle row by row) the query
// row of the maximum pair.
func PeakPosition(r *Record, pairs bool) int {
	peak := 0
	for i, a := range r.Activations {
		if a > r.Activations[peak] {
			peak = i
		}
	}
	if pairs {
		row := 0
		for (row+1)*(row+2)/2 <= peak {
			row++
		}
		peak = row
	}
	return min(peak, max(len(r.Tokens)-1, 0))
}

// IndexRowsOf returns the index rows of a component's top records.
func IndexRowsOf(v *ComponentView) []IndexRow {
	out := make([]IndexRow, 0, len(v.Top))
	for i := range v.Top {
		r := &v.Top[i]
		if len(r.Tokens) == 0 {
			continue
		}
		p := PeakPosition(r, v.Pairs)
		out = append(out, IndexRow{Token: r.Tokens[p], Component: int32(v.Index), Rank: int32(i),
			MaxActivation: r.MaxActivation, Position: int32(p), Source: r.Source, Tokens: r.Tokens})
	}
	return out
}

// BuildIndex writes the search index of one layer of a dataset from its
// records.parquet, one row group at a time. The collation calls it after
// writing a layer (before the manifest); the query service keeps the same
// rows (IndexRowsOfFile) in memory for datasets written before indexes
// existed.
func BuildIndex(ctx context.Context, st store.Store, dataset, location string, layer int, pairs bool) error {
	rf, err := OpenFile(ctx, st, RecordsKey(dataset, location, layer))
	if err != nil {
		return err
	}
	rows, err := IndexRowsOfFile(ctx, st, rf, pairs)
	if err != nil {
		return err
	}
	return WriteIndex(ctx, st, IndexKey(dataset, location, layer), rows)
}

// IndexRowsOfFile returns the index rows of every component of a records
// file (read a row group at a time), sorted as index.parquet is.
func IndexRowsOfFile(ctx context.Context, st store.Store, rf *File, pairs bool) ([]IndexRow, error) {
	var rows []IndexRow
	for g := 0; g < rf.NumGroups(); g++ {
		views, err := rf.ReadRecords(ctx, st, g)
		if err != nil {
			return nil, err
		}
		for _, v := range views {
			v.Pairs = pairs
			for _, r := range IndexRowsOf(v) {
				// Not the row group's arrays, which may then be freed.
				r.Tokens = slices.Clone(r.Tokens)
				rows = append(rows, r)
			}
		}
	}
	SortIndexRows(rows)
	return rows, nil
}

// SortIndexRows sorts rows as index.parquet is: by token, then maximum
// activation (descending), component and rank.
func SortIndexRows(rows []IndexRow) {
	slices.SortFunc(rows, func(a, b IndexRow) int {
		switch {
		case a.Token != b.Token:
			return int(a.Token) - int(b.Token)
		case a.MaxActivation != b.MaxActivation:
			if a.MaxActivation > b.MaxActivation {
				return -1
			}
			return 1
		case a.Component != b.Component:
			return int(a.Component) - int(b.Component)
		}
		return int(a.Rank) - int(b.Rank)
	})
}

// WriteIndex sorts rows (SortIndexRows) and writes them to key.
func WriteIndex(ctx context.Context, st store.Store, key string, rows []IndexRow) error {
	SortIndexRows(rows)
	props := parquet.NewWriterProperties(
		parquet.WithCreatedBy("tdb dataset index"),
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithMaxRowGroupLength(indexRowsPerGroup),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(false),
		parquet.WithStatsFor("token", true),
	)
	var buf bytes.Buffer
	fw, err := pqarrow.NewFileWriter(indexSchema, &buf, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, indexSchema)
	defer b.Release()
	for i0 := 0; i0 < len(rows) || i0 == 0; i0 += indexRowsPerGroup {
		for _, r := range rows[i0:min(i0+indexRowsPerGroup, len(rows))] {
			b.Field(0).(*array.Int32Builder).Append(r.Token)
			b.Field(1).(*array.Int32Builder).Append(r.Component)
			b.Field(2).(*array.Int32Builder).Append(r.Rank)
			b.Field(3).(*array.Float32Builder).Append(r.MaxActivation)
			b.Field(4).(*array.Int32Builder).Append(r.Position)
			b.Field(5).(*array.Int64Builder).Append(r.Source.Doc)
			b.Field(6).(*array.Int64Builder).Append(r.Source.Offset)
			tl := b.Field(7).(*array.ListBuilder)
			tl.Append(true)
			tl.ValueBuilder().(*array.Int32Builder).AppendValues(r.Tokens, nil)
		}
		rec := b.NewRecordBatch()
		err := fw.Write(rec)
		rec.Release()
		if err != nil {
			fw.Close()
			return err
		}
		if len(rows) == 0 {
			break
		}
	}
	if err := fw.Close(); err != nil {
		return err
	}
	if err := st.Put(ctx, key, &buf); err != nil {
		return fmt.Errorf("dataset: writing %s to %s: %w", key, st, err)
	}
	return nil
}

// ReadIndex reads the index rows of key whose token is token (every row
// when token < 0), pruning row groups by the token statistics.
func ReadIndex(ctx context.Context, st store.Store, key string, token int) (rows []IndexRow, err error) {
	defer recoverCorrupt(key, &err)
	ra, err := openBlob(ctx, st, key)
	if err != nil {
		return nil, err
	}
	pf, err := parquetReader(ra)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w: opening %s: %w", ErrCorrupt, key, err)
	}
	defer pf.Close()
	md := pf.MetaData()
	var groups []int
	for g := 0; g < md.NumRowGroups(); g++ {
		if token < 0 || groupMayHold(md, g, 0, token) {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return nil, nil
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w: opening %s: %w", ErrCorrupt, key, err)
	}
	cols := make([]int, md.Schema.NumColumns())
	for i := range cols {
		cols[i] = i
	}
	tbl, err := fr.ReadRowGroups(ctx, cols, groups)
	if err != nil {
		return nil, fmt.Errorf("dataset: %w: reading %s: %w", ErrCorrupt, key, err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 1<<16)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		cols, err := columns(rec, "token", ColComponent, ColRank, ColMaxActivation, "position", ColDoc, ColOffset, ColTokens)
		if err != nil {
			return nil, fmt.Errorf("dataset: %w: %s: %w", ErrCorrupt, key, err)
		}
		tok, ok1 := cols[0].(*array.Int32)
		comp, ok2 := cols[1].(*array.Int32)
		rank, ok3 := cols[2].(*array.Int32)
		mx, ok4 := cols[3].(*array.Float32)
		pos, ok5 := cols[4].(*array.Int32)
		doc, ok6 := cols[5].(*array.Int64)
		off, ok7 := cols[6].(*array.Int64)
		tl, ok8 := cols[7].(*array.List)
		if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8) {
			return nil, fmt.Errorf("dataset: %w: %s: unexpected column types", ErrCorrupt, key)
		}
		tv, ok := tl.ListValues().(*array.Int32)
		if !ok {
			return nil, fmt.Errorf("dataset: %w: %s: unexpected list type", ErrCorrupt, key)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if token >= 0 && int(tok.Value(i)) != token {
				continue
			}
			t0, t1 := tl.ValueOffsets(i)
			rows = append(rows, IndexRow{Token: tok.Value(i), Component: comp.Value(i), Rank: rank.Value(i),
				MaxActivation: mx.Value(i), Position: pos.Value(i), Source: Source{Doc: doc.Value(i), Offset: off.Value(i)},
				Tokens: slices.Clone(tv.Int32Values()[t0:t1])})
		}
	}
	return rows, tr.Err()
}
