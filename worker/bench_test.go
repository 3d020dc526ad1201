package worker

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"tdb/collate"
	"tdb/corpus"
	"tdb/internal/jobs"
	"tdb/kernels"
	"tdb/model"
	"tdb/store"
)

// benchSetup builds a GPT-2-small-shaped random model and a job over every
// MLP neuron (12 × 3072 = 36,864), n_ctx 64, k 32, and plans one shard of
// about tokens tokens.
func benchSetup(b *testing.B, tokens int64) (*Job, corpus.Shard) {
	b.Helper()
	kernels.Install()
	m, err := model.NewRandom(model.Presets["gpt2"], 1)
	if err != nil {
		b.Fatal(err)
	}
	spec := jobs.JobSpec{Model: "random:gpt2", Corpus: "synthetic:ioi?docs=100000", Locations: []string{"mlp.post_act"},
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
	return job, shards[0]
}

// benchShardTokens is the shard size of BenchmarkShardGPT2Small: the
// coordinator's default (1<<17) unless TDB_BENCH_SHARD_TOKENS says otherwise.
func benchShardTokens(b *testing.B) int64 {
	if v := os.Getenv("TDB_BENCH_SHARD_TOKENS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 64 {
			b.Fatalf("TDB_BENCH_SHARD_TOKENS=%q: want a token count of at least 64", v)
		}
		return n
	}
	return 1 << 17
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

// BenchmarkShardGPT2Small compares the worker's end-to-end shard (read and
// tokenize the corpus, forward, accumulate all 36,864 neurons, encode and
// write the partials) with the bare forward passes over the same windows
// (capturing the 12 mlp.post_act sites), and reports the process's peak RSS
// after each. The shard has the coordinator's default size (see
// benchShardTokens): partials are bounded by the components, not the
// tokens, so a longer shard writes fewer bytes per token. Run with
// -benchtime=1x; the forward sub-benchmark runs first, so its peak RSS is
// the model's and the forward's alone.
func BenchmarkShardGPT2Small(b *testing.B) {
	job, sh := benchSetup(b, benchShardTokens(b))
	ctx := context.Background()
	var windows [][]int
	if _, err := job.Corpus.Windows(ctx, sh, job.Spec.NCtx, func(w corpus.Window) error {
		seq := make([]int, len(w.Tokens))
		for i, t := range w.Tokens {
			seq[i] = int(t)
		}
		windows = append(windows, seq)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	tokens := float64(len(windows) * job.Spec.NCtx)
	b.Run("forward", func(b *testing.B) {
		for b.Loop() {
			for i := 0; i < len(windows); i += job.Spec.BatchSize {
				if _, err := job.Model.Forward(ctx, model.Request{Tokens: windows[i:min(i+job.Spec.BatchSize, len(windows))], Capture: job.capture}); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(tokens*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		b.ReportMetric(peakRSS()/1e6, "peak-RSS-MB")
	})
	b.Run("end-to-end", func(b *testing.B) {
		st, err := store.NewLocal(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		var written int64
		for b.Loop() {
			res, err := job.Run(ctx, sh, nil)
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
		b.ReportMetric(float64(written)/float64(b.N)/1e6, "partial-MB/shard")
		b.ReportMetric(peakRSS()/1e6, "peak-RSS-MB")
	})
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
