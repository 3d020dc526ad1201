package coordinator_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/model"
	"tdb/store"
	"tdb/worker"
)

// groupedSpec is spec with the tiny model's sizing and a worker memory
// that holds about one target at a time.
func groupedSpec(t *testing.T, spec jobs.JobSpec, targets float64) jobs.JobSpec {
	t.Helper()
	sz, err := worker.SizeJob(context.Background(), model.TinyConfig, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Sizing = sz
	tokens := spec.TokensPerShard
	var most int64
	for _, ts := range sz.Targets {
		most = max(most, spec.TargetBytes(ts, tokens, 1))
	}
	spec.WorkerMemory = int64(float64(spec.FixedBytes(sz, tokens)+int64(targets*float64(most))) / jobs.PlanFill)
	return spec
}

// A job split into component groups (tasks of shard ranges × groups, run
// by 2 workers over real NATS) writes the same dataset bytes as the job in
// one group; a budget that cannot hold one target fails the job at
// planning, saying what budget would do.
func TestPipelineComponentGroups(t *testing.T) {
	st := store.NewMemory()
	c := startCluster(t, 2, natsx.QueueConfig{AckWait: 2 * time.Second, MaxDeliver: 3}, st)
	whole, err := c.run(tinySpec("whole", 600))
	if err != nil {
		t.Fatal(err)
	}
	grouped, err := c.run(groupedSpec(t, tinySpec("grouped", 600), 1.2))
	if err != nil {
		t.Fatal(err)
	}
	if whole.Status != jobs.Done || grouped.Status != jobs.Done {
		t.Fatalf("states %+v %+v", whole, grouped)
	}
	// 4 targets (2 locations × 2 layers), one per group.
	if grouped.Shards != 4*whole.Shards || grouped.Tokens != whole.Tokens || grouped.PlannedTokens != 4*whole.PlannedTokens {
		t.Fatalf("grouped: %d tasks, %d tokens (planned %d); whole: %d tasks, %d tokens (planned %d)",
			grouped.Shards, grouped.Tokens, grouped.PlannedTokens, whole.Shards, whole.Tokens, whole.PlannedTokens)
	}
	a, b := datasetFiles(t, st, "whole"), datasetFiles(t, st, "grouped")
	if len(a) != 13 || len(b) != len(a) {
		t.Fatalf("%d and %d files", len(a), len(b))
	}
	for k, v := range a {
		if k != "manifest.json" && !bytes.Equal(v, b[k]) {
			t.Errorf("%s differs between one group and four", k)
		}
	}
	m, err := dataset.ReadManifest(context.Background(), st, "grouped")
	if err != nil || m.Tokens != whole.Tokens {
		t.Fatalf("manifest %+v, %v", m, err)
	}

	// Two workers of one process (tdb worker --workers 2) whose memory
	// holds the model but no second task: tasks run one at a time (each
	// waits until the other's memory is free), and the bytes are the same.
	spec := groupedSpec(t, tinySpec("shared", 600), 1.2)
	gate, metrics := worker.NewMemoryGate(jobs.WorkerBaseBytes+spec.Sizing.ModelBytes+1), worker.NewMetrics(nil)
	shared := startClusterWith(t, 2, natsx.QueueConfig{AckWait: 2 * time.Second, MaxDeliver: 3}, st, func(cfg *worker.Config) {
		cfg.Memory, cfg.Metrics = gate, metrics
	})
	if state, err := shared.run(spec); err != nil || state.Status != jobs.Done {
		t.Fatalf("shared memory: %+v, %v", state, err)
	}
	var waits dto.Metric
	if err := metrics.MemoryWaits.Write(&waits); err != nil || waits.GetCounter().GetValue() == 0 {
		t.Errorf("two workers sharing one task's memory never waited for each other (%v)", err)
	}
	for k, v := range datasetFiles(t, st, "shared") {
		if k != "manifest.json" && !bytes.Equal(v, b[k]) {
			t.Errorf("%s differs when the workers share memory", k)
		}
	}

	small := groupedSpec(t, tinySpec("small", 600), 0.5)
	failed, err := c.run(small)
	if err == nil || failed.Status != jobs.Failed || !strings.Contains(failed.Reason, "is too small: give at least") {
		t.Fatalf("a budget below one target: %s: %s (%v)", failed.Status, failed.Reason, err)
	}
}
