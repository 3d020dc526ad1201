package natsx

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Dialer opens a NATS connection named name (the name shows in server
// monitoring). Services take one so the embedded and remote cases share code.
type Dialer func(ctx context.Context, name string) (*nats.Conn, error)

// RetryDialer connects to url and, while the server cannot be reached,
// retries with exponential back-off (0.5 s doubling to 15 s), logging each
// failure, until ctx ends. Once connected the client reconnects forever on its
// own and logs disconnects and reconnects.
func RetryDialer(url string, log *slog.Logger) Dialer {
	if log == nil {
		log = slog.Default()
	}
	return func(ctx context.Context, name string) (*nats.Conn, error) {
		wait := 500 * time.Millisecond
		for attempt := 1; ; attempt++ {
			nc, err := nats.Connect(url,
				nats.Name(name),
				nats.MaxReconnects(-1),
				nats.ReconnectWait(time.Second),
				nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
					if err != nil {
						log.Warn("disconnected from NATS; reconnecting", "url", url, "err", err)
					}
				}),
				nats.ReconnectHandler(func(c *nats.Conn) {
					log.Info("reconnected to NATS", "url", c.ConnectedUrlRedacted())
				}),
			)
			if err == nil {
				if attempt > 1 {
					log.Info("connected to NATS", "url", url, "attempts", attempt)
				}
				return nc, nil
			}
			log.Warn("cannot reach NATS; retrying", "url", url, "attempt", attempt, "retry_in", wait, "err", err)
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("connecting to NATS at %s: %w (last error: %v)", url, ctx.Err(), err)
			case <-time.After(wait):
			}
			wait = min(2*wait, 15*time.Second)
		}
	}
}
