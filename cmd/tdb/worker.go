package main

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"tdb/internal/natsx"
	"tdb/internal/service"
)

func init() {
	register("worker", "run collation workers against a NATS JetStream cluster", cmdWorker)
}

func cmdWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("worker", stderr)
	natsURL := fs.String("nats", envOr("TDB_NATS", "nats://127.0.0.1:4222"), "NATS URL ($TDB_NATS)")
	storeURL := fs.String("store", envOr("TDB_STORE", "./tdb-data"), "store for partials ($TDB_STORE)")
	metricsAddr := fs.String("metrics-addr", envOr("TDB_METRICS_ADDR", ":9091"), "Prometheus /metrics address, empty to disable ($TDB_METRICS_ADDR)")
	workers := fs.Int("workers", 1, "shards computed at once by this process (each forward pass already uses every core)")
	name := fs.String("name", envOr("TDB_WORKER_NAME", ""), "worker name in records and logs (default hostname-pid) ($TDB_WORKER_NAME)")
	jsonLogs := fs.Bool("json-logs", false, "log JSON lines")
	workerMemory := fs.String("worker-memory", "", "this process's memory, e.g. 24GB or 24GiB (default: the machine's, or its container's limit): the Go soft memory limit, so garbage is collected before the heap outgrows it; submit jobs with a --worker-memory that fits it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *workers < 1 {
		return usagef("--workers must be at least 1")
	}
	mem, err := workerBudget(*workerMemory, false, 1)
	if err != nil {
		return err
	}
	setMemoryLimit(mem)
	log := service.NewLogger(stderr, *jsonLogs, slog.LevelInfo)
	st, reg, err := openServiceBase(ctx, *storeURL, *metricsAddr, log)
	if err != nil {
		return err
	}
	errs := make(chan error, *workers)
	var wg sync.WaitGroup
	startServices(ctx, &wg, errs, serviceOptions{dial: natsx.RetryDialer(*natsURL, log), store: st, workers: *workers, log: log, reg: reg, name: *name})
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
