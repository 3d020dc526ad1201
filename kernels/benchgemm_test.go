package kernels

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestBenchGEMMOutput(t *testing.T) {
	shapes := []GEMMShape{{M: 8, K: 16, N: 24}, {M: 4, K: 8, N: 40, TransB: true}}
	var buf bytes.Buffer
	if err := benchGEMM(context.Background(), &buf, true, shapes, 0); err != nil {
		t.Fatal(err)
	}
	var res []GEMMResult
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
