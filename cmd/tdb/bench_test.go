package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"tdb/kernels"
	"tdb/model"
)

// TestBenchForwardLimit checks tdb bench forward: its JSON keys (a row
// without, then one with the logits), that the GEMM-bound limit and rate
// agree with the pass's matrix-multiply flops, computed here from the
// model's shape, the table, and that --seq beyond the context is refused.
func TestBenchForwardLimit(t *testing.T) {
	const B, T = 2, 16
	code, stdout, stderr := runTDB(t, "bench", "forward", "--model", "random:tiny", "--batch", "2", "--seq", "16", "--time", "50ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rows []struct {
		Logits     bool    `json:"logits"`
		TokensSec  float64 `json:"tokens_per_s"`
		GEMMGFLOPS float64 `json:"gemm_gflops"`
		Limit      float64 `json:"limit_tokens_per_s"`
		Fraction   float64 `json:"fraction_of_limit"`
		GEMM       string  `json:"gemm"`
		CPU        float64 `json:"cpu_s_per_batch"`
		TokensCPU  float64 `json:"tokens_per_cpu_s"`
		LimitCPU   float64 `json:"limit_tokens_per_cpu_s"`
		FracCPU    float64 `json:"fraction_of_limit_cpu"`
		PeakRSS    float64 `json:"peak_rss_mib"`
		Batch      int     `json:"batch"`
	}
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("rows %v: %v\n%s", rows, err, stdout)
	}
	if rows[0].Logits || !rows[1].Logits || rows[0].Batch != B {
		t.Fatalf("rows %+v: want batch %d without, then with logits", rows, B)
	}
	c := model.TinyConfig
	d, mlp := float64(c.DModel), float64(c.DMLP)
	perToken := float64(c.NLayer) * (2*(3*d*d+d*d+2*d*mlp) + 4*T*d) // QKV, out, MLP; Q·Kᵀ and P·V
	for _, r := range rows {
		flops := perToken
		if r.Logits {
			flops += 2 * d * float64(c.Vocab)
		}
		if !(r.TokensSec > 0 && r.PeakRSS > 0 && r.GEMMGFLOPS > 0 && r.Limit > 0 && r.Fraction > 0) || r.GEMM == "" {
			t.Fatalf("row %+v", r)
		}
		if got := r.Limit * flops / 1e9; math.Abs(got-r.GEMMGFLOPS) > 1e-9*r.GEMMGFLOPS {
			t.Errorf("logits=%v: limit %v tokens/s × %v flop/token = %v GFLOP/s, but gemm_gflops is %v", r.Logits, r.Limit, flops, got, r.GEMMGFLOPS)
		}
		if math.Abs(r.Fraction-r.TokensSec/r.Limit) > 1e-9*r.Fraction {
			t.Errorf("logits=%v: fraction %v, tokens/s ÷ limit = %v", r.Logits, r.Fraction, r.TokensSec/r.Limit)
		}
		if runtime.GOOS == "linux" {
			if !(r.CPU > 0) || math.Abs(r.TokensCPU*r.CPU-B*T) > 1e-9*B*T {
				t.Errorf("logits=%v: cpu_s_per_batch %v × tokens_per_cpu_s %v is not the batch's %d tokens", r.Logits, r.CPU, r.TokensCPU, B*T)
			}
			if !(r.LimitCPU > 0) || math.Abs(r.FracCPU-r.TokensCPU/r.LimitCPU) > 1e-9*r.FracCPU {
				t.Errorf("logits=%v: fraction_of_limit_cpu %v, tokens_per_cpu_s ÷ limit_tokens_per_cpu_s = %v", r.Logits, r.FracCPU, r.TokensCPU/r.LimitCPU)
			}
		}
	}

	code, stdout, stderr = runTDB(t, "bench", "forward", "--model", "random:tiny", "--batch", "2", "--seq", "16", "--time", "50ms")
	if code != 0 || !strings.Contains(stdout, "limit tokens/s") || !strings.Contains(stdout, "GEMM GFLOP/s") || !strings.Contains(stdout, "%") {
		t.Fatalf("exit %d, table:\n%s\n%s", code, stdout, stderr)
	}
	if code, _, stderr := runTDB(t, "bench", "forward", "--model", "random:tiny", "--seq", "100"); code != 2 || !strings.Contains(stderr, "context") {
		t.Errorf("--seq beyond the context: exit %d, %s", code, stderr)
	}
}

// BenchmarkForwardLimit is tdb bench forward as a Go benchmark: GPT-2-small
// random weights, MLP activations of every layer captured, batch × 64
// tokens, with and without the unembedding. Each iteration is one round (a
// forward pass, then its matrix multiplies alone); it reports tokens/s, the
// GEMM-bound limit and the fraction of it reached. TDB_KERNELS picks the
// kernel path.
func BenchmarkForwardLimit(b *testing.B) {
	kernels.Install()
	m, err := model.NewRandom(model.Presets["gpt2"], 1)
	if err != nil {
		b.Fatal(err)
	}
	for _, batch := range []int{8, 32} {
		tokens := make([][]int, batch)
		for i := range tokens {
			tokens[i] = make([]int, 64)
			for t := range tokens[i] {
				tokens[i][t] = (i*7919 + t*104729) % m.Vocab
			}
		}
		for _, logits := range []bool{false, true} {
			name := fmt.Sprintf("%s/%dx64/mlp", kernels.Name(), batch)
			if logits {
				name += "+logits"
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				fb, err := newForwardBench(ctx, m, tokens, logits)
				if err != nil {
					b.Fatal(err)
				}
				var fwd, gemm time.Duration
				for b.Loop() {
					rt, err := fb.round(ctx)
					if err != nil {
						b.Fatal(err)
					}
					fwd, gemm = fwd+rt.fwd, gemm+rt.gemm
				}
				n := float64(b.N * batch * 64)
				b.ReportMetric(n/fwd.Seconds(), "tokens/s")
				b.ReportMetric(n/gemm.Seconds(), "limit-tokens/s")
				b.ReportMetric(gemm.Seconds()/fwd.Seconds(), "of-limit")
				b.ReportMetric(fb.flops()*float64(b.N)/gemm.Seconds()/1e9, "GEMM-GFLOP/s")
			})
		}
	}
}
