//go:build amd64 && !purego

#include "textflag.h"

// func transpose16AVX512(dst *float32, dstStride int, src *float32, srcStride int, blocks int)
//
// Transposes a 16-row × 16·blocks-column block of src (row stride srcStride
// floats) into dst (row stride dstStride floats): dst[c][r] = src[r][c].
// Four shuffle stages per 16×16 tile: 32-bit unpacks, 64-bit unpacks and two
// rounds of 128-bit lane shuffles.
TEXT ·transpose16AVX512(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), R8
	SHLQ $2, R8
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), R9
	SHLQ $2, R9
	MOVQ blocks+32(FP), CX
	LEAQ (R9)(R9*2), R10 // 3 rows of src
	LEAQ (R8)(R8*2), R11 // 3 rows of dst
tile:
	TESTQ CX, CX
	JEQ   done
	MOVQ SI, AX
	VMOVUPS (AX), Z0
	VMOVUPS (AX)(R9*1), Z1
	VMOVUPS (AX)(R9*2), Z2
	VMOVUPS (AX)(R10*1), Z3
	LEAQ (AX)(R9*4), AX
	VMOVUPS (AX), Z4
	VMOVUPS (AX)(R9*1), Z5
	VMOVUPS (AX)(R9*2), Z6
	VMOVUPS (AX)(R10*1), Z7
	LEAQ (AX)(R9*4), AX
	VMOVUPS (AX), Z8
	VMOVUPS (AX)(R9*1), Z9
	VMOVUPS (AX)(R9*2), Z10
	VMOVUPS (AX)(R10*1), Z11
	LEAQ (AX)(R9*4), AX
	VMOVUPS (AX), Z12
	VMOVUPS (AX)(R9*1), Z13
	VMOVUPS (AX)(R9*2), Z14
	VMOVUPS (AX)(R10*1), Z15

	// Stage 1: interleave row pairs.
	VUNPCKLPS Z1, Z0, Z16
	VUNPCKHPS Z1, Z0, Z17
	VUNPCKLPS Z3, Z2, Z18
	VUNPCKHPS Z3, Z2, Z19
	VUNPCKLPS Z5, Z4, Z20
	VUNPCKHPS Z5, Z4, Z21
	VUNPCKLPS Z7, Z6, Z22
	VUNPCKHPS Z7, Z6, Z23
	VUNPCKLPS Z9, Z8, Z24
	VUNPCKHPS Z9, Z8, Z25
	VUNPCKLPS Z11, Z10, Z26
	VUNPCKHPS Z11, Z10, Z27
	VUNPCKLPS Z13, Z12, Z28
	VUNPCKHPS Z13, Z12, Z29
	VUNPCKLPS Z15, Z14, Z30
	VUNPCKHPS Z15, Z14, Z31

	// Stage 2: Zg+j holds, in 128-bit lane L, column 4L+j of rows g..g+3.
	VUNPCKLPD Z18, Z16, Z0
	VUNPCKHPD Z18, Z16, Z1
	VUNPCKLPD Z19, Z17, Z2
	VUNPCKHPD Z19, Z17, Z3
	VUNPCKLPD Z22, Z20, Z4
	VUNPCKHPD Z22, Z20, Z5
	VUNPCKLPD Z23, Z21, Z6
	VUNPCKHPD Z23, Z21, Z7
	VUNPCKLPD Z26, Z24, Z8
	VUNPCKHPD Z26, Z24, Z9
	VUNPCKLPD Z27, Z25, Z10
	VUNPCKHPD Z27, Z25, Z11
	VUNPCKLPD Z30, Z28, Z12
	VUNPCKHPD Z30, Z28, Z13
	VUNPCKLPD Z31, Z29, Z14
	VUNPCKHPD Z31, Z29, Z15

	// Stages 3 and 4 for j = 0..3: gather lane L of Z(0+j), Z(4+j),
	// Z(8+j), Z(12+j) into output row 4L+j.
	VSHUFF32X4 $0x88, Z4, Z0, Z16
	VSHUFF32X4 $0xDD, Z4, Z0, Z17
	VSHUFF32X4 $0x88, Z12, Z8, Z18
	VSHUFF32X4 $0xDD, Z12, Z8, Z19
	VSHUFF32X4 $0x88, Z18, Z16, Z20 // row 0
	VSHUFF32X4 $0xDD, Z18, Z16, Z21 // row 8
	VSHUFF32X4 $0x88, Z19, Z17, Z22 // row 4
	VSHUFF32X4 $0xDD, Z19, Z17, Z23 // row 12

	VSHUFF32X4 $0x88, Z5, Z1, Z16
	VSHUFF32X4 $0xDD, Z5, Z1, Z17
	VSHUFF32X4 $0x88, Z13, Z9, Z18
	VSHUFF32X4 $0xDD, Z13, Z9, Z19
	VSHUFF32X4 $0x88, Z18, Z16, Z24 // row 1
	VSHUFF32X4 $0xDD, Z18, Z16, Z25 // row 9
	VSHUFF32X4 $0x88, Z19, Z17, Z26 // row 5
	VSHUFF32X4 $0xDD, Z19, Z17, Z27 // row 13

	VSHUFF32X4 $0x88, Z6, Z2, Z16
	VSHUFF32X4 $0xDD, Z6, Z2, Z17
	VSHUFF32X4 $0x88, Z14, Z10, Z18
	VSHUFF32X4 $0xDD, Z14, Z10, Z19
	VSHUFF32X4 $0x88, Z18, Z16, Z28 // row 2
	VSHUFF32X4 $0xDD, Z18, Z16, Z29 // row 10
	VSHUFF32X4 $0x88, Z19, Z17, Z30 // row 6
	VSHUFF32X4 $0xDD, Z19, Z17, Z31 // row 14

	VSHUFF32X4 $0x88, Z7, Z3, Z16
	VSHUFF32X4 $0xDD, Z7, Z3, Z17
	VSHUFF32X4 $0x88, Z15, Z11, Z18
	VSHUFF32X4 $0xDD, Z15, Z11, Z19
	VSHUFF32X4 $0x88, Z18, Z16, Z0 // row 3
	VSHUFF32X4 $0xDD, Z18, Z16, Z1 // row 11
	VSHUFF32X4 $0x88, Z19, Z17, Z2 // row 7
	VSHUFF32X4 $0xDD, Z19, Z17, Z3 // row 15

	MOVQ DI, BX
	VMOVUPS Z20, (BX)
	VMOVUPS Z24, (BX)(R8*1)
	VMOVUPS Z28, (BX)(R8*2)
	VMOVUPS Z0, (BX)(R11*1)
	LEAQ (BX)(R8*4), BX
	VMOVUPS Z22, (BX)
	VMOVUPS Z26, (BX)(R8*1)
	VMOVUPS Z30, (BX)(R8*2)
	VMOVUPS Z2, (BX)(R11*1)
	LEAQ (BX)(R8*4), BX
	VMOVUPS Z21, (BX)
	VMOVUPS Z25, (BX)(R8*1)
	VMOVUPS Z29, (BX)(R8*2)
	VMOVUPS Z1, (BX)(R11*1)
	LEAQ (BX)(R8*4), BX
	VMOVUPS Z23, (BX)
	VMOVUPS Z27, (BX)(R8*1)
	VMOVUPS Z31, (BX)(R8*2)
	VMOVUPS Z3, (BX)(R11*1)
	LEAQ (BX)(R8*4), DI // next tile: 16 rows of dst further
	ADDQ $64, SI        // next tile: 16 columns of src further
	DECQ CX
	JMP  tile
done:
	VZEROUPPER
	RET

// func transpose8AVX2(dst *float32, dstStride int, src *float32, srcStride int, blocks int)
//
// Transposes 8 rows × 8·blocks columns of src into dst (strides in floats):
// each 8×8 block in 8 loads, 24 shuffles and 8 stores.
TEXT ·transpose8AVX2(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ dstStride+8(FP), DX
	MOVQ src+16(FP), SI
	MOVQ srcStride+24(FP), BX
	MOVQ blocks+32(FP), CX
	SHLQ $2, DX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), R8
	LEAQ (DX)(DX*2), R11
t8loop:
	TESTQ CX, CX
	JEQ   t8done
	LEAQ (SI)(BX*4), R9
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(BX*1), Y1
	VMOVUPS (SI)(BX*2), Y2
	VMOVUPS (SI)(R8*1), Y3
	VMOVUPS (R9), Y4
	VMOVUPS (R9)(BX*1), Y5
	VMOVUPS (R9)(BX*2), Y6
	VMOVUPS (R9)(R8*1), Y7
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VSHUFPS $0x44, Y10, Y8, Y0
	VSHUFPS $0xEE, Y10, Y8, Y1
	VSHUFPS $0x44, Y11, Y9, Y2
	VSHUFPS $0xEE, Y11, Y9, Y3
	VSHUFPS $0x44, Y14, Y12, Y4
	VSHUFPS $0xEE, Y14, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x31, Y7, Y3, Y15
	LEAQ (DI)(DX*4), R10
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(DX*1)
	VMOVUPS Y10, (DI)(DX*2)
	VMOVUPS Y11, (DI)(R11*1)
	VMOVUPS Y12, (R10)
	VMOVUPS Y13, (R10)(DX*1)
	VMOVUPS Y14, (R10)(DX*2)
	VMOVUPS Y15, (R10)(R11*1)
	ADDQ $32, SI
	LEAQ (R10)(DX*4), DI
	DECQ CX
	JMP  t8loop
t8done:
	VZEROUPPER
	RET

// func copyRows16AVX2(dst, src *float32, srcStride, rows int)
//
// Copies rows × 16 floats from src (row stride srcStride floats) to dst
// (contiguous): one micro-panel of B for the 6×16 kernel.
TEXT ·copyRows16AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ srcStride+16(FP), BX
	MOVQ rows+24(FP), CX
	SHLQ $2, BX
c16loop:
	TESTQ CX, CX
	JEQ   c16done
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ BX, SI
	ADDQ $64, DI
	DECQ CX
	JMP  c16loop
c16done:
	VZEROUPPER
	RET

// func packA6AVX2(dst, src *float32, srcStride, blocks int)
//
// Packs 6 rows × 8·blocks columns of src (row stride srcStride floats) into
// one k-major micro-panel of A for the 6×16 kernel: dst[6k+r] = src[r][k].
// Each 8-column block is an 8×8 transpose whose rows 6 and 7 are zero; its
// eight 6-float columns are stored with 8-float stores in increasing order,
// each overwriting the two zeros the previous one left past its end, and the
// last one in a 4-float and a 2-float store so nothing beyond the 48 floats
// is written.
TEXT ·packA6AVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ srcStride+16(FP), BX
	MOVQ blocks+24(FP), CX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), R8 // 3 rows of src
	VXORPS Y15, Y15, Y15
pa6loop:
	TESTQ CX, CX
	JEQ   pa6done
	LEAQ (SI)(R8*1), R9
	VMOVUPS (SI), Y0
	VMOVUPS (SI)(BX*1), Y1
	VMOVUPS (SI)(BX*2), Y2
	VMOVUPS (R9), Y3
	VMOVUPS (R9)(BX*1), Y4
	VMOVUPS (R9)(BX*2), Y5
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VSHUFPS $0x44, Y10, Y8, Y0  // columns 0 and 4, rows 0-3
	VSHUFPS $0xEE, Y10, Y8, Y1  // columns 1 and 5
	VSHUFPS $0x44, Y11, Y9, Y2  // columns 2 and 6
	VSHUFPS $0xEE, Y11, Y9, Y3  // columns 3 and 7
	VSHUFPS $0x44, Y15, Y12, Y4 // columns 0 and 4, rows 4-5 and two zeros
	VSHUFPS $0xEE, Y15, Y12, Y5
	VSHUFPS $0x44, Y15, Y13, Y6
	VSHUFPS $0xEE, Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8  // column 0
	VPERM2F128 $0x20, Y5, Y1, Y9  // column 1
	VPERM2F128 $0x20, Y6, Y2, Y10 // column 2
	VPERM2F128 $0x20, Y7, Y3, Y11 // column 3
	VPERM2F128 $0x31, Y4, Y0, Y12 // column 4
	VPERM2F128 $0x31, Y5, Y1, Y13 // column 5
	VPERM2F128 $0x31, Y6, Y2, Y14 // column 6
	VPERM2F128 $0x31, Y7, Y3, Y7  // column 7
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, 24(DI)
	VMOVUPS Y10, 48(DI)
	VMOVUPS Y11, 72(DI)
	VMOVUPS Y12, 96(DI)
	VMOVUPS Y13, 120(DI)
	VMOVUPS Y14, 144(DI)
	VMOVUPS X7, 168(DI)
	VEXTRACTF128 $1, Y7, X7
	VMOVSD X7, 184(DI)
	ADDQ $32, SI
	ADDQ $192, DI
	DECQ CX
	JMP  pa6loop
pa6done:
	VZEROUPPER
	RET
