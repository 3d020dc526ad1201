package collate

import (
	"fmt"

	"tdb/dataset"
)

// Config holds the collation settings of a job (the manifest records them
// as dataset.Settings(cfg)). Every shard of a job must use the same Config:
// partials with different settings refuse to merge. Bigger quantile pools
// make short buckets rarer and cost memory.
type Config dataset.Settings

// DefaultConfig returns the settings of the public datasets: top 32, 16
// random records, 10 quantile buckets of 5 and a pool of 150.
func DefaultConfig() Config {
	return Config{TopK: 32, RandomK: 16, QuantileBuckets: 10, PerBucket: 5, QuantilePool: 150, Seed: 0}
}

// limits keep partials decodable and memory sane.
const (
	maxTopK    = 1 << 14
	maxBuckets = dataset.MaxQuantileBuckets
)

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.TopK < 0 || c.TopK > maxTopK:
		return fmt.Errorf("collate: top-k %d out of range [0, %d]", c.TopK, maxTopK)
	case c.RandomK < 0 || c.RandomK > c.QuantilePool:
		return fmt.Errorf("collate: random sample %d must be in [0, pool %d]", c.RandomK, c.QuantilePool)
	case c.QuantileBuckets < 0 || c.QuantileBuckets > maxBuckets:
		return fmt.Errorf("collate: quantile buckets %d out of range [0, %d]", c.QuantileBuckets, maxBuckets)
	case c.PerBucket < 0 || c.PerBucket > c.QuantilePool:
		return fmt.Errorf("collate: records per bucket %d must be in [0, pool %d]", c.PerBucket, c.QuantilePool)
	case c.QuantilePool < 0 || c.QuantilePool > maxTopK:
		return fmt.Errorf("collate: quantile pool %d out of range [0, %d]", c.QuantilePool, maxTopK)
	}
	return nil
}
