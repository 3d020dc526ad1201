package kernels

import (
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// BenchmarkSgemm runs GPT-2 small's shapes at 512 tokens for every
// implementation in the build, reporting GFLOP/s.
func BenchmarkSgemm(b *testing.B) {
	for _, s := range gpt2Shapes {
		a, bm, c := benchOperands(s)
		for _, im := range benchImpls() {
			b.Run(s.String()+"/"+im.Name, func(b *testing.B) {
				runGEMM(im.Impl, s, a, bm, c)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					runGEMM(im.Impl, s, a, bm, c)
				}
				b.ReportMetric(2*float64(s.M)*float64(s.N)*float64(s.K)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// unembedShapes are GPT-2 small's unembedding (logits = x·WTEᵀ) at batch
// 8 × 64 and 32 × 64 tokens.
var unembedShapes = []GEMMShape{
	{M: 512, K: 768, N: 50257, TransB: true},
	{M: 2048, K: 768, N: 50257, TransB: true},
}

// BenchmarkSgemmUnembed runs the unembedding shapes, reporting GFLOP/s,
// on the CPU's fastest path and any comparison build (gonum and the
// portable path take tens of seconds per call at 2048 rows).
func BenchmarkSgemmUnembed(b *testing.B) {
	for _, s := range unembedShapes {
		a, bm, c := benchOperands(s)
		for i, im := range benchImpls() {
			if i > 0 && (im.Name == "gonum" || strings.HasPrefix(im.Name, "tdb-")) {
				continue
			}
			b.Run(s.String()+"/"+im.Name, func(b *testing.B) {
				runGEMM(im.Impl, s, a, bm, c)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					runGEMM(im.Impl, s, a, bm, c)
				}
				b.ReportMetric(s.Flops()*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkSgemmAttention covers per-head attention products at 64 tokens:
// Q·Kᵀ (TransB) with the row stride of a fused QKV buffer, and P·V.
func BenchmarkSgemmAttention(b *testing.B) {
	const T, d, ld = 64, 64, 3 * 768
	qkv := make([]float32, T*ld)
	p := make([]float32, T*T)
	out := make([]float32, T*d)
	for _, im := range benchImpls() {
		b.Run("QKt/"+im.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				im.Impl.Sgemm(blas.NoTrans, blas.Trans, T, T, d, 0.125, qkv, ld, qkv[768:], ld, 0, p, T)
			}
			b.ReportMetric(2*T*T*d*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run("PV/"+im.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				im.Impl.Sgemm(blas.NoTrans, blas.NoTrans, T, d, T, 1, p, T, qkv[1536:], ld, 0, out, d)
			}
			b.ReportMetric(2*T*T*d*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
