package natsx

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func next(t *testing.T, w *Watch) jetstream.KeyValueEntry {
	t.Helper()
	select {
	case e, ok := <-w.Updates():
		if !ok {
			t.Fatal("watch channel closed")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no update within 10s")
	}
	return nil
}

// When the underlying jetstream watch ends (its subscription closed, as a
// failed ordered-consumer reset does), Watch re-establishes it from the
// last revision: updates made meanwhile arrive once, nothing twice.
func TestWatchSurvivesItsSubscriptionEnding(t *testing.T) {
	_, js := embeddedJS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kv, err := EnsureBucket(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := kv.Put(ctx, fmt.Sprintf("a.%d", i), []byte("v0")); err != nil {
			t.Fatal(err)
		}
	}
	w, err := WatchKeys(ctx, kv, "a.>", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := range 3 {
		if e := next(t, w); e == nil || e.Key() != fmt.Sprintf("a.%d", i) {
			t.Fatalf("initial value %d: %v", i, e)
		}
	}
	if e := next(t, w); e != nil {
		t.Fatalf("want the end-of-initial-values marker, got %s", e.Key())
	}
	for round := 1; round <= 3; round++ {
		w.current().Stop() // the subscription ends under the watch
		val := fmt.Sprintf("v%d", round)
		if _, err := kv.Put(ctx, "a.1", []byte(val)); err != nil {
			t.Fatal(err)
		}
		e := next(t, w)
		if e == nil || e.Key() != "a.1" || string(e.Value()) != val {
			t.Fatalf("round %d: got %v, want a.1=%s", round, e, val)
		}
	}
	select {
	case e := <-w.Updates():
		t.Fatalf("unexpected extra entry %v", e)
	case <-time.After(300 * time.Millisecond):
	}
	if w.Restarts() != 3 {
		t.Fatalf("restarts %d, want 3", w.Restarts())
	}
	w.Stop()
	for range w.Updates() {
	}
}
