package coordinator_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"tdb/collate"
	"tdb/coordinator"
	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/store"
	"tdb/worker"
)

// Merge tasks run on the workers: every location and layer is merged by a
// worker (its record says which and what it wrote), as one task or as a
// tree of merges, the dataset is the same bytes as collate.AssembleDataset
// writes in one process from the same partials, and the workers report
// their merge time per partial.
func TestMergeTasksRunOnWorkers(t *testing.T) {
	for _, fanIn := range []int{0, 2} { // 0: the default (one merge per layer here), 2: a tree
		t.Run(fmt.Sprintf("fanin=%d", fanIn), func(t *testing.T) { testMergeTasks(t, fanIn) })
	}
}

func testMergeTasks(t *testing.T, fanIn int) {
	st := store.NewMemory()
	emb, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	log := testLogger(t)
	q := natsx.QueueConfig{AckWait: 10 * time.Second, MaxDeliver: 3}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := coordinator.Run(ctx, coordinator.Config{Dial: emb.Dialer(), Store: st, Queue: q, Logger: log,
			SweepInterval: 200 * time.Millisecond, KeepPartials: true, MergeFanIn: fanIn}); err != nil {
			t.Errorf("coordinator: %v", err)
		}
	}()
	reg := prometheus.NewRegistry()
	metrics := worker.NewMetrics(reg)
	models := worker.NewModelCache(2, log)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker.Run(ctx, worker.Config{Name: fmt.Sprintf("w%d", i), Dial: emb.Dialer(), Store: st, Models: models,
				Metrics: metrics, Logger: log, FetchWait: 200 * time.Millisecond}); err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		}()
	}
	nc, err := emb.Connect("test client")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client, err := coordinator.NewClient(ctx, nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	spec := tinySpec("merged", 600)
	state, err := client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	final, err := client.Wait(ctx, state.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != jobs.Done || final.Shards < 4 {
		t.Fatalf("final state %+v; want done with several shards", final)
	}

	// Every location and layer (2 × 2 for the tiny model) was merged by
	// workers: with a fan-in f, a layer of n partials takes ceil(n/f)
	// intermediate merges while n > f, then one final merge.
	kv := bucket(t, ctx, emb)
	const layers = 4
	f := fanIn
	if f == 0 {
		f = coordinator.DefaultMergeFanIn
	}
	wantTasks, wantPartials := 0, 0
	for n := final.Shards; ; n = (n + f - 1) / f {
		if n <= f {
			wantTasks, wantPartials = wantTasks+1, wantPartials+n
			break
		}
		wantTasks, wantPartials = wantTasks+(n+f-1)/f, wantPartials+n
	}
	wantTasks, wantPartials = layers*wantTasks, layers*wantPartials
	if fanIn == 2 && wantTasks <= layers {
		t.Fatalf("%d shards make no tree with fan-in 2", final.Shards)
	}
	var byShard [][]jobs.PartialRef
	for i := range final.Shards {
		var r jobs.ShardRecord
		if _, err := natsx.GetJSON(ctx, kv, jobs.ShardKey(state.ID, i), &r); err != nil {
			t.Fatal(err)
		}
		byShard = append(byShard, r.Partials)
	}
	var lps []collate.LayerPartials
	for i := range wantTasks {
		var r jobs.ShardRecord
		if _, err := natsx.GetJSON(ctx, kv, jobs.MergeKey(state.ID, i), &r); err != nil {
			t.Fatalf("merge task %d of %d: %v", i, wantTasks, err)
		}
		if r.Status != jobs.ShardDone || r.Merge == nil || r.Merge.Partials < 1 || r.Merge.Partials > f || r.Worker == "" {
			t.Fatalf("merge task %d record %+v; want done by a worker over 1 to %d partials", i, r, f)
		}
		if r.Merge.Output != nil {
			continue // an intermediate merge
		}
		lp := collate.LayerPartials{Location: r.Merge.Location, Layer: r.Merge.Layer}
		for _, refs := range byShard {
			for _, ref := range refs {
				if ref.Location == r.Merge.Location && ref.Layer == r.Merge.Layer {
					lp.Partials = append(lp.Partials, collate.Partial{Name: ref.Key, Read: func(ctx context.Context) ([]byte, error) {
						rc, err := st.Get(ctx, ref.Key)
						if err != nil {
							return nil, err
						}
						defer rc.Close()
						return io.ReadAll(rc)
					}})
				}
			}
		}
		lps = append(lps, lp)
	}
	if len(lps) != layers {
		t.Fatalf("%d final merges, want %d", len(lps), layers)
	}
	var none jobs.ShardRecord
	if _, err := natsx.GetJSON(ctx, kv, jobs.MergeKey(state.ID, wantTasks), &none); err == nil {
		t.Errorf("a merge task %d beyond the %d expected: %+v", wantTasks, wantTasks, none)
	}

	// The same partials merged in this process write the same bytes.
	got, err := dataset.ReadManifest(ctx, st, spec.Dataset)
	if err != nil {
		t.Fatal(err)
	}
	ref := store.NewMemory()
	m := *got
	m.Locations, m.Settings, m.ComponentsPerRowGroup = nil, dataset.Settings{}, 0
	want, err := collate.AssembleDataset(ctx, ref, m, lps, collate.AssembleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := datasetFiles(t, st, spec.Dataset), datasetFiles(t, ref, spec.Dataset)
	if len(a) != 2*2*3+1 || len(a) != len(b) {
		t.Fatalf("dataset has %d files, the in-process merge %d", len(a), len(b))
	}
	for k, v := range b {
		if !bytes.Equal(a[k], v) {
			t.Errorf("%s differs from the in-process merge", k)
		}
	}
	if fmt.Sprint(got.Locations, got.Settings, got.ComponentsPerRowGroup) != fmt.Sprint(want.Locations, want.Settings, want.ComponentsPerRowGroup) {
		t.Errorf("manifest %+v, in-process %+v", got, want)
	}

	// Merge time per partial is in the worker metrics.
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var partials float64
	var samples uint64
	var sum float64
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			switch f.GetName() {
			case "tdb_worker_merge_partials_total":
				partials += mt.GetCounter().GetValue()
			case "tdb_worker_merge_seconds_per_partial":
				samples += mt.GetHistogram().GetSampleCount()
				sum += mt.GetHistogram().GetSampleSum()
			}
		}
	}
	// (A task run twice, on a redelivery while a slow worker still held
	// it, counts twice: at least once is the queue's promise.)
	if partials < float64(wantPartials) || samples < uint64(wantTasks) || partials > 2*float64(wantPartials) || sum <= 0 {
		t.Errorf("merge metrics: %v partials, %d samples summing to %vs; want %d partials in %d merge tasks", partials, samples, sum, wantPartials, wantTasks)
	}
}
