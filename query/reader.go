package query

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tdb/dataset"
	"tdb/store"
)

// Reader reads datasets from a store with caches: manifests and Parquet
// footers are kept for ever (a dataset is immutable once its manifest
// exists), decoded components (row groups of datasets without a page
// index), row groups of statistics, layer tables, indexes and rendered
// components share one LRU bounded by a byte budget. It is safe for
// concurrent use.
type Reader struct {
	st        *countingStore
	str       Strings
	manifests sync.Map // name → *dataset.Manifest
	files     sync.Map // key → *dataset.File
	// cache holds decoded row groups, layer tables and indexes; answers
	// holds rendered component answers. They split the budget so
	// that decoding new row groups cannot evict every hot answer.
	cache   *lru
	answers *lru
	// explTTL is how long explanations stay cached (< 0: not cached);
	// now is the clock (tests move it).
	explTTL time.Duration
	now     func() time.Time
}

// NewReader returns a Reader over st; cacheBytes bounds the caches (0:
// 256 MiB), half for decoded data, half for rendered answers.
// str decodes token strings (nil: none, and text search finds nothing).
func NewReader(st store.Store, str Strings, cacheBytes int64) *Reader {
	if cacheBytes <= 0 {
		cacheBytes = 256 << 20
	}
	answers := cacheBytes / 2
	return &Reader{st: &countingStore{Store: st}, str: str, cache: newLRU(cacheBytes - answers), answers: newLRU(answers),
		explTTL: DefaultExplanationsTTL, now: time.Now}
}

// countingStore counts the bytes read from the store (for /metrics).
type countingStore struct {
	store.Store
	read atomic.Int64
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := c.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return countingReader{rc, &c.read}, nil
}

func (c *countingStore) GetRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	rc, err := c.Store.GetRange(ctx, key, off, n)
	if err != nil {
		return nil, err
	}
	return countingReader{rc, &c.read}, nil
}

// badRequest marks a caller's mistake (HTTP 400).
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func badf(format string, a ...any) error { return badRequest{fmt.Sprintf(format, a...)} }

// DatasetInfo is one entry of the dataset list.
type DatasetInfo struct {
	Name      string                     `json:"name"`
	Model     string                     `json:"model"`
	Corpus    string                     `json:"corpus"`
	Tokens    int64                      `json:"tokens"`
	NCtx      int                        `json:"n_ctx"`
	Locations []dataset.ManifestLocation `json:"locations"`
}

// Datasets lists the datasets that have a manifest, by name.
func (r *Reader) Datasets(ctx context.Context) ([]DatasetInfo, error) {
	keys, err := r.st.List(ctx, "datasets/")
	if err != nil {
		return nil, fmt.Errorf("listing datasets in %s: %w", r.st.Store, err)
	}
	out := []DatasetInfo{}
	for _, k := range keys {
		name, ok := strings.CutSuffix(strings.TrimPrefix(k, "datasets/"), "/manifest.json")
		if !ok || strings.Contains(name, "/") || dataset.CheckName("dataset", name) != nil {
			continue
		}
		m, err := r.Manifest(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, DatasetInfo{Name: m.Name, Model: m.Model, Corpus: m.Corpus, Tokens: m.Tokens, NCtx: m.NCtx, Locations: m.Locations})
	}
	return out, nil
}

// Manifest returns a dataset's manifest (cached once read).
func (r *Reader) Manifest(ctx context.Context, name string) (*dataset.Manifest, error) {
	if err := dataset.CheckName("dataset", name); err != nil {
		return nil, badRequest{err.Error()}
	}
	return loadForever(&r.manifests, name, func() (*dataset.Manifest, error) { return dataset.ReadManifest(ctx, r.st, name) })
}

// file opens a layer file (footer cached).
func (r *Reader) file(ctx context.Context, key string) (*dataset.File, error) {
	return loadForever(&r.files, key, func() (*dataset.File, error) { return dataset.OpenFile(ctx, r.st, key) })
}

// loadForever returns the value of key in m, loaded and kept on a miss
// (for what never changes once it exists: manifests, footers).
func loadForever[T any](m *sync.Map, key string, load func() (T, error)) (T, error) {
	if v, ok := m.Load(key); ok {
		return v.(T), nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	m.Store(key, v)
	return v, nil
}

func recordsSize(v *dataset.ComponentView) int64 {
	n := int64(128)
	for _, rs := range append([][]dataset.Record{v.Top, v.Random}, v.Quantiles...) {
		for _, r := range rs {
			n += 96 + 4*int64(len(r.Tokens)+len(r.Activations))
		}
	}
	return n
}

// records returns one component's records: read alone from a file with a
// page index (its pages only), else from its cached row group (datasets
// written before page indexes: neighbours share the decode).
func (r *Reader) records(ctx context.Context, f *dataset.File, index int) (*dataset.ComponentView, error) {
	for _, g := range f.Groups(index) {
		if f.PageIndexed(g) {
			v, err := r.cache.get(ctx, "c|"+f.Key+"|"+strconv.Itoa(index), func(lctx context.Context) (any, int64, error) {
				v, err := f.ReadComponentRecords(lctx, r.st, index)
				if err != nil {
					return nil, 0, err
				}
				return v, recordsSize(v), nil
			})
			if err != nil {
				return nil, err
			}
			return v.(*dataset.ComponentView), nil
		}
		views, err := r.recordsGroup(ctx, f, g)
		if err != nil {
			return nil, err
		}
		if v, ok := views[index]; ok {
			return v, nil
		}
	}
	return &dataset.ComponentView{Index: index}, nil
}

// recordsGroup returns the decoded row group g of a records file.
func (r *Reader) recordsGroup(ctx context.Context, f *dataset.File, g int) (map[int]*dataset.ComponentView, error) {
	v, err := r.cache.get(ctx, "rg|"+f.Key+"|"+strconv.Itoa(g), func(lctx context.Context) (any, int64, error) {
		views, err := f.ReadRecords(lctx, r.st, g)
		var size int64
		for _, v := range views {
			size += recordsSize(v)
		}
		return views, size, err
	})
	if err != nil {
		return nil, err
	}
	return v.(map[int]*dataset.ComponentView), nil
}

// Row is one component's statistics in a layer table.
type Row struct {
	Index       int     `json:"index"`
	Count       int64   `json:"count"`
	Mean        float64 `json:"mean"`
	Variance    float64 `json:"variance"`
	Skewness    float64 `json:"skewness"`
	Kurtosis    float64 `json:"kurtosis"`
	Max         float32 `json:"max"`
	Min         float32 `json:"min"`
	FracNonzero float64 `json:"frac_nonzero"`
}

// layerStats returns every component's statistics of a layer, by index.
func (r *Reader) layerStats(ctx context.Context, m *dataset.Manifest, location string, layer int) ([]dataset.Stats, error) {
	loc, _ := m.Location(location)
	key := dataset.StatsKey(m.Name, location, layer)
	v, err := r.cache.get(ctx, "stats|"+key, func(lctx context.Context) (any, int64, error) {
		f, err := r.file(ctx, key)
		if err != nil {
			return nil, 0, err
		}
		out := make([]dataset.Stats, loc.Components)
		seen := 0
		var size int64
		{
			stats, err := f.ReadStats(lctx, r.st, -1)
			if err != nil {
				return nil, 0, err
			}
			for c, s := range stats {
				if c < 0 || c >= len(out) {
					return nil, 0, fmt.Errorf("%w: %s has component %d; the manifest says %d", dataset.ErrCorrupt, key, c, loc.Components)
				}
				out[c] = s
				seen++
				size += statsSize(&s)
			}
		}
		if seen != len(out) {
			return nil, 0, fmt.Errorf("%w: %s has %d statistics rows for %d components", dataset.ErrCorrupt, key, seen, len(out))
		}
		return out, size, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]dataset.Stats), nil
}

// componentStats returns one component's statistics: from the layer's
// table when it is cached, else from the (cached) row group of stats.parquet
// that holds it, so that a first read does not decode the whole layer.
func (r *Reader) componentStats(ctx context.Context, m *dataset.Manifest, location string, layer, index int) (dataset.Stats, error) {
	key := dataset.StatsKey(m.Name, location, layer)
	if t, ok := r.cache.peek("stats|" + key); ok {
		return t.([]dataset.Stats)[index], nil
	}
	f, err := r.file(ctx, key)
	if err != nil {
		return dataset.Stats{}, err
	}
	for _, g := range f.Groups(index) {
		v, err := r.cache.get(ctx, "sg|"+key+"|"+strconv.Itoa(g), func(lctx context.Context) (any, int64, error) {
			stats, err := f.ReadStats(lctx, r.st, g)
			var size int64
			for _, s := range stats {
				size += statsSize(&s)
			}
			return stats, size, err
		})
		if err != nil {
			return dataset.Stats{}, err
		}
		if s, ok := v.(map[int]dataset.Stats)[index]; ok {
			return s, nil
		}
	}
	return dataset.Stats{}, fmt.Errorf("%w: %s has no statistics row for component %d", dataset.ErrCorrupt, key, index)
}

// statsSize estimates the bytes one component's statistics hold.
func statsSize(s *dataset.Stats) int64 {
	return 160 + 4*int64(len(s.QuantileBoundaries)) + 8*int64(len(s.Histogram))
}

// checkLayer validates a location and layer against the manifest.
func checkLayer(m *dataset.Manifest, location string, layer int) error {
	if err := dataset.CheckName("location", location); err != nil {
		return badRequest{err.Error()}
	}
	loc, ok := m.Location(location)
	if !ok || len(loc.Layers) == 0 {
		return dataset.CheckComponent(m, location, layer, 0)
	}
	if !slices.Contains(loc.Layers, layer) {
		return dataset.CheckComponent(m, location, layer, 0)
	}
	return nil
}

// componentManifest returns the manifest of a dataset that has the
// component (else not found, or a bad request for a malformed name).
func (r *Reader) componentManifest(ctx context.Context, name, location string, layer, index int) (*dataset.Manifest, error) {
	m, err := r.Manifest(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := checkLayer(m, location, layer); err != nil {
		return nil, err
	}
	if err := dataset.CheckComponent(m, location, layer, index); err != nil {
		return nil, err
	}
	return m, nil
}

// View reads one component (records and statistics through the caches:
// see records and componentStats).
func (r *Reader) View(ctx context.Context, name, location string, layer, index int) (*dataset.ComponentView, error) {
	m, err := r.componentManifest(ctx, name, location, layer, index)
	if err != nil {
		return nil, err
	}
	loc, _ := m.Location(location)
	f, err := r.file(ctx, dataset.RecordsKey(name, location, layer))
	if err != nil {
		return nil, err
	}
	v := &dataset.ComponentView{Location: location, Layer: layer, Index: index, Pairs: loc.Pairs}
	c, err := r.records(ctx, f, index)
	if err != nil {
		return nil, err
	}
	v.Top, v.Random, v.Quantiles = c.Top, c.Random, c.Quantiles
	if v.Stats, err = r.componentStats(ctx, m, location, layer, index); err != nil {
		return nil, err
	}
	if n := len(v.Stats.QuantileBoundaries) - 1; n > 0 && len(v.Quantiles) < n {
		v.Quantiles = append(slices.Clone(v.Quantiles), make([][]dataset.Record, n-len(v.Quantiles))...)
	}
	return v, nil
}

// Component returns one component's JSON; k > 0 keeps at most k top records.
func (r *Reader) Component(ctx context.Context, name, location string, layer, index, k int) (*Component, error) {
	v, err := r.View(ctx, name, location, layer, index)
	if err != nil {
		return nil, err
	}
	c := NewComponent(v, r.str, k)
	c.Dataset = name
	return c, nil
}

// ComponentJSON returns the rendered answer (the whole envelope) of a
// component with all its top records (cached: the hot path of the API is
// one copy of these bytes, as a static file server's would be).
func (r *Reader) ComponentJSON(ctx context.Context, name, location string, layer, index int) ([]byte, error) {
	key := name + "|" + location + "|" + strconv.Itoa(layer) + "|" + strconv.Itoa(index)
	v, err := r.answers.get(ctx, key, func(lctx context.Context) (any, int64, error) {
		c, err := r.Component(lctx, name, location, layer, index, 0)
		if err != nil {
			return nil, 0, err
		}
		b, err := json.Marshal(envelope{Status: "success", Data: c})
		return b, int64(len(b)) + 64, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// Table is a page of a layer's statistics table.
type Table struct {
	Total      int    `json:"total"`
	Offset     int    `json:"offset"`
	Limit      int    `json:"limit"`
	Sort       string `json:"sort"`
	Order      string `json:"order"`
	Components []Row  `json:"components"`
}

// sortKeys are the columns a layer table sorts by.
var sortKeys = map[string]func(s *dataset.Stats) float64{
	"index":        nil,
	"max":          func(s *dataset.Stats) float64 { return float64(s.Max) },
	"min":          func(s *dataset.Stats) float64 { return float64(s.Min) },
	"mean":         func(s *dataset.Stats) float64 { return s.Mean },
	"variance":     func(s *dataset.Stats) float64 { return s.Variance },
	"skewness":     func(s *dataset.Stats) float64 { return s.Skewness },
	"kurtosis":     func(s *dataset.Stats) float64 { return s.Kurtosis },
	"frac_nonzero": func(s *dataset.Stats) float64 { return s.FracNonzero },
	"count":        func(s *dataset.Stats) float64 { return float64(s.Count) },
}

// Layer returns a sorted page of a layer's component statistics; ties keep
// index order.
func (r *Reader) Layer(ctx context.Context, name, location string, layer int, sortBy, order string, limit, offset int) (*Table, error) {
	key, ok := sortKeys[sortBy]
	if !ok {
		names := make([]string, 0, len(sortKeys))
		for k := range sortKeys {
			names = append(names, k)
		}
		slices.Sort(names)
		return nil, badf("sort %q: want one of %s", sortBy, strings.Join(names, ", "))
	}
	if order != "asc" && order != "desc" {
		return nil, badf("order %q: want asc or desc", order)
	}
	m, err := r.Manifest(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := checkLayer(m, location, layer); err != nil {
		return nil, err
	}
	stats, err := r.layerStats(ctx, m, location, layer)
	if err != nil {
		return nil, err
	}
	idx := make([]int, len(stats))
	for i := range idx {
		idx[i] = i
	}
	if key != nil {
		slices.SortStableFunc(idx, func(a, b int) int {
			x, y := key(&stats[a]), key(&stats[b])
			if order == "desc" {
				x, y = y, x
			}
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		})
	} else if order == "desc" {
		slices.Reverse(idx)
	}
	t := &Table{Total: len(idx), Offset: offset, Limit: limit, Sort: sortBy, Order: order, Components: []Row{}}
	for _, i := range idx[min(offset, len(idx)):min(offset+limit, len(idx))] {
		s := &stats[i]
		t.Components = append(t.Components, Row{Index: i, Count: s.Count, Mean: s.Mean, Variance: s.Variance, Skewness: s.Skewness,
			Kurtosis: s.Kurtosis, Max: s.Max, Min: s.Min, FracNonzero: s.FracNonzero})
	}
	return t, nil
}

// Export writes a layer as gzipped JSONL, one Component per line in index
// order.
func (r *Reader) Export(ctx context.Context, w io.Writer, name, location string, layer int) error {
	m, err := r.Manifest(ctx, name)
	if err != nil {
		return err
	}
	if err := checkLayer(m, location, layer); err != nil {
		return err
	}
	return r.export(ctx, w, m, location, layer)
}

func (r *Reader) export(ctx context.Context, w io.Writer, m *dataset.Manifest, location string, layer int) error {
	loc, _ := m.Location(location)
	stats, err := r.layerStats(ctx, m, location, layer)
	if err != nil {
		return err
	}
	f, err := r.file(ctx, dataset.RecordsKey(m.Name, location, layer))
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(w)
	enc := json.NewEncoder(zw)
	loaded := -1
	var views map[int]*dataset.ComponentView
	for c := 0; c < loc.Components; c++ {
		v := &dataset.ComponentView{}
		for _, g := range f.Groups(c) {
			if g != loaded {
				// Read directly (not through the LRU): an export would
				// evict every hot row group.
				if views, err = f.ReadRecords(ctx, r.st, g); err != nil {
					return err
				}
				loaded = g
				if fl, ok := w.(interface{ Flush() }); ok {
					zw.Flush()
					fl.Flush()
				}
			}
			if got, ok := views[c]; ok {
				v = got
			}
		}
		v.Location, v.Layer, v.Index, v.Pairs, v.Stats = location, layer, c, loc.Pairs, stats[c]
		if n := len(v.Stats.QuantileBoundaries) - 1; n > 0 {
			for len(v.Quantiles) < n {
				v.Quantiles = append(v.Quantiles, nil)
			}
		}
		comp := NewComponent(v, r.str, 0)
		comp.Dataset = m.Name
		if err := enc.Encode(comp); err != nil {
			return err
		}
	}
	return zw.Close()
}
