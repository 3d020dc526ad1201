package kernels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

func TestBenchGEMMOutput(t *testing.T) {
	shapes := []GEMMShape{{M: 8, K: 16, N: 24}, {M: 4, K: 8, N: 40, TransB: true}}
	var buf bytes.Buffer
	if err := benchGEMM(context.Background(), &buf, true, shapes, 0); err != nil {
		t.Fatal(err)
	}
	var res []gemmResult
	if err := json.Unmarshal(buf.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, buf.String())
	}
	seen := map[string]bool{}
	for _, r := range res {
		if !(r.GFLOPS > 0) {
			t.Errorf("%s %s: gflops %v", r.Shape, r.Impl, r.GFLOPS)
		}
		seen[r.Shape+"/"+r.Impl] = true
	}
	for _, s := range []string{"8x16x24/gonum", "4x8x40/gonum", "8x16x24/tdb-" + Name()} {
		if !seen[s] {
			t.Errorf("no result for %s in %v", s, res)
		}
	}

	buf.Reset()
	if err := benchGEMM(context.Background(), &buf, false, shapes[:1], 0); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "GFLOP/s") || !strings.Contains(out, "8x16x24") {
		t.Fatalf("table output:\n%s", out)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := benchGEMM(ctx, &buf, false, shapes, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
}

// TestBenchGEMMPrint prints BenchGEMM's table (what `tdb bench gemm` shows)
// when KERNELS_BENCH is set; it is a measurement, not a check.
func TestBenchGEMMPrint(t *testing.T) {
	if os.Getenv("KERNELS_BENCH") == "" {
		t.Skip("set KERNELS_BENCH=1 to print GEMM GFLOP/s")
	}
	if err := BenchGEMM(context.Background(), os.Stdout, false); err != nil {
		t.Fatal(err)
	}
}

func TestGEMMRunner(t *testing.T) {
	for _, s := range []GEMMShape{{M: 16, K: 32, N: 24}, {M: 8, K: 16, N: 8, TransB: true, Batch: 5}} {
		r, err := NewGEMMRunner(s)
		if err != nil {
			t.Fatal(err)
		}
		r.Run()
		// Every product of the batch is A·op(B).
		want := make([]float32, s.M*s.N)
		tB, ldb := blas.NoTrans, s.N
		if s.TransB {
			tB, ldb = blas.Trans, s.K
		}
		gonum.Implementation{}.Sgemm(blas.NoTrans, tB, s.M, s.N, s.K, 1, r.a, s.K, r.b, ldb, 0, want, s.N)
		if len(r.c) != max(1, s.Batch) {
			t.Fatalf("%s: %d products", s, len(r.c))
		}
		for _, c := range r.c {
			for i := range c {
				if math.Abs(float64(c[i]-want[i])) > 1e-5 {
					t.Fatalf("%s: C[%d] = %v, want %v", s, i, c[i], want[i])
				}
			}
		}
	}
	if got := (GEMMShape{M: 2, K: 3, N: 4, Batch: 5}).Flops(); got != 2*2*3*4*5 {
		t.Errorf("Flops = %v", got)
	}
	if _, err := NewGEMMRunner(GEMMShape{M: 0, K: 3, N: 4}); err == nil {
		t.Error("zero M accepted")
	}
}
