package worker

import (
	"context"
	"log/slog"
	"slices"
	"sync"

	"tdb/model"
)

// ModelCache keeps the most recently used models of a worker process, so
// consecutive shards (and jobs) on the same model load it once. Workers of
// one process share a cache (the weights are read-only). It is safe for
// concurrent use.
type ModelCache struct {
	mu     sync.Mutex
	max    int
	order  []string
	models map[string]*modelEntry
	log    *slog.Logger
}

type modelEntry struct {
	once sync.Once
	m    *model.Model
	err  error
}

// NewModelCache keeps up to n models (at least one).
func NewModelCache(n int, log *slog.Logger) *ModelCache {
	n = max(n, 1)
	return &ModelCache{max: n, models: map[string]*modelEntry{}, log: log}
}

// Get loads a model by name (see model.Open) or returns the cached one.
func (c *ModelCache) Get(ctx context.Context, name string) (*model.Model, error) {
	return c.GetVersion(ctx, name, "")
}

// GetVersion is Get for a given version of the model's files (a hash of
// their digests): a folder whose weights were replaced is loaded again,
// never served from the cache under its old content.
func (c *ModelCache) GetVersion(ctx context.Context, name, version string) (*model.Model, error) {
	key := name
	if version != "" {
		key += "\x00" + version
	}
	c.mu.Lock()
	e, ok := c.models[key]
	if !ok {
		e = &modelEntry{}
		c.models[key] = e
		c.order = append(c.order, key)
		for len(c.order) > c.max {
			delete(c.models, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.mu.Unlock()
	e.once.Do(func() { e.m, e.err = c.load(ctx, name) })
	if e.err != nil {
		c.mu.Lock()
		if c.models[key] == e {
			delete(c.models, key) // let a later shard retry (e.g. a download that failed)
			c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == key })
		}
		c.mu.Unlock()
	}
	return e.m, e.err
}

// load opens a model, logging loudly when its weights are random.
func (c *ModelCache) load(ctx context.Context, name string) (*model.Model, error) {
	m, err := model.Open(ctx, name, nil)
	if err == nil && m.Random && c.log != nil {
		c.log.Warn("RANDOM WEIGHTS: the model is GPT-2-shaped but untrained; collated activations are for testing the pipeline only", "model", name)
	}
	return m, err
}
