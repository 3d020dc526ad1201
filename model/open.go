package model

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"tdb/model/hub"
)

// randomPrefix marks a model name meaning "GPT-2-shaped random weights".
const randomPrefix = "random:"

// randomSeed is the seed of random:<preset> weights, fixed so that every
// process (every worker of a job) builds the same model.
const randomSeed = 1

// ErrUnknownPreset is returned (wrapped) for random:<preset> with a preset
// that is neither tiny nor one of Presets: a mistake in the input.
var ErrUnknownPreset = errors.New("unknown preset")

// RandomConfig returns the shape named by a random:<preset> model name
// (isRandom false, and no error, if name is not one).
func RandomConfig(name string) (cfg Config, isRandom bool, err error) {
	preset, isRandom := strings.CutPrefix(name, randomPrefix)
	if !isRandom {
		return Config{}, false, nil
	}
	if preset == "tiny" {
		return TinyConfig, true, nil
	}
	if c, found := Presets[preset]; found {
		return c, true, nil
	}
	names := []string{"tiny"}
	for n := range Presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return Config{}, true, invalid(fmt.Errorf("model %q: %w %q (have %s)", name, ErrUnknownPreset, preset, strings.Join(names, ", ")))
}

// Open resolves what a user names a model by: random:<preset> builds random
// GPT-2-shaped weights (seed 1); anything else is a local folder or a hub
// name, downloaded into the cache on first use. Random weights predict
// nothing, so Open says so loudly on progress (nil: silent; the returned
// model's Random field tells the caller either way), as it does for a
// folder written by `tdb model random`. progress also receives the
// download's progress bar.
func Open(ctx context.Context, name string, progress io.Writer) (*Model, error) {
	cfg, isRandom, err := RandomConfig(name)
	if err != nil {
		return nil, err
	}
	if isRandom {
		m, err := NewRandom(cfg, randomSeed)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			fmt.Fprintf(progress, "WARNING: %s: RANDOM GPT-2-shaped weights, outputs are meaningless (for benchmarks and trying the pipeline)\n", name)
		}
		return m, nil
	}
	dir, err := resolve(ctx, name, progress)
	if err != nil {
		return nil, err
	}
	m, err := Load(dir)
	if err != nil && dir != name { // Load names the files; add the hub name they came from
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	if err != nil {
		return nil, err
	}
	if m.Random && progress != nil {
		fmt.Fprintf(progress, "WARNING: %s holds RANDOM weights (made by tdb model random): outputs are meaningless\n", name)
	}
	return m, nil
}

// InspectName resolves a model name as Open does (a hub name is pulled into
// the cache on first use) and checks the checkpoint with Inspect, without
// reading its weights. random:<preset> needs no file: its shape is returned.
// Errors in what the user named wrap ErrInvalid (or ErrUnknownPreset).
func InspectName(ctx context.Context, name string, progress io.Writer) (Config, error) {
	cfg, isRandom, err := RandomConfig(name)
	if err != nil || isRandom {
		return cfg, err
	}
	dir, err := resolve(ctx, name, progress)
	if err != nil {
		return Config{}, err
	}
	cfg, err = Inspect(dir)
	if err != nil && dir != name {
		return Config{}, fmt.Errorf("model %s: %w", name, err)
	}
	return cfg, err
}

// KnownShape is the shape of a hub name of OpenAI's GPT-2 checkpoints
// ("gpt2-xl", "openai-community/gpt2-xl@main", ...) without fetching
// anything: those repositories' configs are the presets. A submitter that
// cannot (or need not) download the model, as with a cluster, can still
// size and check the job. Any other name is not known (false).
func KnownShape(name string) (Config, bool) {
	ref, err := hub.ParseName(name, "")
	if err != nil {
		return Config{}, false
	}
	preset, ok := strings.CutPrefix(ref.Repo, "openai-community/")
	if !ok {
		return Config{}, false
	}
	cfg, ok := Presets[preset]
	return cfg, ok
}

// resolve is hub.Resolve, with names that can never resolve (malformed, a
// missing folder, a repository the hub does not have) marked ErrInvalid.
func resolve(ctx context.Context, name string, progress io.Writer) (string, error) {
	dir, err := hub.Resolve(ctx, name, progress)
	if errors.Is(err, hub.ErrBadName) || errors.Is(err, hub.ErrNotFound) {
		return "", invalid(err)
	}
	return dir, err
}
