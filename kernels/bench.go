package kernels

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"text/tabwriter"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// GEMMShape is one benchmarked product: C[M×N] = A[M×K]·op(B), where op(B)
// is Bᵀ when TransB (B stored N×K, like GPT-2's embedding matrix).
type GEMMShape struct {
	M, K, N int
	TransB  bool
}

func (s GEMMShape) String() string { return fmt.Sprintf("%dx%dx%d", s.M, s.K, s.N) }

// GPT2Shapes are GPT-2 small's matrix multiplies at 512 tokens: the QKV,
// attention output, MLP in and out projections and the unembedding.
var GPT2Shapes = []GEMMShape{
	{M: 512, K: 768, N: 2304},
	{M: 512, K: 768, N: 768},
	{M: 512, K: 768, N: 3072},
	{M: 512, K: 3072, N: 768},
	{M: 512, K: 768, N: 50257, TransB: true},
}

// NamedImpl is a blas.Float32 under the name benchmarks report.
type NamedImpl struct {
	Name string
	Impl blas.Float32
}

// extraImpls holds implementations compiled in by build tags (openblas).
var extraImpls []NamedImpl

// BenchImpls lists the implementations available in this build: ours with
// each kernel this CPU runs, gonum's native one, and any extra ones.
func BenchImpls() []NamedImpl {
	var out []NamedImpl
	for _, p := range cpuPaths {
		s := p.spec
		out = append(out, NamedImpl{Name: "tdb-" + s.name, Impl: Implementation{spec: s}})
	}
	out = append(out, NamedImpl{Name: "gonum", Impl: gonum.Implementation{}})
	return append(out, extraImpls...)
}

// GEMMResult is one measurement of BenchGEMM.
type GEMMResult struct {
	Shape  string  `json:"shape"`
	Impl   string  `json:"impl"`
	GFLOPS float64 `json:"gflops"`
}

// BenchGEMM measures GFLOP/s of every implementation in BenchImpls on
// GPT2Shapes and writes a table, or JSON when jsonOut is set. Each figure is
// the best of several runs (at least 3, up to about a second per pair).
func BenchGEMM(ctx context.Context, w io.Writer, jsonOut bool) error {
	return benchGEMM(ctx, w, jsonOut, GPT2Shapes, time.Second)
}

// benchGEMM measures each shape with every implementation, interleaving the
// implementations run by run so that load from other processes hits them
// alike, and keeps each one's best time.
func benchGEMM(ctx context.Context, w io.Writer, jsonOut bool, shapes []GEMMShape, budget time.Duration) error {
	var impls []NamedImpl
	for _, im := range BenchImpls() {
		if im.Name == "tdb-generic" && len(cpuPaths) > 1 {
			continue // only interesting where it is the fastest
		}
		impls = append(impls, im)
	}
	var results []GEMMResult
	for _, s := range shapes {
		a, b, c := benchOperands(s)
		best := make([]time.Duration, len(impls))
		for i, im := range impls {
			runGEMM(im.Impl, s, a, b, c) // warm caches, pools and helper goroutines
			best[i] = time.Duration(1<<63 - 1)
		}
		start := time.Now()
		for r := 0; r < 3 || time.Since(start) < budget; r++ {
			for i, im := range impls {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("bench gemm %s %s: %w", s, im.Name, err)
				}
				t0 := time.Now()
				runGEMM(im.Impl, s, a, b, c)
				best[i] = min(best[i], time.Since(t0))
			}
		}
		for i, im := range impls {
			results = append(results, GEMMResult{Shape: s.String(), Impl: im.Name, GFLOPS: gflops(s, best[i])})
		}
	}
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return fmt.Errorf("bench gemm: write json: %w", err)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "shape (MxKxN)\timpl\tGFLOP/s\t\n")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t\n", r.Shape, r.Impl, r.GFLOPS)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("bench gemm: write table: %w", err)
	}
	return nil
}

// benchOperands makes random A, B and C for s.
func benchOperands(s GEMMShape) (a, b, c []float32) {
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = r.Float32() - 0.5
		}
		return x
	}
	return fill(s.M * s.K), fill(s.K * s.N), make([]float32, s.M*s.N)
}

// runGEMM computes C = A·op(B) for s with impl.
func runGEMM(impl blas.Float32, s GEMMShape, a, b, c []float32) {
	tB, ldb := blas.NoTrans, s.N
	if s.TransB {
		tB, ldb = blas.Trans, s.K
	}
	impl.Sgemm(blas.NoTrans, tB, s.M, s.N, s.K, 1, a, s.K, b, ldb, 0, c, s.N)
}

func gflops(s GEMMShape, d time.Duration) float64 {
	return 2 * float64(s.M) * float64(s.N) * float64(s.K) / d.Seconds() / 1e9
}
