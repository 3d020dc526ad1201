package kernels

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is a blas.Float32 whose Sgemm is this package's packed GEMM;
// every other routine is gonum's native one. The zero value uses the fastest
// micro-kernel the CPU supports.
type Implementation struct {
	gonum.Implementation
	spec *kernelSpec // nil: the default kernel
}

var _ blas.Float32 = Implementation{}

// Install makes Implementation the blas32 implementation used by
// blas32.Gemm and friends. It is idempotent and safe to call more than once.
func Install() { blas32.Use(Implementation{}) }

// Error strings match gonum's so callers see the same panics whichever
// implementation is installed.
const (
	errBadTranspose = "blas: illegal transpose"
	errMLT0         = "blas: m < 0"
	errNLT0         = "blas: n < 0"
	errKLT0         = "blas: k < 0"
	errBadLdA       = "blas: bad leading dimension of A"
	errBadLdB       = "blas: bad leading dimension of B"
	errBadLdC       = "blas: bad leading dimension of C"
	errShortA       = "blas: insufficient length of a"
	errShortB       = "blas: insufficient length of b"
	errShortC       = "blas: insufficient length of c"
)

// Sgemm computes C = alpha * op(A) * op(B) + beta * C, where op(X) is X or Xᵀ
// as tA and tB say, A is m×k after op, B is k×n after op and C is m×n, all
// row-major with leading dimensions lda, ldb and ldc. As in BLAS, beta == 0
// overwrites C without reading it (NaNs in C do not propagate). Invalid
// arguments panic with gonum's messages, like every blas.Float32.
func (impl Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	aTrans := checkTrans(tA)
	bTrans := checkTrans(tB)
	if m < 0 {
		panic(errMLT0)
	}
	if n < 0 {
		panic(errNLT0)
	}
	if k < 0 {
		panic(errKLT0)
	}
	if aTrans {
		if lda < max(1, m) {
			panic(errBadLdA)
		}
	} else if lda < max(1, k) {
		panic(errBadLdA)
	}
	if bTrans {
		if ldb < max(1, k) {
			panic(errBadLdB)
		}
	} else if ldb < max(1, n) {
		panic(errBadLdB)
	}
	if ldc < max(1, n) {
		panic(errBadLdC)
	}
	if m == 0 || n == 0 {
		return
	}
	if aTrans {
		if len(a) < (k-1)*lda+m {
			panic(errShortA)
		}
	} else if len(a) < (m-1)*lda+k {
		panic(errShortA)
	}
	if bTrans {
		if len(b) < (n-1)*ldb+k {
			panic(errShortB)
		}
	} else if len(b) < (k-1)*ldb+n {
		panic(errShortB)
	}
	if len(c) < (m-1)*ldc+n {
		panic(errShortC)
	}
	if alpha == 0 || k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	spec := impl.spec
	if spec == nil {
		spec = defaultSpec()
	}
	gemm(&gemmArgs{
		spec: spec, aTrans: aTrans, bTrans: bTrans, m: m, n: n, k: k,
		alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc,
	})
}

func checkTrans(t blas.Transpose) bool {
	switch t {
	case blas.NoTrans:
		return false
	case blas.Trans, blas.ConjTrans:
		return true
	}
	panic(errBadTranspose)
}

// scaleC sets C = beta*C, writing zeros (not 0*C) when beta is zero.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}
