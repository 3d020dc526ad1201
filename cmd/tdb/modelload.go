package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"tdb/model"
)

// loadModel resolves --model through model.Open (a local folder, a hub name
// pulled on first use, or "random:<preset>", announced loudly on stderr) and
// says how long a slow load took.
func loadModel(ctx context.Context, name string, stderr io.Writer) (*model.Model, error) {
	start := time.Now()
	m, err := model.Open(ctx, name, stderr)
	if errors.Is(err, model.ErrUnknownPreset) {
		return nil, usageError{err}
	}
	if err != nil {
		return nil, err
	}
	if d := time.Since(start); d > 2*time.Second {
		fmt.Fprintf(stderr, "loaded %s (%.0fM parameters) in %s\n", name, float64(m.Params())/1e6, d.Round(time.Millisecond))
	}
	return m, nil
}
