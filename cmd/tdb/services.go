package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tdb/coordinator"
	"tdb/internal/natsx"
	"tdb/internal/service"
	"tdb/store"
	"tdb/worker"
)

// serviceFlags are the flags of the long-running services, tdb
// coordinator and tdb worker: the NATS cluster, the store, the metrics
// address and the log format.
type serviceFlags struct {
	nats, store, metricsAddr *string
	jsonLogs                 *bool
}

// addServiceFlags defines them; storeUsage says what the service keeps in
// the store, metricsAddr is its default /metrics address.
func addServiceFlags(fs *flag.FlagSet, storeUsage, metricsAddr string) serviceFlags {
	return serviceFlags{
		nats:        envString(fs, "nats", "TDB_NATS", "nats://127.0.0.1:4222", "NATS URL"),
		store:       storeFlag(fs, storeUsage),
		metricsAddr: envString(fs, "metrics-addr", "TDB_METRICS_ADDR", metricsAddr, "Prometheus /metrics address, empty to disable"),
		jsonLogs:    fs.Bool("json-logs", false, "log JSON lines"),
	}
}

// open does what every service command does first: it makes the logger,
// opens the store and, unless the metrics address is empty, serves a new
// metrics registry on it (with /healthz). The options it returns dial the
// cluster with retries; the caller says which services to run.
func (f serviceFlags) open(ctx context.Context, stderr io.Writer) (serviceOptions, error) {
	log := service.NewLogger(stderr, *f.jsonLogs, slog.LevelInfo)
	st, err := store.Open(ctx, *f.store)
	if err != nil {
		return serviceOptions{}, err
	}
	reg := service.NewRegistry()
	if *f.metricsAddr != "" {
		if _, err := service.ServeMetrics(ctx, *f.metricsAddr, reg, log); err != nil {
			return serviceOptions{}, err
		}
	}
	return serviceOptions{dial: natsx.RetryDialer(*f.nats, log), store: st, log: log, reg: reg}, nil
}

// serviceOptions are the services one tdb process runs: tdb coordinator,
// tdb worker, and tdb collate's embedded mode.
type serviceOptions struct {
	dial        natsx.Dialer
	store       store.Store
	workers     int
	coordinator bool
	queue       natsx.QueueConfig
	log         *slog.Logger
	reg         prometheus.Registerer
	keep        bool
	name        string
	sweep       time.Duration
	leaderTTL   time.Duration
	// memory is the process's memory, which its workers' tasks share
	// (worker.MemoryGate; 0: no gate).
	memory int64
}

// startServices runs a coordinator (if asked) and workers as goroutines;
// each reports its exit on errs.
func startServices(ctx context.Context, wg *sync.WaitGroup, errs chan<- error, o serviceOptions) {
	if o.coordinator {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := coordinator.Run(ctx, coordinator.Config{Dial: o.dial, Store: o.store, Queue: o.queue, Logger: o.log,
				Metrics: coordinator.NewMetrics(o.reg), KeepPartials: o.keep, SweepInterval: o.sweep, LeaderTTL: o.leaderTTL, CorpusOptions: corpusOptions(ctx)})
			if err != nil {
				err = fmt.Errorf("coordinator: %w", err)
			}
			errs <- err
		}()
	}
	if o.workers == 0 {
		return
	}
	models := worker.NewModelCache(1, o.log)
	metrics := worker.NewMetrics(o.reg)
	var gate *worker.MemoryGate
	if o.workers > 1 {
		gate = worker.NewMemoryGate(o.memory)
	}
	host, _ := os.Hostname()
	if o.name == "" {
		o.name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	for i := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := worker.Run(ctx, worker.Config{Name: fmt.Sprintf("%s-%d", o.name, i), Dial: o.dial, Store: o.store, Models: models,
				Metrics: metrics, Logger: o.log, CorpusOptions: corpusOptions(ctx), Memory: gate})
			if err != nil {
				err = fmt.Errorf("worker %d: %w", i, err)
			}
			errs <- err
		}()
	}
}
