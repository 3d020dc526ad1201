package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"tdb/internal/service"
	"tdb/model/tokenizer"
	"tdb/neuronviewer"
	"tdb/store"
)

func init() {
	register("import neuron-viewer", "import the public neuron-viewer format ({layer}/{index}.json) as a dataset", cmdImportNeuronViewer)
}

func cmdImportNeuronViewer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import neuron-viewer", stderr)
	from := fs.String("from", "", "source: a folder, or an Azure Blob URL (read anonymously unless AZURE_STORAGE_* is set) holding {layer}/{index}.json")
	storeURL := storeFlag(fs, "store to write the dataset to")
	name := fs.String("dataset", "", "dataset name")
	location := fs.String("location", "mlp.post_act", "location the components are stored at")
	layersFlag := fs.String("layers", "", "comma-separated layers (default: every layer folder)")
	model := fs.String("model", "gpt2", "subject model name recorded in the manifest")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || *name == "" {
		return usagef("--from and --dataset are required")
	}
	var layers []int
	for _, s := range strings.Split(*layersFlag, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		l, err := strconv.Atoi(s)
		if err != nil || l < 0 {
			return usagef("--layers: %q is not a layer number", s)
		}
		layers = append(layers, l)
	}
	src, err := store.Open(ctx, *from)
	if err != nil {
		return err
	}
	dst, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		return err
	}
	m, err := neuronviewer.Import(ctx, src, dst, tok, neuronviewer.Options{Dataset: *name, Location: *location, Layers: layers,
		Model: *model, From: *from, Log: service.NewLogger(stderr, false, slog.LevelInfo)})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dataset %s written to %s: %s layers %v, %d components each\n", m.Name, dst, m.Locations[0].Name, m.Locations[0].Layers, m.Locations[0].Components)
	return nil
}
