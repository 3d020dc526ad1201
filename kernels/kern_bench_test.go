package kernels

import (
	"fmt"
	"testing"
)

// BenchmarkMicroKernel measures each micro-kernel alone on cache-resident
// panels: the ceiling the packed GEMM can approach.
func BenchmarkMicroKernel(b *testing.B) {
	for _, p := range cpuPaths {
		s := p.spec
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

// BenchmarkPack measures packing of a 256×3072 block of B (both layouts) and
// a 512×256 block of A (both layouts) into micro-panels.
func BenchmarkPack(b *testing.B) {
	s := defaultSpec()
	const kc, nc, mc = 256, 3072, 512
	src := alignedFloats(kc * nc)
	dst := alignedFloats(kc * roundUp(nc, s.nr))
	for _, trans := range []bool{false, true} {
		b.Run(fmt.Sprintf("B/trans=%v", trans), func(b *testing.B) {
			ld := nc
			if trans {
				ld = kc
			}
			b.SetBytes(4 * kc * nc)
			for b.Loop() {
				packB(dst, src, ld, trans, 0, kc, 0, nc, s.nr, &s.pack)
			}
		})
		b.Run(fmt.Sprintf("A/trans=%v", trans), func(b *testing.B) {
			ld := kc
			if trans {
				ld = mc
			}
			b.SetBytes(4 * kc * mc)
			for b.Loop() {
				for ip := 0; ip < mc; ip += s.mr {
					packA(dst[ip*kc:], src, ld, trans, ip, s.mr, 0, kc, s.mr, &s.pack)
				}
			}
		})
	}
}
