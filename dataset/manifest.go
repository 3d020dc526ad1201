package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"tdb/store"
)

// Manifest describes a finished dataset. It is written last: a dataset
// whose manifest is missing does not exist for readers.
type Manifest struct {
	SchemaVersion int    `json:"schema_version"`
	Name          string `json:"name"`
	// Model names the subject model (e.g. "gpt2").
	Model string `json:"model"`
	// Autoencoders lists the autoencoders whose latents were collated.
	Autoencoders []string `json:"autoencoders,omitempty"`
	// Corpus is the corpus spec the job read.
	Corpus string `json:"corpus"`
	// Tokens is how many tokens the job processed.
	Tokens int64 `json:"tokens"`
	// NCtx is the window length in tokens.
	NCtx      int                `json:"n_ctx"`
	Locations []ManifestLocation `json:"locations"`
	Settings  Settings           `json:"settings"`
	// ComponentsPerRowGroup is how many components one row group holds.
	ComponentsPerRowGroup int    `json:"components_per_row_group"`
	CreatedBy             string `json:"created_by"`
	// ImportedFrom names the source of a dataset imported from another
	// format (e.g. "neuron-viewer:URL"); empty for collated datasets.
	ImportedFrom string `json:"imported_from,omitempty"`
}

// ManifestLocation is one collated location with its layers.
type ManifestLocation struct {
	Name       string `json:"name"`
	Layers     []int  `json:"layers"`
	Components int    `json:"components"`
	// Pairs marks pair records (attention heads: lower-triangle activations).
	Pairs bool `json:"pairs,omitempty"`
}

// Settings are the collation settings a dataset was made with (collate's
// job configuration, as recorded in the manifest).
type Settings struct {
	// TopK is how many top-activating records each component keeps.
	TopK int `json:"top_k"`
	// RandomK is the size of the uniform random record sample.
	RandomK int `json:"random_k"`
	// QuantileBuckets is how many activation-quantile buckets are sampled.
	QuantileBuckets int `json:"quantile_buckets"`
	// PerBucket is how many records each quantile bucket keeps.
	PerBucket int `json:"per_bucket"`
	// QuantilePool is the size of the bottom-k hash pool from which the
	// random sample and the quantile samples are drawn after the merge.
	QuantilePool int `json:"quantile_pool"`
	// Seed selects the random sample; the same seed gives the same sample.
	Seed uint64 `json:"seed"`
}

// Location returns the named location of the manifest.
func (m *Manifest) Location(name string) (ManifestLocation, bool) {
	for _, l := range m.Locations {
		if l.Name == name {
			return l, true
		}
	}
	return ManifestLocation{}, false
}

// WriteManifest writes the dataset's manifest; call it after every layer's
// files are written. Its JSON is deterministic (fixed field order, no time).
func WriteManifest(ctx context.Context, st store.Store, m *Manifest) error {
	if err := CheckName("dataset", m.Name); err != nil {
		return err
	}
	for _, l := range m.Locations {
		if err := CheckName("location", l.Name); err != nil {
			return err
		}
	}
	if m.SchemaVersion == 0 {
		m.SchemaVersion = SchemaVersion
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("dataset: encoding manifest of %s: %w", m.Name, err)
	}
	b = append(b, '\n')
	if err := st.Put(ctx, ManifestKey(m.Name), bytes.NewReader(b)); err != nil {
		return fmt.Errorf("dataset: writing manifest of %s to %s: %w", m.Name, st, err)
	}
	return nil
}

// ErrNoDataset is wrapped when a dataset has no manifest; it is also
// store.ErrNotFound (errors.Is), so servers map both to "not found".
var ErrNoDataset error = noDataset{}

type noDataset struct{}

func (noDataset) Error() string { return "no such dataset" }
func (noDataset) Unwrap() error { return store.ErrNotFound }

// maxManifestBytes bounds what ReadManifest accepts.
const maxManifestBytes = 16 << 20

// ReadManifest reads a dataset's manifest. A dataset without one (missing or
// still being written) gives an error wrapping ErrNoDataset and
// store.ErrNotFound.
func ReadManifest(ctx context.Context, st store.Store, dataset string) (*Manifest, error) {
	if err := CheckName("dataset", dataset); err != nil {
		return nil, err
	}
	rc, err := st.Get(ctx, ManifestKey(dataset))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w %q in %s", ErrNoDataset, dataset, st)
	}
	if err != nil {
		return nil, fmt.Errorf("dataset %s: manifest: %w", dataset, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("dataset %s: reading manifest: %w", dataset, err)
	}
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("dataset: manifest of %s is over %d bytes", dataset, maxManifestBytes)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("dataset: manifest of %s: %w", dataset, err)
	}
	if m.SchemaVersion > SchemaVersion {
		return nil, fmt.Errorf("dataset: dataset %s has schema version %d; this tdb reads up to %d (upgrade tdb)", dataset, m.SchemaVersion, SchemaVersion)
	}
	return &m, nil
}
