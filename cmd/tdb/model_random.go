package main

import (
	"context"
	"fmt"
	"io"

	"tdb/model"
)

func init() {
	register("model random", "write random GPT-2-shaped weights (for benchmarks; they predict nothing)", cmdModelRandom)
}

func cmdModelRandom(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("model random", stderr)
	preset := fs.String("config", "gpt2", "shape: gpt2, gpt2-medium, gpt2-large, gpt2-xl or tiny")
	seed := fs.Uint64("seed", 1, "random seed")
	out := fs.String("out", "", "output folder (config.json + model.safetensors)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out DIR is required")
	}
	cfg, _, err := model.RandomConfig("random:" + *preset)
	if err != nil {
		return usagef("unknown --config %q (gpt2, gpt2-medium, gpt2-large, gpt2-xl, tiny)", *preset)
	}
	m, err := model.NewRandom(cfg, *seed)
	if err != nil {
		return err
	}
	if err := m.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "WARNING: these are RANDOM weights (%s shape, seed %d, %.0fM parameters): every output of this model is meaningless.\n", *preset, *seed, float64(m.Params())/1e6)
	fmt.Fprintln(stdout, *out)
	return nil
}
