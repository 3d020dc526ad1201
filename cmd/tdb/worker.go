package main

import (
	"context"
	"io"
	"sync"
)

func init() {
	register("worker", "run collation workers against a NATS JetStream cluster", cmdWorker)
}

func cmdWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("worker", stderr)
	sf := addServiceFlags(fs, "store for partials", ":9091")
	workers := fs.Int("workers", 1, "shards computed at once by this process (each forward pass already uses every core); they share --worker-memory: a shard starts once its estimated memory fits beside the others'")
	name := envString(fs, "name", "TDB_WORKER_NAME", "", "worker name in records and logs (default hostname-pid)")
	workerMemory := envString(fs, "worker-memory", "TDB_WORKER_MEMORY", "", "this process's memory, e.g. 24GB or 24GiB (default: the machine's, or its container's limit): the Go soft memory limit, so garbage is collected before the heap outgrows it; submit jobs with a --worker-memory that fits it")
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
	defer setMemoryLimit(mem)()
	o, err := sf.open(ctx, stderr)
	if err != nil {
		return err
	}
	o.workers, o.name, o.memory = *workers, *name, mem
	errs := make(chan error, *workers)
	var wg sync.WaitGroup
	startServices(ctx, &wg, errs, o)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
