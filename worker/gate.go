package worker

import (
	"context"
	"sync"

	"tdb/internal/jobs"
)

// MemoryGate shares one process's memory among the tasks its workers run
// at once (tdb worker --workers N). A job's component groups are planned
// so that one task fits the job's --worker-memory; N workers in a process
// with that much memory would hold N tasks' accumulators. A task starts
// once its estimated memory fits beside the running ones (its delivery is
// kept alive meanwhile by the shard heartbeat); a task alone always
// starts, so a task planned for more memory than the process has runs
// by itself rather than never.
type MemoryGate struct {
	budget  int64 // the process's memory, less what is not per task
	mu      sync.Mutex
	used    int64
	running int
	changed chan struct{} // closed and replaced on every release
}

// NewMemoryGate returns a gate over a process budget of budget bytes, or
// nil (no gate) when budget is 0.
func NewMemoryGate(budget int64) *MemoryGate {
	if budget <= 0 {
		return nil
	}
	return &MemoryGate{budget: budget, changed: make(chan struct{})}
}

// acquire waits until n bytes fit beside the running tasks, the shared
// bytes (the model, which the process's workers share) counted once, or
// until ctx ends. waiting is called once if the task has to wait.
func (g *MemoryGate) acquire(ctx context.Context, n, shared int64, waiting func(used int64, running int)) (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	told := false
	for {
		g.mu.Lock()
		if g.running == 0 || g.used+n <= g.budget-shared {
			g.used += n
			g.running++
			g.mu.Unlock()
			return func() { g.release(n) }, nil
		}
		used, running, changed := g.used, g.running, g.changed
		g.mu.Unlock()
		if !told && waiting != nil {
			waiting(used, running)
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-changed:
		}
	}
}

func (g *MemoryGate) release(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.used -= n
	g.running--
	close(g.changed)
	g.changed = make(chan struct{})
}

// taskMemory is the estimated memory of one collation task of spec over
// ts beyond what the process's tasks share: its accumulators, batches,
// autoencoders, forward pass and windows (jobs.PlanGroups' estimate, less
// the model and the process's base), and the shared bytes: the model and
// the base. Both are 0 when the job was not sized (jobs.Sizing).
func taskMemory(spec jobs.JobSpec, ts jobs.TaskShards) (n, shared int64) {
	sz := spec.Sizing
	if sz == nil {
		return 0, 0
	}
	shards := max(len(ts.Shards), 1)
	tokens := int64(shards) * spec.TokensPerShard
	shared = jobs.WorkerBaseBytes + sz.ModelBytes
	n = spec.FixedBytes(sz, tokens) - shared
	in := map[jobs.TargetRef]bool{}
	for _, t := range ts.Targets {
		in[t] = true
	}
	for _, t := range sz.Targets {
		if len(in) == 0 || in[t.TargetRef] {
			n += spec.TargetBytes(t, tokens, shards)
		}
	}
	return n, shared
}
