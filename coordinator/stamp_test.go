package coordinator_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/model"
	"tdb/store"
	"tdb/worker"
)

// A corpus edited between planning and a shard's run, keeping its size and
// modification time, fails the job with the reason (never a dataset mixing
// old and new content); the same spec submitted again is planned anew from
// the new content and completes.
func TestCorpusEditedAfterPlanningFailsJob(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs.jsonl")
	write := func(word string) {
		var b strings.Builder
		for i := range 80 {
			fmt.Fprintf(&b, `{"text": "The %s number %03d sat on the mat and looked at the door."}`+"\n", word, i)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cat")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	q := natsx.QueueConfig{AckWait: 2 * time.Second, MaxDeliver: 5}
	c := startCluster(t, 0, q, st) // no worker yet: the job stays planned
	spec := tinySpec("edited", 1<<20)
	spec.Corpus = "jsonl:" + path
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	state, err := c.client.Submit(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, s, err := c.client.Job(ctx, state.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status == jobs.Running {
			break
		}
		if s.Status.Final() {
			t.Fatalf("job %s before any worker: %s", s.Status, s.Reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
	write("dog") // same length
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.Stat(path); now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("the edit changed size or time: %d %v, was %d %v", now.Size(), now.ModTime(), fi.Size(), fi.ModTime())
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		worker.Run(wctx, worker.Config{Name: "late", Dial: c.emb.Dialer(), Store: st, Logger: testLogger(t), FetchWait: 200 * time.Millisecond})
	}()
	defer func() { stop(); <-done }()
	final, err := c.client.Wait(ctx, state.ID, nil)
	if err == nil || final.Status != jobs.Failed {
		t.Fatalf("job %s (%v): want failed", final.Status, err)
	}
	for _, w := range []string{"not retried", "corpus changed since the job was planned", "docs.jsonl bytes 0..", "run with --dataset NEW", "job " + state.ID} {
		if !strings.Contains(final.Reason, w) {
			t.Errorf("reason %q lacks %q", final.Reason, w)
		}
	}
	if _, err := dataset.ReadManifest(ctx, st, "edited"); err == nil {
		t.Fatal("a dataset was written from a changed corpus")
	}
	// Again: planned from the dog corpus, done.
	again, err := c.run(spec)
	if err != nil || again.Status != jobs.Done {
		t.Fatalf("resubmitted: %s %v", again.Status, err)
	}
}

// Model files replaced under the same name, size and modification time
// after submission fail the job at once (a permanent error), and a token id
// beyond the vocabulary fails the job at planning, before any shard runs.
func TestChangedModelAndBadTokensFailJob(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "model")
	save := func(seed uint64) {
		m, err := model.NewRandom(model.Config{NLayer: 2, NHead: 2, DModel: 32, DMLP: 128, NCtx: 64, Vocab: 50257, Eps: 1e-5}, seed)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Save(md); err != nil {
			t.Fatal(err)
		}
	}
	save(1)
	files, err := jobs.DigestFiles(md)
	if err != nil || len(files) < 2 {
		t.Fatalf("digests %+v, %v", files, err)
	}
	w := filepath.Join(md, "model.safetensors")
	fi, _ := os.Stat(w)
	save(2)
	os.Chtimes(w, fi.ModTime(), fi.ModTime())
	toks := filepath.Join(dir, "toks.bin")
	raw := make([]byte, 2*4000)
	for i := range 4000 {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(i%1000))
	}
	binary.LittleEndian.PutUint16(raw[2*3001:], 60000)
	if err := os.WriteFile(toks, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	q := natsx.QueueConfig{AckWait: 300 * time.Millisecond, MaxDeliver: 5}
	for _, tc := range []struct {
		name string
		edit func(*jobs.JobSpec)
		want []string
	}{
		{"model replaced", func(s *jobs.JobSpec) { s.Model, s.Files = md, files },
			[]string{"not retried", "model or autoencoder files changed since the job was submitted", "model.safetensors has sha256"}},
		{"token beyond vocabulary", func(s *jobs.JobSpec) { s.Corpus = "tokens:" + toks },
			[]string{"planning corpus", "token 60000 at index 3001 (byte offset 6002) is not below the vocabulary size 50257"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startCluster(t, 1, q, store.NewMemory())
			spec := tinySpec("bad", 1<<20)
			tc.edit(&spec)
			start := time.Now()
			state, err := c.run(spec)
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("the job took %v to fail", d)
			}
			if err == nil || state.Status != jobs.Failed {
				t.Fatalf("job %s: want failed", state.Status)
			}
			for _, w := range tc.want {
				if !strings.Contains(state.Reason, w) {
					t.Errorf("reason %q lacks %q", state.Reason, w)
				}
			}
		})
	}
}
