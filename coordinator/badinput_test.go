package coordinator_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
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
	q := natsx.QueueConfig{AckWait: 300 * time.Millisecond, MaxDeliver: 2}
	tests := []struct {
		name  string
		store store.Store
		edit  func(*jobs.JobSpec)
		want  []string
	}{
		{"missing corpus", store.NewMemory(), func(s *jobs.JobSpec) { s.Corpus = filepath.Join(dir, "nope", "*.txt") }, []string{"corpus", "matches no files"}},
		{"unknown location", store.NewMemory(), func(s *jobs.JobSpec) { s.Locations = []string{"mlp.post_akt"} }, []string{"shard 0", `unknown location "mlp.post_akt"`}},
		{"bad JSONL line", store.NewMemory(), func(s *jobs.JobSpec) { s.Corpus = "jsonl:" + badJSONL }, []string{"shard 0 failed on delivery 2 of 2: corpus file", "bad.jsonl:2", "not a string"}},
		{"store refuses writes", refusingStore{store.NewMemory()}, func(s *jobs.JobSpec) {}, []string{"writing the shard plan", "not authorized"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, 1, q, tc.store)
			spec := tinySpec("bad", 1<<20)
			tc.edit(&spec)
			state, err := c.run(spec)
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
