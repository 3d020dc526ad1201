package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"tdb/internal/memstat"
	"tdb/kernels"
	"tdb/model"
)

func init() {
	register("bench gemm", "measure GFLOP/s of the float32 GEMM implementations on GPT-2 shapes", cmdBenchGEMM)
	register("bench forward", "measure forward-pass tokens/s, peak memory and the share of the GEMM-bound limit", cmdBenchForward)
}

func cmdBenchGEMM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench gemm", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return kernels.BenchGEMM(ctx, stdout, *asJSON)
}

// forwardResult is one line of tdb bench forward.
type forwardResult struct {
	Model     string  `json:"model"`
	Batch     int     `json:"batch"`
	Seq       int     `json:"seq"`
	Logits    bool    `json:"logits"`
	TokensSec float64 `json:"tokens_per_s"`
	Seconds   float64 `json:"seconds_per_batch"`
	PeakRSS   float64 `json:"peak_rss_mib"`
	GEMM      string  `json:"gemm"`
	Threads   int     `json:"threads"`
	// The GEMM-bound limit: the rate of the pass's matrix multiplies run
	// alone on the same shapes, the tokens/s the pass would reach if they
	// were all it did, and the share of that it reaches.
	GEMMGFLOPS  float64 `json:"gemm_gflops"`
	LimitTokens float64 `json:"limit_tokens_per_s"`
	Fraction    float64 `json:"fraction_of_limit"`
	// CPU time of the forward passes alone (all threads): on a machine
	// shared with other jobs, tokens per CPU-second at one thread is the
	// figure that other jobs' load disturbs least.
	CPUSeconds   float64 `json:"cpu_s_per_batch"`
	TokensCPUSec float64 `json:"tokens_per_cpu_s"`
	// The limit and the fraction in CPU time: at one thread they hold
	// still while other jobs load the machine.
	LimitTokensCPU float64 `json:"limit_tokens_per_cpu_s"`
	FractionCPU    float64 `json:"fraction_of_limit_cpu"`
}

// forwardGEMMs lists the matrix multiplies of one forward pass of a batch of
// B sequences of T tokens, each with how many times it runs (a Batch shape
// is the per-head attention products of one layer). With logits it
// includes the unembedding.
func forwardGEMMs(c model.Config, B, T int, logits bool) []gemmCount {
	N, d, H := B*T, c.DModel, c.NHead
	dh := d / H
	out := []gemmCount{
		{kernels.GEMMShape{M: N, K: d, N: 3 * d}, c.NLayer},                          // QKV
		{kernels.GEMMShape{M: T, K: dh, N: T, TransB: true, Batch: B * H}, c.NLayer}, // Q·Kᵀ
		{kernels.GEMMShape{M: T, K: T, N: dh, Batch: B * H}, c.NLayer},               // P·V
		{kernels.GEMMShape{M: N, K: d, N: d}, c.NLayer},                              // attention out
		{kernels.GEMMShape{M: N, K: d, N: c.DMLP}, c.NLayer},                         // MLP in
		{kernels.GEMMShape{M: N, K: c.DMLP, N: d}, c.NLayer},                         // MLP out
	}
	if logits {
		out = append(out, gemmCount{kernels.GEMMShape{M: N, K: d, N: c.Vocab, TransB: true}, 1})
	}
	return out
}

// forwardBench is one case of tdb bench forward: a forward request and
// runners for the matrix multiplies of that pass.
type forwardBench struct {
	m       *model.Model
	req     model.Request
	gemms   []gemmCount
	runners []*kernels.GEMMRunner
}

// newForwardBench prepares a pass over tokens capturing every layer's MLP
// activations (and the logits when logits is set) and runs it once, with
// its matrix multiplies, to warm up.
func newForwardBench(ctx context.Context, m *model.Model, tokens [][]int, logits bool) (*forwardBench, error) {
	fb := &forwardBench{m: m, gemms: forwardGEMMs(m.Config, len(tokens), len(tokens[0]), logits)}
	for l := range m.NLayer {
		fb.req.Capture = append(fb.req.Capture, model.At(model.MLPPostAct, l))
	}
	if logits {
		fb.req.Capture = append(fb.req.Capture, model.At(model.Logits, model.NoLayer))
	}
	fb.req.Tokens = tokens
	for _, g := range fb.gemms {
		r, err := kernels.NewGEMMRunner(g.shape)
		if err != nil {
			return nil, err
		}
		fb.runners = append(fb.runners, r)
	}
	_, err := fb.round(ctx)
	return fb, err
}

// roundTimes is one round: wall time and process CPU seconds of the
// forward pass and of its matrix multiplies alone.
type roundTimes struct {
	fwd, gemm    time.Duration
	cpu, gemmCPU float64
}

// round times one forward pass, then the pass's matrix multiplies alone
// (each shape once, counted as often as the pass runs it), so both see the
// same load from the rest of the machine. The pass's captured buffers go
// back to the model (Result.Release), as in any loop over batches that does
// not keep them: the next pass captures into them instead of faulting in
// and zeroing fresh memory (714 MB at 32 × 64 with the logits).
func (fb *forwardBench) round(ctx context.Context) (roundTimes, error) {
	var rt roundTimes
	c0, t0 := memstat.CPUSeconds(), time.Now()
	res, err := fb.m.Forward(ctx, fb.req)
	if err != nil {
		return rt, err
	}
	rt.fwd, rt.cpu = time.Since(t0), memstat.CPUSeconds()-c0
	res.Release()
	for i, g := range fb.gemms {
		c0, t0 := memstat.CPUSeconds(), time.Now()
		fb.runners[i].Run()
		rt.gemm += time.Since(t0) * time.Duration(g.n)
		rt.gemmCPU += (memstat.CPUSeconds() - c0) * float64(g.n)
	}
	return rt, nil
}

// flops is the matrix-multiply work of one pass.
func (fb *forwardBench) flops() float64 {
	f := 0.0
	for _, g := range fb.gemms {
		f += g.shape.Flops() * float64(g.n)
	}
	return f
}

type gemmCount struct {
	shape kernels.GEMMShape
	n     int
}

func cmdBenchForward(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench forward", stderr)
	modelName := fs.String("model", "random:gpt2", "model (hub name, folder, or random:<preset>)")
	batch := fs.Int("batch", 8, "sequences per batch")
	seq := fs.Int("seq", 64, "tokens per sequence")
	dur := fs.Duration("time", 10*time.Second, "measure for about this long per case")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *batch <= 0 || *seq <= 0 {
		return usagef("--batch and --seq must be positive")
	}
	if *dur <= 0 {
		return usagef("--time must be positive (got %s)", *dur)
	}
	m, err := loadModel(ctx, *modelName, stderr)
	if err != nil {
		return err
	}
	if err := model.ValidateContext(m.Config, *seq); err != nil {
		return usagef("--seq %d exceeds the model's context of %d", *seq, m.NCtx)
	}
	tokens := make([][]int, *batch)
	for i := range tokens {
		tokens[i] = make([]int, *seq)
		for t := range tokens[i] {
			tokens[i][t] = (i*7919 + t*104729) % m.Vocab
		}
	}
	var results []forwardResult
	for _, logits := range []bool{false, true} {
		fb, err := newForwardBench(ctx, m, tokens, logits)
		if err != nil {
			return err
		}
		var fwd, gemm time.Duration
		var cpu, gemmCPU float64
		n := 0
		for n == 0 || fwd < *dur {
			rt, err := fb.round(ctx)
			if err != nil {
				return err
			}
			fwd, gemm, cpu, gemmCPU, n = fwd+rt.fwd, gemm+rt.gemm, cpu+rt.cpu, gemmCPU+rt.gemmCPU, n+1
		}
		tokens := float64(n * *batch * *seq)
		r := forwardResult{Model: *modelName, Batch: *batch, Seq: *seq, Logits: logits,
			TokensSec: tokens / fwd.Seconds(), Seconds: fwd.Seconds() / float64(n), PeakRSS: memstat.PeakRSSMiB(),
			GEMM: kernels.Name(), Threads: runtime.GOMAXPROCS(0),
			GEMMGFLOPS: fb.flops() * float64(n) / gemm.Seconds() / 1e9, LimitTokens: tokens / gemm.Seconds()}
		r.Fraction = r.TokensSec / r.LimitTokens
		if cpu > 0 && gemmCPU > 0 {
			r.CPUSeconds, r.TokensCPUSec = cpu/float64(n), tokens/cpu
			r.LimitTokensCPU = tokens / gemmCPU
			r.FractionCPU = r.TokensCPUSec / r.LimitTokensCPU
		}
		results = append(results, r)
	}
	if *asJSON {
		return writeJSON(stdout, results)
	}
	fmt.Fprintf(stdout, "%-14s %5s %4s %-7s %12s %10s %10s %12s %14s %9s %13s\n", "model", "batch", "seq", "logits", "tokens/s", "s/batch", "peak MiB", "GEMM GFLOP/s", "limit tokens/s", "of limit", "tokens/cpu-s")
	for _, r := range results {
		fmt.Fprintf(stdout, "%-14s %5d %4d %-7v %12.1f %10.3f %10.0f %12.1f %14.1f %8.0f%% %13.1f\n", r.Model, r.Batch, r.Seq, r.Logits, r.TokensSec, r.Seconds, r.PeakRSS, r.GEMMGFLOPS, r.LimitTokens, 100*r.Fraction, r.TokensCPUSec)
	}
	fmt.Fprintf(stdout, "(MLP activations of every layer captured, into buffers reused from pass to pass; kernels %s, %d threads; the limit is the pass's matrix multiplies alone at the GEMM rate measured on its shapes)\n", kernels.Name(), runtime.GOMAXPROCS(0))
	return nil
}
