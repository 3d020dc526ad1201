package coordinator_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tdb/coordinator"
	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/model"
	"tdb/store"
	"tdb/store/storetest"
	"tdb/worker"
)

// cluster is an in-process pipeline: embedded NATS, a coordinator and
// workers, all over the same code as the distributed setup.
type cluster struct {
	t      *testing.T
	emb    *natsx.Embedded
	st     store.Store
	client *coordinator.Client
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startCluster(t *testing.T, workers int, q natsx.QueueConfig, st store.Store) *cluster {
	t.Helper()
	return startClusterWith(t, workers, q, st, nil)
}

// startClusterWith is startCluster with each worker's config passed
// through with (nil: as is).
func startClusterWith(t *testing.T, workers int, q natsx.QueueConfig, st store.Store, with func(*worker.Config)) *cluster {
	t.Helper()
	emb, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{t: t, emb: emb, st: st, cancel: cancel}
	log := testLogger(t)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := coordinator.Run(ctx, coordinator.Config{Dial: emb.Dialer(), Store: st, Queue: q, Logger: log, SweepInterval: 200 * time.Millisecond}); err != nil {
			t.Errorf("coordinator: %v", err)
		}
	}()
	models := worker.NewModelCache(2, log)
	for i := range workers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			cfg := worker.Config{Name: fmt.Sprintf("w%d", i), Dial: emb.Dialer(), Store: st, Models: models, Logger: log, FetchWait: 200 * time.Millisecond}
			if with != nil {
				with(&cfg)
			}
			if err := worker.Run(ctx, cfg); err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		}()
	}
	nc, err := emb.Connect("test client")
	if err != nil {
		t.Fatal(err)
	}
	c.client, err = coordinator.NewClient(ctx, nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		c.wg.Wait()
		nc.Close()
		emb.Shutdown()
	})
	return c
}

func (c *cluster) run(spec jobs.JobSpec) (jobs.JobState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := c.client.Submit(ctx, spec)
	if err != nil {
		return st, err
	}
	return c.client.Wait(ctx, st.ID, nil)
}

func tinySpec(dataset string, tokensPerShard int64) jobs.JobSpec {
	return jobs.JobSpec{
		Dataset: dataset, Model: "random:tiny", Corpus: "synthetic:ioi?docs=300&seed=3",
		Locations: []string{"mlp.post_act", "attn.heads"}, NCtx: 16, TopK: 8, RandomK: 4, QuantileBuckets: 4, PerBucket: 2,
		TokensPerShard: tokensPerShard, BatchSize: 4, BlockBytes: 2048,
	}
}

// datasetFiles reads every blob of a dataset.
func datasetFiles(t *testing.T, st store.Store, dataset string) map[string][]byte {
	return storetest.Blobs(t, st, "datasets/"+dataset+"/")
}

// The dataset of a job is the same bytes whatever the worker count, and
// its records are the same whatever the shard size (statistics may differ
// in the last float64 bits when shard boundaries move, since each shard sums
// in float64 before the exact merge).
func TestPipelineDatasetIndependentOfShardsAndWorkers(t *testing.T) {
	st := store.NewMemory()
	q := natsx.QueueConfig{AckWait: 2 * time.Second, MaxDeliver: 3}
	c1 := startCluster(t, 1, q, st)
	one, err := c1.run(tinySpec("one", 600))
	if err != nil {
		t.Fatal(err)
	}
	big, err := c1.run(tinySpec("big", 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	c3 := startCluster(t, 3, q, st)
	three, err := c3.run(tinySpec("three", 600))
	if err != nil {
		t.Fatal(err)
	}
	if one.Shards < 4 || three.Shards != one.Shards || big.Shards != 1 {
		t.Fatalf("shards: %d, %d, %d; want several, the same, and 1", one.Shards, three.Shards, big.Shards)
	}
	if one.Status != jobs.Done || three.Tokens != one.Tokens || big.Tokens != one.Tokens || one.Tokens == 0 {
		t.Fatalf("states %+v %+v %+v", one, three, big)
	}
	a, b, c := datasetFiles(t, st, "one"), datasetFiles(t, st, "three"), datasetFiles(t, st, "big")
	if len(a) != 2*2*3+1 { // per location and layer: records, stats, index; plus the manifest
		t.Fatalf("dataset one has %d files: %v", len(a), keysOf(a))
	}
	for k, v := range a {
		if k == "manifest.json" {
			continue
		}
		if !bytes.Equal(v, b[k]) {
			t.Errorf("%s differs between 1 and 3 workers", k)
		}
		if strings.HasSuffix(k, "records.parquet") && !bytes.Equal(v, c[k]) {
			t.Errorf("%s differs between %d shards and 1 shard", k, one.Shards)
		}
	}
	m, err := dataset.ReadManifest(context.Background(), st, "three")
	if err != nil {
		t.Fatal(err)
	}
	if m.Tokens != three.Tokens || len(m.Locations) != 2 || m.Locations[0].Name != "attn.heads" || !m.Locations[0].Pairs ||
		m.Locations[1].Components != model.TinyConfig.DMLP || len(m.Locations[1].Layers) != 2 {
		t.Fatalf("manifest %+v", m)
	}
	// Partials are deleted after the merge (just after the job is done).
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		keys, err := st.List(context.Background(), "jobs/"+three.ID+"/")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partials left: %v", keys)
		}
	}
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
