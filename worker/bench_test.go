package worker

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"tdb/collate"
	"tdb/corpus"
	"tdb/dataset"
	"tdb/internal/jobs"
	"tdb/kernels"
	"tdb/model"
	"tdb/store"
)

// benchSetup builds a GPT-2-small-shaped random model and a job over every
// MLP neuron (12 × 3072 = 36,864), n_ctx 64, k 32, and plans one task of
// group consecutive shards of about tokens tokens each.
func benchSetup(b *testing.B, preset string, tokens int64, group int) (*Job, []corpus.Shard) {
	b.Helper()
	kernels.Install()
	cfg, ok := model.Presets[preset]
	if preset == "tiny" {
		cfg, ok = model.TinyConfig, true
	}
	if !ok {
		b.Fatalf("no model preset %q", preset)
	}
	m, err := model.NewRandom(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	// synthetic:ioi documents are about 20 tokens.
	docs := max(1000, tokens*int64(group)/15)
	spec := jobs.JobSpec{Model: "random:" + preset, Corpus: "synthetic:ioi?docs=" + strconv.FormatInt(docs, 10), Locations: []string{"mlp.post_act"},
		NCtx: 64, TopK: 32, RandomK: 16, QuantileBuckets: 10, PerBucket: 5, BatchSize: 8, BlockBytes: 4096}
	ctx := context.Background()
	job, err := NewJob(ctx, spec, m, corpus.Options{})
	if err != nil {
		b.Fatal(err)
	}
	shards, err := job.Corpus.Plan(ctx, tokens)
	if err != nil {
		b.Fatal(err)
	}
	if len(shards) < group {
		b.Fatalf("the corpus has %d shards, want %d", len(shards), group)
	}
	return job, shards[:group]
}

// benchEnvInt reads a positive integer setting of the benchmarks.
func benchEnvInt(b *testing.B, name string, def, least int64) int64 {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < least {
			b.Fatalf("%s=%q: want an integer of at least %d", name, v, least)
		}
		return n
	}
	return def
}

// benchShardTokens and benchShardsPerPartial are the task of
// BenchmarkShardGPT2Small: the defaults of a large job (16 shards of 1<<17
// tokens per partial) unless TDB_BENCH_SHARD_TOKENS and
// TDB_BENCH_SHARDS_PER_PARTIAL say otherwise.
func benchShardTokens(b *testing.B) int64 {
	return benchEnvInt(b, "TDB_BENCH_SHARD_TOKENS", jobs.DefaultTokensPerShard, 64)
}

func benchShardsPerPartial(b *testing.B) int {
	return int(benchEnvInt(b, "TDB_BENCH_SHARDS_PER_PARTIAL", jobs.DefaultShardsPerPartial, 1))
}

// cpuTime is the process's CPU time: a shared machine deschedules a
// benchmark for long spells, so rates per CPU second are reported next to
// rates per wall second (with -cpu 1, a CPU second is a core second).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS returns the process's peak resident set size in bytes (Linux;
// 0 elsewhere).
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkShardGPT2Small compares the worker's end-to-end task (read and
// tokenize the corpus, forward, accumulate all 36,864 neurons, encode and
// write the partials) with the bare forward passes over the same windows
// (capturing the 12 mlp.post_act sites), and reports the process's peak RSS
// after each and partial-B/token, the partial bytes written per corpus
// token. The task has a large job's default size (see benchShardTokens):
// partials are bounded by the components, not the tokens, so a task of
// more tokens writes fewer bytes per token. Run with -benchtime=1x; the
// forward sub-benchmark runs first, so its peak RSS is the model's and the
// forward's alone.
//
// The partial sub-benchmark measures the partial's size for the same task
// without running the model on all of it: the forward runs on the first
// partialDistinct windows and their activations are fed, in turn, as those
// of every window of the task (with each window's own source and tokens).
// Partial size depends on the records kept (top-k and pool: a function of
// the sources, the seed and the maxima), not on the values, so it is the
// task's; it also reports the collation speed alone.
func BenchmarkShardGPT2Small(b *testing.B) { benchTask(b, "gpt2") }

// BenchmarkTaskTiny is BenchmarkShardGPT2Small on the tiny model (2 layers
// of 256 neurons); scripts/bench-pipeline.sh runs it on one core for the
// per-core figures of the cost model.
func BenchmarkTaskTiny(b *testing.B) { benchTask(b, "tiny") }

func benchTask(b *testing.B, preset string) {
	job, shards := benchSetup(b, preset, benchShardTokens(b), benchShardsPerPartial(b))
	ctx := context.Background()
	var wins []corpus.Window
	var windows [][]int
	for _, sh := range shards {
		if _, err := job.Corpus.Windows(ctx, sh, job.Spec.NCtx, func(w corpus.Window) error {
			wins = append(wins, w)
			seq := make([]int, len(w.Tokens))
			for i, t := range w.Tokens {
				seq[i] = int(t)
			}
			windows = append(windows, seq)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	tokens := float64(len(windows) * job.Spec.NCtx)
	b.Run("partial", func(b *testing.B) {
		benchPartial(b, job, wins, windows)
	})
	if os.Getenv("TDB_BENCH_PARTIAL_ONLY") != "" {
		return
	}
	b.Run("forward", func(b *testing.B) {
		cpu0 := cpuTime()
		for b.Loop() {
			for i := 0; i < len(windows); i += job.Spec.BatchSize {
				if _, err := job.Model.Forward(ctx, model.Request{Tokens: windows[i:min(i+job.Spec.BatchSize, len(windows))], Capture: captures(job.targets)}); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(tokens*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		b.ReportMetric(tokens*float64(b.N)/(cpuTime()-cpu0).Seconds(), "tokens/cpu-s")
		b.ReportMetric(peakRSS()/1e6, "peak-RSS-MB")
	})
	b.Run("end-to-end", func(b *testing.B) {
		st, err := store.NewLocal(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		var written int64
		cpu0 := cpuTime()
		for b.Loop() {
			res, err := job.RunShards(ctx, shards, nil)
			if err != nil {
				b.Fatal(err)
			}
			refs, err := WritePartials(ctx, st, "bench", 0, res.Accumulators)
			if err != nil {
				b.Fatal(err)
			}
			for _, ref := range refs {
				written += ref.Size
			}
		}
		b.ReportMetric(tokens*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		b.ReportMetric(tokens*float64(b.N)/(cpuTime()-cpu0).Seconds(), "tokens/cpu-s")
		b.ReportMetric(float64(written)/float64(b.N)/1e6, "partial-MB/task")
		b.ReportMetric(float64(written)/float64(b.N)/tokens, "partial-B/token")
		b.ReportMetric(peakRSS()/1e6, "peak-RSS-MB")
	})
}

// partialDistinct is how many windows the partial sub-benchmark runs
// through the model.
const partialDistinct = 64

// benchPartial accumulates a task's windows with the activations of its
// first partialDistinct windows in turn and writes the partials.
func benchPartial(b *testing.B, job *Job, wins []corpus.Window, windows [][]int) {
	ctx := context.Background()
	n := min(partialDistinct, len(windows))
	bs := job.Spec.BatchSize
	// Captured activations per target, [window][T*C].
	acts := make([][][]float32, len(job.targets))
	for i := 0; i < n; i += bs {
		res, err := job.Model.Forward(ctx, model.Request{Tokens: windows[i:min(i+bs, n)], Capture: captures(job.targets)})
		if err != nil {
			b.Fatal(err)
		}
		for ti, t := range job.targets {
			x := res.Acts[t.site]
			B, T := x.Shape[0], x.Shape[1]
			for w := range B {
				acts[ti] = append(acts[ti], x.Data[w*T*t.components:(w+1)*T*t.components])
			}
		}
	}
	srcs := make([]dataset.Source, len(wins))
	for i, w := range wins {
		srcs[i] = dataset.Source{Doc: w.Doc, Offset: w.Offset}
	}
	tokens := float64(len(wins) * job.Spec.NCtx)
	st, err := store.NewLocal(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	var written int64
	var collate, collateCPU time.Duration
	for b.Loop() {
		t0, c0 := time.Now(), cpuTime()
		accs := make([]*collateAcc, len(job.targets))
		if err := forEach(ctx, len(accs), func(ti int) error {
			t := job.targets[ti]
			a, err := newCollateAcc(t.location, t.layer, t.components, job.cfg)
			if err != nil {
				return err
			}
			if err := a.PlanSources(srcs); err != nil {
				return err
			}
			for i, w := range wins {
				if err := a.AddWindow(srcs[i], w.Tokens, acts[ti][i%n]); err != nil {
					return err
				}
			}
			accs[ti] = a
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		collate += time.Since(t0)
		collateCPU += cpuTime() - c0
		refs, err := WritePartials(ctx, st, "bench", 0, accs)
		if err != nil {
			b.Fatal(err)
		}
		for _, ref := range refs {
			written += ref.Size
		}
	}
	b.ReportMetric(tokens*float64(b.N)/collate.Seconds(), "collate-tokens/s")
	b.ReportMetric(tokens*float64(b.N)/collateCPU.Seconds(), "collate-tokens/cpu-s")
	b.ReportMetric(float64(written)/float64(b.N)/1e6, "partial-MB/task")
	b.ReportMetric(float64(written)/float64(b.N)/tokens, "partial-B/token")
	b.ReportMetric(peakRSS()/1e6, "peak-RSS-MB")
}

// BenchmarkHeadScores measures the attention-head write-norm scoring of one
// GPT-2-small layer for a batch of 8 windows of 64 tokens.
func BenchmarkHeadScores(b *testing.B) {
	kernels.Install()
	m, err := model.NewRandom(model.Presets["gpt2"], 1)
	if err != nil {
		b.Fatal(err)
	}
	const B, T = 8, 64
	toks := make([][]int, B)
	batch := make([]corpus.Window, B)
	for i := range toks {
		toks[i] = make([]int, T)
		batch[i].Tokens = make([]int32, T)
		for j := range T {
			toks[i][j] = (i*T + j*7) % m.Vocab
			batch[i].Tokens[j] = int32(toks[i][j])
		}
		batch[i].Doc = int64(i)
	}
	res, err := m.Forward(context.Background(), model.Request{Tokens: toks, Capture: []model.Site{model.At(model.AttnQKProbs, 0), model.At(model.AttnV, 0)}})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		acc, err := collate.NewLayerAccumulator(HeadsLocation, 0, m.NHead, collate.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		f := &feeder{t: target{location: HeadsLocation, layer: 0, components: m.NHead, heads: true}, acc: acc, m: m}
		if err := f.feed(res, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(B*T*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

type collateAcc = collate.LayerAccumulator

var newCollateAcc = collate.NewLayerAccumulator
