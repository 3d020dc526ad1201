package main

import (
	"context"
	"fmt"
	"io"

	"tdb/model/hub"
)

func init() {
	register("model pull", "download a GPT-2 checkpoint from the Hugging Face hub into the cache", cmdModelPull)
}

// cmdModelPull implements "tdb model pull NAME [--revision R]": it downloads
// config.json and model.safetensors (resuming an interrupted download),
// draws the progress bar on stderr and prints the cache folder on stdout, so
// scripts can do dir=$(tdb model pull gpt2).
func cmdModelPull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("model pull", stderr)
	revision := fs.String("revision", "", "branch, tag or commit to download (default main; NAME@REV also works)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: tdb model pull NAME [--revision R]\n\n"+
			"NAME is gpt2, gpt2-medium, gpt2-large, gpt2-xl or a hub repo id (owner/name).\n"+
			"Files go to %s ($TDB_CACHE_DIR); the hub is %s ($TDB_HF_ENDPOINT);\n"+
			"$HF_TOKEN is sent for gated or private models.\n\nflags:\n", hub.CacheDir(), hub.Endpoint())
		fs.PrintDefaults()
	}
	// Flags may come before or after NAME.
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var names []string
	for fs.NArg() > 0 {
		names = append(names, fs.Arg(0))
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return err
		}
	}
	switch len(names) {
	case 0:
		return usagef("missing model NAME (gpt2, gpt2-medium, gpt2-large, gpt2-xl or owner/name)")
	case 1:
	default:
		return usagef("want one model NAME, got %d: %q", len(names), names)
	}
	if _, err := hub.ParseName(names[0], *revision); err != nil {
		return usageError{err}
	}
	dir, err := hub.Pull(ctx, names[0], hub.PullOptions{Revision: *revision, Progress: stderr})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, dir)
	return nil
}
