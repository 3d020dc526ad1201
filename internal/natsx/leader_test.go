package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func embeddedJS(t *testing.T) (*Embedded, jetstream.JetStream) {
	t.Helper()
	emb, err := StartEmbedded(EmbeddedOptions{Dir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	nc, err := emb.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return emb, js
}

// One of two candidates leads and keeps the lease past several TTLs; when
// it stops the other takes over; a lease left by a dead leader (never
// renewed) expires and is taken within about a TTL.
func TestLeadElectsOneAndFailsOver(t *testing.T) {
	_, js := embeddedJS(t)
	ttl := time.Second
	var leading atomic.Int32
	var maxLeading atomic.Int32
	var led [2]atomic.Bool
	run := func(i int) func(context.Context) error {
		return func(ctx context.Context) error {
			n := leading.Add(1)
			if n > maxLeading.Load() {
				maxLeading.Store(n)
			}
			led[i].Store(true)
			<-ctx.Done()
			leading.Add(-1)
			return nil
		}
	}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA := make(chan error, 1)
	go func() { doneA <- Lead(ctxA, js, LeaderOptions{ID: "a", TTL: ttl}, run(0)) }()
	deadline := time.Now().Add(10 * time.Second)
	for !led[0].Load() {
		if time.Now().After(deadline) {
			t.Fatal("a was never elected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	go Lead(ctxB, js, LeaderOptions{ID: "b", TTL: ttl}, run(1))
	time.Sleep(4 * ttl) // several lease lifetimes: a renews, b stands by
	if led[1].Load() || maxLeading.Load() != 1 {
		t.Fatalf("b led while a renewed its lease (max leaders at once %d)", maxLeading.Load())
	}
	kv, err := js.KeyValue(context.Background(), LeaderBucket)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := CurrentLeader(context.Background(), kv); err != nil || l.ID != "a" {
		t.Fatalf("lease %+v, %v: want a", l, err)
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for !led[1].Load() {
		if time.Since(start) > 3*ttl {
			t.Fatal("b did not take over after a stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopB()

	// A lease whose holder died: nobody renews or deletes it.
	time.Sleep(200 * time.Millisecond)
	val, _ := json.Marshal(Lease{ID: "dead"})
	if _, err := kv.Create(context.Background(), LeaderKey, val); err != nil {
		t.Fatal(err)
	}
	var tookOver atomic.Bool
	ctxC, stopC := context.WithCancel(context.Background())
	defer stopC()
	start = time.Now()
	go Lead(ctxC, js, LeaderOptions{ID: "c", TTL: ttl}, func(ctx context.Context) error {
		tookOver.Store(true)
		<-ctx.Done()
		return nil
	})
	for !tookOver.Load() {
		if time.Since(start) > 5*ttl {
			t.Fatal("the dead leader's lease never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if took := time.Since(start); took < ttl/2 {
		t.Fatalf("c took over after %v, before the dead lease could expire", took)
	}
}

// A leader whose lease is taken from it (here: overwritten) stops leading.
func TestLeadStepsDownWhenLeaseLost(t *testing.T) {
	_, js := embeddedJS(t)
	ttl := time.Second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	elected := make(chan struct{}, 4)
	stopped := make(chan struct{}, 4)
	go Lead(ctx, js, LeaderOptions{ID: "a", TTL: ttl}, func(ctx context.Context) error {
		elected <- struct{}{}
		<-ctx.Done()
		stopped <- struct{}{}
		return nil
	})
	select {
	case <-elected:
	case <-time.After(10 * time.Second):
		t.Fatal("not elected")
	}
	kv, err := js.KeyValue(ctx, LeaderBucket)
	if err != nil {
		t.Fatal(err)
	}
	val, _ := json.Marshal(Lease{ID: "usurper"})
	if _, err := kv.Put(ctx, LeaderKey, val); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	case <-time.After(3 * ttl):
		t.Fatal("the leader kept running after its lease was taken")
	}
}

// A leader whose run fails (a watch that could not be made under load)
// releases the lease and campaigns again instead of ending.
func TestLeadRetriesAfterRunError(t *testing.T) {
	_, js := embeddedJS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	second := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Lead(ctx, js, LeaderOptions{ID: "a", TTL: time.Second}, func(ctx context.Context) error {
			if calls.Add(1) == 1 {
				return errors.New("watch failed")
			}
			close(second)
			<-ctx.Done()
			return nil
		})
	}()
	select {
	case <-second:
	case err := <-done:
		t.Fatalf("Lead returned %v after run failed", err)
	case <-time.After(10 * time.Second):
		t.Fatal("run was not retried")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
