package coordinator_test

import (
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/model"
	"tdb/store"
)

// refusingStore is a real in-memory store whose writes are refused, as a
// read-only container or a full disk would.
type refusingStore struct{ store.Store }

func (refusingStore) Put(context.Context, string, io.Reader) error {
	return errors.New("403 This request is not authorized to perform this operation")
}

func TestBadInputFailsJobWithReason(t *testing.T) {
	dir := t.TempDir()
	badJSONL := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(badJSONL, []byte("{\"text\": \"The cat sat on the mat.\"}\n{\"text\": 12}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nanModel := nanModelDir(t)
	empty, short := filepath.Join(dir, "empty.txt"), filepath.Join(dir, "short.txt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("Hi."), 0o644); err != nil {
		t.Fatal(err)
	}
	q := natsx.QueueConfig{AckWait: 300 * time.Millisecond, MaxDeliver: 5}
	tests := []struct {
		name  string
		store store.Store
		edit  func(*jobs.JobSpec)
		want  []string
	}{
		{"missing corpus", store.NewMemory(), func(s *jobs.JobSpec) { s.Corpus = filepath.Join(dir, "nope", "*.txt") }, []string{"corpus", "matches no files"}},
		{"unknown location", store.NewMemory(), func(s *jobs.JobSpec) { s.Locations = []string{"mlp.post_akt"} }, []string{"shard 0", `unknown location "mlp.post_akt"`}},
		// Permanent errors fail the job on the first delivery, not after
		// every back-off of the redelivery schedule.
		{"bad JSONL line", store.NewMemory(), func(s *jobs.JobSpec) { s.Corpus = "jsonl:" + badJSONL }, []string{"shard 0 failed (a permanent error, not retried): corpus file", "bad.jsonl:2", "not a string"}},
		// An empty corpus is an error, never a dataset of 0 tokens.
		{"empty corpus", store.NewMemory(), func(s *jobs.JobSpec) { s.Corpus = "text:" + empty }, []string{"is empty"}},
		{"no full window", store.NewMemory(), func(s *jobs.JobSpec) { s.Corpus = "text:" + short }, []string{"is empty: it holds no window of 16 tokens"}},
		{"NaN in a bias", store.NewMemory(), func(s *jobs.JobSpec) { s.Model = nanModel; s.NCtx = 16 },
			[]string{"not retried", "non-finite activation NaN in mlp.post_act layer 1 component 7"}},
		{"store refuses writes", refusingStore{store.NewMemory()}, func(s *jobs.JobSpec) {}, []string{"writing the shard plan", "not authorized"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, 1, q, tc.store)
			spec := tinySpec("bad", 1<<20)
			tc.edit(&spec)
			start := time.Now()
			state, err := c.run(spec)
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("the job took %v to fail", d)
			}
			if err == nil {
				t.Fatalf("job succeeded: %+v", state)
			}
			if state.Status != jobs.Failed {
				t.Fatalf("status %s, want failed", state.Status)
			}
			for _, w := range tc.want {
				if !strings.Contains(state.Reason, w) {
					t.Errorf("reason %q lacks %q", state.Reason, w)
				}
			}
			if _, err := dataset.ReadManifest(context.Background(), tc.store, "bad"); !errors.Is(err, dataset.ErrNoDataset) {
				t.Errorf("a failed job left a dataset (err %v)", err)
			}
		})
	}
}

// nanModelDir saves the tiny fault-test model with one NaN in the MLP bias
// of layer 1 (neuron 7).
func nanModelDir(t *testing.T) string {
	t.Helper()
	m, err := model.NewRandom(model.Config{NLayer: 2, NHead: 2, DModel: 32, DMLP: 128, NCtx: 64, Vocab: 50257, Eps: 1e-5}, 1)
	if err != nil {
		t.Fatal(err)
	}
	m.Blocks[1].FcB[7] = float32(math.NaN())
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// panickyStore panics on the first plan write, as a bug in a job's driver
// would.
type panickyStore struct {
	store.Store
	armed *atomic.Bool
}

func (s panickyStore) Put(ctx context.Context, key string, r io.Reader) error {
	if strings.HasSuffix(key, "/plan.json") && s.armed.CompareAndSwap(true, false) {
		var m map[string]int
		m["boom"]++ // a nil map write: a real runtime panic
	}
	return s.Store.Put(ctx, key, r)
}

// A panic in one job's driver fails that job with the panic's message; the
// coordinator lives on and runs the next job.
func TestDriverPanicFailsOnlyItsJob(t *testing.T) {
	armed := &atomic.Bool{}
	armed.Store(true)
	st := panickyStore{store.NewMemory(), armed}
	c := startCluster(t, 1, natsx.QueueConfig{AckWait: 2 * time.Second}, st)
	state, err := c.run(tinySpec("first", 1<<20))
	if err == nil || state.Status != jobs.Failed {
		t.Fatalf("job %+v, err %v: want failed", state, err)
	}
	if !strings.Contains(state.Reason, "panic") || !strings.Contains(state.Reason, "assignment to entry in nil map") {
		t.Errorf("reason %q lacks the panic's message", state.Reason)
	}
	if state, err := c.run(tinySpec("second", 1<<20)); err != nil || state.Status != jobs.Done {
		t.Fatalf("the next job after a panic: %+v, %v", state, err)
	}
}

func TestCancelAndResubmit(t *testing.T) {
	st := store.NewMemory()
	c := startCluster(t, 1, natsx.QueueConfig{AckWait: time.Second, MaxDeliver: 3}, st)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	spec := tinySpec("cancelled", 600)
	state, err := c.client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.Cancel(ctx, state.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.Wait(ctx, state.ID, nil); err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("wait after cancel: %v", err)
	}
	if _, err := c.client.Cancel(ctx, state.ID); err == nil {
		t.Error("cancelling a cancelled job succeeded")
	}
	// The same spec again is a new attempt of the same job, and finishes.
	again, err := c.client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != state.ID || again.Attempt != 2 || again.Status != jobs.Submitted {
		t.Fatalf("resubmitted: %+v", again)
	}
	final, err := c.client.Wait(ctx, state.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != jobs.Done || final.Shards < 2 {
		t.Fatalf("final %+v", final)
	}
	// Submitting a done job attaches to it; a different spec under the same id is refused.
	if s, err := c.client.Submit(ctx, spec); err != nil || s.Status != jobs.Done {
		t.Fatalf("resubmitting a done job: %+v, %v", s, err)
	}
	other := tinySpec("other", 600)
	other.ID = state.ID
	if _, err := c.client.Submit(ctx, other); err == nil || !strings.Contains(err.Error(), "different spec") {
		t.Fatalf("same id, other spec: %v", err)
	}
	list, err := c.client.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != state.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}
	// A dataset name that exists already fails a new job before any work.
	dup := tinySpec("cancelled", 1<<20)
	if _, err := c.run(dup); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate dataset: %v", err)
	}
}
