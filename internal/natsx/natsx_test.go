package natsx

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"tdb/internal/jobs"
)

func TestBackOff(t *testing.T) {
	tests := []struct {
		q    QueueConfig
		want []time.Duration
	}{
		{QueueConfig{AckWait: time.Second, MaxDeliver: 5}, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}},
		{QueueConfig{AckWait: time.Second, MaxDeliver: 1}, []time.Duration{time.Second}},
		{QueueConfig{}, []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 2 * time.Minute, 2 * time.Minute}},
	}
	for _, tc := range tests {
		got := tc.q.BackOff()
		if len(got) != len(tc.want) {
			t.Fatalf("%+v: %v, want %v", tc.q, got, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("%+v: %v, want %v", tc.q, got, tc.want)
			}
		}
	}
}

// Against a real embedded server: the layout is created, a state update is
// compare-and-set, and shard messages are de-duplicated by id.
func TestLayoutOnEmbeddedServer(t *testing.T) {
	emb, err := StartEmbedded(EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	if emb.URL() != "" {
		t.Errorf("a server without Listen has URL %q", emb.URL())
	}
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	js, _ := jetstream.New(nc)
	kv, err := EnsureBucket(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	st, cons, err := EnsureQueue(ctx, js, QueueConfig{AckWait: time.Second, MaxDeliver: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, bcons, q, err := Bind(ctx, js, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if q.AckWait != time.Second || q.MaxDeliver != 3 || bcons.CachedInfo().Name != cons.CachedInfo().Name {
		t.Fatalf("bound queue %+v", q)
	}
	for range 2 {
		if _, err := js.Publish(ctx, jobs.Subject("j", 0), []byte("x"), jetstream.WithMsgID(jobs.MsgID("j", 1, 0))); err != nil {
			t.Fatal(err)
		}
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages (err %v), want 1 after a duplicate publish", info.State.Msgs, err)
	}
	if err := PutJSON(ctx, kv, jobs.StateKey("j"), jobs.JobState{ID: "j", Status: jobs.Running, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := UpdateState(ctx, kv, "j", func(s *jobs.JobState) bool { s.Status = jobs.Done; return true })
	if err != nil || got.Status != jobs.Done {
		t.Fatalf("UpdateState = %+v, %v", got, err)
	}
	var back jobs.JobState
	if _, err := GetJSON(ctx, kv, jobs.StateKey("j"), &back); err != nil || back.Status != jobs.Done || back.Updated.IsZero() {
		t.Fatalf("state read back %+v, %v", back, err)
	}
	if _, err := GetJSON(ctx, kv, jobs.StateKey("nope"), &back); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}
