package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"tdb/dataset"
	"tdb/model"
	"tdb/model/hub"
	"tdb/store"
)

func init() {
	register("demo", "the main job in one command: pull GPT-2 small, collate the built-in corpora, serve the viewer and the query API", cmdDemo)
}

// demoCorpora are the built-in corpora the demo collates, one dataset each.
var demoCorpora = []struct{ name, spec string }{
	{"ioi", "synthetic:ioi"},
	{"facts", "synthetic:facts"},
}

// cmdDemo composes the real commands (model resolution, tdb collate, tdb
// serve) with settings that finish in minutes on a laptop; a second run finds
// the model in the cache and the datasets in the store and goes straight to
// serving.
func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	modelName := modelFlag(fs, "model: hub name, local folder, or random:gpt2 / random:tiny (random weights, offline)")
	storeURL := storeFlag(fs, "store for the datasets")
	docs := fs.Int("docs", 2000, "documents per built-in corpus")
	addr := envString(fs, "addr", "TDB_ADDR", "127.0.0.1:8080", "listen address of the viewer and the query API")
	noServe := fs.Bool("no-serve", false, "stop after collation")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *docs < 1 {
		return usagef("--docs must be at least 1")
	}
	if !*noServe {
		// Fail before minutes of work if the port is taken.
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return usagef("cannot listen on %s (%v): pick another with --addr", *addr, err)
		}
		ln.Close()
	}

	fmt.Fprintf(stderr, "tdb demo: 1/3 model %s\n", *modelName)
	openCtx := ctx
	if !strings.HasPrefix(*modelName, "random:") && !hubReachable(ctx) {
		// Offline: the cache may still hold the model (read without any
		// request); if not, fail in seconds rather than after retries.
		var cancel context.CancelFunc
		openCtx, cancel = context.WithTimeout(ctx, 5*time.Second) // the cache is read without the network
		defer cancel()
	}
	if _, err := model.Open(openCtx, *modelName, stderr); err != nil {
		if errors.Is(err, model.ErrInvalid) || strings.HasPrefix(*modelName, "random:") {
			return err
		}
		return fmt.Errorf("%w\n(no network, or the hub is unreachable? `tdb demo --model random:tiny` runs offline on random weights)", err)
	}

	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return usageError{err}
	}
	var names []string
	for i, c := range demoCorpora {
		name := demoDataset(*modelName, c.name)
		names = append(names, name)
		if _, err := dataset.ReadManifest(ctx, st, name); err == nil {
			fmt.Fprintf(stderr, "tdb demo: %d/3 dataset %s is in %s already\n", 2, name, st)
			continue
		} else if !errors.Is(err, dataset.ErrNoDataset) {
			return err
		}
		fmt.Fprintf(stderr, "tdb demo: 2/3 collating %s (%d of %d): MLP neurons and attention heads of every layer\n", name, i+1, len(demoCorpora))
		if err := cmdCollate(ctx, []string{
			"--model", *modelName, "--store", *storeURL, "--dataset", name,
			"--corpus", c.spec + "?docs=" + strconv.Itoa(*docs),
			"--locations", "mlp.post_act,attn.heads",
		}, stdout, stderr); err != nil {
			return err
		}
	}
	if *noServe {
		fmt.Fprintf(stdout, "datasets %s are in %s; serve them with: tdb serve --model %s --store %s --dataset %s\n",
			strings.Join(names, ", "), st, *modelName, *storeURL, strings.Join(names, " --dataset "))
		return nil
	}
	fmt.Fprintf(stderr, "tdb demo: 3/3 serving the viewer and the query API\n")
	serveArgs := []string{"--model", *modelName, "--store", *storeURL, "--addr", *addr}
	for _, n := range names {
		serveArgs = append(serveArgs, "--dataset", n)
	}
	return cmdServe(ctx, serveArgs, stdout, stderr)
}

// hubReachable reports whether the model hub answers within a few seconds.
func hubReachable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, hub.Endpoint(), nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// demoDataset names the demo's dataset of one corpus for one model, so that
// demos of different models share a store without clashing.
func demoDataset(modelName, corpus string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(modelName) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return "demo-" + strings.Trim(b.String(), "-") + "-" + corpus
}
