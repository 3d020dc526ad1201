package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var vecLens = []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 100, 768, 1001}

// vecImpl is one implementation of the level-1 helpers.
type vecImpl struct {
	name  string
	dot   func(x, y []float32) float32
	axpy  func(alpha float32, x, y []float32)
	scale func(alpha float32, x []float32)
}

var vecImpls = []vecImpl{
	{"exported", Dot, Axpy, Scale},
	{"go", func(x, y []float32) float32 { return dotGo(x, y[:len(x)]) },
		func(a float32, x, y []float32) { axpyGo(a, x, y[:len(x)]) }, scaleGo},
}

func TestDotAxpyScale(t *testing.T) {
	for _, im := range vecImpls {
		t.Run(im.name, func(t *testing.T) { testDotAxpyScale(t, im.dot, im.axpy, im.scale) })
	}
}

func testDotAxpyScale(t *testing.T, Dot func(x, y []float32) float32, Axpy func(float32, []float32, []float32), Scale func(float32, []float32)) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range vecLens {
		x, y := randSlice(r, n), randSlice(r, n+2)
		var want float64
		for i := range x {
			want += float64(x[i]) * float64(y[i])
		}
		if got := Dot(x, y); math.Abs(float64(got)-want) > 1e-6*float64(n+1) {
			t.Errorf("Dot n=%d: %v, want %v", n, got, want)
		}

		alpha := float32(-1.75)
		ya := append([]float32(nil), y...)
		Axpy(alpha, x, ya)
		for i := range ya {
			w := y[i]
			if i < n {
				w = y[i] + alpha*x[i]
			}
			if math.Abs(float64(ya[i]-w)) > 1e-6 {
				t.Fatalf("Axpy n=%d: y[%d] = %v, want %v", n, i, ya[i], w)
			}
		}

		xs := append([]float32(nil), x...)
		Scale(alpha, xs)
		for i := range xs {
			if xs[i] != alpha*x[i] {
				t.Fatalf("Scale n=%d: x[%d] = %v, want %v", n, i, xs[i], alpha*x[i])
			}
		}
	}
}

func TestDotPanicsOnShortY(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Dot with short y did not panic")
		}
	}()
	Dot(make([]float32, 4), make([]float32, 3))
}

// geluRef is gelu_new in float64: the tanh form where it is well
// conditioned, and the algebraically equal logistic form where 1+tanh
// cancels.
func geluRef(x float64) float64 {
	u := math.Sqrt(2/math.Pi) * (x + 0.044715*x*x*x)
	if u > -3 {
		return 0.5 * x * (1 + math.Tanh(u))
	}
	return x / (1 + math.Exp(-2*u))
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

func TestGeluTanh(t *testing.T) {
	src := geluInputs()
	check := func(name string, got []float32) {
		for i, x := range src {
			want := geluRef(float64(x))
			g := float64(got[i])
			// Results below float32's normal range cannot carry 1e-6
			// relative precision; they must still be within a subnormal
			// step.
			if math.Abs(want) < 0x1p-126 {
				if math.Abs(g-want) > 0x1p-149 {
					t.Fatalf("%s: gelu(%g) = %g, want %g", name, x, g, want)
				}
				continue
			}
			if rel := math.Abs(g-want) / math.Abs(want); !(rel <= 1e-6) {
				t.Fatalf("%s: gelu(%g) = %g, want %g (rel %g)", name, x, g, want, rel)
			}
		}
	}
	got := make([]float32, len(src))
	GeluTanh(got, src)
	check("GeluTanh", got)
	geluGo(got, src)
	check("geluGo", got)

	// In place, and lengths around the 16-wide vector loop.
	for _, n := range vecLens {
		buf := append([]float32(nil), src[:n]...)
		GeluTanh(buf, buf)
		for i := range buf {
			if want := float32(gelu64(float64(src[i]))); buf[i] != want {
				t.Fatalf("in place n=%d: [%d] = %v, want %v", n, i, buf[i], want)
			}
		}
	}
	if v := make([]float32, 1); true {
		GeluTanh(v, []float32{float32(math.NaN())})
		if !math.IsNaN(float64(v[0])) {
			t.Fatalf("gelu(NaN) = %v", v[0])
		}
	}
}

func BenchmarkVec(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(1, 1))
	x, y := randSlice(r, n), randSlice(r, n)
	dst := make([]float32, n)
	var sink float32
	benches := []struct {
		name   string
		asm, g func()
	}{
		{"Dot", func() { sink += Dot(x, y) }, func() { sink += dotGo(x, y) }},
		{"Axpy", func() { Axpy(1e-3, x, y) }, func() { axpyGo(1e-3, x, y) }},
		{"Scale", func() { Scale(1, x) }, func() { scaleGo(1, x) }},
		{"GeluTanh", func() { GeluTanh(dst, x) }, func() { geluGo(dst, x) }},
	}
	for _, bb := range benches {
		for _, v := range []struct {
			impl string
			f    func()
		}{{"fast", bb.asm}, {"go", bb.g}} {
			b.Run(fmt.Sprintf("%s/%s/n=%d", bb.name, v.impl, n), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(4 * n)
				for b.Loop() {
					v.f()
				}
			})
		}
	}
	_ = sink
}
