package coordinator_test

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"tdb/explain"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/store"
	"tdb/store/storetest"
)

// explanationFiles reads a dataset's explanation files.
func explanationFiles(t *testing.T, st store.Store, dataset string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for k, b := range datasetFiles(t, st, dataset) {
		if strings.HasPrefix(k, "explanations/") {
			out[k] = b
		}
	}
	return out
}

// rowsWithoutTime reads every stored explanation row, creation times
// cleared (the only field two runs may differ in).
func rowsWithoutTime(t *testing.T, st store.Store, dataset string) []explain.Row {
	t.Helper()
	rows, err := explain.ReadAll(context.Background(), st, dataset)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		rows[i].Created = time.Time{}
	}
	return rows
}

func explainSpec(dataset string) jobs.JobSpec {
	return jobs.JobSpec{Kind: jobs.KindExplain, Dataset: dataset, Explain: &jobs.ExplainSpec{
		Method: "builtin", Scores: []string{"simulation", "detection", "fuzzing"}}}
}

// An explain job on the work queue stores the same explanations and scores
// as explain.Job.Run in-process; a task whose block a killed worker had
// half written finishes only the rest; and re-running every task (a
// redelivery of each) changes no byte.
func TestExplainJobOnTheQueue(t *testing.T) {
	st := store.NewMemory()
	c := startCluster(t, 2, natsx.QueueConfig{AckWait: 5 * time.Second}, st)
	if state, err := c.run(tinySpec("demo", 2000)); err != nil || state.Status != jobs.Done {
		t.Fatalf("collate: %v %+v", err, state)
	}
	ctx := context.Background()

	// The reference: the in-process run over a copy of the dataset.
	ref := store.NewMemory()
	storetest.Copy(t, st, ref, "datasets/demo/")
	vocab, err := explain.GPT2Vocab()
	if err != nil {
		t.Fatal(err)
	}
	refJob := &explain.Job{Store: ref, Dataset: "demo", Explainer: &explain.Builtin{Vocab: vocab},
		Scores: []string{"simulation", "detection", "fuzzing"}, Workers: 2}
	refSum, err := refJob.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := rowsWithoutTime(t, ref, "demo")
	if len(want) == 0 || len(want) != refSum.Explained {
		t.Fatalf("reference: %d rows, %+v", len(want), refSum)
	}

	// A worker killed in the middle of the first task had flushed the
	// first components of its block.
	_, tasks, err := (&explain.Job{Store: st, Dataset: "demo"}).Plan(ctx)
	if err != nil || len(tasks) < 2 {
		t.Fatalf("plan: %v %v", tasks, err)
	}
	first := tasks[0]
	half := []int{}
	for i := first.Lo; i < first.Lo+(first.Hi-first.Lo)/2; i++ {
		half = append(half, i)
	}
	pre := &explain.Job{Store: st, Dataset: "demo", Locations: []string{first.Location}, Layers: []int{first.Layer},
		Components: half, Explainer: &explain.Builtin{Vocab: vocab}, Scores: refJob.Scores}
	m, _, err := pre.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pre.RunTask(ctx, m, first); err != nil {
		t.Fatal(err)
	}

	spec := explainSpec("demo")
	state, err := c.run(spec)
	if err != nil || state.Status != jobs.Done || state.Shards != len(tasks) {
		t.Fatalf("explain job: %v %+v, want done with %d tasks", err, state, len(tasks))
	}
	got := rowsWithoutTime(t, st, "demo")
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the queue stored %d rows that differ from the in-process run's %d", len(got), len(want))
	}
	p, err := c.client.Progress(ctx, state.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Done != len(tasks) || int(p.Tokens) != len(want) || int(p.Windows) != len(want)-len(half) {
		t.Fatalf("progress %+v: want %d tasks, %d components, %d explained", p, len(tasks), len(want), len(want)-len(half))
	}

	// Every task again (a new attempt; each task redelivered): nothing
	// is explained twice, no file changes.
	before := explanationFiles(t, st, "demo")
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := c.client.Rerun(rctx, state.ID); err != nil {
		t.Fatal(err)
	}
	if state, err = c.client.Wait(rctx, state.ID, nil); err != nil || state.Attempt != 2 {
		t.Fatalf("rerun: %v %+v", err, state)
	}
	if p, err = c.client.Progress(ctx, state.ID); err != nil || p.Windows != 0 || int(p.Tokens) != len(want) {
		t.Fatalf("rerun progress %+v %v: want nothing explained, %d skipped", p, err, len(want))
	}
	after := explanationFiles(t, st, "demo")
	if len(after) != len(before) || len(after) == 0 {
		t.Fatalf("files %d, before %d", len(after), len(before))
	}
	for k, b := range before {
		if !bytes.Equal(after[k], b) {
			t.Fatalf("%s changed when its task ran again", k)
		}
	}
}

// An explain job over a dataset that does not exist fails at planning with
// a reason that names it.
func TestExplainJobWithoutDatasetFails(t *testing.T) {
	c := startCluster(t, 1, natsx.QueueConfig{AckWait: 2 * time.Second}, store.NewMemory())
	state, err := c.run(explainSpec("nope"))
	if err == nil || state.Status != jobs.Failed || !strings.Contains(state.Reason, "nope") {
		t.Fatalf("%v %+v", err, state)
	}
}

// A worker SIGKILLed in the middle of an explain task: the task is
// redelivered to another worker and the stored explanations are those of
// the in-process run.
func TestFaultKillWorkerMidExplainTask(t *testing.T) {
	f, emb := newFaultEnv(t, time.Second, 5)
	st, err := store.NewLocal(f.storeDir)
	if err != nil {
		t.Fatal(err)
	}
	spec := faultSpec(t, "demo")
	if state, err := startCluster(t, 2, natsx.QueueConfig{AckWait: 5 * time.Second}, st).run(spec); err != nil || state.Status != jobs.Done {
		t.Fatalf("collate: %v %+v", err, state)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref := store.NewMemory()
	storetest.Copy(t, st, ref, "datasets/demo/")
	vocab, err := explain.GPT2Vocab()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&explain.Job{Store: ref, Dataset: "demo", Explainer: &explain.Builtin{Vocab: vocab},
		Scores: []string{"simulation", "detection", "fuzzing"}, Workers: 2}).Run(ctx); err != nil {
		t.Fatal(err)
	}
	want := rowsWithoutTime(t, ref, "demo")

	f.start("coordinator", "coordinator")
	victim := f.start("worker", "victim", "TDB_FAULT_SHARD_DELAY=3s")
	client := clientFor(t, emb)
	state, err := client.Submit(ctx, explainSpec("demo"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the victim to start a task", func() bool {
		p, err := client.Progress(ctx, state.ID)
		return err == nil && p.Running > 0
	})
	task := runningShard(t, ctx, emb, state.ID, "victim")
	victim.kill(t)
	f.start("worker", "w1", "TDB_FAULT_SHARD_DELAY=100ms")
	if final, err := client.Wait(ctx, state.ID, nil); err != nil || final.Status != jobs.Done {
		t.Fatalf("%v %+v", err, final)
	}
	if rec := shardRecord(t, ctx, emb, state.ID, task); rec.Delivery < 2 || rec.Worker == "victim" {
		t.Errorf("task %d record %+v: want it finished by another worker on a redelivery", task, rec)
	}
	if got := rowsWithoutTime(t, st, "demo"); len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("after the kill: %d rows that differ from the in-process run's %d", len(got), len(want))
	}
}
