// Package neuronviewer imports the public neuron-viewer format (OpenAI's
// collated activation records, one JSON file per component at
// {layer}/{index}.json) into a tdb dataset, so imported components are
// served and searched like collated ones.
//
// A file holds most_positive_activation_records, random_sample,
// random_sample_by_quantile (one list per bucket), quantile_boundaries,
// mean, variance, skewness and kurtosis; a record is {tokens: [string],
// activations: [float]}. Token ids are recovered with the GPT-2 tokenizer
// (a string that is not one token gets id -1). What the format lacks is
// left empty and the manifest says so (imported_from): sources are
// (doc = the record's position in its file, offset 0), count, frac_nonzero
// and the histogram are zero, max and min come from the records.
//
// Start at Import.
package neuronviewer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"tdb/collate"
	"tdb/dataset"
	"tdb/model/tokenizer"
	"tdb/store"
)

// File is one component's neuron-viewer JSON.
type File struct {
	MostPositive       []Record   `json:"most_positive_activation_records"`
	RandomSample       []Record   `json:"random_sample"`
	RandomByQuantile   [][]Record `json:"random_sample_by_quantile"`
	QuantileBoundaries []float64  `json:"quantile_boundaries"`
	Mean               float64    `json:"mean"`
	Variance           float64    `json:"variance"`
	Skewness           float64    `json:"skewness"`
	Kurtosis           float64    `json:"kurtosis"`
}

// Record is one neuron-viewer activation record.
type Record struct {
	Tokens      []string  `json:"tokens"`
	Activations []float64 `json:"activations"`
}

// Options of an import.
type Options struct {
	// Dataset is the name of the dataset to write.
	Dataset string
	// Location is the location the components are stored at
	// (default mlp.post_act).
	Location string
	// Layers to import; empty: every layer folder found.
	Layers []int
	// Model names the subject model (default gpt2).
	Model string
	// From describes the source for the manifest.
	From string
	// Parallel bounds concurrent file reads (default 16).
	Parallel int
	Log      *slog.Logger
}

// maxFileBytes bounds one component file.
const maxFileBytes = 64 << 20

// Import reads every {layer}/{index}.json of src (a store: local folder,
// or Azure Blob read anonymously) and writes the dataset to dst.
func Import(ctx context.Context, src, dst store.Store, tok *tokenizer.Tokenizer, o Options) (*dataset.Manifest, error) {
	if o.Location == "" {
		o.Location = "mlp.post_act"
	}
	if o.Model == "" {
		o.Model = "gpt2"
	}
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if err := dataset.CheckName("dataset", o.Dataset); err != nil {
		return nil, err
	}
	if _, err := dst.Size(ctx, dataset.ManifestKey(o.Dataset)); err == nil {
		return nil, fmt.Errorf("%w: %q in %s", ErrExists, o.Dataset, dst)
	}
	keys, err := src.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", src, err)
	}
	counts := map[int]int{} // layer → highest index + 1
	for _, k := range keys {
		l, i, ok := parseKey(k)
		if ok {
			counts[l] = max(counts[l], i+1)
		}
	}
	layers := o.Layers
	if len(layers) == 0 {
		for l := range counts {
			layers = append(layers, l)
		}
		slices.Sort(layers)
	}
	if len(layers) == 0 {
		return nil, fmt.Errorf("%s has no {layer}/{index}.json files: %w", src, store.ErrNotFound)
	}
	ids := tokenIDs(tok)
	m := &dataset.Manifest{Name: o.Dataset, Model: o.Model, Corpus: "neuron-viewer", NCtx: 0,
		CreatedBy: "tdb import neuron-viewer", ImportedFrom: "neuron-viewer:" + o.From, ComponentsPerRowGroup: collate.DefaultComponentsPerRowGroup}
	loc := dataset.ManifestLocation{Name: o.Location}
	for _, layer := range layers {
		n := counts[layer]
		if n == 0 {
			return nil, fmt.Errorf("%s has no files for layer %d: %w", src, layer, store.ErrNotFound)
		}
		if loc.Components != 0 && loc.Components != n {
			return nil, fmt.Errorf("layer %d has %d components, earlier layers %d", layer, n, loc.Components)
		}
		loc.Components = n
		views := make([]*dataset.ComponentView, n)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(o.Parallel)
		for i := range n {
			g.Go(func() error {
				f, err := readFile(gctx, src, fmt.Sprintf("%d/%d.json", layer, i))
				if err != nil {
					return err
				}
				views[i] = f.view(o.Location, layer, i, ids, tok)
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		for _, v := range views {
			for _, r := range v.Top {
				m.NCtx = max(m.NCtx, len(r.Tokens))
			}
			m.Settings.TopK = max(m.Settings.TopK, len(v.Top))
			m.Settings.RandomK = max(m.Settings.RandomK, len(v.Random))
			m.Settings.QuantileBuckets = max(m.Settings.QuantileBuckets, len(v.Quantiles))
			for _, q := range v.Quantiles {
				m.Settings.PerBucket = max(m.Settings.PerBucket, len(q))
			}
		}
		if err := collate.WriteViews(ctx, dst, o.Dataset, o.Location, layer, false, views, 0); err != nil {
			return nil, err
		}
		loc.Layers = append(loc.Layers, layer)
		o.Log.Info("imported layer", "layer", layer, "components", n)
	}
	m.Locations = []dataset.ManifestLocation{loc}
	if err := dataset.WriteManifest(ctx, dst, m); err != nil {
		return nil, err
	}
	return m, nil
}

// parseKey reads "{layer}/{index}.json" (possibly under a folder prefix the
// store already strips).
func parseKey(k string) (layer, index int, ok bool) {
	dir, file, found := strings.Cut(k, "/")
	if !found {
		return 0, 0, false
	}
	name, isJSON := strings.CutSuffix(file, ".json")
	l, err1 := strconv.Atoi(dir)
	i, err2 := strconv.Atoi(name)
	if !isJSON || err1 != nil || err2 != nil || l < 0 || i < 0 || i > 1<<24 || l > 1<<10 {
		return 0, 0, false
	}
	return l, i, true
}

func readFile(ctx context.Context, src store.Store, key string) (*File, error) {
	rc, err := src.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", key, src, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s from %s: %w", key, src, err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%s is over %d bytes", key, maxFileBytes)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	for _, rs := range append([][]Record{f.MostPositive, f.RandomSample}, f.RandomByQuantile...) {
		for _, r := range rs {
			if len(r.Tokens) != len(r.Activations) {
				return nil, fmt.Errorf("%s: a record has %d tokens and %d activations", key, len(r.Tokens), len(r.Activations))
			}
			for _, a := range r.Activations {
				if math.IsNaN(a) || math.IsInf(a, 0) {
					return nil, fmt.Errorf("%s: an activation is %v", key, a)
				}
			}
		}
	}
	if len(f.RandomByQuantile) > dataset.MaxQuantileBuckets {
		return nil, fmt.Errorf("%s: %d quantile buckets (at most %d)", key, len(f.RandomByQuantile), dataset.MaxQuantileBuckets)
	}
	return &f, nil
}

// tokenIDs maps every token's display string to its id (the first id when
// two tokens display the same, e.g. partial UTF-8).
func tokenIDs(tok *tokenizer.Tokenizer) map[string]int32 {
	ids := make(map[string]int32, tokenizer.VocabSize)
	for id := tokenizer.VocabSize - 1; id >= 0; id-- {
		ids[tok.Display([]int{id})[0]] = int32(id)
	}
	return ids
}

func (f *File) view(location string, layer, index int, ids map[string]int32, tok *tokenizer.Tokenizer) *dataset.ComponentView {
	doc := int64(0)
	var mx, mn float32 = float32(math.Inf(-1)), float32(math.Inf(1))
	conv := func(rs []Record) []dataset.Record {
		out := make([]dataset.Record, len(rs))
		for i, r := range rs {
			rec := dataset.Record{Source: dataset.Source{Doc: doc}, MaxActivation: float32(math.Inf(-1)),
				Tokens: make([]int32, len(r.Tokens)), Activations: make([]float32, len(r.Activations))}
			doc++
			for j, s := range r.Tokens {
				id, ok := ids[s]
				if !ok {
					id = -1
					if enc := tok.Encode(s); len(enc) == 1 {
						id = int32(enc[0])
					}
				}
				rec.Tokens[j] = id
			}
			for j, a := range r.Activations {
				rec.Activations[j] = float32(a)
				rec.MaxActivation = max(rec.MaxActivation, float32(a))
				mx, mn = max(mx, float32(a)), min(mn, float32(a))
			}
			if len(r.Activations) == 0 {
				rec.MaxActivation = 0
			}
			out[i] = rec
		}
		return out
	}
	v := &dataset.ComponentView{Location: location, Layer: layer, Index: index, Top: conv(f.MostPositive), Random: conv(f.RandomSample)}
	for _, q := range f.RandomByQuantile {
		v.Quantiles = append(v.Quantiles, conv(q))
	}
	if math.IsInf(float64(mx), 0) {
		mx, mn = 0, 0
	}
	qb := make([]float32, len(f.QuantileBoundaries))
	for i, b := range f.QuantileBoundaries {
		qb[i] = float32(b)
	}
	v.Stats = dataset.Stats{Mean: f.Mean, Variance: f.Variance, Skewness: f.Skewness, Kurtosis: f.Kurtosis,
		Max: mx, Min: mn, QuantileBoundaries: qb, Histogram: make([]int64, dataset.HistogramBins)}
	return v
}

// ErrExists is returned when the dataset already exists.
var ErrExists = errors.New("dataset exists")
