package explain

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"tdb/dataset"
	"tdb/store"
)

// ReadComponent reads one component of a collated dataset.
func ReadComponent(ctx context.Context, st store.Store, m *dataset.Manifest, location string, layer, index int) (*Component, error) {
	v, err := dataset.ReadComponentFrom(ctx, st, m, location, layer, index)
	if err != nil {
		return nil, err
	}
	return FromView(v), nil
}

// EachComponent reads a layer's records file once, row group by row group,
// and calls fn for every component that want accepts (nil: all), in
// component order. Reading a whole layer this way costs one pass over the
// file instead of one row group per component.
func EachComponent(ctx context.Context, st store.Store, m *dataset.Manifest, location string, layer int, want func(int) bool, fn func(*Component) error) error {
	loc, ok := m.Location(location)
	if !ok {
		return fmt.Errorf("explain: dataset %s has no location %q: %w", m.Name, location, store.ErrNotFound)
	}
	if !slices.Contains(loc.Layers, layer) {
		return fmt.Errorf("explain: dataset %s has no layer %d of %s (it has %v): %w", m.Name, layer, location, loc.Layers, store.ErrNotFound)
	}
	key := dataset.RecordsKey(m.Name, location, layer)
	ra, err := store.NewReader(ctx, st, key)
	if err != nil {
		return fmt.Errorf("explain: %s in %s: %w", key, st, err)
	}
	pf, err := file.NewParquetReader(ra)
	if err != nil {
		return fmt.Errorf("explain: opening %s: %w", key, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 14}, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("explain: opening %s: %w", key, err)
	}
	names := []string{"component", "kind", "rank", "bucket", "max_activation", "tokens", "activations"}
	lists := map[string]bool{"tokens": true, "activations": true, dataset.ColActivationPositions: true, dataset.ColActivationValues: true}
	if pf.MetaData().Schema.ColumnIndexByName(dataset.ColActivationPositions+".list.element") >= 0 {
		// The sparse layout (dataset.SparseRecordsSchema).
		names = append(names[:6], dataset.ColActivationPositions, dataset.ColActivationValues)
	}
	cols := make([]int, len(names))
	for j, n := range names {
		c := pf.MetaData().Schema.ColumnIndexByName(n)
		if lists[n] {
			c = pf.MetaData().Schema.ColumnIndexByName(n + ".list.element")
		}
		if c < 0 {
			return fmt.Errorf("explain: %s has no column %q", key, n)
		}
		cols[j] = c
	}
	var cur *Component
	flush := func() error {
		if cur == nil {
			return nil
		}
		c := cur
		cur = nil
		if loc.Pairs {
			for _, list := range append([][]Record{c.Top, c.Random}, c.Quantiles...) {
				for i := range list {
					list[i].Activations = rowMax(list[i].Activations, len(list[i].Tokens))
				}
			}
		}
		return fn(c)
	}
	for g := 0; g < pf.NumRowGroups(); g++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := prefetchGroup(ra, pf, g); err != nil {
			return fmt.Errorf("explain: reading %s row group %d: %w", key, g, err)
		}
		tbl, err := fr.ReadRowGroups(ctx, cols, []int{g})
		if err != nil {
			return fmt.Errorf("explain: reading %s row group %d: %w", key, g, err)
		}
		err = eachRow(tbl, func(comp int, kind string, rank, bucket int, r Record) error {
			if want != nil && !want(comp) {
				return nil
			}
			if cur != nil && cur.Index != comp {
				if err := flush(); err != nil {
					return err
				}
			}
			if cur == nil {
				cur = &Component{Location: location, Layer: layer, Index: comp}
			}
			switch kind {
			case dataset.KindTop:
				cur.Top = append(cur.Top, r)
			case dataset.KindRandom:
				cur.Random = append(cur.Random, r)
			case dataset.KindQuantile:
				if bucket < 0 || bucket >= dataset.MaxQuantileBuckets {
					return fmt.Errorf("component %d: quantile bucket %d out of range", comp, bucket)
				}
				for len(cur.Quantiles) <= bucket {
					cur.Quantiles = append(cur.Quantiles, nil)
				}
				cur.Quantiles[bucket] = append(cur.Quantiles[bucket], r)
			default:
				return fmt.Errorf("component %d: unknown record kind %q", comp, kind)
			}
			return nil
		})
		tbl.Release()
		if err != nil {
			return fmt.Errorf("explain: %s: %w", key, err)
		}
	}
	return flush()
}

// prefetchGroup fetches row group g's bytes in one ranged read, so that a
// remote store (Azure) serves a row group in one request, not one per page.
func prefetchGroup(ra *store.Reader, pf *file.Reader, g int) error {
	off, n, err := dataset.RowGroupRange(pf.MetaData().RowGroup(g))
	if err != nil || n == 0 || off+n > ra.Size() {
		return err
	}
	return ra.PrefetchWindow(off, n)
}

func eachRow(tbl arrow.Table, fn func(comp int, kind string, rank, bucket int, r Record) error) error {
	tr := array.NewTableReader(tbl, 1<<14)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		comp, ok0 := rec.Column(0).(*array.Int32)
		kind, ok1 := rec.Column(1).(*array.String)
		rank, ok2 := rec.Column(2).(*array.Int32)
		bucket, ok3 := rec.Column(3).(*array.Int8)
		mx, ok4 := rec.Column(4).(*array.Float32)
		toks, ok5 := rec.Column(5).(*array.List)
		acts, ok6 := rec.Column(6).(*array.List)
		if !(ok0 && ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
			return errors.New("unexpected column types")
		}
		tv, ok7 := toks.ListValues().(*array.Int32)
		var av *array.Float32
		var pv *array.Int32
		var vals *array.List
		ok8 := true
		if rec.NumCols() == 8 { // sparse: positions, values
			vals, ok8 = rec.Column(7).(*array.List)
			if ok8 {
				var okp bool
				pv, okp = acts.ListValues().(*array.Int32)
				av, ok8 = vals.ListValues().(*array.Float32)
				ok8 = ok8 && okp
			}
		} else {
			av, ok8 = acts.ListValues().(*array.Float32)
		}
		if !ok7 || !ok8 {
			return errors.New("unexpected list types")
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			t0, t1 := toks.ValueOffsets(i)
			a0, a1 := acts.ValueOffsets(i)
			r := Record{
				Tokens: slices.Clone(tv.Int32Values()[t0:t1]),
				Max:    mx.Value(i),
			}
			if pv != nil {
				v0, v1 := vals.ValueOffsets(i)
				dense, err := dataset.DenseActivations(pv.Int32Values()[a0:a1], av.Float32Values()[v0:v1], int(t1-t0))
				if err != nil {
					return err
				}
				r.Activations = dense
			} else {
				r.Activations = slices.Clone(av.Float32Values()[a0:a1])
			}
			if err := fn(int(comp.Value(i)), kind.Value(i), int(rank.Value(i)), int(bucket.Value(i)), r); err != nil {
				return err
			}
		}
	}
	return tr.Err()
}
