//go:build arm64 && !purego

package kernels

// kernNEON8x12 computes an 8×12 tile of C with NEON; see microKernel.
//
//go:noescape
func kernNEON8x12(k int, a, b, c *float32, ldc int, alpha, beta float32, load int)

// neonSpec's blocking is a guess for cores with 64–128 KiB L1 and 1 MiB or
// more L2 (Graviton, Ampere, Apple M): it has not been tuned on hardware.
var neonSpec = &kernelSpec{name: "neon", mr: 8, nr: 12, kc: 256, mc: 256, nc: 3072, kern: kernNEON8x12}

// cpuPaths lists the paths this CPU runs, fastest first. Advanced SIMD
// (NEON) is part of every ARMv8-A CPU, the baseline of Go's arm64 port, so
// it needs no run-time check.
var cpuPaths = []*path{{name: "neon", spec: neonSpec, vec: neonVec}, genericPath}
