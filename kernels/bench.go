package kernels

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"text/tabwriter"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// GEMMShape is one benchmarked product: C[M×N] = A[M×K]·op(B), where op(B)
// is Bᵀ when TransB (B stored N×K, like GPT-2's embedding matrix). Batch > 1
// means that many independent products at once, spread over the cores the
// way the forward pass runs its per-head attention products.
type GEMMShape struct {
	M, K, N int
	TransB  bool
	Batch   int
}

// Flops is the number of floating-point operations of s (all its batch).
func (s GEMMShape) Flops() float64 {
	return 2 * float64(s.M) * float64(s.N) * float64(s.K) * float64(max(1, s.Batch))
}

func (s GEMMShape) String() string {
	if s.Batch > 1 {
		return fmt.Sprintf("%dx%dx%dx%d", s.Batch, s.M, s.K, s.N)
	}
	return fmt.Sprintf("%dx%dx%d", s.M, s.K, s.N)
}

// gpt2Shapes are GPT-2 small's matrix multiplies at 512 tokens: the QKV,
// attention output, MLP in and out projections and the unembedding.
var gpt2Shapes = []GEMMShape{
	{M: 512, K: 768, N: 2304},
	{M: 512, K: 768, N: 768},
	{M: 512, K: 768, N: 3072},
	{M: 512, K: 3072, N: 768},
	{M: 512, K: 768, N: 50257, TransB: true},
}

// namedImpl is a blas.Float32 under the name benchmarks report.
type namedImpl struct {
	Name string
	Impl blas.Float32
}

// extraImpls holds implementations compiled in by build tags (openblas).
var extraImpls []namedImpl

// benchImpls lists the implementations available in this build: ours with
// each kernel this CPU runs, gonum's native one, and any extra ones.
func benchImpls() []namedImpl {
	var out []namedImpl
	for _, p := range cpuPaths {
		out = append(out, namedImpl{Name: "tdb-" + p.name, Impl: Implementation{spec: p.spec}})
	}
	out = append(out, namedImpl{Name: "gonum", Impl: gonum.Implementation{}})
	return append(out, extraImpls...)
}

// gemmResult is one measurement of BenchGEMM.
type gemmResult struct {
	Shape  string  `json:"shape"`
	Impl   string  `json:"impl"`
	GFLOPS float64 `json:"gflops"`
}

// BenchGEMM measures GFLOP/s of every implementation in benchImpls on
// gpt2Shapes and writes a table, or JSON when jsonOut is set. Each figure is
// the best of several runs (at least 3, up to about a second per pair).
func BenchGEMM(ctx context.Context, w io.Writer, jsonOut bool) error {
	return benchGEMM(ctx, w, jsonOut, gpt2Shapes, time.Second)
}

// benchGEMM measures each shape with every implementation, interleaving the
// implementations run by run so that load from other processes hits them
// alike, and keeps each one's best time.
func benchGEMM(ctx context.Context, w io.Writer, jsonOut bool, shapes []GEMMShape, budget time.Duration) error {
	var impls []namedImpl
	for _, im := range benchImpls() {
		if im.Name == "tdb-generic" && len(cpuPaths) > 1 && Name() != "generic" {
			continue // only interesting where it is the fastest or forced
		}
		impls = append(impls, im)
	}
	var results []gemmResult
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
			results = append(results, gemmResult{Shape: s.String(), Impl: im.Name, GFLOPS: gflops(s, best[i])})
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

// GEMMRunner runs one shape's product (all its batch) on the active path's
// Sgemm, on operands it owns: callers time Run to see what the matrix
// multiplies alone of a computation cost, under the same load as it.
type GEMMRunner struct {
	s       GEMMShape
	a, b    []float32
	c       [][]float32
	workers int
}

// NewGEMMRunner makes random operands for s.
func NewGEMMRunner(s GEMMShape) (*GEMMRunner, error) {
	if s.M <= 0 || s.N <= 0 || s.K <= 0 {
		return nil, fmt.Errorf("gemm %s: dimensions must be positive", s)
	}
	r := &GEMMRunner{s: s, workers: min(runtime.GOMAXPROCS(0), max(1, s.Batch))}
	var c []float32
	r.a, r.b, c = benchOperands(s)
	r.c = [][]float32{c}
	for range max(1, s.Batch) - 1 {
		r.c = append(r.c, make([]float32, s.M*s.N))
	}
	return r, nil
}

// Run computes the product once. The products of a batch run on up to
// GOMAXPROCS goroutines, each single-threaded, as the forward pass runs its
// attention heads.
func (r *GEMMRunner) Run() {
	impl := Implementation{}
	if len(r.c) == 1 {
		runGEMM(impl, r.s, r.a, r.b, r.c[0])
		return
	}
	var wg sync.WaitGroup
	chunk := ceilDiv(len(r.c), r.workers)
	for lo := 0; lo < len(r.c); lo += chunk {
		wg.Go(func() {
			for _, c := range r.c[lo:min(lo+chunk, len(r.c))] {
				runGEMM(impl, r.s, r.a, r.b, c)
			}
		})
	}
	wg.Wait()
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
	return s.Flops() / max(d.Seconds(), 1e-9) / 1e9
}
