package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tdb/corpus"
	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/store"
)

// Config configures the coordinator service.
type Config struct {
	Dial  natsx.Dialer
	Store store.Store
	// Queue sets the shard consumer's ack wait and delivery bound.
	Queue natsx.QueueConfig
	// CorpusOptions open corpora for planning (set Opener for corpora on a
	// store).
	CorpusOptions corpus.Options
	Logger        *slog.Logger
	Metrics       *Metrics
	// SweepInterval is how often jobs are checked for shards lost on their
	// last delivery and queue metrics refreshed (default 5 s).
	SweepInterval time.Duration
	// KeepPartials keeps the shard partials after a successful merge.
	KeepPartials bool
	// MergeFanIn is the most partials one merge task folds (default 16):
	// a layer with more is merged as a tree, intermediate merges of groups
	// of partials into partials first. Every coordinator of a cluster
	// must use the same.
	MergeFanIn int
	// LeaderTTL is the leader lease lifetime (default natsx.DefaultLeaderTTL):
	// any number of coordinators may run, one leads, and a standby takes
	// over within about LeaderTTL of the leader's death.
	LeaderTTL time.Duration
	// LeaderID names this coordinator in the lease (default host/pid).
	LeaderID string
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
	if cfg.MergeFanIn < 2 {
		cfg.MergeFanIn = DefaultMergeFanIn
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
	if err := c.setup(ctx); err != nil {
		return err
	}
	lopts := natsx.LeaderOptions{ID: cfg.LeaderID, TTL: cfg.LeaderTTL, Replicas: cfg.Queue.Replicas, Logger: c.log, Store: cfg.Store.String(),
		OnChange: func(leader bool) { c.cfg.Metrics.Leader.Set(map[bool]float64{true: 1}[leader]) }}
	return natsx.Lead(ctx, c.js, lopts, func(lctx context.Context) error { return c.lead(lctx, nc) })
}

// lead drives every unfinished job while this coordinator holds the leader
// lease; ctx ends when it loses the lease or stops.
func (c *Coordinator) lead(ctx context.Context, nc *nats.Conn) error {
	sub, err := nc.Subscribe(natsx.MaxDeliveriesAdvisory, func(m *nats.Msg) { c.onMaxDeliveries(ctx, m.Data) })
	if err != nil {
		return fmt.Errorf("coordinator: subscribing to advisories: %w", err)
	}
	defer sub.Unsubscribe()
	w, err := natsx.WatchKeys(ctx, c.kv, jobs.StateKeys, c.log)
	if err != nil {
		return fmt.Errorf("coordinator: watching jobs: %w", err)
	}
	defer w.Stop()
	c.log.Info("coordinator ready", "store", c.cfg.Store.String(), "ack_wait", c.cfg.Queue.AckWait, "max_deliver", c.cfg.Queue.MaxDeliver)
	tick := time.NewTicker(c.cfg.SweepInterval)
	defer tick.Stop()
	defer c.wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			c.sweep(ctx)
		case e, ok := <-w.Updates():
			if !ok {
				return nil // natsx.Watch closes only when ctx ends
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var st jobs.JobState
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
		c.driveSafely(ctx, id)
		c.mu.Lock()
		delete(c.running, id)
		c.mu.Unlock()
		// A resubmission that landed while this driver was finishing.
		var st jobs.JobState
		if _, err := natsx.GetJSON(ctx, c.kv, jobs.StateKey(id), &st); err == nil && !st.Status.Final() && ctx.Err() == nil {
			c.startDriver(ctx, id)
		}
	}()
}

// driveSafely runs drive and turns a panic into the job's failure, so one
// job can never crash (and on restart crash-loop) the coordinator.
func (c *Coordinator) driveSafely(ctx context.Context, id string) {
	defer func() {
		if p := recover(); p != nil {
			c.cfg.Metrics.Errors.WithLabelValues("panic").Inc()
			c.log.Error("job driver panicked", "job", id, "panic", p, "stack", string(debug.Stack()))
			var st jobs.JobState
			if _, err := natsx.GetJSON(ctx, c.kv, jobs.StateKey(id), &st); err == nil {
				c.failJob(ctx, id, st.Attempt, fmt.Sprintf("internal error (panic) in the coordinator: %v", p))
			}
		}
	}()
	c.drive(ctx, id)
}

// drive moves a job through its stages until it is final or ctx ends. Every
// stage starts from what KV and the store say, so a restarted coordinator
// picks up where the last one stopped.
func (c *Coordinator) drive(ctx context.Context, id string) {
	log := c.log.With("job", id)
	for ctx.Err() == nil {
		var st jobs.JobState
		if _, err := natsx.GetJSON(ctx, c.kv, jobs.StateKey(id), &st); err != nil {
			if ctx.Err() == nil {
				log.Error("cannot read job state", "err", err)
			}
			return
		}
		var spec jobs.JobSpec
		if _, err := natsx.GetJSON(ctx, c.kv, jobs.SpecKey(id), &spec); err != nil {
			c.failJob(ctx, id, st.Attempt, err.Error()) // GetJSON names the spec key
			continue
		}
		var err error
		switch st.Status {
		case jobs.Submitted, jobs.Planning:
			err = c.plan(ctx, spec, st, log)
		case jobs.Running:
			err = c.follow(ctx, spec, st, log)
		case jobs.Merging:
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
	st, err := natsx.UpdateState(ctx, c.kv, id, func(s *jobs.JobState) bool {
		if s.Status.Final() || s.Attempt != attempt {
			return false
		}
		now := time.Now().UTC()
		s.Status, s.Reason, s.Finished = jobs.Failed, reason, &now
		return true
	})
	if err != nil {
		c.log.Error("cannot mark job failed", "job", id, "reason", reason, "err", err)
		return
	}
	if st.Status == jobs.Failed {
		c.log.Error("job failed", "job", id, "reason", st.Reason)
	}
}

// cleanup purges the queued shards of a failed or cancelled job.
func (c *Coordinator) cleanup(ctx context.Context, id string, st jobs.JobState, log *slog.Logger) {
	if err := c.stream.Purge(ctx, jetstream.WithPurgeSubject(jobs.JobSubjects(id))); err != nil {
		log.Warn("cannot purge the job's queued shards", "err", err)
	}
	log.Info("job finished", "status", st.Status, "reason", st.Reason)
}

// plan cuts the corpus into shards, saves the plan, moves the job to
// running and publishes the shards.
func (c *Coordinator) plan(ctx context.Context, spec jobs.JobSpec, st jobs.JobState, log *slog.Logger) error {
	if spec.Kind == jobs.KindExplain {
		return c.planExplain(ctx, spec, st, log)
	}
	log.Info("planning job", "corpus", spec.Corpus, "dataset", spec.Dataset)
	if spec.Store != "" && spec.Store != c.cfg.Store.String() {
		return stageErr("plan", "the job is for store %s, but this coordinator writes to %s (submit with --store %s)", spec.Store, c.cfg.Store, c.cfg.Store)
	}
	if _, err := c.cfg.Store.Size(ctx, dataset.ManifestKey(spec.Dataset)); err == nil {
		return stageErr("plan", "dataset %q already exists in %s (choose another --dataset, or delete it)", spec.Dataset, c.cfg.Store)
	} else if !errors.Is(err, store.ErrNotFound) {
		return stageErr("plan", "checking for dataset %q: %w", spec.Dataset, err) // the store names itself and the key
	}
	opts := c.cfg.CorpusOptions
	opts.BlockBytes, opts.NCtx = spec.BlockBytes, spec.NCtx
	cp, err := corpus.Open(ctx, spec.Corpus, opts)
	if err != nil {
		return stageErr("plan", "opening corpus: %w", err)
	}
	shards, err := cp.Plan(ctx, spec.TokensPerShard)
	if err != nil {
		return stageErr("plan", "planning corpus: %w", err)
	}
	// A task is a group of consecutive shards with one partial per target
	// (jobs.JobSpec.PartialGroup) × a component group whose memory fits
	// the worker's budget (jobs.JobSpec.PlanGroups); the plan fixes both.
	n := spec.PartialGroup(len(shards))
	var taskTokens int64
	for _, r := range jobs.GroupShards(shards, n) {
		var t int64
		for _, sh := range r.Shards {
			t += sh.EstTokens
		}
		taskTokens = max(taskTokens, t)
	}
	mem, err := spec.PlanGroups(taskTokens, n)
	if err != nil {
		return stageErr("plan", "%w", err)
	}
	tasks := jobs.PlanTasks(shards, n, mem.Groups)
	b, err := json.Marshal(tasks)
	if err != nil {
		return stageErr("plan", "encoding plan: %w", err)
	}
	// Writing the plan is also the first write to the store: a store that
	// refuses writes fails the job here, before any work is done.
	if err := c.cfg.Store.Put(ctx, jobs.PlanKey(spec.ID), bytes.NewReader(b)); err != nil {
		return stageErr("plan", "writing the shard plan: %w", err)
	}
	// Every component group runs the forward over every token: the
	// planned tokens are the tokens the workers will run.
	var est int64
	for _, s := range shards {
		est += s.EstTokens
	}
	est *= int64(max(len(mem.Groups), 1))
	moved := false
	_, err = natsx.UpdateState(ctx, c.kv, spec.ID, func(s *jobs.JobState) bool {
		if s.Attempt != st.Attempt || (s.Status != jobs.Submitted && s.Status != jobs.Planning) {
			return false
		}
		now := time.Now().UTC()
		s.Status, s.Shards, s.PlannedTokens, s.Started, moved = jobs.Running, len(tasks), est, &now, true
		s.Store = c.cfg.Store.String()
		return true
	})
	if err != nil {
		return err
	}
	if moved {
		log.Info("job planned", "shards", len(shards), "tasks", len(tasks), "component_groups", max(len(mem.Groups), 1), "estimated_tokens", est)
		for i, g := range mem.Groups {
			log.Info("component group", "group", i, "targets", len(g), "first", g[0].String(), "last", g[len(g)-1].String(),
				"estimated_memory", jobs.FormatBytes(mem.Bytes[i]), "worker_memory", jobs.FormatBytes(spec.WorkerMemory))
		}
	}
	return nil // follow publishes
}

// loadPlan reads a job's shard plan from the store.
func (c *Coordinator) loadPlan(ctx context.Context, id string) ([]json.RawMessage, error) {
	rc, err := c.cfg.Store.Get(ctx, jobs.PlanKey(id))
	if err != nil {
		return nil, stageErr("plan", "reading the shard plan: %w", err)
	}
	defer rc.Close()
	var plan []json.RawMessage
	if err := json.NewDecoder(rc).Decode(&plan); err != nil {
		return nil, stageErr("plan", "decoding the shard plan %s: %w", jobs.PlanKey(id), err)
	}
	return plan, nil
}

// errCodeDuplicateInProcess is JetStream's answer to a message whose
// Nats-Msg-Id another publish is storing at that moment.
const errCodeDuplicateInProcess jetstream.ErrorCode = 10158

// publish sends every shard not yet done. Message ids make a repeat a
// no-op within the stream's de-duplication window.
// Task i of plan is published as task base+i.
func (c *Coordinator) publish(ctx context.Context, id, kind string, attempt, base int, plan []json.RawMessage, done map[int]bool) error {
	n := 0
	for i, sh := range plan {
		if done[i] {
			continue
		}
		b, err := json.Marshal(jobs.ShardTask{Job: id, Attempt: attempt, Index: base + i, Shard: sh, Plan: jobs.PlanHash(c.cfg.Store.String(), sh), Kind: kind})
		if err != nil {
			return err
		}
		ack, err := c.publishOne(ctx, jobs.TaskSubject(id, kind, base+i), b, jobs.TaskMsgID(id, kind, attempt, base+i))
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeDuplicateInProcess {
			continue // another publisher of the same shard (a second coordinator) is mid-way: a duplicate
		}
		if err != nil {
			return stageErr("publish", "publishing %s %d: %w", taskNoun(kind), base+i, err)
		}
		if !ack.Duplicate {
			n++
		}
	}
	c.log.Info("tasks published", "job", id, "kind", taskNoun(kind), "new", n, "pending", len(plan)-len(done))
	return nil
}

// follow runs a job's shards (or explain tasks) with runTasks, then moves
// a collation to merging, or finishes an explain job.
func (c *Coordinator) follow(ctx context.Context, spec jobs.JobSpec, st jobs.JobState, log *slog.Logger) error {
	plan, err := c.loadPlan(ctx, spec.ID)
	if err != nil {
		return err
	}
	if len(plan) != st.Shards {
		return stageErr("plan", "the shard plan has %d shards, the job state says %d", len(plan), st.Shards)
	}
	records, stop, err := c.runTasks(ctx, spec.ID, spec.Kind, st.Attempt, 0, jobs.Running, plan)
	if stop || err != nil {
		return err
	}
	if spec.Kind == jobs.KindExplain {
		return c.finishExplain(ctx, spec.ID, st.Attempt, records, log)
	}
	return c.toMerging(ctx, spec.ID, st.Attempt, log)
}

// runTasks runs one stage's tasks on the queue in three steps: replay the
// task records KV holds already (a restarted coordinator must not count or
// republish what is done), publish every task not done, then watch the
// records until every task is done, a task fails for good (error), or the
// job leaves status (stop: drive re-reads its state). Shards and explain
// tasks run while the job is running, merge tasks while it is merging.
// Task i of plan is task base+i of its kind (a level of the merge tree
// numbers its tasks after the levels below); records are keyed by i.
func (c *Coordinator) runTasks(ctx context.Context, id, kind string, attempt, base int, status jobs.JobStatus, plan []json.RawMessage) (records map[int]jobs.ShardRecord, stop bool, err error) {
	w, err := natsx.WatchKeys(ctx, c.kv, jobs.JobKeys(id), c.log.With("job", id))
	if err != nil {
		return nil, true, fmt.Errorf("watching job: %w", err)
	}
	defer w.Stop()
	f := &follower{c: c, id: id, kind: kind, status: status, attempt: attempt, base: base, shards: len(plan),
		records: map[int]jobs.ShardRecord{}, done: map[int]bool{}}
	for _, sh := range plan {
		f.plans = append(f.plans, jobs.PlanHash(c.cfg.Store.String(), sh))
	}
	if stop, err := f.replay(ctx, w); stop || err != nil {
		return nil, true, err
	}
	if err := c.publish(ctx, id, kind, attempt, base, plan, f.done); err != nil {
		return nil, true, err
	}
	f.live = true
	if stop, err := f.watch(ctx, w); stop || err != nil {
		return nil, true, err
	}
	return f.records, false, nil
}

// taskNoun names a task kind in logs and errors.
func taskNoun(kind string) string {
	switch kind {
	case jobs.KindMerge:
		return "merge task"
	case jobs.KindExplain:
		return "explain task"
	}
	return "shard"
}

// follower keeps one job attempt's task records of one kind as its KV
// watch reports them.
type follower struct {
	c       *Coordinator
	id      string
	kind    string         // the tasks' kind (ShardTask.Kind)
	status  jobs.JobStatus // the job's status while they run
	attempt int
	base    int // the index of the first task
	shards  int
	records map[int]jobs.ShardRecord
	done    map[int]bool
	// plans are the shards' PlanHash: a done record of an earlier attempt
	// counts only if it was computed from the same plan (same files, same
	// store), so a resumed job never mixes old and new content.
	plans []string
	// live: the initial values are replayed and the shards published;
	// from now on a finished shard is new and counts in the metrics.
	live bool
}

// errWatchEnded: the KV watch closed its channel, which natsx.Watch does
// only when ctx ends (drive then stops).
var errWatchEnded = errors.New("the job watch ended")

// replay applies the values the watch holds when it starts, up to the nil
// entry that marks their end. stop: the job is no longer this attempt's
// running job (drive re-reads its state).
func (f *follower) replay(ctx context.Context, w *natsx.Watch) (stop bool, err error) {
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case e, ok := <-w.Updates():
			if !ok {
				return true, errWatchEnded
			}
			if e == nil {
				return false, nil
			}
			if stop, err := f.apply(e); stop || err != nil {
				return stop, err
			}
		}
	}
}

// watch applies updates until every shard is done (stop false), checking
// for shards lost on their last delivery every sweep interval.
func (f *follower) watch(ctx context.Context, w *natsx.Watch) (stop bool, err error) {
	tick := time.NewTicker(f.c.cfg.SweepInterval)
	defer tick.Stop()
	for len(f.done) < f.shards {
		select {
		case <-ctx.Done():
			return true, nil
		case <-tick.C:
			if reason := f.c.lostShard(f.id, f.attempt, f.records, f.done); reason != "" {
				return true, stageErr("jobs", "%s", reason)
			}
		case e, ok := <-w.Updates():
			if !ok {
				return true, errWatchEnded
			}
			if e == nil {
				continue
			}
			if stop, err := f.apply(e); stop || err != nil {
				return stop, err
			}
		}
	}
	return false, nil
}

// apply takes one KV entry of the job: a state that is no longer this
// attempt running stops the follower; a shard record is kept, a done shard
// counted, and a final error fails the job.
func (f *follower) apply(e jetstream.KeyValueEntry) (stop bool, err error) {
	if e.Operation() != jetstream.KeyValuePut {
		return false, nil
	}
	if e.Key() == jobs.StateKey(f.id) {
		var now jobs.JobState
		if json.Unmarshal(e.Value(), &now) == nil && (now.Status != f.status || now.Attempt != f.attempt) {
			return true, nil // cancelled, failed or resubmitted: drive re-reads the state
		}
		return false, nil
	}
	_, kind, i, ok := jobs.ParseTaskKey(e.Key())
	i -= f.base
	if !ok || i < 0 || i >= f.shards || (kind == jobs.KindMerge) != (f.kind == jobs.KindMerge) {
		return false, nil
	}
	var r jobs.ShardRecord
	if json.Unmarshal(e.Value(), &r) != nil {
		return false, nil
	}
	f.records[i] = r
	switch {
	case r.Status == jobs.ShardDone && !f.done[i] && ((r.Attempt == f.attempt && f.kind != jobs.KindMerge) || r.Plan == f.plans[i]):
		f.done[i] = true
		if f.live && f.kind == jobs.KindMerge {
			f.c.cfg.Metrics.MergeDuration.Observe(r.Seconds)
		} else if f.live {
			m := f.c.cfg.Metrics
			m.ShardsDone.Inc()
			m.Tokens.Add(float64(r.Tokens))
			m.ShardDuration.Observe(r.Seconds)
		}
	case r.Status == jobs.ShardError && r.Final && r.Attempt == f.attempt:
		if r.Delivery < f.c.cfg.Queue.MaxDeliver {
			return true, stageErr("jobs", "%s %d failed (a permanent error, not retried): %s", taskNoun(f.kind), f.base+i, r.Error)
		}
		return true, stageErr("jobs", "%s %d failed on delivery %d of %d: %s", taskNoun(f.kind), f.base+i, r.Delivery, f.c.cfg.Queue.MaxDeliver, r.Error)
	}
	return false, nil
}

func (c *Coordinator) toMerging(ctx context.Context, id string, attempt int, log *slog.Logger) error {
	_, err := natsx.UpdateState(ctx, c.kv, id, func(s *jobs.JobState) bool {
		if s.Status != jobs.Running || s.Attempt != attempt {
			return false
		}
		s.Status = jobs.Merging
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
func (c *Coordinator) lostShard(id string, attempt int, records map[int]jobs.ShardRecord, done map[int]bool) string {
	q := c.cfg.Queue
	backoff := q.BackOff()
	limit := backoff[len(backoff)-1] + c.cfg.SweepInterval + 2*time.Second
	for i, r := range records {
		if done[i] || r.Attempt != attempt || r.Status != jobs.ShardRunning || r.Delivery < q.MaxDeliver {
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
	var task jobs.ShardTask
	if err := json.Unmarshal(raw.Data, &task); err != nil {
		return
	}
	reason := fmt.Sprintf("%s %d exhausted its %d deliveries", taskNoun(task.Kind), task.Index, adv.Deliveries)
	var r jobs.ShardRecord
	if _, err := natsx.GetJSON(ctx, c.kv, jobs.TaskKey(task.Job, task.Kind, task.Index), &r); err == nil && r.Attempt == task.Attempt {
		switch {
		case r.Status == jobs.ShardDone:
			return // finished after all (the last delivery succeeded late)
		case r.Error != "":
			reason += "; last error: " + r.Error
		case r.Status == jobs.ShardRunning:
			reason += fmt.Sprintf("; its last worker (%s) stopped without reporting (crash or kill?)", r.Worker)
		}
	}
	c.failJob(ctx, task.Job, task.Attempt, reason)
}

// sweep updates the queue and job gauges and starts a driver for every
// unfinished job that has none. The job watch starts drivers as states
// change; the sweep is what recovers a job whose update the watch missed,
// or whose driver stopped on a failed read under load, which would
// otherwise wait, submitted, until its next state change.
func (c *Coordinator) sweep(ctx context.Context) {
	m := c.cfg.Metrics
	if info, err := c.cons.Info(ctx); err == nil {
		m.QueueDepth.Set(float64(info.NumPending))
		m.AckPending.Set(float64(info.NumAckPending))
		m.Redeliveries.Set(float64(info.NumRedelivered))
	}
	lister, err := c.kv.ListKeysFiltered(ctx, jobs.StateKeys)
	if err != nil {
		return
	}
	counts := map[jobs.JobStatus]int{}
	for key := range lister.Keys() {
		var st jobs.JobState
		if _, err := natsx.GetJSON(ctx, c.kv, key, &st); err == nil {
			counts[st.Status]++
			if !st.Status.Final() && st.ID != "" {
				c.startDriver(ctx, st.ID)
			}
		}
	}
	for _, s := range []jobs.JobStatus{jobs.Submitted, jobs.Planning, jobs.Running, jobs.Merging, jobs.Done, jobs.Failed, jobs.Cancelled} {
		m.Jobs.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
}

// setup creates (or updates) the job bucket, the shard stream and its
// consumer. A JetStream cluster that is still electing its leaders, or
// that is slow to place replicated assets, answers late or not at all: that
// is retried with back-off until ctx ends; a refusal (bad configuration,
// too few servers for the replicas) is returned at once.
func (c *Coordinator) setup(ctx context.Context) error {
	wait := 500 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var err error
		if c.kv, err = natsx.EnsureBucket(ctx, c.js, c.cfg.Queue.Replicas); err == nil {
			if c.stream, c.cons, err = natsx.EnsureQueue(ctx, c.js, c.cfg.Queue); err == nil {
				return nil
			}
		}
		if ctx.Err() != nil || !transientJSErr(err) {
			return err
		}
		c.log.Warn("JetStream not ready; retrying", "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// transientJSErr: a JetStream API call that timed out or found no server
// to answer (the cluster is starting or electing a leader).
func transientJSErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// publishRetryFor bounds how long one shard's publish is retried while the
// stream has no leader (a NATS server died and its streams elect anew).
const publishRetryFor = time.Minute

// publishOne publishes a shard message, retrying while the stream cannot
// answer: a publish that lands during a stream leader election gets no
// response, and failing the job for it would turn a NATS node's death into
// a failed job. The message id makes a retry of a publish that did land a
// duplicate, not a second message.
func (c *Coordinator) publishOne(ctx context.Context, subject string, b []byte, msgID string) (*jetstream.PubAck, error) {
	deadline := time.Now().Add(publishRetryFor)
	wait := 250 * time.Millisecond
	for {
		ack, err := c.js.Publish(ctx, subject, b, jetstream.WithMsgID(msgID))
		if err == nil || ctx.Err() != nil || !transientJSErr(err) || time.Now().After(deadline) {
			return ack, err
		}
		c.log.Warn("publish got no answer (stream leader election?); retrying", "subject", subject, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 4*time.Second)
	}
}
