package main

import (
	"context"
	"io"
	"sync"
	"time"

	"tdb/internal/natsx"
)

func init() {
	register("coordinator", "run the collation coordinator service against a NATS JetStream cluster", cmdCoordinator)
}

func cmdCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("coordinator", stderr)
	sf := addServiceFlags(fs, "store for partials and datasets", ":9090")
	ackWait := fs.Duration("ack-wait", 30*time.Second, "time a shard may go without an (in-progress) ack before it is redelivered")
	maxDeliver := fs.Int("max-deliver", 5, "deliveries of a shard before its job fails")
	replicas := fs.Int("replicas", 1, "stream and KV replicas (3 on a production cluster)")
	sweep := fs.Duration("sweep", 5*time.Second, "how often lost shards are checked and queue metrics refreshed")
	keep := fs.Bool("keep-partials", false, "keep shard partials after the merge")
	leaderTTL := fs.Duration("leader-ttl", natsx.DefaultLeaderTTL, "leader lease lifetime: run any number of coordinators, one leads and a standby takes over within about this long of its death")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	o, err := sf.open(ctx, stderr)
	if err != nil {
		return err
	}
	o.coordinator, o.keep, o.sweep, o.leaderTTL = true, *keep, *sweep, *leaderTTL
	o.queue = natsx.QueueConfig{AckWait: *ackWait, MaxDeliver: *maxDeliver, Replicas: *replicas}
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	startServices(ctx, &wg, errs, o)
	wg.Wait()
	return <-errs
}
