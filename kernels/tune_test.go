//go:build amd64 && !purego

package kernels

import (
	"fmt"
	"gonum.org/v1/gonum/blas"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTune prints best-of GFLOP/s for blocking variants of the default
// kernel; it runs only with KERNELS_TUNE=kc,mc,nc;kc,mc,nc;... Set
// KERNELS_TUNE_UNEMBED to time only the unembedding at 512 and 2048 tokens.
func TestTune(t *testing.T) {
	env := os.Getenv("KERNELS_TUNE")
	if env == "" {
		t.Skip("set KERNELS_TUNE to tune blocking")
	}
	base := defaultSpec()
	switch os.Getenv("KERNELS_TUNE_KERN") {
	case "12x32":
		base = &kernelSpec{name: "avx512", mr: 12, nr: 32, kern: kernAVX512x12x32}
	case "6x64":
		base = &kernelSpec{name: "avx512", mr: 6, nr: 64, kern: kernAVX512x6x64}
	case "avx2":
		base = avx2Spec
	}
	var impls []namedImpl
	for _, v := range strings.Split(env, ";") {
		f := strings.Split(v, ",")
		kc, _ := strconv.Atoi(f[0])
		mc, _ := strconv.Atoi(f[1])
		nc, _ := strconv.Atoi(f[2])
		s := &kernelSpec{name: base.name, mr: base.mr, nr: base.nr, kc: kc, mc: mc, nc: nc, kern: base.kern}
		impls = append(impls, namedImpl{Name: v, Impl: Implementation{spec: s}})
	}
	impls = append(impls, extraImpls...)
	shapes := gpt2Shapes
	if os.Getenv("KERNELS_TUNE_UNEMBED") != "" {
		shapes = unembedShapes
	}
	for _, s := range shapes {
		a, b, c := benchOperands(s)
		best := make([]time.Duration, len(impls))
		for i := range best {
			best[i] = time.Hour
			runGEMM(impls[i].Impl, s, a, b, c)
		}
		start := time.Now()
		for r := 0; r < 3 || time.Since(start) < 3*time.Second; r++ {
			for i, im := range impls {
				d, _ := timeOnce(im.Impl, s, a, b, c)
				best[i] = min(best[i], d)
			}
		}
		for i, im := range impls {
			fmt.Printf("%-14s %-16s %6.1f\n", s, im.Name, gflops(s, best[i]))
		}
	}
}

// timeOnce measures one run in process CPU time when KERNELS_TUNE_CPU is
// set (robust against other processes competing for the cores; meaningful
// with GOMAXPROCS=1), else in wall time.
func timeOnce(impl blas.Float32, s GEMMShape, a, b, c []float32) (time.Duration, error) {
	if os.Getenv("KERNELS_TUNE_CPU") != "" {
		var r0, r1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
		runGEMM(impl, s, a, b, c)
		syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
		return time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano()), nil
	}
	t0 := time.Now()
	runGEMM(impl, s, a, b, c)
	return time.Since(t0), nil
}
