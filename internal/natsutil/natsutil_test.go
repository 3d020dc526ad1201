package natsutil

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
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

func TestKeysAndIDs(t *testing.T) {
	if got := Subject("j-1", 7); got != "tdb.shards.j-1.7" {
		t.Errorf("Subject = %q", got)
	}
	if got := MsgID("j-1", 2, 7); got != "j-1/2/7" {
		t.Errorf("MsgID = %q", got)
	}
	if got := PartialKey("j-1", "mlp.post_act", 3, 12); got != "jobs/j-1/partials/mlp.post_act/layer=3/shard-000012.bin" {
		t.Errorf("PartialKey = %q", got)
	}
	for key, want := range map[string]int{"jobs.j-1.shard.12": 12, "jobs.j-1.shard.x": -1, "jobs.j-1.state": -1, "jobs.a.b.shard.1": -1} {
		job, n, ok := ParseShardKey(key)
		if (want >= 0) != ok || (ok && (n != want || job != "j-1")) {
			t.Errorf("ParseShardKey(%q) = %q %d %v", key, job, n, ok)
		}
	}
	for id, ok := range map[string]bool{"j-abc": true, "my_job-2": true, "": false, "Job": false, "a.b": false, "a b": false, "-x": false, strings.Repeat("a", 65): false} {
		if err := ValidateJobID(id); (err == nil) != ok {
			t.Errorf("ValidateJobID(%q) = %v", id, err)
		}
	}
	a := JobSpec{Model: "gpt2", Corpus: "c", Locations: []string{"mlp.post_act"}}
	b := a
	b.ID = "other"
	if a.DefaultID() != b.DefaultID() || !strings.HasPrefix(a.DefaultID(), "j-") || len(a.DefaultID()) != 14 {
		t.Errorf("DefaultID %q vs %q", a.DefaultID(), b.DefaultID())
	}
	b.TopK = 1
	if a.DefaultID() == b.DefaultID() {
		t.Error("different specs share an id")
	}
}

func TestCheckPartial(t *testing.T) {
	b := []byte("partial bytes")
	ref := PartialRef{Key: "k", Size: int64(len(b)), SHA256: "dd9ea8ca3d3e5c33ba10a1bc0a01cf02aeb5c2fb1e45c8e3a1c1ff62e0bd3c69"}
	// Compute the real digest via the function's own contract: a wrong one fails.
	if err := CheckPartial(b, ref); err == nil {
		t.Fatal("a wrong checksum passed")
	}
	ref.SHA256 = sha256Hex(b)
	if err := CheckPartial(b, ref); err != nil {
		t.Fatal(err)
	}
	if err := CheckPartial(b[:3], ref); err == nil {
		t.Fatal("a truncated partial passed")
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
		if _, err := js.Publish(ctx, Subject("j", 0), []byte("x"), jetstream.WithMsgID(MsgID("j", 1, 0))); err != nil {
			t.Fatal(err)
		}
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages (err %v), want 1 after a duplicate publish", info.State.Msgs, err)
	}
	if err := PutJSON(ctx, kv, StateKey("j"), JobState{ID: "j", Status: Running, Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := UpdateState(ctx, kv, "j", func(s *JobState) bool { s.Status = Done; return true })
	if err != nil || got.Status != Done {
		t.Fatalf("UpdateState = %+v, %v", got, err)
	}
	var back JobState
	if _, err := GetJSON(ctx, kv, StateKey("j"), &back); err != nil || back.Status != Done || back.Updated.IsZero() {
		t.Fatalf("state read back %+v, %v", back, err)
	}
	if _, err := GetJSON(ctx, kv, StateKey("nope"), &back); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("missing key: %v", err)
	}
}

func TestServeMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tdb_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	addr, err := ServeMetrics(ctx, "127.0.0.1:0", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "tdb_test_total 3") || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("metrics body lacks the counter:\n%s", body)
	}
}
