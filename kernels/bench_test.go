package kernels

import (
	"testing"
)

// BenchmarkSgemm runs GPT-2 small's shapes at 512 tokens for every
// implementation in the build, reporting GFLOP/s.
func BenchmarkSgemm(b *testing.B) {
	for _, s := range GPT2Shapes {
		a, bm, c := benchOperands(s)
		for _, im := range BenchImpls() {
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
