package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"tdb/model"
	"tdb/model/hub"
)

// RandomPrefix marks a model name meaning "GPT-2-shaped random weights".
const RandomPrefix = "random:"

// RandomSeed is the seed of random:<preset> weights, fixed so that every
// worker builds the same model.
const RandomSeed = 1

// RandomConfig returns the shape named by a random:<preset> model name
// (ok false if name is not one).
func RandomConfig(name string) (cfg model.Config, ok bool, err error) {
	preset, isRandom := strings.CutPrefix(name, RandomPrefix)
	if !isRandom {
		return model.Config{}, false, nil
	}
	if preset == "tiny" {
		return model.TinyConfig, true, nil
	}
	if c, found := model.Presets[preset]; found {
		return c, true, nil
	}
	names := []string{"tiny"}
	for n := range model.Presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return model.Config{}, true, fmt.Errorf("model %q: unknown preset %q (have %s)", name, preset, strings.Join(names, ", "))
}

// LoadModel resolves a model name: random:<preset> builds random weights
// (with a warning: they predict nothing), anything else is a local folder or
// a hub name (downloaded into the cache on first use; progress may be nil).
func LoadModel(ctx context.Context, name string, progress io.Writer, log *slog.Logger) (*model.Model, error) {
	cfg, isRandom, err := RandomConfig(name)
	if err != nil {
		return nil, err
	}
	if isRandom {
		if log != nil {
			log.Warn("RANDOM WEIGHTS: the model is GPT-2-shaped but untrained; collated activations are for testing the pipeline only", "model", name)
		}
		return model.NewRandom(cfg, RandomSeed)
	}
	dir, err := hub.Resolve(ctx, name, progress)
	if err != nil {
		return nil, err
	}
	m, err := model.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("loading model %s: %w", name, err)
	}
	return m, nil
}

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

// Get loads a model by name (see LoadModel) or returns the cached one.
func (c *ModelCache) Get(ctx context.Context, name string) (*model.Model, error) {
	c.mu.Lock()
	e, ok := c.models[name]
	if !ok {
		e = &modelEntry{}
		c.models[name] = e
		c.order = append(c.order, name)
		for len(c.order) > c.max {
			delete(c.models, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.mu.Unlock()
	e.once.Do(func() { e.m, e.err = LoadModel(ctx, name, nil, c.log) })
	if e.err != nil {
		c.mu.Lock()
		if c.models[name] == e {
			delete(c.models, name) // let a later shard retry (e.g. a download that failed)
			c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == name })
		}
		c.mu.Unlock()
	}
	return e.m, e.err
}
