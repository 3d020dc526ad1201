// Package kernels holds the numeric hot paths of tdb's CPU inference: a
// packed, register-tiled, multi-threaded float32 GEMM that plugs into gonum's
// blas32 (so every blas32.Gemm caller gets it), and vectorised helpers (Dot,
// Axpy, Scale, GeluTanh) used by the model's forward pass.
//
// On amd64 the GEMM micro-kernel is Go assembly (AVX-512 or AVX2+FMA, picked
// at run time); elsewhere, or with the purego build tag, a portable Go kernel
// runs through the same packing and threading code. Building with the
// openblas tag adds OpenBLAS (via gonum.org/v1/netlib, cgo) as a comparison
// implementation for benchmarks only.
//
// kernels may import only the standard library, gonum and golang.org/x/sys.
package kernels
