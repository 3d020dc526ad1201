package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"tdb/corpus"
	"tdb/internal/jobs"
	"tdb/model"
)

// TestMemoryGate: tasks start while their memory fits beside the running
// ones (the shared bytes counted once), wait otherwise until a release
// makes room, start alone whatever their size, and stop waiting when their
// context ends.
func TestMemoryGate(t *testing.T) {
	if g := NewMemoryGate(0); g != nil {
		t.Fatal("a zero budget made a gate")
	}
	var none *MemoryGate // no gate: nothing waits
	if rel, err := none.acquire(context.Background(), 1<<40, 0, nil); err != nil {
		t.Fatal(err)
	} else {
		rel()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g := NewMemoryGate(100)
	const shared = 20 // 80 left for tasks
	relA, err := g.acquire(ctx, 50, shared, func(int64, int) { t.Error("the first task waited") })
	if err != nil {
		t.Fatal(err)
	}
	relB, err := g.acquire(ctx, 30, shared, func(int64, int) { t.Error("a task that fits waited") })
	if err != nil {
		t.Fatal(err)
	}
	// 50 + 30 in use: a task of 10 does not fit until one ends.
	waited := make(chan [2]int64, 1)
	started := make(chan func(), 1)
	go func() {
		rel, err := g.acquire(ctx, 10, shared, func(used int64, running int) { waited <- [2]int64{used, int64(running)} })
		if err != nil {
			t.Error(err)
			return
		}
		started <- rel
	}()
	select {
	case w := <-waited:
		if w != [2]int64{80, 2} {
			t.Errorf("waiting saw %d bytes in use by %d tasks, want 80 by 2", w[0], w[1])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a task that does not fit did not wait")
	}
	select {
	case <-started:
		t.Fatal("a task started with no room")
	case <-time.After(50 * time.Millisecond):
	}
	relB()
	var relC func()
	select {
	case relC = <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("a release did not start the waiting task")
	}
	relA()
	relC()

	// Alone, a task larger than the budget still starts.
	relBig, err := g.acquire(ctx, 500, shared, func(int64, int) { t.Error("a task alone waited") })
	if err != nil {
		t.Fatal(err)
	}
	// Beside it nothing fits; a cancelled wait returns the cause.
	cctx, ccancel := context.WithCancelCause(ctx)
	stop := errors.New("worker stopping")
	go func() { time.Sleep(20 * time.Millisecond); ccancel(stop) }()
	if _, err := g.acquire(cctx, 1, shared, nil); !errors.Is(err, stop) {
		t.Errorf("cancelled wait: %v, want %v", err, stop)
	}
	relBig()
	if g.used != 0 || g.running != 0 {
		t.Errorf("after every release: %d bytes, %d tasks", g.used, g.running)
	}
}

// TestTaskMemoryMatchesPlan: a task's estimate at the worker, with the
// shared model and base added back, is the planner's estimate of its
// component group.
func TestTaskMemoryMatchesPlan(t *testing.T) {
	spec := jobs.DefaultSpec()
	spec.Model, spec.Corpus, spec.Dataset, spec.WorkerMemory = "random:gpt2", "synthetic:ioi", "d", 2e9
	spec.Locations = []string{"mlp.post_act", "attn.heads"}
	sz, err := SizeJob(context.Background(), model.Presets["gpt2"], spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Sizing = sz
	n := jobs.DefaultShardsPerPartial
	plan, err := spec.PlanGroups(int64(n)*spec.TokensPerShard, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Groups) < 2 {
		t.Fatalf("want several groups at 2 GB, got %d", len(plan.Groups))
	}
	shards := make([]corpus.Shard, n)
	for i, g := range plan.Groups {
		need, shared := taskMemory(spec, jobs.TaskShards{Shards: shards, Targets: g})
		if shared != jobs.WorkerBaseBytes+sz.ModelBytes {
			t.Errorf("shared bytes %d, want the base and the model's %d", shared, sz.ModelBytes)
		}
		if need+shared != plan.Bytes[i] {
			t.Errorf("group %d: the worker estimates %s, the plan %s", i, jobs.FormatBytes(need+shared), jobs.FormatBytes(plan.Bytes[i]))
		}
	}
	// Without targets a task runs them all; without sizing nothing is known.
	all, _ := taskMemory(spec, jobs.TaskShards{Shards: shards})
	var sum int64
	for i := range plan.Groups {
		need, _ := taskMemory(spec, jobs.TaskShards{Shards: shards, Targets: plan.Groups[i]})
		sum += need
	}
	fixed := spec.FixedBytes(sz, int64(n)*spec.TokensPerShard) - jobs.WorkerBaseBytes - sz.ModelBytes
	if want := sum - int64(len(plan.Groups)-1)*fixed; all != want {
		t.Errorf("every target: %d bytes, want the groups' sum less the repeated fixed part, %d", all, want)
	}
	spec.Sizing = nil
	if need, shared := taskMemory(spec, jobs.TaskShards{Shards: shards}); need != 0 || shared != 0 {
		t.Errorf("unsized job: %d, %d bytes", need, shared)
	}
}
