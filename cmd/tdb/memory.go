package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"tdb/internal/jobs"
	"tdb/model"
	"tdb/worker"
)

// workerBudget is a job's worker memory (jobs.JobSpec.WorkerMemory): the
// --worker-memory value, or this machine's memory (the cgroup limit in a
// container), shared by the local workers in embedded mode. 0 is no budget.
func workerBudget(flagValue string, embedded bool, workers int) (int64, error) {
	if flagValue != "" {
		n, err := jobs.ParseBytes(flagValue)
		if err != nil {
			return 0, usagef("--worker-memory: %v", err)
		}
		return n, nil
	}
	m := jobs.MachineMemory()
	if embedded {
		m /= int64(max(workers, 1))
	}
	return m, nil
}

// sizeJob resolves the sizes the coordinator plans the job's component
// groups from (jobs.Sizing), when the model is known here, refuses (exit
// code 2) a budget that cannot hold even one target, and says how many
// groups the plan will have. Without the model's shape, or with
// autoencoders this machine cannot read, the job runs every target in one
// group.
func sizeJob(ctx context.Context, spec *jobs.JobSpec, cfg model.Config, known bool, stderr io.Writer) error {
	if spec.WorkerMemory == 0 {
		return nil
	}
	if !known {
		fmt.Fprintf(stderr, "note: model %s is not known here, so the job cannot be sized for --worker-memory: every component runs in one group\n", spec.Model)
		return nil
	}
	sz, err := worker.SizeJob(ctx, cfg, *spec)
	if err != nil {
		fmt.Fprintf(stderr, "note: the job cannot be sized for --worker-memory (%v): every component runs in one group\n", err)
		return nil
	}
	spec.Sizing = sz
	// The largest task the plan may make: its windows count too.
	n := spec.ShardsPerPartial
	if n == 0 {
		n = jobs.DefaultShardsPerPartial
	}
	plan, err := spec.PlanGroups(int64(n)*spec.TokensPerShard, n)
	if err != nil {
		return usagef("--worker-memory: %v", err)
	}
	if len(plan.Groups) > 1 {
		fmt.Fprintf(stderr, "note: the job's %d targets do not fit one worker's %s: %d component groups (up to about %s each), each running the forward pass over the corpus\n",
			len(sz.Targets), jobs.FormatBytes(spec.WorkerMemory), len(plan.Groups), jobs.FormatBytes(maxOf(plan.Bytes)))
	}
	return nil
}

func maxOf(xs []int64) int64 {
	var m int64
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// setMemoryLimit sets the Go soft memory limit to n bytes unless GOMEMLIMIT
// sets it: the garbage collector then collects before the heap outgrows
// the memory the job's groups were planned for. restore puts the previous
// limit back (a command run in a longer process, as in tests).
func setMemoryLimit(n int64) (restore func()) {
	if n <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	prev := debug.SetMemoryLimit(n)
	return func() { debug.SetMemoryLimit(prev) }
}
