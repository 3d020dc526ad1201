package natsx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaderBucket is the KV bucket that holds the coordinator leader lease. Its
// values expire after the lease TTL (the bucket's max age), so the key of a
// leader killed with SIGKILL disappears by itself.
const LeaderBucket = "tdb-leader"

// LeaderKey is the lease key of the coordinator leader.
const LeaderKey = "coordinator"

// DefaultLeaderTTL is how long a lease lives without renewal: a standby
// takes over at most this long (plus one poll) after the leader dies.
const DefaultLeaderTTL = 5 * time.Second

// LeaderOptions configures Lead.
type LeaderOptions struct {
	// ID names this candidate in the lease (default host/pid).
	ID string
	// TTL is the lease lifetime (default DefaultLeaderTTL, at least 1 s);
	// the leader renews it every TTL/3 and standbys poll every TTL/5.
	TTL      time.Duration
	Replicas int
	Logger   *slog.Logger
	// Store is the coordinator's store, published in the lease so clients
	// learn where datasets go.
	Store string
	// OnChange is told when this candidate gains (true) or loses (false)
	// the lease (metrics).
	OnChange func(leader bool)
}

// Lease is the value of the leader key.
type Lease struct {
	ID    string    `json:"id"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	Store string    `json:"store,omitempty"`
}

func (o LeaderOptions) withDefaults() LeaderOptions {
	if o.TTL <= 0 {
		o.TTL = DefaultLeaderTTL
	}
	o.TTL = max(o.TTL, time.Second)
	if o.ID == "" {
		host, _ := os.Hostname()
		o.ID = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OnChange == nil {
		o.OnChange = func(bool) {}
	}
	return o
}

// EnsureLeaderBucket creates or updates the lease bucket with max age ttl.
func EnsureLeaderBucket(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (kv jetstream.KeyValue, err error) {
	err = retryTimeouts(ctx, func() error {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      LeaderBucket,
			Description: "tdb coordinator leader lease (values expire unless renewed)",
			History:     1,
			TTL:         ttl,
			Storage:     jetstream.FileStorage,
			Replicas:    max(replicas, 1),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating KV bucket %s: %w", LeaderBucket, err)
	}
	return kv, nil
}

// CurrentLeader reads the lease (jetstream.ErrKeyNotFound: no leader).
func CurrentLeader(ctx context.Context, kv jetstream.KeyValue) (Lease, error) {
	var l Lease
	_, err := GetJSON(ctx, kv, LeaderKey, &l)
	return l, err
}

// Lead campaigns for the lease and runs run while holding it. The lease is
// created with compare-and-set (create only if absent) and renewed with
// compare-and-set on its revision every TTL/3; a renewal that finds another
// revision, or no success for a whole TTL (the key may have expired), means
// the lease is lost: run's context is cancelled, Lead waits for run to
// return and campaigns again. When run fails, the lease is released, the
// error logged and Lead campaigns again. On ctx's end the lease is
// deleted so a standby takes over at once. Lead returns nil when ctx ends.
func Lead(ctx context.Context, js jetstream.JetStream, o LeaderOptions, run func(context.Context) error) error {
	o = o.withDefaults()
	log := o.Logger
	var kv jetstream.KeyValue
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		var err error
		if kv, err = EnsureLeaderBucket(ctx, js, o.TTL, o.Replicas); err == nil {
			break
		} else if ctx.Err() != nil {
			return nil
		} else {
			log.Warn("cannot create the leader bucket; retrying", "err", err, "retry_in", wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	standby := false
	for ctx.Err() == nil {
		val, _ := json.Marshal(Lease{ID: o.ID, Host: hostname(), PID: os.Getpid(), Since: time.Now().UTC(), Store: o.Store})
		rev, err := kv.Create(ctx, LeaderKey, val)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, jetstream.ErrKeyExists) {
				if !standby {
					cur, _ := CurrentLeader(ctx, kv)
					log.Info("standing by: another coordinator leads", "leader", cur.ID, "ttl", o.TTL)
					standby = true
				}
			} else {
				log.Warn("cannot campaign for leadership; retrying", "err", err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(o.TTL / 5):
			}
			continue
		}
		standby = false
		log.Info("elected coordinator leader", "id", o.ID, "ttl", o.TTL)
		o.OnChange(true)
		lost, runErr := hold(ctx, kv, val, rev, o, run)
		o.OnChange(false)
		switch {
		case ctx.Err() != nil:
		case lost:
			log.Warn("lost coordinator leadership; standing by", "err", runErr)
		case runErr != nil:
			// A NATS hiccup under load (a watch that cannot be made): hand
			// the lease over and campaign again rather than exit.
			log.Error("leading failed; released the lease and campaigning again", "err", runErr)
			select {
			case <-ctx.Done():
			case <-time.After(o.TTL / 5):
			}
		}
	}
	return nil
}

// hold runs run under a context cancelled when the lease is lost, renewing
// it meanwhile, and releases it when run returns.
func hold(ctx context.Context, kv jetstream.KeyValue, val []byte, rev uint64, o LeaderOptions, run func(context.Context) error) (lost bool, err error) {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(lctx) }()
	tick := time.NewTicker(o.TTL / 3)
	defer tick.Stop()
	renewed := time.Now()
	for {
		select {
		case err := <-done:
			release(kv, rev, o.Logger)
			return false, err
		case <-tick.C:
			rctx, rcancel := context.WithTimeout(ctx, o.TTL/3)
			nrev, uerr := kv.Update(rctx, LeaderKey, val, rev)
			rcancel()
			switch {
			case uerr == nil:
				rev, renewed = nrev, time.Now()
			case ctx.Err() != nil:
				// shutting down: wait for run below
			case errors.Is(uerr, jetstream.ErrKeyExists) || errors.Is(uerr, jetstream.ErrKeyRevisionMismatch) ||
				errors.Is(uerr, jetstream.ErrKeyNotFound) || time.Since(renewed) >= o.TTL:
				o.Logger.Warn("leader lease lost", "err", uerr, "since_renewal", time.Since(renewed).Round(time.Millisecond))
				cancel()
				<-done
				return true, uerr
			default:
				o.Logger.Warn("cannot renew the leader lease; retrying", "err", uerr)
			}
		}
	}
}

// release deletes the lease if it is still ours (best effort).
func release(kv jetstream.KeyValue, rev uint64, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := kv.Delete(ctx, LeaderKey, jetstream.LastRevision(rev)); err != nil {
		log.Debug("cannot release the leader lease", "err", err)
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
