//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

var (
	hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512  = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL && hasAVX2FMA
)

var (
	avx512Spec = &kernelSpec{name: "avx512", mr: 8, nr: 48, kc: 256, mc: 512, nc: 3072, kern: kernAVX512x8x48,
		pack: packers{tile: transpose16AVX512, tileW: 16}}
	avx2Spec = &kernelSpec{name: "avx2", mr: 6, nr: 16, kc: 256, mc: 384, nc: 3072, kern: kernAVX2x6x16,
		pack: packers{tile: transpose8AVX2, tileW: 8, rows: copyRows16AVX2, panelA: packA6AVX2}}
)

// cpuPaths lists the paths this CPU runs, fastest first. AVX-512 machines
// run the AVX2 vector kernels: they are float32, 8 lanes, and bound by
// memory at the sizes of a forward pass.
var cpuPaths = func() []*path {
	var s []*path
	if hasAVX512 {
		s = append(s, &path{name: "avx512", spec: avx512Spec, vec: avx2Vec})
	}
	if hasAVX2FMA {
		s = append(s, &path{name: "avx2", spec: avx2Spec, vec: avx2Vec})
	}
	return append(s, genericPath)
}()
