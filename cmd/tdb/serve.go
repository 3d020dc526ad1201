package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"tdb/compat"
	"tdb/explain"
	"tdb/internal/service"
	"tdb/query"
	"tdb/store"
	"tdb/viewer"
)

func init() {
	register("serve", "the web app: TDB sessions against the model and component pages over the datasets", cmdServe)
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	modelName := modelFlag(fs, "model: hub name, local folder, random:<preset>, or none (dataset pages only)")
	storeURL := envString(fs, "store", "TDB_STORE", "", "store holding the datasets; empty: no dataset pages")
	var datasets stringList
	fs.Var(&datasets, "dataset", "dataset the node table links to (repeatable; first match per location wins)")
	addr := envString(fs, "addr", "TDB_ADDR", "127.0.0.1:8080", "listen address (127.0.0.1 by default: only this machine)")
	token := secretFlag(fs, "auth-token", "TDB_AUTH_TOKEN", "require this bearer `token` on every request but /healthz")
	compatOpen := fs.Bool("compat-open", false, "serve /compat (the original TDB front end's API) without --auth-token: that app cannot send a token; anyone who reaches the port can then run the model through /compat (docs/compat.md)")
	workers := fs.Int("workers", 1, "model requests that run at once")
	queue := fs.Int("queue", 8, "model requests that may wait; beyond that the server answers 503 busy")
	timeout := fs.Duration("request-timeout", 2*time.Minute, "bound on one model request, waiting in the queue included")
	maxPrompt := fs.Int("max-prompt-tokens", 256, "longest prompt accepted, in tokens (at most the model's context)")
	mlpAE := fs.String("mlp-autoencoders", "", "MLP autoencoders: PATH_OR_NAME@LAYER[:LOCATION],... or a public name for every layer")
	attnAE := fs.String("attn-autoencoders", "", "attention autoencoders (resid.delta_attn): PATH_OR_NAME@LAYER,...")
	dropDead := fs.Bool("drop-dead-latents", false, "drop autoencoder latents that never fired in training")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *workers < 1 || *queue < 0 || *maxPrompt < 1 {
		return usagef("--workers and --max-prompt-tokens must be at least 1, --queue at least 0")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	// One registry: /metrics shows the viewer's and the query service's series.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opt := viewer.Options{ModelName: *modelName, Datasets: datasets, AuthToken: *token, Workers: *workers, Queue: *queue, MaxPromptTokens: *maxPrompt, RequestTimeout: *timeout, Log: log, Registry: reg, Autoencoders: map[string][]string{}}
	if *queue == 0 {
		opt.Queue = -1 // no waiting
	}
	if *modelName != "none" && *modelName != "" {
		eng, mlp, attn, err := openEngine(ctx, *modelName, *mlpAE, *attnAE, *dropDead, stderr)
		if err != nil {
			return err
		}
		for kind, aes := range map[string][]attachedAE{"mlp": mlp, "attention": attn} {
			for _, a := range aes {
				opt.Autoencoders[kind] = append(opt.Autoencoders[kind], fmt.Sprintf("%s@%d", a.loc, a.layer))
			}
		}
		opt.Engine = eng
	}
	var st store.Store
	if *storeURL != "" {
		var err error
		if st, err = store.Open(ctx, *storeURL); err != nil {
			return err
		}
		api, err := query.New(st, query.Options{Logger: log, Registerer: reg})
		if err != nil {
			return err
		}
		opt.Data = api
		opt.Explanations = func(ctx context.Context, dataset, location string, layer, index int) ([]explain.Explanation, error) {
			return explain.Read(ctx, st, dataset, location, layer, index)
		}
	}
	// The original TDB front end's API (docs/compat.md) shares the model
	// queue; it is built after the server that owns the queue.
	var compatAPI http.Handler
	opt.Mounts = map[string]http.Handler{compat.Prefix + "/": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { compatAPI.ServeHTTP(w, r) })}
	if *compatOpen {
		opt.OpenMounts = []string{compat.Prefix + "/"}
	}
	srv, err := viewer.New(opt)
	if err != nil {
		return err
	}
	compatAPI = compat.New(compat.Options{Engine: opt.Engine, Store: st, Datasets: datasets, Acquire: srv.Acquire, Logger: log, Explanations: compat.NewExplainStore(st)})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return usagef("--addr %s: %v", *addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: *timeout + 30*time.Second, IdleTimeout: 2 * time.Minute}
	url := "http://" + ln.Addr().String()
	if *token != "" {
		fmt.Fprintf(stdout, "tdb serve: listening on %s (auth token required: open %s/?token=... once)\n", url, url)
	} else {
		fmt.Fprintf(stdout, "tdb serve: listening on %s\n", url)
	}
	if *compatOpen && *token != "" {
		fmt.Fprintf(stderr, "WARNING: --compat-open: %s%s/ answers without the auth token (anyone who can reach %s can run the model and read the datasets through it)\n", url, compat.Prefix, url)
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); !strings.HasPrefix(host, "127.") && host != "::1" && *token == "" {
		fmt.Fprintf(stderr, "WARNING: tdb serve listens on %s without --auth-token: anyone who can reach it can run the model\n", host)
	}
	return service.ServeUntil(ctx, hs, ln, 5*time.Second)
}
