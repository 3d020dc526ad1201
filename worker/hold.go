package worker

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// holdPatience bounds how long a worker keeps a delivery while the job
// bucket does not answer. A JetStream stream whose leader died elects
// another in seconds; giving the delivery back at once instead (a Nak)
// would have every worker burn the shard's deliveries in that window and
// fail the job for an outage it would have survived.
const holdPatience = time.Minute

// errStopHolding marks an error that no retry can change.
type errStopHolding struct{ err error }

func (e errStopHolding) Error() string { return e.err.Error() }
func (e errStopHolding) Unwrap() error { return e.err }

// stopHolding wraps err so that holdWhile returns it at once.
func stopHolding(err error) error { return errStopHolding{err} }

// holdWhile runs fn until it succeeds, keeping the delivery alive with
// in-progress acks between tries (waits of 200 ms doubling to 2 s, and
// never longer than a quarter of the ack wait, as the heartbeat), for
// at most holdPatience or until ctx ends or fn returns a stopHolding
// error. It returns fn's last error, unwrapped.
func (w *Worker) holdWhile(ctx context.Context, msg jetstream.Msg, log *slog.Logger, what string, fn func(context.Context) error) error {
	deadline := time.Now().Add(holdPatience)
	longest := min(2*time.Second, max(w.q.AckWait/4, 50*time.Millisecond))
	wait := min(200*time.Millisecond, longest)
	for try := 1; ; try++ {
		err := fn(ctx)
		var stop errStopHolding
		if errors.As(err, &stop) {
			return stop.err
		}
		if err == nil || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		w.cfg.Metrics.Errors.WithLabelValues("kv").Inc()
		if try%10 == 1 { // the first failure and every tenth: an outage is one line, not thirty
			log.Warn("NATS did not answer; holding the delivery and retrying", "step", what, "try", try, "retry_in", wait, "err", err)
		}
		if perr := msg.InProgress(); perr != nil {
			log.Debug("in-progress ack failed", "err", perr)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, longest)
	}
}
