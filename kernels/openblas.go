//go:build openblas

package kernels

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
)

// With the openblas tag, benchmarks also run OpenBLAS through gonum's cgo
// netlib binding. Build with CGO_LDFLAGS=-lopenblas (Debian: libopenblas-dev).
// The default build stays cgo-free.
func init() {
	extraImpls = append(extraImpls, namedImpl{Name: "openblas", Impl: openBLAS{}})
}

// openBLAS forwards Sgemm to OpenBLAS and everything else to our
// Implementation, so it satisfies blas.Float32 whatever the binding covers.
type openBLAS struct{ Implementation }

func (openBLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	netlib.Implementation{}.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
