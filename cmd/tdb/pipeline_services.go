package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"tdb/internal/natsutil"
	"tdb/model/hub"
	"tdb/store"
)

func init() {
	register("coordinator", "run the collation coordinator service against a NATS JetStream cluster", cmdCoordinator)
	register("worker", "run collation workers against a NATS JetStream cluster", cmdWorker)
	register("nats-server", "run an embedded NATS server with JetStream (for development and tests; production uses nats-server)", cmdNatsServer)
}

// serviceLogger logs JSON lines at info level, as services usually do.
func serviceLogger(stderr io.Writer, jsonLogs bool) *slog.Logger {
	if jsonLogs {
		return slog.New(slog.NewJSONHandler(stderr, nil))
	}
	return slog.New(slog.NewTextHandler(stderr, nil))
}

func cmdCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("coordinator", stderr)
	natsURL := fs.String("nats", envOr("TDB_NATS", "nats://127.0.0.1:4222"), "NATS URL ($TDB_NATS)")
	storeURL := fs.String("store", envOr("TDB_STORE", "./tdb-data"), "store for partials and datasets ($TDB_STORE)")
	metricsAddr := fs.String("metrics-addr", envOr("TDB_METRICS_ADDR", ":9090"), "Prometheus /metrics address, empty to disable ($TDB_METRICS_ADDR)")
	ackWait := fs.Duration("ack-wait", 30*time.Second, "time a shard may go without an (in-progress) ack before it is redelivered")
	maxDeliver := fs.Int("max-deliver", 5, "deliveries of a shard before its job fails")
	replicas := fs.Int("replicas", 1, "stream and KV replicas (3 on a production cluster)")
	sweep := fs.Duration("sweep", 5*time.Second, "how often lost shards are checked and queue metrics refreshed")
	keep := fs.Bool("keep-partials", false, "keep shard partials after the merge")
	jsonLogs := fs.Bool("json-logs", false, "log JSON lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := serviceLogger(stderr, *jsonLogs)
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	reg := natsutil.NewRegistry()
	if *metricsAddr != "" {
		if _, err := natsutil.ServeMetrics(ctx, *metricsAddr, reg, log); err != nil {
			return err
		}
	}
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	startServices(ctx, &wg, errs, serviceOptions{dial: natsutil.RetryDialer(*natsURL, log), store: st, coordinator: true, log: log, reg: reg,
		queue: natsutil.QueueConfig{AckWait: *ackWait, MaxDeliver: *maxDeliver, Replicas: *replicas}, keep: *keep, sweep: *sweep})
	wg.Wait()
	return <-errs
}

func cmdWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("worker", stderr)
	natsURL := fs.String("nats", envOr("TDB_NATS", "nats://127.0.0.1:4222"), "NATS URL ($TDB_NATS)")
	storeURL := fs.String("store", envOr("TDB_STORE", "./tdb-data"), "store for partials ($TDB_STORE)")
	metricsAddr := fs.String("metrics-addr", envOr("TDB_METRICS_ADDR", ":9091"), "Prometheus /metrics address, empty to disable ($TDB_METRICS_ADDR)")
	workers := fs.Int("workers", 1, "shards computed at once by this process (each forward pass already uses every core)")
	name := fs.String("name", envOr("TDB_WORKER_NAME", ""), "worker name in records and logs (default hostname-pid) ($TDB_WORKER_NAME)")
	jsonLogs := fs.Bool("json-logs", false, "log JSON lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *workers < 1 {
		return usagef("--workers must be at least 1")
	}
	// TDB_TEST_SHARD_DELAY is for tests only: every shard waits this long
	// (sending in-progress acks) before computing, so a test can kill a
	// worker in the middle of a shard.
	var delay time.Duration
	if v := os.Getenv("TDB_TEST_SHARD_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return usagef("TDB_TEST_SHARD_DELAY=%q: %v", v, err)
		}
		delay = d
	}
	log := serviceLogger(stderr, *jsonLogs)
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	reg := natsutil.NewRegistry()
	if *metricsAddr != "" {
		if _, err := natsutil.ServeMetrics(ctx, *metricsAddr, reg, log); err != nil {
			return err
		}
	}
	errs := make(chan error, *workers)
	var wg sync.WaitGroup
	startServices(ctx, &wg, errs, serviceOptions{dial: natsutil.RetryDialer(*natsURL, log), store: st, workers: *workers, log: log, reg: reg,
		shardDelay: delay, name: *name})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func cmdNatsServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("nats-server", stderr)
	listen := fs.String("listen", "127.0.0.1:4222", "client address host:port (port 0: any free port)")
	dir := fs.String("dir", envOr("TDB_NATS_DIR", filepath.Join(hub.CacheDir(), "nats")), "JetStream data folder ($TDB_NATS_DIR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	emb, err := natsutil.StartEmbedded(natsutil.EmbeddedOptions{Dir: *dir, Listen: *listen})
	if err != nil {
		return err
	}
	defer emb.Shutdown()
	fmt.Fprintln(stdout, emb.URL())
	fmt.Fprintf(stderr, "NATS with JetStream at %s (data in %s); Ctrl-C stops it\n", emb.URL(), *dir)
	<-ctx.Done()
	return nil
}
