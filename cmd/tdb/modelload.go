package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"tdb/kernels"
	"tdb/model"
	"tdb/model/hub"
)

// loadModel resolves --model: a local folder, a hub name (pulled on first
// use), or "random:<preset>" (random GPT-2-shaped weights, seed 1, for trying
// things without a download; announced loudly because they predict nothing).
func loadModel(ctx context.Context, name string, stderr io.Writer) (*model.Model, error) {
	kernels.Install()
	if preset, ok := strings.CutPrefix(name, "random:"); ok {
		cfg, ok := model.Presets[preset]
		if !ok {
			if preset != "tiny" {
				return nil, usagef("unknown random preset %q (gpt2, gpt2-medium, gpt2-large, gpt2-xl, tiny)", preset)
			}
			cfg = model.TinyConfig
		}
		fmt.Fprintf(stderr, "WARNING: using RANDOM %s-shaped weights: outputs are meaningless (for benchmarks and trying the pipeline)\n", preset)
		return model.NewRandom(cfg, 1)
	}
	dir, err := hub.Resolve(ctx, name, stderr)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	m, err := model.Load(dir)
	if err != nil {
		return nil, err
	}
	if m.Random {
		fmt.Fprintf(stderr, "WARNING: %s holds RANDOM weights (made by tdb model random): outputs are meaningless\n", dir)
	}
	if d := time.Since(start); d > 2*time.Second {
		fmt.Fprintf(stderr, "loaded %s (%.0fM parameters) in %s\n", dir, float64(m.Params())/1e6, d.Round(time.Millisecond))
	}
	return m, nil
}
