package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"tdb/internal/natsx"
	"tdb/internal/service"
)

func init() {
	register("coordinator", "run the collation coordinator service against a NATS JetStream cluster", cmdCoordinator)
}

func cmdCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("coordinator", stderr)
	natsURL := fs.String("nats", envOr("TDB_NATS", "nats://127.0.0.1:4222"), "NATS URL ($TDB_NATS)")
	storeURL := fs.String("store", envOr("TDB_STORE", "./tdb-data"), "store for partials and datasets ($TDB_STORE)")
	metricsAddr := fs.String("metrics-addr", envOr("TDB_METRICS_ADDR", ":9090"), "Prometheus /metrics address, empty to disable ($TDB_METRICS_ADDR)")
	ackWait := fs.Duration("ack-wait", 30*time.Second, "time a shard may go without an (in-progress) ack before it is redelivered")
	maxDeliver := fs.Int("max-deliver", 5, "deliveries of a shard before its job fails")
	replicas := fs.Int("replicas", 1, "stream and KV replicas (3 on a production cluster)")
	sweep := fs.Duration("sweep", 5*time.Second, "how often lost shards are checked and queue metrics refreshed")
	keep := fs.Bool("keep-partials", false, "keep shard partials after the merge")
	leaderTTL := fs.Duration("leader-ttl", natsx.DefaultLeaderTTL, "leader lease lifetime: run any number of coordinators, one leads and a standby takes over within about this long of its death")
	jsonLogs := fs.Bool("json-logs", false, "log JSON lines")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := service.NewLogger(stderr, *jsonLogs, slog.LevelInfo)
	st, reg, err := openServiceBase(ctx, *storeURL, *metricsAddr, log)
	if err != nil {
		return err
	}
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	startServices(ctx, &wg, errs, serviceOptions{dial: natsx.RetryDialer(*natsURL, log), store: st, coordinator: true, log: log, reg: reg,
		queue: natsx.QueueConfig{AckWait: *ackWait, MaxDeliver: *maxDeliver, Replicas: *replicas}, keep: *keep, sweep: *sweep, leaderTTL: *leaderTTL})
	wg.Wait()
	return <-errs
}
