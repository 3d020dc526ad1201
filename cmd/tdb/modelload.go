package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"tdb/kernels"
	"tdb/model"
	"tdb/worker"
)

// loadModel resolves --model: a local folder, a hub name (pulled on first
// use), or "random:<preset>" (random GPT-2-shaped weights, seed 1, for trying
// things without a download; announced loudly because they predict nothing).
func loadModel(ctx context.Context, name string, stderr io.Writer) (*model.Model, error) {
	kernels.Install()
	_, isRandom, err := worker.RandomConfig(name)
	if err != nil {
		return nil, usageError{err}
	}
	start := time.Now()
	m, err := worker.LoadModel(ctx, name, stderr, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case isRandom:
		fmt.Fprintf(stderr, "WARNING: %s: RANDOM GPT-2-shaped weights, outputs are meaningless (for benchmarks and trying the pipeline)\n", name)
	case m.Random:
		fmt.Fprintf(stderr, "WARNING: %s holds RANDOM weights (made by tdb model random): outputs are meaningless\n", name)
	}
	if d := time.Since(start); d > 2*time.Second {
		fmt.Fprintf(stderr, "loaded %s (%.0fM parameters) in %s\n", name, float64(m.Params())/1e6, d.Round(time.Millisecond))
	}
	return m, nil
}
