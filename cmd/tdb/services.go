package main

import (
	"context"
	"fmt"
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

// openServiceBase opens the store and, unless metricsAddr is empty, serves
// a new metrics registry on it (with /healthz): what every service command
// does first.
func openServiceBase(ctx context.Context, storeURL, metricsAddr string, log *slog.Logger) (store.Store, *prometheus.Registry, error) {
	st, err := store.Open(ctx, storeURL)
	if err != nil {
		return nil, nil, err
	}
	reg := service.NewRegistry()
	if metricsAddr != "" {
		if _, err := service.ServeMetrics(ctx, metricsAddr, reg, log); err != nil {
			return nil, nil, err
		}
	}
	return st, reg, nil
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
	host, _ := os.Hostname()
	if o.name == "" {
		o.name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	for i := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := worker.Run(ctx, worker.Config{Name: fmt.Sprintf("%s-%d", o.name, i), Dial: o.dial, Store: o.store, Models: models,
				Metrics: metrics, Logger: o.log, CorpusOptions: corpusOptions(ctx)})
			if err != nil {
				err = fmt.Errorf("worker %d: %w", i, err)
			}
			errs <- err
		}()
	}
}
