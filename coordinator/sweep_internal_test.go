package coordinator

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/store"
)

// A job that no watch update announced (one the watch missed, or whose
// driver stopped on a failed read) is driven by the next sweep: without
// lead's watch, sweeping alone plans a submitted job.
func TestSweepDrivesJobsTheWatchMissed(t *testing.T) {
	emb, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := emb.Connect("sweep test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := store.NewMemory()
	c := &Coordinator{cfg: Config{Store: st, Metrics: NewMetrics(nil), MergeFanIn: DefaultMergeFanIn, Queue: natsx.QueueConfig{}.WithDefaults(), SweepInterval: 200 * time.Millisecond},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), running: map[string]bool{}}
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	if err := c.setup(ctx); err != nil {
		t.Fatal(err)
	}
	client, err := NewClient(ctx, nc, 1)
	if err != nil {
		t.Fatal(err)
	}
	state, err := client.Submit(ctx, jobs.JobSpec{Dataset: "swept", Model: "random:tiny", Corpus: "synthetic:ioi?docs=50&seed=3",
		Locations: []string{"mlp.post_act"}, NCtx: 16, TokensPerShard: 400, BatchSize: 4, Store: st.String()})
	if err != nil {
		t.Fatal(err)
	}
	dctx, stop := context.WithCancel(ctx)
	defer func() { stop(); c.wg.Wait() }()
	for {
		c.sweep(dctx)
		var now jobs.JobState
		if _, err := natsx.GetJSON(ctx, c.kv, jobs.StateKey(state.ID), &now); err != nil {
			t.Fatal(err)
		}
		if now.Status == jobs.Running && now.Shards > 0 {
			return
		}
		if now.Status.Final() {
			t.Fatalf("job %s: %s", now.Status, now.Reason)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the job is still %s after a minute of sweeps", now.Status)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
