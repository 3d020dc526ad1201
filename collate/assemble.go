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

// AssembleDataset merges every layer's partials (layers in parallel),
// writes each layer's records and stats, then the manifest, last, so a
// reader that finds the manifest finds every layer. m gives the dataset's
// name and provenance (Name, Model, Autoencoders, Corpus, Tokens, NCtx,
// CreatedBy); AssembleDataset fills in Locations (sorted by name, then
// layer), Settings and ComponentsPerRowGroup, and returns the manifest it
// wrote. It is idempotent: the same partials write the same bytes.
func AssembleDataset(ctx context.Context, st store.Store, m dataset.Manifest, layers []LayerPartials, opts AssembleOptions) (*dataset.Manifest, error) {
	if len(layers) == 0 {
		return nil, fmt.Errorf("dataset %s: no layers to merge", m.Name)
	}
	if opts.Parallel <= 0 {
		opts.Parallel = max(1, runtime.GOMAXPROCS(0)/2)
	}
	layers = slices.Clone(layers)
	slices.SortFunc(layers, func(a, b LayerPartials) int {
		if c := strings.Compare(a.Location, b.Location); c != 0 {
			return c
		}
		return a.Layer - b.Layer
	})
	metas := make([]dataset.ManifestLocation, len(layers))
	settings := make([]Config, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel)
	for i, lp := range layers {
		g.Go(func() error {
			t0 := time.Now()
			acc, err := MergePartials(gctx, lp)
			if err != nil {
				return err
			}
			if err := WriteLayer(gctx, st, m.Name, acc, 0); err != nil {
				return fmt.Errorf("writing %s layer %d: %w", lp.Location, lp.Layer, err)
			}
			metas[i] = dataset.ManifestLocation{Name: lp.Location, Layers: []int{lp.Layer}, Components: acc.Components(), Pairs: acc.Pairs()}
			settings[i] = acc.Config()
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
	m.Locations = nil
	for _, l := range metas {
		n := len(m.Locations)
		if n > 0 && m.Locations[n-1].Name == l.Name {
			m.Locations[n-1].Layers = append(m.Locations[n-1].Layers, l.Layers...)
			continue
		}
		m.Locations = append(m.Locations, l)
	}
	// Partials with different settings refuse to merge, so every layer has
	// the same; the last one is what the merge order used to leave.
	m.Settings = dataset.Settings(settings[len(settings)-1])
	m.ComponentsPerRowGroup = DefaultComponentsPerRowGroup
	if err := dataset.WriteManifest(ctx, st, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
