package viewer

import (
	"context"
	"errors"
	"net/http"
)

// errBusy is returned when the model queue is full.
var errBusy = errors.New("the server is busy: every model slot is taken and the queue is full; try again in a moment")

// queue bounds model work: at most `workers` requests run at once and at
// most `waiting` more wait; anything beyond is refused at once, so a burst
// of requests costs a 503 rather than memory.
type queue struct {
	admit chan struct{} // running + waiting
	run   chan struct{} // running
}

func newQueue(workers, waiting int) *queue {
	return &queue{admit: make(chan struct{}, workers+waiting), run: make(chan struct{}, workers)}
}

// acquire takes a slot or fails with errBusy (queue full) or ctx's error.
// The returned release must be called once.
func (q *queue) acquire(ctx context.Context) (release func(), err error) {
	select {
	case q.admit <- struct{}{}:
	default:
		return nil, errBusy
	}
	select {
	case q.run <- struct{}{}:
	case <-ctx.Done():
		<-q.admit
		return nil, ctx.Err()
	}
	return func() { <-q.run; <-q.admit }, nil
}

// depth is the number of admitted requests (running and waiting).
func (q *queue) depth() int { return len(q.admit) }

// Acquire takes a slot of the server's model queue for work done by a
// mounted handler (the /compat API), so that it shares the viewer's limit:
// at most Workers run, Queue wait, and beyond that it fails at once with
// a "server is busy" error. Call done when the model work is over.
func (s *Server) Acquire(ctx context.Context) (done func(), err error) {
	done, err = s.q.acquire(ctx)
	if errors.Is(err, errBusy) {
		s.busy.Inc()
	}
	return done, err
}

// modelSlot is how a model handler starts its work: the request bounded
// by RequestTimeout, and a slot of the queue. ok false: it has answered
// with the error. done ends both.
func (s *Server) modelSlot(w http.ResponseWriter, r *http.Request) (ctx context.Context, done func(), ok bool) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.RequestTimeout)
	release, err := s.q.acquire(ctx)
	if err != nil {
		cancel()
		s.fail(w, r, err)
		return nil, nil, false
	}
	return ctx, func() { release(); cancel() }, true
}
