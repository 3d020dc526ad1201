package natsx

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Watch is a KV watch that outlives its subscription. A jetstream watch
// closes its channel when its ordered consumer cannot be reset (a
// reconnect, a slow consumer, a server restart under load); Watch then
// re-establishes it from the revision after the last one it delivered, so
// no update is lost and none is delivered twice. Its channel closes only
// when its context ends or Stop is called.
type Watch struct {
	ch     chan jetstream.KeyValueEntry
	cancel context.CancelFunc
	mu     sync.Mutex
	cur    jetstream.KeyWatcher
	// Restarts counts re-established watches (tests, logs).
	restarts int
}

// WatchKeys starts a Watch on keys (a KV key pattern). Like a jetstream
// watch it first delivers the current values, then one nil entry, then
// updates; the nil entry comes once, however often the watch is re-made.
func WatchKeys(ctx context.Context, kv jetstream.KeyValue, keys string, log *slog.Logger) (*Watch, error) {
	if log == nil {
		log = slog.Default()
	}
	first, err := kv.Watch(ctx, keys)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Watch{ch: make(chan jetstream.KeyValueEntry, 64), cancel: cancel, cur: first}
	go w.loop(ctx, kv, keys, log)
	return w, nil
}

// Updates is the channel of entries (see WatchKeys).
func (w *Watch) Updates() <-chan jetstream.KeyValueEntry { return w.ch }

// Stop ends the watch.
func (w *Watch) Stop() { w.cancel() }

// Restarts is how many times the watch was re-established.
func (w *Watch) Restarts() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.restarts
}

func (w *Watch) current() jetstream.KeyWatcher {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

func (w *Watch) loop(ctx context.Context, kv jetstream.KeyValue, keys string, log *slog.Logger) {
	defer close(w.ch)
	var last uint64
	initDone := false
	send := func(e jetstream.KeyValueEntry) bool {
		select {
		case w.ch <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		cur := w.current()
	recv:
		for {
			select {
			case <-ctx.Done():
				cur.Stop()
				return
			case e, ok := <-cur.Updates():
				if !ok {
					break recv
				}
				if e == nil {
					if !initDone {
						initDone = true
						if !send(nil) {
							cur.Stop()
							return
						}
					}
					continue
				}
				if e.Revision() <= last {
					continue // re-delivered by a resumed watch
				}
				last = e.Revision()
				if !send(e) {
					cur.Stop()
					return
				}
			}
		}
		cur.Stop()
		if ctx.Err() != nil {
			return
		}
		log.Warn("KV watch ended; re-establishing it", "keys", keys, "from_revision", last+1)
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			var opts []jetstream.WatchOpt
			if last > 0 {
				opts = append(opts, jetstream.ResumeFromRevision(last+1))
			}
			next, err := kv.Watch(ctx, keys, opts...)
			if err == nil {
				w.mu.Lock()
				w.cur = next
				w.restarts++
				w.mu.Unlock()
				log.Info("KV watch re-established", "keys", keys, "from_revision", last+1)
				break
			}
			if ctx.Err() != nil {
				return
			}
			log.Warn("cannot re-establish the KV watch; retrying", "keys", keys, "err", err, "retry_in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}
