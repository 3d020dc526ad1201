package kernels

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// eps32 is float32's machine epsilon.
const eps32 = 0x1p-23

var vecLens = []int{1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 100, 768, 1001}

// forEachPath runs fn with each kernel path of this CPU made active, so the
// exported functions run that path's code, and restores the path after.
func forEachPath(t *testing.T, fn func(t *testing.T, p *path)) {
	old := active.Load()
	defer active.Store(old)
	for _, p := range cpuPaths {
		t.Run(p.name, func(t *testing.T) {
			active.Store(p)
			fn(t, p)
		})
	}
}

func TestUse(t *testing.T) {
	old := active.Load()
	defer active.Store(old)
	for _, name := range Paths() {
		if err := Use(name); err != nil {
			t.Fatal(err)
		}
		if Name() != name && envErr == nil {
			t.Fatalf("after Use(%q) Name() = %q", name, Name())
		}
		if defaultSpec() != active.Load().spec {
			t.Fatalf("Use(%q): GEMM spec not switched", name)
		}
	}
	if err := Use("sse9"); err == nil {
		t.Fatal("Use of an unknown path succeeded")
	}
	if got := Paths(); got[len(got)-1] != "generic" {
		t.Fatalf("Paths() = %v: generic must be last", got)
	}
}

// TestEnvSelectsPath runs this test binary again with TDB_KERNELS set to
// each path (and to a bad name) and checks what Name reports there.
func TestEnvSelectsPath(t *testing.T) {
	if want, ok := os.LookupEnv("KERNELS_WANT_NAME"); ok {
		if Name() != want {
			t.Fatalf("TDB_KERNELS=%s: Name() = %q, want %q", os.Getenv("TDB_KERNELS"), Name(), want)
		}
		return
	}
	cases := map[string]string{"sse9": cpuPaths[0].name +
		` (TDB_KERNELS ignored: kernels: no kernel path "sse9" on this CPU (it runs ` + strings.Join(Paths(), ", ") + "))"}
	for _, name := range Paths() {
		cases[name] = name
	}
	for env, want := range cases {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnvSelectsPath$", "-test.count=1")
		cmd.Env = append(os.Environ(), "TDB_KERNELS="+env, "KERNELS_WANT_NAME="+want)
		out, err := cmd.CombinedOutput()
		if errors.Is(err, syscall.ENOEXEC) {
			// A cross-compiled binary under user-mode emulation (qemu)
			// cannot start itself again without binfmt_misc.
			t.Skipf("cannot re-run the test binary here: %v", err)
		}
		if err != nil {
			t.Errorf("TDB_KERNELS=%s: %v\n%s", env, err, out)
		}
	}
}

func TestDotScale(t *testing.T) {
	for _, p := range cpuPaths {
		t.Run(p.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			for _, n := range vecLens {
				x, y := randSlice(r, n), randSlice(r, n)
				var want float64
				for i := range x {
					want += float64(x[i]) * float64(y[i])
				}
				if got := p.vec.dot(x, y); math.Abs(float64(got)-want) > 1e-6*float64(n+1) {
					t.Errorf("dot n=%d: %v, want %v", n, got, want)
				}
				alpha := float32(-1.75)
				xs := slices.Clone(x)
				p.vec.scale(alpha, xs)
				for i := range xs {
					if xs[i] != alpha*x[i] {
						t.Fatalf("scale n=%d: x[%d] = %v, want %v", n, i, xs[i], alpha*x[i])
					}
				}
			}
		})
	}
}

// gelu64 is gelu_new in float64: the tanh form where it is well conditioned,
// and the algebraically equal logistic form where 1+tanh cancels.
func gelu64(x float64) float64 {
	u := math.Sqrt(2/math.Pi) * (x + 0.044715*x*x*x)
	if u > -3 {
		return 0.5 * x * (1 + math.Tanh(u))
	}
	return x / (1 + math.Exp(-2*u))
}

// geluGrad64 is gelu_new'(x) in float64.
func geluGrad64(x float64) float64 {
	u := geluK1 * (x + 0.044715*x*x*x)
	s := 1 / (1 + math.Exp(-2*u)) // σ(2u) = (1+tanh u)/2
	return s + 2*x*s*(1-s)*geluK1*(1+3*0.044715*x*x)
}

func geluInputs() []float32 {
	r := rand.New(rand.NewPCG(5, 6))
	var xs []float32
	for x := float32(-12); x <= 12; x += 0.0037 {
		xs = append(xs, x)
	}
	for range 20000 {
		xs = append(xs, float32(r.NormFloat64()*3))
	}
	return append(xs, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 1e-3, -1e-3, 50, -50, 1e30, -1e30)
}

// within reports whether got is the float64 value want up to float32
// rounding: k roundings of the result plus k of the input x amplified by the
// function's slope (|x·f'(x)|, the condition of f at x), or an absolute
// 1e-30: e^−|v| flushes to 0 where it would leave float32's normal range
// (|x| ≳ 9.6 for GELU), where results are below 1e-35.
func within(got float32, want, x, slope float64, k float64) bool {
	tol := k*eps32*(math.Abs(want)+math.Abs(x*slope)) + 1e-30
	return math.Abs(float64(got)-want) <= tol || (math.IsNaN(want) && math.IsNaN(float64(got)))
}

func TestGeluTanh(t *testing.T) {
	src := geluInputs()
	forEachPath(t, func(t *testing.T, p *path) {
		got := make([]float32, len(src))
		GeluTanh(got, src)
		var worst float64
		for i, x32 := range src {
			x := float64(x32)
			want, slope := gelu64(x), geluGrad64(x)
			if !within(got[i], want, x, slope, 4) {
				t.Fatalf("gelu(%g) = %g, want %g", x, got[i], want)
			}
			if math.Abs(want) > 1e-30 {
				worst = max(worst, math.Abs(float64(got[i])-want)/(eps32*(math.Abs(want)+math.Abs(x*slope))))
			}
		}
		t.Logf("worst error %.2f float32 roundings (of result + conditioned input)", worst)

		// In place, lengths around the vector width: same values as out of
		// place, so the assembly and its Go tail agree.
		for _, n := range vecLens {
			buf := slices.Clone(src[:n])
			GeluTanh(buf, buf)
			for i := range buf {
				if !within(buf[i], gelu64(float64(src[i])), float64(src[i]), geluGrad64(float64(src[i])), 4) {
					t.Fatalf("in place n=%d: [%d] = %v, want %v", n, i, buf[i], gelu64(float64(src[i])))
				}
			}
		}
		for _, n := range []int{1, 9, 17} {
			v := make([]float32, n)
			in := make([]float32, n)
			in[n-1] = float32(math.NaN())
			GeluTanh(v, in)
			if !math.IsNaN(float64(v[n-1])) || (n > 1 && v[0] != 0) {
				t.Fatalf("gelu(NaN) n=%d: %v", n, v)
			}
		}
	})
}

func TestGeluTanhGrad(t *testing.T) {
	src := geluInputs()
	r := rand.New(rand.NewPCG(8, 9))
	dout := randSlice(r, len(src))
	forEachPath(t, func(t *testing.T, p *path) {
		got := make([]float32, len(src))
		GeluTanhGrad(got, dout, src)
		for i, x32 := range src {
			x := float64(x32)
			want := float64(dout[i]) * geluGrad64(x)
			h := 1e-6 * max(1, math.Abs(x))
			slope := float64(dout[i]) * (geluGrad64(x+h) - geluGrad64(x-h)) / (2 * h)
			if !within(got[i], want, x, slope, 8) {
				t.Fatalf("dout·gelu'(%g) = %g, want %g", x, got[i], want)
			}
		}
		// dst aliasing dout.
		for _, n := range vecLens {
			buf := slices.Clone(dout[:n])
			GeluTanhGrad(buf, buf, src[:n])
			for i := range buf {
				x := float64(src[i])
				if !within(buf[i], float64(dout[i])*geluGrad64(x), x, 1e3*float64(dout[i])*max(1, x*x), 8) {
					t.Fatalf("aliased n=%d: [%d] = %v, want %v", n, i, buf[i], got[i])
				}
			}
		}
	})
}

func softmax64(x []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = max(mx, float64(v))
	}
	out := make([]float64, len(x))
	var s float64
	for i, v := range x {
		out[i] = math.Exp(float64(v) - mx)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func TestSoftmax(t *testing.T) {
	r := rand.New(rand.NewPCG(10, 11))
	forEachPath(t, func(t *testing.T, p *path) {
		for _, n := range vecLens {
			for _, spread := range []float64{0.1, 3, 30} {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(r.NormFloat64() * spread)
				}
				if n > 2 {
					x[n/2] = float32(math.Inf(-1)) // a masked entry
				}
				got := make([]float32, n)
				Softmax(got, x)
				want := softmax64(x)
				mx := slices.Max(x)
				for i := range got {
					// exp of v = x−max amplifies the rounding of v by |v|;
					// the sum adds up to about log2(n)+n/8 roundings.
					v := math.Abs(float64(x[i]) - float64(mx))
					if math.IsInf(v, 0) {
						if got[i] != 0 {
							t.Fatalf("n=%d: softmax of −Inf = %v, want 0", n, got[i])
						}
						continue
					}
					tol := want[i]*eps32*(8+2*v+float64(n)/8) + 1e-36
					if math.Abs(float64(got[i])-want[i]) > tol {
						t.Fatalf("n=%d spread %g: p[%d] = %v, want %v", n, spread, i, got[i], want[i])
					}
				}
				in := slices.Clone(x)
				Softmax(in, in)
				if !slices.Equal(in, got) {
					t.Fatalf("n=%d: in place differs", n)
				}
			}
		}
		allMasked := []float32{float32(math.Inf(-1)), float32(math.Inf(-1))}
		out := []float32{7, 7}
		Softmax(out, allMasked)
		if out[0] != 0 || out[1] != 0 {
			t.Fatalf("all −Inf: %v", out)
		}
		for _, n := range []int{3, 9, 20} {
			x := make([]float32, n)
			x[n-1] = float32(math.NaN())
			Softmax(x, x)
			if !math.IsNaN(float64(x[0])) {
				t.Fatalf("n=%d with a NaN: %v", n, x)
			}
		}
	})
}

func TestSoftmaxGrad(t *testing.T) {
	r := rand.New(rand.NewPCG(12, 13))
	forEachPath(t, func(t *testing.T, p *path) {
		for _, n := range vecLens {
			x, g := randSlice(r, n), randSlice(r, n)
			pr := make([]float32, n)
			Softmax(pr, x)
			var dot float64
			for i := range pr {
				dot += float64(pr[i]) * float64(g[i])
			}
			got := slices.Clone(g)
			SoftmaxGrad(got, pr)
			for i := range got {
				want := float64(pr[i]) * (float64(g[i]) - dot)
				tol := 4 * eps32 * float64(pr[i]) * (math.Abs(float64(g[i])) + float64(n))
				if math.Abs(float64(got[i])-want) > tol {
					t.Fatalf("n=%d: [%d] = %v, want %v", n, i, got[i], want)
				}
			}
		}
	})
}

func TestLayerNorm(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 15))
	const eps = 1e-5
	forEachPath(t, func(t *testing.T, p *path) {
		for _, n := range vecLens {
			x, g, b := randSlice(r, n), randSlice(r, n), randSlice(r, n)
			for i := range x {
				x[i] = 3 + 4*x[i] // an offset mean, as in a residual stream
			}
			var s, ss float64
			for _, v := range x {
				s += float64(v)
			}
			mu := s / float64(n)
			for _, v := range x {
				ss += (float64(v) - mu) * (float64(v) - mu)
			}
			rstd := 1 / math.Sqrt(ss/float64(n)+eps)
			mean32, rstd32 := LayerNormStats(x, eps)
			if math.Abs(float64(mean32)-mu) > 4*eps32*(math.Abs(mu)+1)*math.Log2(float64(n)+1) {
				t.Fatalf("n=%d: mean %v, want %v", n, mean32, mu)
			}
			if math.Abs(float64(rstd32)-rstd) > 1e-5*rstd {
				t.Fatalf("n=%d: rstd %v, want %v", n, rstd32, rstd)
			}
			out := make([]float32, n)
			LayerNormApply(out, x, mean32, rstd32, g, b)
			for i := range out {
				want := (float64(x[i])-float64(mean32))*float64(rstd32)*float64(g[i]) + float64(b[i])
				xh := math.Abs((float64(x[i]) - float64(mean32)) * float64(rstd32))
				if math.Abs(float64(out[i])-want) > 4*eps32*(math.Abs(float64(x[i]))*float64(rstd32)*math.Abs(float64(g[i]))+xh+math.Abs(float64(b[i]))) {
					t.Fatalf("n=%d: out[%d] = %v, want %v", n, i, out[i], want)
				}
			}

			// Backward, through and not through the scale.
			dout := randSlice(r, n)
			for _, through := range []bool{true, false} {
				dx := randSlice(r, n)
				dx0 := slices.Clone(dx)
				seed := float32(0.25)
				ds := LayerNormGrad(dx, dout, x, g, mean32, rstd32, seed, through)
				m, s := float64(mean32), float64(rstd32)
				var sumDy, sumDyXc, mag float64
				for i := range x {
					dy := float64(dout[i]) * float64(g[i])
					sumDy += dy
					sumDyXc += dy * (float64(x[i]) - m)
					mag += math.Abs(dy * (float64(x[i]) - m))
				}
				wantDs := float64(seed) + sumDyXc
				if math.Abs(float64(ds)-wantDs) > 8*eps32*mag+1e-6 {
					t.Fatalf("n=%d: dscale %v, want %v", n, ds, wantDs)
				}
				k := 0.0
				if through {
					k = -wantDs * s * s * s / float64(n)
				}
				for i := range dx {
					dy := float64(dout[i]) * float64(g[i])
					want := float64(dx0[i]) + s*(dy-sumDy/float64(n)) + k*(float64(x[i])-m)
					scale := math.Abs(float64(dx0[i])) + s*(math.Abs(dy)+mag/float64(n)) + math.Abs(k*(float64(x[i])-m)) + s*math.Abs(sumDy)/float64(n)
					if math.Abs(float64(dx[i])-want) > 16*eps32*scale+1e-7*s*mag/float64(n) {
						t.Fatalf("n=%d through=%v: dx[%d] = %v, want %v", n, through, i, dx[i], want)
					}
				}
			}
		}
	})
}

func TestAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 17))
	forEachPath(t, func(t *testing.T, p *path) {
		for _, n := range vecLens {
			a, b := randSlice(r, n), randSlice(r, n)
			dst := make([]float32, n)
			Add(dst, a, b)
			for i := range dst {
				if dst[i] != a[i]+b[i] {
					t.Fatalf("n=%d: [%d] = %v, want %v", n, i, dst[i], a[i]+b[i])
				}
			}
			Add(a, a, b)
			if !slices.Equal(a, dst) {
				t.Fatalf("n=%d: aliased add differs", n)
			}
		}
	})
}

func TestVecPanicsOnShortSlices(t *testing.T) {
	cases := map[string]func(){
		"GeluTanh":     func() { GeluTanh(make([]float32, 3), make([]float32, 4)) },
		"GeluTanhGrad": func() { GeluTanhGrad(make([]float32, 4), make([]float32, 3), make([]float32, 4)) },
		"Add":          func() { Add(make([]float32, 4), make([]float32, 3), make([]float32, 4)) },
		"LayerNormApply": func() {
			LayerNormApply(make([]float32, 4), make([]float32, 4), 0, 1, make([]float32, 3), make([]float32, 4))
		},
		"SoftmaxGrad": func() { SoftmaxGrad(make([]float32, 4), make([]float32, 3)) },
	}
	for name, f := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s with a short slice did not panic", name)
				}
			}()
			f()
		}()
	}
}

func BenchmarkVec(b *testing.B) {
	const n = 3072
	r := rand.New(rand.NewPCG(1, 1))
	x, y := randSlice(r, n), randSlice(r, n)
	g, bias := randSlice(r, n), randSlice(r, n)
	dst := make([]float32, n)
	var sink float32
	benches := []struct {
		name string
		f    func()
	}{
		{"GeluTanh", func() { GeluTanh(dst, x) }},
		{"GeluTanhGrad", func() { GeluTanhGrad(dst, y, x) }},
		{"Softmax", func() { Softmax(dst, x) }},
		{"SoftmaxGrad", func() { copy(dst, y); SoftmaxGrad(dst, x) }},
		{"LayerNorm", func() { m, s := LayerNormStats(x, 1e-5); LayerNormApply(dst, x, m, s, g, bias) }},
		{"LayerNormGrad", func() { sink += LayerNormGrad(dst, y, x, g, 0.1, 1.2, 0, true) }},
		{"Add", func() { Add(dst, x, y) }},
	}
	old := active.Load()
	defer active.Store(old)
	for _, bb := range benches {
		for _, p := range cpuPaths {
			b.Run(fmt.Sprintf("%s/%s/n=%d", bb.name, p.name, n), func(b *testing.B) {
				active.Store(p)
				b.ReportAllocs()
				b.SetBytes(4 * n)
				for b.Loop() {
					bb.f()
				}
			})
		}
	}
	_ = sink
}
