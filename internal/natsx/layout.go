package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tdb/internal/jobs"
)

// Names of the JetStream objects of the collation job.
const (
	// StreamName is the work-queue stream of shard messages.
	StreamName = "TDB_SHARDS"
	// ConsumerName is the one durable pull consumer every worker shares.
	ConsumerName = "tdb-workers"
	// Bucket is the KV bucket holding job specs, job states and shard records.
	Bucket = "tdb-jobs"
	// DedupWindow is how long the stream remembers Nats-Msg-Id values: a
	// coordinator that re-plans a job within it never publishes a shard twice.
	DedupWindow = 24 * time.Hour
)

// MaxDeliveriesAdvisory is the subject on which the server reports a shard
// message that ran out of deliveries.
var MaxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + StreamName + "." + ConsumerName

// QueueConfig sets the redelivery behaviour of the shard consumer.
type QueueConfig struct {
	// AckWait is how long a delivery may go without an ack or an in-progress
	// ack before the server redelivers it (workers send in-progress acks
	// every AckWait/4 while they compute). Default 30 s.
	AckWait time.Duration
	// MaxDeliver bounds the deliveries of one shard; a shard that fails them
	// all fails its job. Default 5.
	MaxDeliver int
	// Replicas of the stream and bucket (3 on a production cluster). Default 1.
	Replicas int
}

// WithDefaults fills zero fields.
func (q QueueConfig) WithDefaults() QueueConfig {
	if q.AckWait <= 0 {
		q.AckWait = 30 * time.Second
	}
	if q.MaxDeliver <= 0 {
		q.MaxDeliver = 5
	}
	if q.Replicas <= 0 {
		q.Replicas = 1
	}
	return q
}

// BackOff is the redelivery schedule: delivery n waits BackOff[n-1] for an
// ack, doubling from AckWait up to 4×AckWait, so a shard that crashes its
// workers is retried later and later rather than in a tight loop.
func (q QueueConfig) BackOff() []time.Duration {
	q = q.WithDefaults()
	out := make([]time.Duration, q.MaxDeliver)
	for i := range out {
		out[i] = q.AckWait << min(i, 2)
	}
	return out
}

// retryTimeouts runs fn up to five times while it fails with a timeout
// and ctx lasts.
func retryTimeouts(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if err = fn(); err == nil || ctx.Err() != nil ||
			!(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			return err
		}
	}
	return err
}

func bucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "tdb collation jobs: specs, states and per-shard records",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	}
}

// EnsureBucket creates or updates the job bucket (the coordinator: it owns
// the bucket's settings). A JetStream API call that times out (a starved
// server or client) is retried a few times.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := retryTimeouts(ctx, func() (err error) {
		kv, err = js.CreateOrUpdateKeyValue(ctx, bucketConfig(replicas))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating KV bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// OpenBucket binds to the job bucket and creates it (with replicas) only
// if it does not exist. Clients use it: updating an existing bucket would
// set its replicas to the client's guess, and a client with the default of
// 1 would scale a coordinator's 3-replica bucket down to one node.
//
// Like EnsureBucket it retries JetStream API calls that time out: a server
// just started on an existing data directory answers them only once it has
// recovered its streams.
func OpenBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := retryTimeouts(ctx, func() (err error) {
		kv, err = js.KeyValue(ctx, Bucket)
		return err
	})
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("binding to KV bucket %s: %w", Bucket, err)
	}
	err = retryTimeouts(ctx, func() (err error) {
		kv, err = js.CreateKeyValue(ctx, bucketConfig(replicas))
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, Bucket) // created meanwhile by a coordinator
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating KV bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// EnsureQueue creates or updates the shard stream and its shared consumer.
func EnsureQueue(ctx context.Context, js jetstream.JetStream, q QueueConfig) (jetstream.Stream, jetstream.Consumer, error) {
	q = q.WithDefaults()
	var st jetstream.Stream
	var cons jetstream.Consumer
	err := retryTimeouts(ctx, func() (err error) {
		st, cons, err = ensureQueue(ctx, js, q)
		return err
	})
	return st, cons, err
}

func ensureQueue(ctx context.Context, js jetstream.JetStream, q QueueConfig) (jetstream.Stream, jetstream.Consumer, error) {
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "tdb collation shards (work queue)",
		Subjects:    []string{jobs.SubjectPrefix + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    q.Replicas,
		Duplicates:  DedupWindow,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("creating stream %s: %w", StreamName, err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "tdb workers (shared pull consumer)",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.AckWait,
		MaxDeliver:    q.MaxDeliver,
		BackOff:       q.BackOff(),
		MaxAckPending: 10000,
		Replicas:      q.Replicas,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("creating consumer %s on %s: %w", ConsumerName, StreamName, err)
	}
	return st, cons, nil
}

// Bind waits until the job bucket and the shard consumer exist (a worker may
// start before the coordinator has created them) and returns them with the
// consumer's queue settings.
func Bind(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (jetstream.KeyValue, jetstream.Consumer, QueueConfig, error) {
	if log == nil {
		log = slog.Default()
	}
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		kv, err := js.KeyValue(ctx, Bucket)
		var cons jetstream.Consumer
		if err == nil {
			cons, err = js.Consumer(ctx, StreamName, ConsumerName)
		}
		if err == nil {
			cfg := cons.CachedInfo().Config
			q := QueueConfig{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, Replicas: max(cfg.Replicas, 1)}
			if len(cfg.BackOff) > 0 {
				q.AckWait = cfg.BackOff[0]
			}
			return kv, cons, q, nil
		}
		if !errors.Is(err, jetstream.ErrBucketNotFound) && !errors.Is(err, jetstream.ErrConsumerNotFound) &&
			!errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, QueueConfig{}, fmt.Errorf("binding to %s/%s: %w", StreamName, ConsumerName, err)
		}
		if attempt == 1 || attempt%20 == 0 {
			log.Info("waiting for the coordinator to create the shard queue", "stream", StreamName, "consumer", ConsumerName)
		}
		select {
		case <-ctx.Done():
			return nil, nil, QueueConfig{}, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
