package coordinator

import (
	"fmt"
	"strings"

	"tdb/internal/natsutil"
	"tdb/store"
)

// Defaults of a job spec.
const (
	DefaultNCtx      = 64
	DefaultTopK      = 32
	DefaultRandomK   = 16
	DefaultBuckets   = 10
	DefaultPerBucket = 5
	// DefaultTokensPerShard: a shard's partials are bounded by the
	// components (top-k and pool records), not by its tokens, so a longer
	// shard writes fewer partial bytes per token (13 KB/token for all
	// GPT-2 small neurons at this size, 26 at 1<<16) and keeps fewer
	// records per token; it costs no more memory, only more work to redo
	// when a worker dies (about 2.5 minutes of a 2-core CPU for GPT-2 small).
	DefaultTokensPerShard = 1 << 17
	DefaultBatchSize      = 8
)

// Normalize fills defaults and checks
// the parts of a spec that need no model or corpus. It sets ID to the
// default id when empty.
func Normalize(s natsutil.JobSpec) (natsutil.JobSpec, error) {
	if s.NCtx == 0 {
		s.NCtx = DefaultNCtx
	}
	if s.TokensPerShard == 0 {
		s.TokensPerShard = DefaultTokensPerShard
	}
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
	}
	switch {
	case strings.TrimSpace(s.Model) == "":
		return s, fmt.Errorf("job spec: no model")
	case strings.TrimSpace(s.Corpus) == "":
		return s, fmt.Errorf("job spec: no corpus")
	case len(s.Locations) == 0 && len(s.Autoencoders) == 0:
		return s, fmt.Errorf("job spec: no locations")
	case s.NCtx < 1:
		return s, fmt.Errorf("job spec: n_ctx %d must be positive", s.NCtx)
	case s.TopK < 0 || s.RandomK < 0 || s.Buckets < 0 || s.PerBucket < 0:
		return s, fmt.Errorf("job spec: sample sizes must not be negative")
	case s.TokensPerShard < int64(s.NCtx):
		return s, fmt.Errorf("job spec: tokens per shard %d is less than one window of %d", s.TokensPerShard, s.NCtx)
	case s.BatchSize < 1:
		return s, fmt.Errorf("job spec: batch size %d must be positive", s.BatchSize)
	}
	for i, l := range s.Locations {
		s.Locations[i] = strings.TrimSpace(l)
		if s.Locations[i] == "" {
			return s, fmt.Errorf("job spec: empty location in %q", strings.Join(s.Locations, ","))
		}
	}
	if hasDup(s.Locations) {
		return s, fmt.Errorf("job spec: a location is listed twice in %q", strings.Join(s.Locations, ","))
	}
	if err := ValidateDatasetName(s.Dataset); err != nil {
		return s, err
	}
	if s.ID == "" {
		s.ID = s.DefaultID()
	}
	if err := natsutil.ValidateJobID(s.ID); err != nil {
		return s, err
	}
	return s, nil
}

func hasDup(xs []string) bool {
	seen := map[string]bool{}
	for _, x := range xs {
		if seen[x] {
			return true
		}
		seen[x] = true
	}
	return false
}

// ValidateDatasetName checks that name is one store key segment.
func ValidateDatasetName(name string) error {
	if name == "" {
		return fmt.Errorf("no dataset name")
	}
	if strings.Contains(name, "/") || store.ValidateKey("datasets/"+name) != nil {
		return fmt.Errorf("dataset name %q: want one path segment of letters, digits, '.', '-' or '_'", name)
	}
	return nil
}
