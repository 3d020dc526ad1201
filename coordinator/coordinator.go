package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tdb/corpus"
	"tdb/dataset"
	"tdb/internal/natsutil"
	"tdb/store"
)

// Config configures the coordinator service.
type Config struct {
	Dial  natsutil.Dialer
	Store store.Store
	// Queue sets the shard consumer's ack wait and delivery bound.
	Queue natsutil.QueueConfig
	// CorpusOptions open corpora for planning (set Opener for corpora on a
	// store).
	CorpusOptions corpus.Options
	Logger        *slog.Logger
	Metrics       *Metrics
	// SweepInterval is how often jobs are checked for shards lost on their
	// last delivery and queue metrics refreshed (default 5 s).
	SweepInterval time.Duration
	// MergeParallel bounds the location/layer merges run at once (default
	// GOMAXPROCS/2, at least 1): each holds two partials in memory.
	MergeParallel int
	// KeepPartials keeps the shard partials after a successful merge.
	KeepPartials bool
}

// Coordinator drives every unfinished job in the bucket.
type Coordinator struct {
	cfg    Config
	log    *slog.Logger
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	stream jetstream.Stream
	cons   jetstream.Consumer

	mu      sync.Mutex
	running map[string]bool // jobs with a driver
	wg      sync.WaitGroup
}

// Run connects, creates the stream, consumer and bucket if needed, resumes
// every unfinished job and drives new ones until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Dial == nil || cfg.Store == nil {
		return errors.New("coordinator: a NATS dialer and a store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 5 * time.Second
	}
	if cfg.MergeParallel <= 0 {
		cfg.MergeParallel = max(1, runtime.GOMAXPROCS(0)/2)
	}
	cfg.Queue = cfg.Queue.WithDefaults()
	c := &Coordinator{cfg: cfg, log: cfg.Logger.With("service", "coordinator"), running: map[string]bool{}}
	nc, err := cfg.Dial(ctx, "tdb-coordinator")
	if err != nil {
		return err
	}
	defer nc.Close()
	if c.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if c.kv, err = natsutil.EnsureBucket(ctx, c.js, cfg.Queue.Replicas); err != nil {
		return err
	}
	if c.stream, c.cons, err = natsutil.EnsureQueue(ctx, c.js, cfg.Queue); err != nil {
		return err
	}
	sub, err := nc.Subscribe(natsutil.MaxDeliveriesAdvisory, func(m *nats.Msg) { c.onMaxDeliveries(ctx, m.Data) })
	if err != nil {
		return fmt.Errorf("coordinator: subscribing to advisories: %w", err)
	}
	defer sub.Unsubscribe()

	w, err := c.kv.Watch(ctx, natsutil.StateKeys)
	if err != nil {
		return fmt.Errorf("coordinator: watching jobs: %w", err)
	}
	defer w.Stop()
	c.log.Info("coordinator ready", "store", cfg.Store.String(), "ack_wait", cfg.Queue.AckWait, "max_deliver", cfg.Queue.MaxDeliver)
	tick := time.NewTicker(cfg.SweepInterval)
	defer tick.Stop()
	defer c.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			c.refreshMetrics(ctx)
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("coordinator: the job watch ended (NATS connection lost?)")
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var st natsutil.JobState
			if json.Unmarshal(e.Value(), &st) != nil || st.Status.Final() {
				continue
			}
			c.startDriver(ctx, st.ID)
		}
	}
}

// startDriver runs one job's driver unless one runs already.
func (c *Coordinator) startDriver(ctx context.Context, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[id] {
		return
	}
	c.running[id] = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.drive(ctx, id)
		c.mu.Lock()
		delete(c.running, id)
		c.mu.Unlock()
		// A resubmission that landed while this driver was finishing.
		var st natsutil.JobState
		if _, err := natsutil.GetJSON(ctx, c.kv, natsutil.StateKey(id), &st); err == nil && !st.Status.Final() && ctx.Err() == nil {
			c.startDriver(ctx, id)
		}
	}()
}

// drive moves a job through its stages until it is final or ctx ends. Every
// stage starts from what KV and the store say, so a restarted coordinator
// picks up where the last one stopped.
func (c *Coordinator) drive(ctx context.Context, id string) {
	log := c.log.With("job", id)
	for ctx.Err() == nil {
		var st natsutil.JobState
		if _, err := natsutil.GetJSON(ctx, c.kv, natsutil.StateKey(id), &st); err != nil {
			if ctx.Err() == nil {
				log.Error("cannot read job state", "err", err)
			}
			return
		}
		var spec natsutil.JobSpec
		if _, err := natsutil.GetJSON(ctx, c.kv, natsutil.SpecKey(id), &spec); err != nil {
			c.failJob(ctx, id, st.Attempt, fmt.Sprintf("reading the job spec: %v", err))
			continue
		}
		var err error
		switch st.Status {
		case natsutil.Submitted, natsutil.Planning:
			err = c.plan(ctx, spec, st, log)
		case natsutil.Running:
			err = c.follow(ctx, spec, st, log)
		case natsutil.Merging:
			err = c.merge(ctx, spec, st, log)
		default:
			c.cleanup(ctx, id, st, log)
			return
		}
		if err != nil && ctx.Err() == nil {
			var je jobError
			stage := "jobs"
			if errors.As(err, &je) {
				stage = je.stage
			}
			c.cfg.Metrics.Errors.WithLabelValues(stage).Inc()
			c.failJob(ctx, id, st.Attempt, err.Error())
		}
	}
}

// jobError is an error that fails the job, tagged with its stage.
type jobError struct {
	stage string
	err   error
}

func (e jobError) Error() string { return e.err.Error() }
func (e jobError) Unwrap() error { return e.err }

func stageErr(stage string, format string, a ...any) error {
	return jobError{stage, fmt.Errorf(format, a...)}
}

// failJob marks the job failed with reason, unless it is final already or
// has moved to another attempt.
func (c *Coordinator) failJob(ctx context.Context, id string, attempt int, reason string) {
	st, err := natsutil.UpdateState(ctx, c.kv, id, func(s *natsutil.JobState) bool {
		if s.Status.Final() || s.Attempt != attempt {
			return false
		}
		now := time.Now().UTC()
		s.Status, s.Reason, s.Finished = natsutil.Failed, reason, &now
		return true
	})
	if err != nil {
		c.log.Error("cannot mark job failed", "job", id, "reason", reason, "err", err)
		return
	}
	if st.Status == natsutil.Failed {
		c.log.Error("job failed", "job", id, "reason", st.Reason)
	}
}

// cleanup purges the queued shards of a failed or cancelled job.
func (c *Coordinator) cleanup(ctx context.Context, id string, st natsutil.JobState, log *slog.Logger) {
	if err := c.stream.Purge(ctx, jetstream.WithPurgeSubject(natsutil.JobSubjects(id))); err != nil {
		log.Warn("cannot purge the job's queued shards", "err", err)
	}
	log.Info("job finished", "status", st.Status, "reason", st.Reason)
}

// plan cuts the corpus into shards, saves the plan, moves the job to
// running and publishes the shards.
func (c *Coordinator) plan(ctx context.Context, spec natsutil.JobSpec, st natsutil.JobState, log *slog.Logger) error {
	log.Info("planning job", "corpus", spec.Corpus, "dataset", spec.Dataset)
	if _, err := c.cfg.Store.Size(ctx, dataset.ManifestKey(spec.Dataset)); err == nil {
		return stageErr("plan", "dataset %q already exists in %s (choose another --dataset, or delete it)", spec.Dataset, c.cfg.Store)
	} else if !errors.Is(err, store.ErrNotFound) {
		return stageErr("plan", "checking for dataset %q in %s: %w", spec.Dataset, c.cfg.Store, err)
	}
	opts := c.cfg.CorpusOptions
	opts.BlockBytes = spec.BlockBytes
	cp, err := corpus.Open(ctx, spec.Corpus, opts)
	if err != nil {
		return stageErr("plan", "opening corpus: %w", err)
	}
	shards, err := cp.Plan(ctx, spec.TokensPerShard)
	if err != nil {
		return stageErr("plan", "planning corpus: %w", err)
	}
	b, err := json.Marshal(shards)
	if err != nil {
		return stageErr("plan", "encoding plan: %w", err)
	}
	// Writing the plan is also the first write to the store: a store that
	// refuses writes fails the job here, before any work is done.
	if err := c.cfg.Store.Put(ctx, natsutil.PlanKey(spec.ID), bytes.NewReader(b)); err != nil {
		return stageErr("plan", "writing the shard plan to %s: %w", c.cfg.Store, err)
	}
	var est int64
	for _, s := range shards {
		est += s.EstTokens
	}
	moved := false
	_, err = natsutil.UpdateState(ctx, c.kv, spec.ID, func(s *natsutil.JobState) bool {
		if s.Attempt != st.Attempt || (s.Status != natsutil.Submitted && s.Status != natsutil.Planning) {
			return false
		}
		now := time.Now().UTC()
		s.Status, s.Shards, s.PlannedTokens, s.Started, moved = natsutil.Running, len(shards), est, &now, true
		return true
	})
	if err != nil {
		return err
	}
	if moved {
		log.Info("job planned", "shards", len(shards), "estimated_tokens", est)
	}
	return nil // follow publishes
}

// loadPlan reads a job's shard plan from the store.
func (c *Coordinator) loadPlan(ctx context.Context, id string) ([]json.RawMessage, error) {
	rc, err := c.cfg.Store.Get(ctx, natsutil.PlanKey(id))
	if err != nil {
		return nil, stageErr("plan", "reading the shard plan: %w", err)
	}
	defer rc.Close()
	var plan []json.RawMessage
	if err := json.NewDecoder(rc).Decode(&plan); err != nil {
		return nil, stageErr("plan", "decoding the shard plan %s: %w", natsutil.PlanKey(id), err)
	}
	return plan, nil
}

// publish sends every shard not yet done. Message ids make a repeat a
// no-op within the stream's de-duplication window.
func (c *Coordinator) publish(ctx context.Context, id string, attempt int, plan []json.RawMessage, done map[int]bool) error {
	n := 0
	for i, sh := range plan {
		if done[i] {
			continue
		}
		b, err := json.Marshal(natsutil.ShardTask{Job: id, Attempt: attempt, Index: i, Shard: sh})
		if err != nil {
			return err
		}
		ack, err := c.js.Publish(ctx, natsutil.Subject(id, i), b, jetstream.WithMsgID(natsutil.MsgID(id, attempt, i)))
		if err != nil {
			return stageErr("publish", "publishing shard %d: %w", i, err)
		}
		if !ack.Duplicate {
			n++
		}
	}
	c.log.Info("shards published", "job", id, "new", n, "pending", len(plan)-len(done))
	return nil
}

// follow publishes what is missing and watches the shard records until
// every shard is done (the job moves to merging), a shard fails for good,
// or the job is stopped.
func (c *Coordinator) follow(ctx context.Context, spec natsutil.JobSpec, st natsutil.JobState, log *slog.Logger) error {
	plan, err := c.loadPlan(ctx, spec.ID)
	if err != nil {
		return err
	}
	if len(plan) != st.Shards {
		return stageErr("plan", "the shard plan has %d shards, the job state says %d", len(plan), st.Shards)
	}
	w, err := c.kv.Watch(ctx, "jobs."+spec.ID+".>")
	if err != nil {
		return fmt.Errorf("watching job: %w", err)
	}
	defer w.Stop()
	records := map[int]natsutil.ShardRecord{}
	done := map[int]bool{}
	published := false
	tick := time.NewTicker(c.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if published {
				if reason := c.lostShard(ctx, spec.ID, st.Attempt, records, done); reason != "" {
					return stageErr("jobs", "%s", reason)
				}
			}
			continue
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the job watch ended (NATS connection lost?)")
			}
			if e != nil {
				if e.Operation() != jetstream.KeyValuePut {
					continue
				}
				if e.Key() == natsutil.StateKey(spec.ID) {
					var now natsutil.JobState
					if json.Unmarshal(e.Value(), &now) == nil && (now.Status != natsutil.Running || now.Attempt != st.Attempt) {
						return nil // cancelled, failed or resubmitted: drive re-reads the state
					}
					continue
				}
				_, i, ok := natsutil.ParseShardKey(e.Key())
				if !ok || i < 0 || i >= len(plan) {
					continue
				}
				var r natsutil.ShardRecord
				if json.Unmarshal(e.Value(), &r) != nil {
					continue
				}
				records[i] = r
				switch {
				case r.Status == natsutil.ShardDone && !done[i]:
					done[i] = true
					if published {
						c.cfg.Metrics.ShardsDone.Inc()
						c.cfg.Metrics.Tokens.Add(float64(r.Tokens))
						c.cfg.Metrics.ShardDuration.Observe(r.Seconds)
					}
				case r.Status == natsutil.ShardError && r.Final && r.Attempt == st.Attempt:
					return stageErr("jobs", "shard %d failed on delivery %d of %d: %s", i, r.Delivery, c.cfg.Queue.MaxDeliver, r.Error)
				}
				if !published {
					continue
				}
			} else if !published {
				// Initial values replayed: publish whatever is not done.
				if err := c.publish(ctx, spec.ID, st.Attempt, plan, done); err != nil {
					return err
				}
				published = true
			}
			if len(done) == len(plan) {
				return c.toMerging(ctx, spec.ID, st.Attempt, log)
			}
		}
	}
}

func (c *Coordinator) toMerging(ctx context.Context, id string, attempt int, log *slog.Logger) error {
	_, err := natsutil.UpdateState(ctx, c.kv, id, func(s *natsutil.JobState) bool {
		if s.Status != natsutil.Running || s.Attempt != attempt {
			return false
		}
		s.Status = natsutil.Merging
		return true
	})
	if err == nil {
		log.Info("every shard is done; merging")
	}
	return err
}

// lostShard finds a shard whose last allowed delivery went to a worker that
// vanished (no final error record will come): its record says running on
// the last delivery and has not been updated for longer than that
// delivery's ack wait. It covers an advisory missed while no coordinator
// ran.
func (c *Coordinator) lostShard(ctx context.Context, id string, attempt int, records map[int]natsutil.ShardRecord, done map[int]bool) string {
	q := c.cfg.Queue
	backoff := q.BackOff()
	limit := backoff[len(backoff)-1] + c.cfg.SweepInterval + 2*time.Second
	for i, r := range records {
		if done[i] || r.Attempt != attempt || r.Status != natsutil.ShardRunning || r.Delivery < q.MaxDeliver {
			continue
		}
		if time.Since(r.Updated) > limit {
			return fmt.Sprintf("shard %d exhausted its %d deliveries; its last worker (%s) stopped without reporting (crash or kill?)", i, q.MaxDeliver, r.Worker)
		}
	}
	return ""
}

// onMaxDeliveries fails the job of a shard message that exhausted its
// deliveries, with the last error its workers recorded.
func (c *Coordinator) onMaxDeliveries(ctx context.Context, data []byte) {
	var adv struct {
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries int    `json:"deliveries"`
	}
	if err := json.Unmarshal(data, &adv); err != nil {
		c.cfg.Metrics.Errors.WithLabelValues("advisory").Inc()
		c.log.Warn("undecodable max-deliveries advisory", "err", err)
		return
	}
	raw, err := c.stream.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		c.cfg.Metrics.Errors.WithLabelValues("advisory").Inc()
		c.log.Warn("shard message of a max-deliveries advisory not found", "seq", adv.StreamSeq, "err", err)
		return
	}
	var task natsutil.ShardTask
	if err := json.Unmarshal(raw.Data, &task); err != nil {
		return
	}
	reason := fmt.Sprintf("shard %d exhausted its %d deliveries", task.Index, adv.Deliveries)
	var r natsutil.ShardRecord
	if _, err := natsutil.GetJSON(ctx, c.kv, natsutil.ShardKey(task.Job, task.Index), &r); err == nil && r.Attempt == task.Attempt {
		switch {
		case r.Status == natsutil.ShardDone:
			return // finished after all (the last delivery succeeded late)
		case r.Error != "":
			reason += "; last error: " + r.Error
		case r.Status == natsutil.ShardRunning:
			reason += fmt.Sprintf("; its last worker (%s) stopped without reporting (crash or kill?)", r.Worker)
		}
	}
	c.failJob(ctx, task.Job, task.Attempt, reason)
}

// refreshMetrics updates the queue and job gauges.
func (c *Coordinator) refreshMetrics(ctx context.Context) {
	m := c.cfg.Metrics
	if info, err := c.cons.Info(ctx); err == nil {
		m.QueueDepth.Set(float64(info.NumPending))
		m.AckPending.Set(float64(info.NumAckPending))
		m.Redeliveries.Set(float64(info.NumRedelivered))
	}
	lister, err := c.kv.ListKeysFiltered(ctx, natsutil.StateKeys)
	if err != nil {
		return
	}
	counts := map[natsutil.JobStatus]int{}
	for key := range lister.Keys() {
		var st natsutil.JobState
		if _, err := natsutil.GetJSON(ctx, c.kv, key, &st); err == nil {
			counts[st.Status]++
		}
	}
	for _, s := range []natsutil.JobStatus{natsutil.Submitted, natsutil.Planning, natsutil.Running, natsutil.Merging, natsutil.Done, natsutil.Failed, natsutil.Cancelled} {
		m.Jobs.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
}
