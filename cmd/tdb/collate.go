package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"tdb/autoencoder"
	"tdb/coordinator"
	"tdb/corpus"
	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/internal/natsx"
	"tdb/internal/service"
	"tdb/internal/textutil"
	"tdb/model"
	"tdb/store"
	"tdb/worker"
)

func init() {
	register("collate", "collate top-activating records and statistics of every component over a corpus into a dataset", cmdCollate)
}

func cmdCollate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("collate", stderr)
	modelName := modelFlag(fs, "model: hub name, local folder, or random:<gpt2|gpt2-medium|gpt2-large|gpt2-xl|tiny> (random weights, for trying the pipeline)")
	corpusSpec := envString(fs, "corpus", "TDB_CORPUS", "synthetic:ioi", "corpus spec: text:GLOB, jsonl:GLOB[#field], parquet:GLOB[#column], tokens:GLOB, synthetic:ioi|facts[?docs=N&seed=S]")
	locations := fs.String("locations", "mlp.post_act", "comma-separated locations: mlp.post_act, attn.heads, or any per-token location (resid.delta_mlp, ...)")
	layers := fs.String("layers", "", "comma-separated layers (default: all)")
	var aes stringList
	fs.Var(&aes, "autoencoder", "collate autoencoder latents: PATH@LAYER or PATH@LOCATION/LAYER (repeatable)")
	def := jobs.DefaultSpec()
	nCtx := fs.Int("n-ctx", def.NCtx, "tokens per record window")
	topK := fs.Int("top-k", def.TopK, "top-activating records kept per component")
	randomK := fs.Int("random-k", def.RandomK, "random records kept per component")
	buckets := fs.Int("quantile-buckets", def.QuantileBuckets, "activation-quantile buckets sampled per component")
	perBucket := fs.Int("per-bucket", def.PerBucket, "records sampled per quantile bucket")
	seed := fs.Uint64("seed", def.Seed, "seed of the random samples")
	shardTokens := fs.Int64("tokens-per-shard", def.TokensPerShard, "approximate tokens per shard (the unit of work and of retry)")
	shardsPerPartial := fs.Int("shards-per-partial", 0, "consecutive shards a worker runs into one partial (0: automatic, up to 16 on large jobs); changes no byte of the dataset")
	workerMemory := envString(fs, "worker-memory", "TDB_WORKER_MEMORY", "", "memory budget of one worker, e.g. 24GB or 24GiB: the plan splits the components into the fewest groups (by layer and location) whose estimated memory fits, each group running the forward pass again (default: this machine's memory, shared by the local --workers in embedded mode); changes no byte of the dataset")
	batch := fs.Int("batch", def.BatchSize, "windows per forward pass")
	blockBytes := fs.Int64("block-bytes", 0, "corpus block size in bytes (0: the corpus default of 64 KiB); part of the job")
	storeURL := storeFlag(fs, "where datasets go: a folder, file:///abs, mem://, azblob://ACCOUNT/CONTAINER[/prefix]")
	dataset := fs.String("dataset", "", "dataset name (default: derived from model, corpus and the job id)")
	jobID := fs.String("job", "", "job id (default: a hash of the job spec, so re-running the same command resumes it)")
	workers := fs.Int("workers", defaultWorkers(), "local workers (embedded mode)")
	natsURL := envString(fs, "nats", "TDB_NATS", "", "submit to the NATS cluster at this URL where tdb coordinator and tdb worker run (default: embedded server, local workers)")
	natsDir := natsDirFlag(fs, "nats-dir", "embedded NATS data folder; an interrupted job resumes from it")
	natsListen := fs.String("nats-listen", "127.0.0.1:0", "embedded mode: TCP address of the embedded server (port 0: any free port), so tdb jobs and extra tdb worker processes can reach it; empty: in-process only")
	ackWait := fs.Duration("ack-wait", 30*time.Second, "embedded mode: time a shard may go without an (in-progress) ack before redelivery")
	maxDeliver := fs.Int("max-deliver", 5, "embedded mode: deliveries of a shard before the job fails")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics on this address, e.g. :9090 (default off)")
	detach := fs.Bool("detach", false, "with --nats: submit and return without waiting")
	verbose := fs.Bool("v", false, "log every shard")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	// Logs from the services' goroutines and the progress line share stderr.
	tty := isTerminal(stderr)
	stderr = &lockedWriter{w: stderr}
	if *workers < 1 {
		return usagef("--workers must be at least 1")
	}
	// Zero is not "the default": a bad value is refused before any work.
	switch {
	case *nCtx < 1:
		return usagef("--n-ctx must be at least 1, got %d", *nCtx)
	case *batch < 1:
		return usagef("--batch must be at least 1, got %d", *batch)
	case *shardTokens < 1:
		return usagef("--tokens-per-shard must be at least 1, got %d", *shardTokens)
	}
	if *dataset != "" {
		if err := jobs.ValidateDatasetName(*dataset); err != nil {
			return usagef("--dataset: %v", err)
		}
	}
	spec := jobs.JobSpec{
		ID: *jobID, Dataset: *dataset, Model: *modelName, Corpus: *corpusSpec, Autoencoders: aes,
		NCtx: *nCtx, TopK: *topK, RandomK: *randomK, QuantileBuckets: *buckets, PerBucket: *perBucket, Seed: *seed,
		TokensPerShard: *shardTokens, BatchSize: *batch, BlockBytes: *blockBytes, ShardsPerPartial: *shardsPerPartial,
	}
	for l := range strings.SplitSeq(*locations, ",") {
		if l = strings.TrimSpace(l); l != "" {
			spec.Locations = append(spec.Locations, l)
		}
	}
	ls, err := parseInts(*layers)
	if err != nil {
		return usagef("--layers: %v", err)
	}
	spec.Layers = ls
	if _, err := corpus.ParseSpec(spec.Corpus); err != nil {
		return usagef("--corpus: %v", err)
	}
	if spec.WorkerMemory, err = workerBudget(*workerMemory, *natsURL == "", *workers); err != nil {
		return err
	}
	cfg, known, err := checkLocations(ctx, spec, *natsURL == "", stderr)
	if err != nil {
		return err
	}
	vocab := 0
	if known {
		vocab = cfg.Vocab
	}
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return err
	}
	// The job's identity includes where it writes and what it reads, so
	// the same command against another store, or after the corpus
	// changed, is a new job (never a finished one reused).
	spec.Store = st.String()
	if stamp, err := corpusStamp(ctx, spec, vocab, stderr); errors.Is(err, corpus.ErrBadData) {
		return usagef("--corpus: %v", err)
	} else if err == nil {
		spec.CorpusStamp = stamp
	} else if *natsURL == "" {
		return usagef("--corpus: %v", err)
	} else {
		fmt.Fprintf(stderr, "note: the corpus cannot be opened here (%v); the workers will open it\n", err)
	}
	aePaths := []string{spec.Model}
	for _, a := range spec.Autoencoders {
		if as, err := worker.ParseAutoencoderSpec(a); err == nil {
			aePaths = append(aePaths, as.Path)
		}
	}
	spec.FilesStamp = jobs.LocalFilesStamp(aePaths...)
	// Sizes and sampled content hashes: the workers check the files they
	// load against them.
	if spec.Files, err = jobs.DigestFiles(aePaths...); err != nil {
		return err
	}
	if spec.Dataset == "" {
		spec.Dataset = spec.DatasetName()
	}
	spec, err = jobs.Normalize(spec)
	if err != nil {
		return usagef("%v", err)
	}
	if err := sizeJob(ctx, &spec, cfg, known, stderr); err != nil {
		return err
	}
	if *natsURL == "" && spec.WorkerMemory > 0 {
		// The in-process workers' soft memory limit: the garbage
		// collector keeps the heap under what the plan was made for.
		defer setMemoryLimit(spec.WorkerMemory * int64(*workers))()
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := service.NewLogger(stderr, false, level)
	reg := service.NewRegistry()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if *metricsAddr != "" {
		if _, err := service.ServeMetrics(runCtx, *metricsAddr, reg, log); err != nil {
			return err
		}
	}

	client, svcErr, closeAll, err := openJobClient(ctx, runCtx, stop, jobNATS{
		url: *natsURL, dir: *natsDir, listen: *natsListen, storeURL: *storeURL, store: st, workers: *workers,
		log: log, reg: reg, queue: natsx.QueueConfig{AckWait: *ackWait, MaxDeliver: *maxDeliver},
	}, "tdb collate", stderr)
	defer closeAll()
	if err != nil {
		return err
	}
	state, err := client.Submit(ctx, spec)
	if err != nil {
		return err
	}
	if state.Status == jobs.Done && !datasetExists(ctx, st, spec.Dataset) {
		fmt.Fprintf(stderr, "job %s is done but dataset %q is not in %s (deleted?); running it again\n", state.ID, spec.Dataset, st)
		if state, err = client.Rerun(ctx, state.ID); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "job %s (%s): dataset %q in %s\n", state.ID, state.Status, spec.Dataset, st)
	if *detach && *natsURL != "" {
		fmt.Fprintln(stdout, state.ID)
		return nil
	}
	final, err := waitJob(ctx, client, state.ID, svcErr, *natsURL, *natsDir, "tdb collate", &progressPrinter{w: stderr, tty: tty}, stderr)
	if err != nil {
		return err
	}
	// "Done" is only reported when the manifest is in the store.
	if !datasetExists(ctx, st, spec.Dataset) {
		return fmt.Errorf("job %s is done but dataset %q is not in %s (deleted, or written to another store: %s)", final.ID, spec.Dataset, st, final.Store)
	}
	fmt.Fprintf(stdout, "dataset %s written to %s: %d tokens, %d shards (job %s)\n", spec.Dataset, st, final.Tokens, final.Shards, final.ID)
	return nil
}

// tokenCheckBytes bounds the token corpus that tdb collate reads before
// it submits, to refuse ids beyond the vocabulary with exit code 2 (1 GiB:
// about a second from the page cache). A larger corpus is checked by the
// planner, which reads every token to hash it, and fails the job before
// any shard runs.
var tokenCheckBytes int64 = 1 << 30

// corpusStamp opens the corpus as the planner will and returns its content
// stamp (file names, sizes, modification times). A token corpus up to
// tokenCheckBytes is also checked against the model's vocabulary (vocab 0:
// the model is not known here; GPT-2's).
func corpusStamp(ctx context.Context, spec jobs.JobSpec, vocab int, stderr io.Writer) (string, error) {
	opts := corpusOptions(ctx)
	opts.BlockBytes, opts.VocabSize, opts.NCtx = spec.BlockBytes, vocab, spec.NCtx
	c, err := corpus.Open(ctx, spec.Corpus, opts)
	if err != nil {
		return "", err
	}
	stamp, err := c.ContentStamp(ctx)
	if err != nil {
		return "", err
	}
	if ok, err := c.CheckTokens(ctx, tokenCheckBytes); err != nil {
		return "", err
	} else if !ok {
		fmt.Fprintf(stderr, "note: the token corpus is over %d MiB: its ids are checked against the vocabulary when the job is planned\n", tokenCheckBytes>>20)
	}
	return stamp, nil
}

func datasetExists(ctx context.Context, st store.Store, name string) bool {
	_, err := dataset.ReadManifest(ctx, st, name)
	return err == nil
}

// checkCoordinatorStore refuses a --store other than the one the leading
// coordinator writes to (it publishes it in its leader lease).
func checkCoordinatorStore(ctx context.Context, client *coordinator.Client, st store.Store, natsURL string) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lease, err := client.Leader(lctx)
	if err != nil || lease.Store == "" || lease.Store == st.String() {
		return nil // no coordinator yet: the job fails at planning if the stores differ
	}
	return usagef("--store %s: the coordinator at %s (%s) writes datasets to %s; pass --store %s", st, natsURL, lease.ID, lease.Store, lease.Store)
}

// noCoordinatorAfter is how long a submitted job may wait for a
// coordinator before tdb collate says so.
var noCoordinatorAfter = 5 * time.Second

// warnNoCoordinator says so when no coordinator picks the job up.
func warnNoCoordinator(ctx context.Context, client *coordinator.Client, id string, stderr io.Writer) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(noCoordinatorAfter):
	}
	_, st, err := client.Job(ctx, id)
	if err != nil || st.Status != jobs.Submitted {
		return
	}
	fmt.Fprintf(stderr, "no coordinator has picked up job %s; is `tdb coordinator` running against this NATS?\n", id)
}

// jobProgress draws a job's progress while tdb waits for it.
type jobProgress interface {
	update(coordinator.Progress)
	finish()
}

// waitJob follows job id to its end for tdb collate and tdb explain (name),
// drawing prog. A failure of the embedded services (svcErr) ends the wait;
// with a natsURL it warns when no coordinator picks the job up; on an
// interrupt it says where the job is kept (natsURL, else natsDir), so that
// the same command resumes it.
func waitJob(ctx context.Context, client *coordinator.Client, id string, svcErr <-chan error, natsURL, natsDir, name string, prog jobProgress, stderr io.Writer) (jobs.JobState, error) {
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	go func() {
		select {
		case err := <-svcErr:
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", name, err)
				cancelWait()
			}
		case <-waitCtx.Done():
		}
	}()
	if natsURL != "" {
		go warnNoCoordinator(waitCtx, client, id, stderr)
	}
	final, err := client.Wait(waitCtx, id, prog.update)
	prog.finish()
	if err != nil && ctx.Err() != nil {
		where := natsDir
		if natsURL != "" {
			where = natsURL
		}
		fmt.Fprintf(stderr, "interrupted: job %s is kept in %s; run the same command again to resume it\n", id, where)
	}
	return final, err
}

// defaultWorkers leaves the cores to the forward pass (it is multi-threaded):
// one worker per four cores.
func defaultWorkers() int { return max(1, runtime.NumCPU()/4) }

// checkLocations validates everything checkable before anything is
// submitted (exit code 2, the messages tdb run gives): the model's
// checkpoint header, --n-ctx against its context, the sample sizes, the
// locations and layers, and every autoencoder's header and placement. In
// embedded mode the model is resolved (downloaded if needed: the workers
// need it anyway); with a cluster, a model that is not local is known by
// its name when it is one of OpenAI's GPT-2 checkpoints (model.KnownShape),
// else only the names are checked.
// It returns the model's vocabulary size (0 when the model is not known
// here).
func checkLocations(ctx context.Context, spec jobs.JobSpec, resolve bool, stderr io.Writer) (model.Config, bool, error) {
	cfg, isRandom, err := model.RandomConfig(spec.Model)
	if err != nil {
		return cfg, false, usagef("--model: %v", err)
	}
	known := true // cfg is the model's real shape
	if isRandom {
		fmt.Fprintf(stderr, "WARNING: --model %s uses RANDOM weights: the dataset shows how the pipeline works, not what GPT-2 does\n", spec.Model)
	} else if fi, statErr := os.Stat(spec.Model); (statErr == nil && fi.IsDir()) || resolve {
		if cfg, err = model.InspectName(ctx, spec.Model, stderr); err != nil {
			if errors.Is(err, model.ErrInvalid) || errors.Is(err, model.ErrUnknownPreset) {
				return cfg, false, usagef("--model: %v", err)
			}
			return cfg, false, err
		}
	} else if cfg, known = model.KnownShape(spec.Model); !known {
		cfg = model.Presets["gpt2"] // names only; the workers check the rest
	}
	if known {
		if err := model.ValidateContext(cfg, spec.NCtx); err != nil {
			return cfg, false, usagef("--n-ctx: %v", err)
		}
	}
	if err := spec.CollateConfig().Validate(); err != nil {
		return cfg, false, usagef("%v", err)
	}
	if len(spec.Locations) == 0 && len(spec.Autoencoders) == 0 {
		return cfg, false, usagef("--locations: give at least one location")
	}
	for _, l := range spec.Locations {
		if _, err := worker.ValidateLocation(cfg, l); err != nil {
			return cfg, false, usagef("--locations: %v", err)
		}
	}
	for _, l := range spec.Layers {
		if l < 0 || l >= cfg.NLayer {
			return cfg, false, usagef("--layers: layer %d is out of range: the model has layers 0..%d", l, cfg.NLayer-1)
		}
	}
	for _, a := range spec.Autoencoders {
		as, err := worker.ParseAutoencoderSpec(a)
		if err != nil {
			return cfg, false, usagef("--autoencoder: %v", err)
		}
		if strings.Contains(as.Path, "://") {
			continue // on a store: the workers check it
		}
		if _, statErr := os.Stat(as.Path); statErr != nil && !resolve {
			continue // a cluster's workers may have files this machine lacks
		}
		info, err := autoencoder.Inspect(as.Path)
		if err != nil {
			return cfg, false, usagef("--autoencoder: %v", err)
		}
		if known {
			if _, err := info.Place(cfg, as.Location, as.Layer); err != nil {
				return cfg, false, usagef("--autoencoder: %v", err)
			}
		}
	}
	return cfg, known, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// serviceOptions configure the in-process coordinator and workers.
// corpusOptions lets corpora live on any store URL (azblob://...).
func corpusOptions(context.Context) corpus.Options {
	return corpus.Options{Opener: store.OpenGlob}
}

// progressPrinter shows job progress on one line of stderr, redrawn on a
// terminal and printed at most every few seconds otherwise.
type progressPrinter struct {
	w    io.Writer
	tty  bool
	last time.Time
	line string
	mu   sync.Mutex
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// lockedWriter serializes writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (p *progressPrinter) update(pr coordinator.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	p.line = pr.Format(now)
	if pr.LastError != "" && !pr.State.Status.Final() {
		p.line += " (last error: " + textutil.Truncate(pr.LastError, 120) + ")"
	}
	if now.Sub(p.last) < every && !pr.State.Status.Final() {
		return
	}
	p.last = now
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", p.line)
	} else {
		fmt.Fprintln(p.w, p.line)
	}
}

func (p *progressPrinter) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.line != "" {
		fmt.Fprintln(p.w)
	}
}

// jobNATS says where a submitted job goes: a NATS URL (the coordinator
// there must write to the store), or, without one, an embedded server with
// a coordinator and local workers of this process.
type jobNATS struct {
	url, dir, listen, storeURL string
	store                      store.Store
	workers                    int
	log                        *slog.Logger
	reg                        *prometheus.Registry
	queue                      natsx.QueueConfig
}

// openJobClient connects a job client as j says (name is the NATS
// connection's name). svcErr reports the embedded services' failures;
// closeAll stops what was started, last in first out.
func openJobClient(ctx, runCtx context.Context, stop func(), j jobNATS, name string, stderr io.Writer) (client *coordinator.Client, svcErr chan error, closeAll func(), err error) {
	var (
		conn     func(name string) (*nats.Conn, error)
		services sync.WaitGroup
		closers  []func()
	)
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	svcErr = make(chan error, j.workers+1)
	if j.url == "" {
		emb, err := natsx.StartEmbedded(natsx.EmbeddedOptions{Dir: j.dir, Listen: j.listen, Logger: j.log})
		if err != nil {
			return nil, nil, closeAll, err
		}
		closers = append(closers, emb.Shutdown)
		if u := emb.URL(); u != "" {
			fmt.Fprintf(stderr, "embedded NATS at %s: more workers can join with: tdb worker --nats %s --store %s\n", u, u, j.storeURL)
		}
		conn = func(name string) (*nats.Conn, error) { return emb.Connect(name) }
		startServices(runCtx, &services, svcErr, serviceOptions{
			dial: emb.Dialer(), store: j.store, workers: j.workers, log: j.log, reg: j.reg, coordinator: true, queue: j.queue,
		})
		closers = append(closers, func() { stop(); services.Wait() })
	} else {
		dial := natsx.RetryDialer(j.url, j.log)
		conn = func(name string) (*nats.Conn, error) { return dial(ctx, name) }
	}
	nc, err := conn(name)
	if err != nil {
		return nil, nil, closeAll, err
	}
	closers = append(closers, nc.Close)
	if client, err = coordinator.NewClient(ctx, nc, 1); err != nil {
		return nil, nil, closeAll, err
	}
	if j.url != "" {
		if err := checkCoordinatorStore(ctx, client, j.store, j.url); err != nil {
			return nil, nil, closeAll, err
		}
	}
	return client, svcErr, closeAll, nil
}
