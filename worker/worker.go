package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"tdb/collate"
	"tdb/corpus"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/internal/textutil"
	"tdb/store"
)

// Config configures one worker.
type Config struct {
	// Name identifies the worker in shard records and logs (default
	// hostname-pid).
	Name string
	// Dial opens the worker's NATS connection (natsx.RetryDialer for a
	// cluster, Embedded.Dialer in process).
	Dial  natsx.Dialer
	Store store.Store
	// CorpusOptions open corpora (set Opener for corpora on a store).
	CorpusOptions corpus.Options
	// Models is shared by the workers of a process (default: a private
	// cache of one model).
	Models  *ModelCache
	Metrics *Metrics
	Logger  *slog.Logger
	// ShardDelay is a test hook (no command sets it): every shard waits
	// this long, sending in-progress acks, before it computes, so a test
	// can kill a worker in the middle of a shard.
	ShardDelay time.Duration
	// MergeDelay is the same for merge tasks (worker/merge.go).
	MergeDelay time.Duration
	// FetchWait bounds one pull request (default 2 s); it is also how
	// quickly the worker notices that its context ended.
	FetchWait time.Duration
	// Memory, shared by a process's workers, starts a task only once its
	// estimated memory fits beside the others' (nil: no limit).
	Memory *MemoryGate
}

// Worker runs shards from the shared consumer until its context ends.
type Worker struct {
	cfg  Config
	log  *slog.Logger
	kv   jetstream.KeyValue
	q    natsx.QueueConfig
	mu   sync.Mutex
	jobs map[string]*jobEntry // by job id and attempt
}

type jobEntry struct {
	once sync.Once
	job  *Job
	err  error
}

// Run connects, binds to the shard consumer and processes shards one at a
// time until ctx ends. It returns nil on a clean shutdown.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Dial == nil || cfg.Store == nil {
		return errors.New("worker: a NATS dialer and a store are required")
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Models == nil {
		cfg.Models = NewModelCache(1, cfg.Logger)
	}
	if cfg.FetchWait <= 0 {
		cfg.FetchWait = 2 * time.Second
	}
	w := &Worker{cfg: cfg, log: cfg.Logger.With("worker", cfg.Name), jobs: map[string]*jobEntry{}}
	nc, err := cfg.Dial(ctx, "tdb-worker "+cfg.Name)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	kv, cons, q, err := natsx.Bind(ctx, js, w.log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w.kv, w.q = kv, q
	w.log.Info("worker ready", "ack_wait", q.AckWait, "max_deliver", q.MaxDeliver)
	failures := 0
	for ctx.Err() == nil {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(cfg.FetchWait))
		if err == nil {
			for msg := range batch.Messages() {
				w.handle(ctx, msg)
			}
			if err = batch.Error(); errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
				err = nil // an empty queue
			}
		}
		if err == nil || ctx.Err() != nil {
			failures = 0
			continue
		}
		failures++
		w.fetchFailed(ctx, err, failures)
	}
	w.log.Info("worker stopped")
	return nil
}

// fetchFailed counts and logs a failed pull request (its own or the
// batch's) and waits before the next one, longer after every failure in a
// row, or until ctx ends.
func (w *Worker) fetchFailed(ctx context.Context, err error, failures int) {
	w.cfg.Metrics.Errors.WithLabelValues("fetch").Inc()
	wait := min(time.Duration(failures)*500*time.Millisecond, 10*time.Second)
	w.log.Warn("cannot fetch shards; retrying", "err", err, "retry_in", wait)
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
}

// errJobGone stops a shard whose job was cancelled, failed or resubmitted.
var errJobGone = errors.New("job is no longer running")

// handle processes one delivery of a shard message. Whatever happens the
// message is acked, nak'ed or terminated, except when the process dies.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	m := w.cfg.Metrics
	meta, err := msg.Metadata()
	if err != nil {
		m.Errors.WithLabelValues("decode").Inc()
		w.log.Error("shard message without metadata", "err", err)
		_ = msg.Term()
		return
	}
	delivery := int(meta.NumDelivered)
	if delivery > 1 {
		m.Redeliveries.Inc()
	}
	var task jobs.ShardTask
	if err := json.Unmarshal(msg.Data(), &task); err != nil {
		m.Errors.WithLabelValues("decode").Inc()
		w.log.Error("undecodable shard message; dropping it", "subject", msg.Subject(), "err", err)
		_ = msg.TermWithReason("undecodable shard message")
		return
	}
	log := w.log.With("job", task.Job, "shard", task.Index, "delivery", delivery)

	// A shard already done for this attempt (a redelivery after the ack was
	// lost) is skipped once its partials verify.
	var rec jobs.ShardRecord
	if _, err := natsx.GetJSON(ctx, w.kv, jobs.TaskKey(task.Job, task.Kind, task.Index), &rec); err == nil &&
		rec.Status == jobs.ShardDone && rec.Attempt == task.Attempt {
		if err := w.verifyDone(ctx, task, rec); err == nil {
			log.Info("shard already done; skipping")
			m.Shards.WithLabelValues("skipped").Inc()
			_ = msg.DoubleAck(ctx)
			return
		} else {
			log.Warn("shard recorded as done but its partials do not verify; recomputing", "err", err)
		}
	}
	var state jobs.JobState
	if err := w.holdWhile(ctx, msg, log, "reading the job state", func(ctx context.Context) error {
		_, err := natsx.GetJSON(ctx, w.kv, jobs.StateKey(task.Job), &state)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return stopHolding(err)
		}
		return err
	}); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			log.Warn("shard of an unknown job; dropping it")
			m.Shards.WithLabelValues("stale").Inc()
			_ = msg.TermWithReason("unknown job")
			return
		}
		m.Errors.WithLabelValues("kv").Inc()
		log.Warn("cannot read job state; retrying later", "err", err)
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if state.Status.Final() || state.Attempt != task.Attempt {
		log.Info("shard of a job that is no longer running; dropping it", "status", state.Status, "attempt", state.Attempt)
		m.Shards.WithLabelValues("stale").Inc()
		_ = msg.TermWithReason("job " + string(state.Status))
		return
	}

	start := time.Now()
	m.InFlight.Inc()
	defer m.InFlight.Dec()
	rec = jobs.ShardRecord{Job: task.Job, Attempt: task.Attempt, Index: task.Index, Status: jobs.ShardRunning,
		Delivery: delivery, Worker: w.cfg.Name, Started: start.UTC(), Updated: start.UTC(), Plan: task.Plan}
	if err := natsx.PutJSON(ctx, w.kv, jobs.TaskKey(task.Job, task.Kind, task.Index), rec); err != nil {
		m.Errors.WithLabelValues("kv").Inc()
		log.Warn("cannot record shard start", "err", err)
	}
	log.Info("shard started")
	refs, windows, tokens, merged, err := w.compute(ctx, msg, task, rec)
	if err != nil {
		w.fail(ctx, msg, task, rec, delivery, err, log)
		return
	}
	rec.Status, rec.Partials, rec.Tokens, rec.Windows, rec.Merge = jobs.ShardDone, refs, tokens, windows, merged
	rec.Updated = time.Now().UTC()
	rec.Seconds = time.Since(start).Seconds()
	if err := w.holdWhile(ctx, msg, log, "recording the finished shard", func(ctx context.Context) error {
		return natsx.PutJSON(ctx, w.kv, jobs.TaskKey(task.Job, task.Kind, task.Index), rec)
	}); err != nil {
		// Without the record the coordinator cannot count the shard: let
		// it be redelivered (the recomputation writes the same partials).
		m.Errors.WithLabelValues("kv").Inc()
		log.Error("cannot record finished shard; it will be redelivered", "err", err)
		_ = msg.Nak()
		return
	}
	if err := msg.DoubleAck(ctx); err != nil {
		// The record is written: a redelivery finds it and skips.
		m.Errors.WithLabelValues("ack").Inc()
		log.Warn("ack not confirmed", "err", err)
	}
	m.Tokens.Add(float64(rec.Tokens))
	m.ShardDuration.Observe(rec.Seconds)
	m.Shards.WithLabelValues("done").Inc()
	log.Info("shard done", "tokens", rec.Tokens, "seconds", fmt.Sprintf("%.2f", rec.Seconds))
}

// compute runs the shard while a heartbeat keeps the delivery alive, then
// writes the partials.
// It returns the partials, the windows and the tokens run.
func (w *Worker) compute(ctx context.Context, msg jetstream.Msg, task jobs.ShardTask, rec jobs.ShardRecord) (refs []jobs.PartialRef, windows, tokens int64, merged *jobs.MergeResult, err error) {
	cctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer func() {
		// A stopped job shows up as whatever error the interrupted step
		// returned (often "context canceled"); report the cause instead.
		if err != nil && cctx.Err() != nil && ctx.Err() == nil {
			if cause := context.Cause(cctx); errors.Is(cause, errJobGone) {
				err = cause
			}
		}
	}()
	var progress sync.Mutex
	var sofar int64
	hbDone := make(chan struct{})
	var hb sync.WaitGroup
	hb.Add(1)
	go func() {
		defer hb.Done()
		w.heartbeat(cctx, cancel, msg, task, rec, &progress, &sofar, hbDone)
	}()
	defer func() { close(hbDone); hb.Wait() }()

	if task.Kind == jobs.KindExplain { // worker/explain.go
		explained, skipped, err := w.computeExplain(cctx, task, func(n int64) {
			progress.Lock()
			sofar = n
			progress.Unlock()
		})
		return nil, int64(explained), int64(explained + skipped), nil, err
	}
	if task.Kind == jobs.KindMerge { // worker/merge.go
		merged, err := w.computeMerge(cctx, task, func(n int64) {
			progress.Lock()
			sofar = n
			progress.Unlock()
		})
		return nil, 0, 0, merged, err
	}
	job, err := w.job(cctx, task)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	ts, err := jobs.DecodeTask(task.Shard)
	if err != nil {
		return nil, 0, 0, nil, fmt.Errorf("decoding task %d: %w", task.Index, err)
	}
	need, shared := taskMemory(job.Spec, ts)
	release, err := w.cfg.Memory.acquire(cctx, need, shared, func(used int64, running int) {
		w.cfg.Metrics.MemoryWaits.Inc()
		w.log.Info("waiting for memory", "job", task.Job, "shard", task.Index, "needs", jobs.FormatBytes(need),
			"in_use", jobs.FormatBytes(used), "running", running)
	})
	if err != nil {
		return nil, 0, 0, nil, err
	}
	defer release()
	if w.cfg.ShardDelay > 0 {
		select {
		case <-cctx.Done():
			return nil, 0, 0, nil, context.Cause(cctx)
		case <-time.After(w.cfg.ShardDelay):
		}
	}
	res, err := job.RunTask(cctx, ts, func(n int64) {
		progress.Lock()
		sofar = n
		progress.Unlock()
	})
	if errors.Is(err, corpus.ErrChanged) {
		// Re-submitting the same spec plans the job again from the
		// corpus as it is now; a new dataset name makes another job.
		return nil, 0, 0, nil, fmt.Errorf("%w; run with --dataset NEW, or run the same command again to plan job %s anew", err, task.Job)
	}
	if err != nil {
		return nil, 0, 0, nil, err
	}
	refs, err = WritePartials(cctx, w.cfg.Store, task.Job, task.Index, res.Accumulators)
	if err != nil {
		w.cfg.Metrics.Errors.WithLabelValues("store").Inc()
		return nil, 0, 0, nil, err
	}
	return refs, res.Stats.Windows, res.Stats.Windows * int64(job.Spec.NCtx), nil, nil
}

// heartbeat sends in-progress acks and the token count every AckWait/4,
// and stops the shard when its job is cancelled or failed.
func (w *Worker) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, msg jetstream.Msg, task jobs.ShardTask,
	rec jobs.ShardRecord, mu *sync.Mutex, tokens *int64, done <-chan struct{}) {
	every := max(w.q.AckWait/4, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := msg.InProgress(); err != nil {
			w.log.Warn("in-progress ack failed", "job", task.Job, "shard", task.Index, "err", err)
		}
		var st jobs.JobState
		if _, err := natsx.GetJSON(ctx, w.kv, jobs.StateKey(task.Job), &st); err == nil && (st.Status.Final() || st.Attempt != task.Attempt) {
			cancel(fmt.Errorf("%w (%s)", errJobGone, st.Status))
			return
		}
		mu.Lock()
		n := *tokens
		mu.Unlock()
		if n != last {
			last = n
			r := rec
			r.Tokens, r.Updated = n, time.Now().UTC()
			if err := natsx.PutJSON(ctx, w.kv, jobs.TaskKey(task.Job, task.Kind, task.Index), r); err != nil && ctx.Err() == nil {
				w.log.Debug("cannot record shard progress", "err", err)
			}
		}
	}
}

// fail reports a failed delivery: a shutdown hands the shard back at once,
// a dead job drops it, anything else is recorded with its reason and
// retried after a back-off, or, on the last allowed delivery, recorded as
// final, which fails the job.
func (w *Worker) fail(ctx context.Context, msg jetstream.Msg, task jobs.ShardTask, rec jobs.ShardRecord, delivery int, err error, log *slog.Logger) {
	m := w.cfg.Metrics
	if ctx.Err() != nil {
		log.Info("worker stopping; handing the shard back")
		m.Shards.WithLabelValues("interrupted").Inc()
		_ = msg.Nak()
		return
	}
	if errors.Is(err, errJobGone) {
		log.Info("job stopped; dropping the shard", "reason", err)
		m.Shards.WithLabelValues("stale").Inc()
		_ = msg.TermWithReason(err.Error())
		return
	}
	m.Errors.WithLabelValues("compute").Inc()
	permanent := Permanent(err)
	final := delivery >= w.q.MaxDeliver || permanent
	rec.Status, rec.Error, rec.Final, rec.Updated = jobs.ShardError, err.Error(), final, time.Now().UTC()
	if perr := natsx.PutJSON(ctx, w.kv, jobs.TaskKey(task.Job, task.Kind, task.Index), rec); perr != nil {
		log.Error("cannot record shard failure", "err", perr)
	}
	if final {
		if permanent {
			log.Error("shard failed with a permanent error; the job fails without retries", "err", err)
		} else {
			log.Error("shard failed on its last delivery; the job fails", "err", err, "max_deliver", w.q.MaxDeliver)
		}
		m.Shards.WithLabelValues("failed").Inc()
		_ = msg.TermWithReason(textutil.Truncate(err.Error(), 200))
		return
	}
	backoff := w.q.BackOff()
	wait := backoff[min(delivery-1, len(backoff)-1)]
	log.Warn("shard failed; it will be retried", "err", err, "retry_in", wait)
	m.Shards.WithLabelValues("retried").Inc()
	_ = msg.NakWithDelay(wait)
}

// Permanent reports whether a shard error can never be fixed by a retry:
// errors marked jobs.Permanent (a spec the model cannot run, a missing or
// malformed autoencoder file), bad corpus content (corpus.ErrBadData) and
// non-finite activations (collate.ErrNonFinite). Everything else (store,
// network, a vanished model download) is transient and retried.
func Permanent(err error) bool {
	return jobs.IsPermanent(err) || errors.Is(err, corpus.ErrBadData) || errors.Is(err, collate.ErrNonFinite)
}

// job returns the prepared job for a task, building it (model, corpus,
// targets) on first use.
func (w *Worker) job(ctx context.Context, task jobs.ShardTask) (*Job, error) {
	key := jobCacheKey(task.Job, task.Attempt)
	w.mu.Lock()
	e, ok := w.jobs[key]
	if !ok {
		e = &jobEntry{}
		if len(w.jobs) >= 4 {
			clear(w.jobs)
		}
		w.jobs[key] = e
	}
	w.mu.Unlock()
	e.once.Do(func() {
		var spec jobs.JobSpec
		if _, err := natsx.GetJSON(ctx, w.kv, jobs.SpecKey(task.Job), &spec); err != nil {
			e.err = err // GetJSON names the spec key
			return
		}
		// The local model and autoencoder files must be those the job
		// was submitted with, before loading and after (a file replaced
		// while it loaded).
		if err := jobs.VerifyFiles(spec.Files); err != nil {
			e.err = err
			return
		}
		m, err := w.cfg.Models.GetVersion(ctx, spec.Model, jobs.FilesVersion(spec.Files, spec.Model))
		if err != nil {
			e.err = err
			return
		}
		e.job, e.err = NewJob(ctx, spec, m, w.cfg.CorpusOptions)
		if e.err == nil {
			e.err = jobs.VerifyFiles(spec.Files)
		}
	})
	if e.err != nil {
		w.mu.Lock()
		if w.jobs[key] == e {
			delete(w.jobs, key) // retry on the next delivery
		}
		w.mu.Unlock()
	}
	return e.job, e.err
}

func jobCacheKey(job string, attempt int) string { return fmt.Sprintf("%s/%d", job, attempt) }

// verify checks that every partial exists with its recorded size and sha256.
func (w *Worker) verify(ctx context.Context, refs []jobs.PartialRef) error {
	if len(refs) == 0 {
		return errors.New("no partials recorded")
	}
	for _, r := range refs {
		if err := verifyPartial(ctx, w.cfg.Store, r); err != nil {
			return err
		}
	}
	return nil
}

// verifyPartial checks one partial's size and sha256 in the store.
func verifyPartial(ctx context.Context, st store.Store, r jobs.PartialRef) error {
	rc, err := st.Get(ctx, r.Key)
	if err != nil {
		return err // the store's error names the key
	}
	defer rc.Close()
	return jobs.VerifyPartial(rc, r)
}

// WritePartials writes a shard's partials, in parallel on up to GOMAXPROCS
// goroutines (encoding and hashing are CPU-bound), and returns their
// references in accumulator order. Each accumulator is dropped from accs
// once written, so its memory can be freed before the shard ends.
func WritePartials(ctx context.Context, st store.Store, job string, shard int, accs []*collate.LayerAccumulator) ([]jobs.PartialRef, error) {
	refs := make([]jobs.PartialRef, len(accs))
	err := forEach(ctx, len(accs), func(i int) error {
		acc := accs[i]
		ref, err := WritePartial(ctx, st, jobs.PartialKey(job, acc.Location(), acc.Layer(), shard), acc)
		refs[i] = ref
		accs[i] = nil
		return err
	})
	if err != nil {
		return nil, err
	}
	return refs, nil
}

// WritePartial streams an accumulator's partial into the store under key,
// hashing it on the way (no copy of the whole partial is held in memory).
func WritePartial(ctx context.Context, st store.Store, key string, acc *collate.LayerAccumulator) (jobs.PartialRef, error) {
	ref := jobs.PartialRef{Location: acc.Location(), Layer: acc.Layer(), Key: key}
	pr, pw := io.Pipe()
	h := sha256.New()
	cw := &countWriter{}
	go func() {
		pw.CloseWithError(acc.Encode(io.MultiWriter(pw, h, cw)))
	}()
	err := st.Put(ctx, key, pr)
	pr.CloseWithError(errors.New("store stopped reading")) // unblocks the encoder if Put returned early
	if err != nil {
		return ref, fmt.Errorf("writing a partial: %w", err) // the store's error names itself and the key
	}
	ref.Size, ref.SHA256 = cw.n, hex.EncodeToString(h.Sum(nil))
	return ref, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
