package kernels

import "testing"

// BenchmarkMicroKernel measures each micro-kernel alone on cache-resident
// panels: the ceiling the packed GEMM can approach.
func BenchmarkMicroKernel(b *testing.B) {
	for _, s := range cpuSpecs {
		b.Run(s.name, func(b *testing.B) {
			const kc = 256
			a := alignedFloats(s.mr * kc)
			bp := alignedFloats(s.nr * kc)
			c := alignedFloats(s.mr * s.nr)
			for b.Loop() {
				s.kern(kc, &a[0], &bp[0], &c[0], s.nr, 1, 1, 1)
			}
			b.ReportMetric(2*float64(s.mr*s.nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
