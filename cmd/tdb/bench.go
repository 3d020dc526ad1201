package main

import (
	"context"
	"encoding/json"
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
	register("bench forward", "measure forward-pass tokens/s and peak memory", cmdBenchForward)
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
		var capture []model.Site
		for l := range m.NLayer {
			capture = append(capture, model.At(model.MLPPostAct, l))
		}
		if logits {
			capture = append(capture, model.At(model.Logits, model.NoLayer))
		}
		req := model.Request{Tokens: tokens, Capture: capture}
		if _, err := m.Forward(ctx, req); err != nil { // warm-up
			return err
		}
		n, start := 0, time.Now()
		for n == 0 || time.Since(start) < *dur {
			if _, err := m.Forward(ctx, req); err != nil {
				return err
			}
			n++
		}
		el := time.Since(start).Seconds()
		results = append(results, forwardResult{Model: *modelName, Batch: *batch, Seq: *seq, Logits: logits,
			TokensSec: float64(n**batch**seq) / el, Seconds: el / float64(n), PeakRSS: memstat.PeakRSSMiB(),
			GEMM: kernels.Name(), Threads: runtime.GOMAXPROCS(0)})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	fmt.Fprintf(stdout, "%-14s %5s %4s %-7s %12s %10s %10s\n", "model", "batch", "seq", "logits", "tokens/s", "s/batch", "peak MiB")
	for _, r := range results {
		fmt.Fprintf(stdout, "%-14s %5d %4d %-7v %12.1f %10.3f %10.0f\n", r.Model, r.Batch, r.Seq, r.Logits, r.TokensSec, r.Seconds, r.PeakRSS)
	}
	fmt.Fprintf(stdout, "(MLP activations of every layer captured; GEMM %s, %d threads)\n", kernels.Name(), runtime.GOMAXPROCS(0))
	return nil
}
