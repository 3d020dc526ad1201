// Package kernels holds the numeric hot paths of tdb's CPU inference: a
// packed, register-tiled, multi-threaded float32 GEMM that plugs into gonum's
// blas32 (so every blas32.Gemm caller gets it), and the vector kernels of the
// model's forward and backward passes (GeluTanh, GeluTanhGrad, Softmax,
// SoftmaxGrad, LayerNormStats/Apply/Grad, Add).
//
// Call Install once, in main, to make Implementation the blas32 GEMM; the
// vector kernels need no set-up.
//
// A path is one set of kernels the CPU runs: on amd64 "avx512" (AVX-512
// GEMM micro-kernel, AVX2 vector kernels), "avx2" (AVX2+FMA for both); on
// arm64 "neon"; everywhere "generic", portable float32 Go (also what the
// purego build tag compiles alone). The fastest is picked at start-up with
// golang.org/x/sys/cpu; TDB_KERNELS=<path> or Use picks another (tests force
// each one), and Name says which runs. All paths compute in float32 and agree
// within float32 rounding.
//
// Where to start reading: path.go (paths and their selection), vec.go (the
// vector kernels, their exported API and the portable code the assembly
// mirrors), vec_asm.go (how the assembly is wrapped), blas.go (Sgemm's checks), gemm.go (packing, blocking,
// threading), then the micro-kernels: gen_sgemm.go writes the amd64 ones.
// bench.go is `tdb bench gemm` and the GEMM-rate measurement behind
// `tdb bench forward`. Building with the openblas tag adds OpenBLAS (via
// gonum.org/v1/netlib, cgo) as a comparison implementation for benchmarks
// only.
//
// kernels may import only the standard library, gonum and golang.org/x/sys.
package kernels
