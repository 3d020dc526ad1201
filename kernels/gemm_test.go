package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// gemmCase is one Sgemm call; pads widen the leading dimensions past the
// matrix widths.
type gemmCase struct {
	tA, tB     blas.Transpose
	m, n, k    int
	alpha      float32
	beta       float32
	padA, padB int
	padC       int
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// runCase checks spec's Sgemm against gonum's native one on tc, including
// that padding between rows of C is left untouched. It reports with Errorf
// so that it may run on other goroutines.
func runCase(t *testing.T, spec *kernelSpec, tc gemmCase, seed uint64) {
	t.Helper()
	if tc.tA == 0 {
		tc.tA = blas.NoTrans
	}
	if tc.tB == 0 {
		tc.tB = blas.NoTrans
	}
	r := rand.New(rand.NewPCG(seed, 7))
	ar, ac := tc.m, tc.k
	if tc.tA == blas.Trans {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.tB == blas.Trans {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc := max(1, ac+tc.padA), max(1, bc+tc.padB), max(1, tc.n+tc.padC)
	a := randSlice(r, max(0, (ar-1)*lda+ac))
	b := randSlice(r, max(0, (br-1)*ldb+bc))
	c := randSlice(r, max(0, (tc.m-1)*ldc+tc.n))
	if tc.beta == 0 {
		for i := range c {
			if i%3 == 0 {
				c[i] = float32(math.NaN())
			}
		}
	}
	want := append([]float32(nil), c...)
	if tc.beta == 0 {
		// gonum scales C by beta first, so NaN*0 would survive there; the
		// BLAS contract (and ours) is to overwrite.
		for i := range want {
			want[i] = 0
		}
	}
	gonum.Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
	got := append([]float32(nil), c...)
	Implementation{spec: spec}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc)

	// Each element is a k-term dot product of values in [-1,1]: the
	// rounding error of either result is bounded by ~k·eps·|alpha|.
	tol := float64(3e-7) * float64(tc.k+4) * math.Max(1, math.Abs(float64(tc.alpha)))
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc && i*ldc+j < len(c); j++ {
			idx := i*ldc + j
			if j >= tc.n {
				if math.Float32bits(got[idx]) != math.Float32bits(c[idx]) {
					t.Errorf("%+v: padding C[%d,%d] changed from %v to %v", tc, i, j, c[idx], got[idx])
					return
				}
				continue
			}
			if d := math.Abs(float64(got[idx] - want[idx])); !(d <= tol) {
				t.Errorf("%+v: C[%d,%d] = %v, gonum %v (diff %g > tol %g)", tc, i, j, got[idx], want[idx], d, tol)
				return
			}
		}
	}
}

func TestSgemmMatchesGonum(t *testing.T) {
	shapes := [][3]int{
		{1, 1, 1}, {1, 7, 3}, {7, 1, 3}, {1, 100, 64}, {100, 1, 64}, {3, 3, 0}, {2, 3, 1},
		{5, 17, 9}, {8, 48, 16}, {9, 49, 17}, {13, 31, 257}, {37, 53, 29}, {64, 64, 64},
		{97, 101, 103}, {130, 70, 300}, {257, 263, 269}, {512, 96, 130}, {33, 1100, 40},
	}
	trans := []blas.Transpose{blas.NoTrans, blas.Trans}
	for _, p := range cpuPaths {
		spec := p.spec
		t.Run(spec.name, func(t *testing.T) {
			seed := uint64(1)
			for _, s := range shapes {
				for _, tA := range trans {
					for _, tB := range trans {
						for _, ab := range [][2]float32{{1, 0}, {1, 1}, {-0.5, 0.25}, {2, 0}} {
							seed++
							pad := int(seed % 3 * 5)
							runCase(t, spec, gemmCase{tA: tA, tB: tB, m: s[0], n: s[1], k: s[2],
								alpha: ab[0], beta: ab[1], padA: pad, padB: 2 * pad, padC: pad + 1}, seed)
						}
					}
				}
			}
		})
	}
}

// TestSgemmParallelShapes covers products big enough to use several
// goroutines, task grids with row splits and the row-blocked packing of a
// tall A.
func TestSgemmParallelShapes(t *testing.T) {
	cases := []gemmCase{
		{m: 512, n: 768, k: 300, alpha: 1, beta: 0},
		{m: 300, n: 50, k: 700, alpha: 1, beta: 1, tA: blas.Trans},
		{m: 1000, n: 20, k: 600, alpha: 0.5, beta: -1, tB: blas.Trans},
		{m: 64, n: 2000, k: 128, alpha: 1, beta: 0, tA: blas.Trans, tB: blas.Trans, padA: 3, padC: 5},
		{m: 9000, n: 40, k: 1000, alpha: 1, beta: 0.5}, // m*k > maxSharedA: row blocks
	}
	for _, p := range cpuPaths {
		spec := p.spec
		for i, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", spec.name, i), func(t *testing.T) {
				runCase(t, spec, tc, uint64(100+i))
			})
		}
	}
}

func TestSgemmQuickReturns(t *testing.T) {
	c := []float32{1, float32(math.NaN()), 3, 4}
	Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 0, 1, make([]float32, 2), 1, nil, 2, 0, c, 2)
	for i, v := range c {
		if v != 0 {
			t.Fatalf("k=0, beta=0: c[%d] = %v, want 0", i, v)
		}
	}
	c = []float32{1, 2, 3, 4}
	a := []float32{1, 2, 3, 4}
	Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 2, 0, a, 2, a, 2, 2, c, 2)
	if c[0] != 2 || c[3] != 8 {
		t.Fatalf("alpha=0, beta=2: got %v", c)
	}
}

func TestSgemmPanicsLikeGonum(t *testing.T) {
	cases := []struct {
		name string
		call func(blas.Float32)
	}{
		{"transpose", func(b blas.Float32) {
			b.Sgemm('x', blas.NoTrans, 1, 1, 1, 1, []float32{1}, 1, []float32{1}, 1, 0, []float32{1}, 1)
		}},
		{"ldc", func(b blas.Float32) {
			b.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 1, 1, []float32{1, 1}, 1, []float32{1, 1}, 2, 0, make([]float32, 4), 1)
		}},
		{"shortC", func(b blas.Float32) {
			b.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 1, 1, []float32{1, 1}, 1, []float32{1, 1}, 2, 0, make([]float32, 3), 2)
		}},
		{"shortB", func(b blas.Float32) {
			b.Sgemm(blas.NoTrans, blas.Trans, 2, 2, 3, 1, make([]float32, 6), 3, make([]float32, 5), 3, 0, make([]float32, 4), 2)
		}},
	}
	catch := func(f func()) (msg any) {
		defer func() { msg = recover() }()
		f()
		return nil
	}
	for _, tc := range cases {
		want := catch(func() { tc.call(gonum.Implementation{}) })
		got := catch(func() { tc.call(Implementation{}) })
		if want == nil || got != want {
			t.Errorf("%s: panic %v, gonum panics %v", tc.name, got, want)
		}
	}
}

func TestInstall(t *testing.T) {
	old := blas32.Implementation()
	defer blas32.Use(old)
	Install()
	Install()
	if _, ok := blas32.Implementation().(Implementation); !ok {
		t.Fatalf("blas32 implementation is %T after Install", blas32.Implementation())
	}
	a := blas32.General{Rows: 2, Cols: 2, Stride: 2, Data: []float32{1, 2, 3, 4}}
	c := blas32.General{Rows: 2, Cols: 2, Stride: 2, Data: make([]float32, 4)}
	blas32.Gemm(blas.NoTrans, blas.Trans, 1, a, a, 0, c)
	if want := []float32{5, 11, 11, 25}; fmt.Sprint(c.Data) != fmt.Sprint(want) {
		t.Fatalf("A·Aᵀ = %v, want %v", c.Data, want)
	}
	if n := Name(); n != cpuPaths[0].name && os.Getenv("TDB_KERNELS") == "" {
		t.Fatalf("Name() = %q, want %q", n, cpuPaths[0].name)
	}
}

// TestSgemmSteadyStateAllocs checks that repeated calls, single- and
// multi-goroutine, allocate nothing once pools are warm.
func TestSgemmSteadyStateAllocs(t *testing.T) {
	for _, sz := range []int{40, 300} {
		a := make([]float32, sz*sz)
		c := make([]float32, sz*sz)
		f := func() {
			Implementation{}.Sgemm(blas.NoTrans, blas.Trans, sz, sz, sz, 1, a, sz, a, sz, 0, c, sz)
		}
		f()
		if n := testing.AllocsPerRun(50, f); n > 0.1 {
			t.Errorf("%d³ Sgemm: %v allocations per call", sz, n)
		}
	}
}

// TestSgemmConcurrentCalls runs parallel Sgemm calls from several
// goroutines at once; each must still match gonum.
func TestSgemmConcurrentCalls(t *testing.T) {
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 4 {
				runCase(t, defaultSpec(), gemmCase{m: 150 + 10*g, n: 170, k: 190 + i, alpha: 1, beta: 0.5, tB: blas.Trans}, uint64(1000+10*g+i))
			}
		}()
	}
	for range 4 {
		<-done
	}
}

// TestPackA checks each path's A packing against the portable Go loop,
// for panel depths with and without a tail, rows that end the source
// exactly, short panels, and that nothing past the panel is written.
func TestPackA(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, p := range cpuPaths {
		s := p.spec
		t.Run(s.name, func(t *testing.T) {
			for _, kc := range []int{1, 7, 8, 9, 16, 23, 64, 256} {
				for _, rows := range []int{s.mr, s.mr - 1, 1} {
					for _, trans := range []bool{false, true} {
						lda := kc + 3
						if trans {
							lda = 2*s.mr + 1
						}
						r0, pc := s.mr, 2
						n := (r0+rows-1)*lda + pc + kc // the last row ends the source
						if trans {
							n = (pc+kc-1)*lda + r0 + rows
						}
						a := randSlice(r, n)
						want := make([]float32, kc*s.mr)
						packA(want, a, lda, trans, r0, rows, pc, kc, s.mr, &packers{})
						got := randSlice(r, kc*s.mr+16)
						guard := append([]float32(nil), got[kc*s.mr:]...)
						packA(got[:kc*s.mr], a, lda, trans, r0, rows, pc, kc, s.mr, &s.pack)
						for i, w := range want {
							if got[i] != w {
								t.Fatalf("kc %d rows %d trans %v: dst[%d] = %v, want %v", kc, rows, trans, i, got[i], w)
							}
						}
						for i, g := range guard {
							if got[kc*s.mr+i] != g {
								t.Fatalf("kc %d rows %d trans %v: wrote past the panel at +%d", kc, rows, trans, i)
							}
						}
					}
				}
			}
		})
	}
}
