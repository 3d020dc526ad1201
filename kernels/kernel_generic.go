package kernels

import "unsafe"

// genericSpec runs the portable Go micro-kernel: every CPU, and the
// reference the assembly kernels are tested against.
var genericSpec = &kernelSpec{name: "generic", mr: 4, nr: 4, kc: 256, mc: 256, nc: 1024, kern: kernGeneric}

// kernGeneric is the portable 4×4 micro-kernel. Sixteen scalar accumulators
// stay in registers on arm64 (32 FP registers) and mostly so on amd64.
func kernGeneric(k int, a, b, c *float32, ldc int, alpha, beta float32, load int) {
	as := unsafe.Slice(a, 4*k)
	bs := unsafe.Slice(b, 4*k)
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	var c20, c21, c22, c23, c30, c31, c32, c33 float32
	for p := 0; p < k; p++ {
		av := as[4*p : 4*p+4 : 4*p+4]
		bv := bs[4*p : 4*p+4 : 4*p+4]
		a0, a1, a2, a3 := av[0], av[1], av[2], av[3]
		b0, b1, b2, b3 := bv[0], bv[1], bv[2], bv[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	cs := unsafe.Slice(c, 3*ldc+4)
	acc := [16]float32{c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33}
	for r := 0; r < 4; r++ {
		row := cs[r*ldc : r*ldc+4 : r*ldc+4]
		if load != 0 {
			for x := range row {
				row[x] = beta*row[x] + alpha*acc[4*r+x]
			}
		} else {
			for x := range row {
				row[x] = alpha * acc[4*r+x]
			}
		}
	}
}
