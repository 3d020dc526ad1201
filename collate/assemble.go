package collate

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"tdb/dataset"
	"tdb/store"
)

// Partial is one shard's encoded accumulator of one location and layer.
// Read returns its bytes; it is where the caller checks them against its
// own record (size, checksum) and names the blob in its errors.
type Partial struct {
	Name string
	Read func(ctx context.Context) ([]byte, error)
}

// LayerPartials is one location and layer to merge, with its partials in
// shard order.
type LayerPartials struct {
	Location string
	Layer    int
	Partials []Partial
}

// AssembleOptions tunes AssembleDataset.
type AssembleOptions struct {
	// Parallel bounds the layers merged at once (default GOMAXPROCS/2, at
	// least 1): each holds two partials in memory.
	Parallel int
	// LayerDone, if set, is called after each layer is written, with the
	// time its merge and write took (metrics, logs). It may be called from
	// several goroutines at once.
	LayerDone func(location string, layer int, d time.Duration)
}

// MergePartials folds the partials of one location and layer in order,
// holding at most two in memory. The result does not depend on the order
// (collate/doc.go, Determinism), but a fixed order keeps the work the same.
func MergePartials(ctx context.Context, lp LayerPartials) (*LayerAccumulator, error) {
	var acc *LayerAccumulator
	for _, p := range lp.Partials {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := p.Read(ctx)
		if err != nil {
			return nil, err
		}
		a, err := DecodePartial(b)
		if err != nil {
			return nil, fmt.Errorf("decoding partial %s: %w", p.Name, err)
		}
		if a.Location() != lp.Location || a.Layer() != lp.Layer {
			return nil, fmt.Errorf("partial %s holds %s layer %d, want %s layer %d", p.Name, a.Location(), a.Layer(), lp.Location, lp.Layer)
		}
		if acc == nil {
			acc = a
			continue
		}
		if err := acc.Merge(a); err != nil {
			return nil, fmt.Errorf("merging partial %s: %w", p.Name, err)
		}
	}
	if acc == nil {
		return nil, fmt.Errorf("%s layer %d has no partials", lp.Location, lp.Layer)
	}
	return acc, nil
}

// LayerResult is what the manifest records about one written layer.
type LayerResult struct {
	Location   string           `json:"location"`
	Layer      int              `json:"layer"`
	Components int              `json:"components"`
	Pairs      bool             `json:"pairs,omitempty"`
	Settings   dataset.Settings `json:"settings"`
}

// MergeLayer merges one location and layer's partials (MergePartials) and
// writes the layer's dataset files under dataset name (WriteLayer): the
// unit of work of a merge, run by AssembleDataset in process or by a
// worker as a merge task. It is idempotent: the same partials write the
// same bytes.
func MergeLayer(ctx context.Context, st store.Store, name string, lp LayerPartials) (LayerResult, error) {
	acc, err := MergePartials(ctx, lp)
	if err != nil {
		return LayerResult{}, err
	}
	if err := WriteLayer(ctx, st, name, acc, 0); err != nil {
		return LayerResult{}, fmt.Errorf("writing %s layer %d: %w", lp.Location, lp.Layer, err)
	}
	return LayerResult{Location: lp.Location, Layer: lp.Layer, Components: acc.Components(), Pairs: acc.Pairs(),
		Settings: dataset.Settings(acc.Config())}, nil
}

// AssembleDataset merges every layer's partials (layers in parallel,
// MergeLayer), then writes the manifest (FinishDataset), last, so a
// reader that finds the manifest finds every layer. m gives the dataset's
// name and provenance (Name, Model, Autoencoders, Corpus, Tokens, NCtx,
// CreatedBy); FinishDataset fills in the rest. It returns the manifest it
// wrote. It is idempotent: the same partials write the same bytes.
func AssembleDataset(ctx context.Context, st store.Store, m dataset.Manifest, layers []LayerPartials, opts AssembleOptions) (*dataset.Manifest, error) {
	if len(layers) == 0 {
		return nil, fmt.Errorf("dataset %s: no layers to merge", m.Name)
	}
	if opts.Parallel <= 0 {
		opts.Parallel = max(1, runtime.GOMAXPROCS(0)/2)
	}
	results := make([]LayerResult, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel)
	for i, lp := range layers {
		g.Go(func() error {
			t0 := time.Now()
			r, err := MergeLayer(gctx, st, m.Name, lp)
			if err != nil {
				return err
			}
			results[i] = r
			if opts.LayerDone != nil {
				opts.LayerDone(lp.Location, lp.Layer, time.Since(t0))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return FinishDataset(ctx, st, m, results)
}

// FinishDataset writes the manifest of a dataset whose layers are all
// written (by MergeLayer, here or on workers): it fills in m's Locations
// (sorted by name, then layer), Settings and ComponentsPerRowGroup from
// the layers' results, in any order, and writes it.
func FinishDataset(ctx context.Context, st store.Store, m dataset.Manifest, layers []LayerResult) (*dataset.Manifest, error) {
	if len(layers) == 0 {
		return nil, fmt.Errorf("dataset %s: no layers written", m.Name)
	}
	layers = slices.Clone(layers)
	slices.SortFunc(layers, func(a, b LayerResult) int {
		if c := strings.Compare(a.Location, b.Location); c != 0 {
			return c
		}
		return a.Layer - b.Layer
	})
	m.Locations = nil
	for _, l := range layers {
		n := len(m.Locations)
		if n > 0 && m.Locations[n-1].Name == l.Location {
			m.Locations[n-1].Layers = append(m.Locations[n-1].Layers, l.Layer)
			continue
		}
		m.Locations = append(m.Locations, dataset.ManifestLocation{Name: l.Location, Layers: []int{l.Layer}, Components: l.Components, Pairs: l.Pairs})
	}
	// Partials with different settings refuse to merge, so every layer has
	// the same; the last one is what the merge order used to leave.
	m.Settings = layers[len(layers)-1].Settings
	m.ComponentsPerRowGroup = DefaultComponentsPerRowGroup
	if err := dataset.WriteManifest(ctx, st, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
