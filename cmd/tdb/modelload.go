package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"tdb/autoencoder"
	"tdb/debugger"
	"tdb/model"
)

// loadModel resolves --model through model.Open (a local folder, a hub name
// pulled on first use, or "random:<preset>", announced loudly on stderr) and
// says how long a slow load took.
func loadModel(ctx context.Context, name string, stderr io.Writer) (*model.Model, error) {
	start := time.Now()
	m, err := model.Open(ctx, name, stderr)
	if errors.Is(err, model.ErrUnknownPreset) || errors.Is(err, model.ErrInvalid) {
		return nil, usageError{err} // a bad name, folder or checkpoint: exit 2
	}
	if err != nil {
		return nil, err
	}
	if d := time.Since(start); d > 2*time.Second {
		fmt.Fprintf(stderr, "loaded %s (%.0fM parameters) in %s\n", name, float64(m.Params())/1e6, d.Round(time.Millisecond))
	}
	return m, nil
}

// badInput turns errors about what the user gave (a bad checkpoint or
// autoencoder, tokens the model cannot take, a debugger request the engine
// refuses) into usage errors, exit code 2; anything else passes unchanged.
func badInput(err error) error {
	var bad debugger.BadRequest
	if err != nil && (errors.Is(err, model.ErrInvalid) || errors.Is(err, autoencoder.ErrInvalid) || errors.As(err, &bad)) {
		return usageError{err}
	}
	return err
}
