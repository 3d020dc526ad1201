//go:build amd64 && !purego

package kernels

import "golang.org/x/sys/cpu"

var (
	avx512Spec = &kernelSpec{name: "avx512", mr: 8, nr: 48, kc: 256, mc: 512, nc: 3072, kern: kernAVX512x8x48}
	avx2Spec   = &kernelSpec{name: "avx2", mr: 6, nr: 16, kc: 256, mc: 384, nc: 3072, kern: kernAVX2x6x16}
)

// cpuSpecs lists the kernels this CPU can run, fastest first.
var cpuSpecs = func() []*kernelSpec {
	var s []*kernelSpec
	if cpu.X86.HasAVX512F {
		s = append(s, avx512Spec)
	}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		s = append(s, avx2Spec)
	}
	return append(s, genericSpec)
}()
