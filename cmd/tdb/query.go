package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"tdb/internal/service"
	"tdb/model/tokenizer"
	"tdb/query"
	"tdb/store"
)

func init() {
	register("query", "serve the datasets of a store over the HTTP query API (/api/v1, docs/api.md)", cmdQuery)
	register("export", "write one layer of a dataset as gzipped JSONL (one component per line, as the API's export)", cmdExport)
}

func cmdQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("query", stderr)
	storeURL := storeFlag(fs, "store holding the datasets")
	addr := fs.String("addr", "127.0.0.1:8081", "listen address (127.0.0.1: this machine only)")
	cacheBytes := fs.Int64("cache-bytes", 256<<20, "bound of the cache of decoded row groups and rendered answers")
	authToken := secretFlag(fs, "auth-token", "TDB_AUTH_TOKEN", "require Authorization: Bearer `TOKEN`")
	cors := fs.String("cors-origin", "", "comma-separated origins allowed to call the API from a browser (* for any)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on one request's store reads")
	explTTL := fs.Duration("explanations-ttl", query.DefaultExplanationsTTL, "how long stored explanations are cached (tdb explain may add more; negative: not cached)")
	jsonLogs := fs.Bool("json-logs", false, "log JSON lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *explTTL == 0 {
		*explTTL = -1
	}
	if *cacheBytes <= 0 {
		return usagef("--cache-bytes must be positive")
	}
	log := service.NewLogger(stderr, *jsonLogs, slog.LevelInfo)
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	reg := service.NewRegistry()
	var origins []string
	for _, o := range strings.Split(*cors, ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	api, err := query.New(st, query.Options{CacheBytes: *cacheBytes, AuthToken: *authToken, CORSOrigins: origins,
		Timeout: *timeout, ExplanationsTTL: *explTTL, Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(query.Prefix+"/", api)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	// /metrics goes behind --auth-token as the API does (internal/service's
	// mux serves it openly).
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.Protect(metrics).ServeHTTP(w, r)
	}))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 10 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "tdb query: serving %s on http://%s%s/ (datasets, docs: %s/openapi.json)\n", st, ln.Addr(), query.Prefix, query.Prefix)
	return service.ServeUntil(ctx, srv, ln, 10*time.Second)
}

func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", stderr)
	storeURL := storeFlag(fs, "store holding the dataset")
	name := fs.String("dataset", "", "dataset name")
	location := fs.String("location", "mlp.post_act", "location")
	layer := fs.Int("layer", 0, "layer")
	out := fs.String("out", "", "output file (.jsonl.gz); - for stdout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" || *out == "" {
		return usagef("--dataset and --out are required")
	}
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		return err
	}
	r := query.NewReader(st, query.TokenStrings(tok), 64<<20)
	if *out == "-" {
		return r.Export(ctx, stdout, *name, *location, *layer)
	}
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".export-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := r.Export(ctx, tmp, *name, *location, *layer); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "tdb export: wrote %s\n", *out)
	return nil
}
