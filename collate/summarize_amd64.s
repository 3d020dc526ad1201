//go:build amd64 && !purego

#include "textflag.h"

// func summarizeAVX2(col *float32, n int, k float64, s *[4]float64) (mxk, mnk uint32, zeros int)
//
// For the first n (a multiple of 8) values x of col: adds the sums of
// (x-k)^p, p = 1..4, in float64 to s[p-1] and returns the largest and
// smallest order-preserving key (bits ^ (sign ? 0xffffffff : 0x80000000))
// and the number of exact zeros (either sign).
TEXT ·summarizeAVX2(SB), NOSPLIT, $0-48
	MOVQ col+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ s+24(FP), DI
	VBROADCASTSD k+16(FP), Y12
	MOVL $0x80000000, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPCMPEQD Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	VPXOR Y14, Y14, Y14

loop:
	CMPQ CX, $8
	JLT  reduce
	VMOVUPS (SI), Y0

	// order-preserving keys: extremes
	VPSRAD   $31, Y0, Y1
	VPOR     Y13, Y1, Y1
	VPXOR    Y0, Y1, Y1
	VPMAXUD  Y1, Y9, Y9
	VPMINUD  Y1, Y10, Y10

	// exact zeros: (bits << 1) == 0; the mask is -1 per zero
	VPSLLD   $1, Y0, Y2
	VPCMPEQD Y14, Y2, Y2
	VPSUBD   Y2, Y11, Y11

	// low four values
	VCVTPS2PD   X0, Y3
	VSUBPD      Y12, Y3, Y3
	VMULPD      Y3, Y3, Y4
	VADDPD      Y3, Y5, Y5
	VADDPD      Y4, Y6, Y6
	VFMADD231PD Y3, Y4, Y7
	VFMADD231PD Y4, Y4, Y8

	// high four values
	VEXTRACTF128 $1, Y0, X0
	VCVTPS2PD    X0, Y15
	VSUBPD       Y12, Y15, Y15
	VMULPD       Y15, Y15, Y4
	VADDPD       Y15, Y5, Y5
	VADDPD       Y4, Y6, Y6
	VFMADD231PD  Y15, Y4, Y7
	VFMADD231PD  Y4, Y4, Y8

	ADDQ $32, SI
	SUBQ $8, CX
	JMP  loop

reduce:
	VEXTRACTF128 $1, Y5, X0
	VADDPD       X0, X5, X5
	VHADDPD      X5, X5, X5
	VADDSD       (DI), X5, X5
	VMOVSD       X5, (DI)

	VEXTRACTF128 $1, Y6, X0
	VADDPD       X0, X6, X6
	VHADDPD      X6, X6, X6
	VADDSD       8(DI), X6, X6
	VMOVSD       X6, 8(DI)

	VEXTRACTF128 $1, Y7, X0
	VADDPD       X0, X7, X7
	VHADDPD      X7, X7, X7
	VADDSD       16(DI), X7, X7
	VMOVSD       X7, 16(DI)

	VEXTRACTF128 $1, Y8, X0
	VADDPD       X0, X8, X8
	VHADDPD      X8, X8, X8
	VADDSD       24(DI), X8, X8
	VMOVSD       X8, 24(DI)

	VEXTRACTI128 $1, Y9, X0
	VPMAXUD      X0, X9, X9
	VPSHUFD      $0x4e, X9, X0
	VPMAXUD      X0, X9, X9
	VPSHUFD      $0xb1, X9, X0
	VPMAXUD      X0, X9, X9
	VMOVD        X9, AX
	MOVL         AX, mxk+32(FP)

	VEXTRACTI128 $1, Y10, X0
	VPMINUD      X0, X10, X10
	VPSHUFD      $0x4e, X10, X0
	VPMINUD      X0, X10, X10
	VPSHUFD      $0xb1, X10, X0
	VPMINUD      X0, X10, X10
	VMOVD        X10, AX
	MOVL         AX, mnk+36(FP)

	VEXTRACTI128 $1, Y11, X0
	VPADDD       X0, X11, X11
	VPSHUFD      $0x4e, X11, X0
	VPADDD       X0, X11, X11
	VPSHUFD      $0xb1, X11, X0
	VPADDD       X0, X11, X11
	VMOVD        X11, AX
	MOVQ         AX, zeros+40(FP)

	VZEROUPPER
	RET

// func histCount(col *float32, n int, lut *uint8, h *uint32)
//
// Counts the n values of col into h[lut[bits>>22]] (the Go loop with its
// bounds check on the uint8 bin measured 30% slower).
TEXT ·histCount(SB), NOSPLIT, $0-32
	MOVQ col+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ lut+16(FP), R8
	MOVQ h+24(FP), DI
	TESTQ CX, CX
	JEQ hdone
hloop:
	MOVL (SI), AX
	SHRL $22, AX
	MOVBLZX (R8)(AX*1), AX
	INCL (DI)(AX*4)
	ADDQ $4, SI
	DECQ CX
	JNE hloop
hdone:
	RET

DATA signbit<>+0(SB)/8, $0x8000000080000000
DATA signbit<>+8(SB)/8, $0x8000000080000000
DATA signbit<>+16(SB)/8, $0x8000000080000000
DATA signbit<>+24(SB)/8, $0x8000000080000000
GLOBL signbit<>(SB), RODATA|NOPTR, $32

DATA zero256<>+0(SB)/8, $0
DATA zero256<>+8(SB)/8, $0
DATA zero256<>+16(SB)/8, $0
DATA zero256<>+24(SB)/8, $0
GLOBL zero256<>(SB), RODATA|NOPTR, $32

// func rowsAVX2(src *float32, T, C, blocks int, shift *float32, sums *float64, hist *uint32, lut *uint8, mxk, mnk *uint32, zeros *int32)
//
// Summarizes a [T, C] row-major window for components 0..8*blocks-1, eight
// at a time with one component per vector lane, so no transpose is needed:
// adds the window's sums of (x-shift[c])^p to sums[(p-1)*C+c], counts every
// value into hist[c*65+lut[bits>>22]], and writes each component's largest
// and smallest order-preserving key and number of exact zeros.
TEXT ·rowsAVX2(SB), NOSPLIT, $32-88
	MOVQ src+0(FP), BX
	MOVQ C+16(FP), R10
	SHLQ $2, R10                 // row stride in bytes
	MOVQ C+16(FP), R11
	SHLQ $3, R11                 // power stride of sums in bytes
	MOVQ blocks+24(FP), DX
	MOVQ shift+32(FP), R12
	MOVQ sums+40(FP), R9
	MOVQ hist+48(FP), DI
	MOVQ lut+56(FP), R8
	XORQ R13, R13                // byte offset of the block's component
	TESTQ DX, DX
	JEQ  rdone

rblock:
	VXORPD   Y0, Y0, Y0
	VXORPD   Y1, Y1, Y1
	VXORPD   Y2, Y2, Y2
	VXORPD   Y3, Y3, Y3
	VXORPD   Y4, Y4, Y4
	VXORPD   Y5, Y5, Y5
	VXORPD   Y6, Y6, Y6
	VXORPD   Y7, Y7, Y7
	VPXOR    Y8, Y8, Y8
	VPCMPEQD Y9, Y9, Y9
	VPXOR    Y10, Y10, Y10
	VMOVUPS      (R12), Y14
	VCVTPS2PD    X14, Y11
	VEXTRACTF128 $1, Y14, X14
	VCVTPS2PD    X14, Y12
	MOVQ BX, SI
	MOVQ T+8(FP), CX

rrow:
	VMOVUPS (SI), Y14

	VPSRAD   $31, Y14, Y15
	VPOR     signbit<>(SB), Y15, Y15
	VPXOR    Y14, Y15, Y15
	VPMAXUD  Y15, Y8, Y8
	VPMINUD  Y15, Y9, Y9

	VPSLLD   $1, Y14, Y15
	VPCMPEQD zero256<>(SB), Y15, Y15
	VPSUBD   Y15, Y10, Y10

	VPSRLD   $22, Y14, Y15
	VMOVDQU  Y15, (SP)

	VCVTPS2PD   X14, Y15
	VSUBPD      Y11, Y15, Y15
	VMULPD      Y15, Y15, Y13
	VADDPD      Y15, Y0, Y0
	VADDPD      Y13, Y2, Y2
	VFMADD231PD Y15, Y13, Y4
	VFMADD231PD Y13, Y13, Y6

	VEXTRACTF128 $1, Y14, X14
	VCVTPS2PD    X14, Y15
	VSUBPD       Y12, Y15, Y15
	VMULPD       Y15, Y15, Y13
	VADDPD       Y15, Y1, Y1
	VADDPD       Y13, Y3, Y3
	VFMADD231PD  Y15, Y13, Y5
	VFMADD231PD  Y13, Y13, Y7

	MOVL    0(SP), AX
	MOVBLZX (R8)(AX*1), AX
	INCL    0(DI)(AX*4)
	MOVL    4(SP), AX
	MOVBLZX (R8)(AX*1), AX
	INCL    260(DI)(AX*4)
	MOVL    8(SP), AX
	MOVBLZX (R8)(AX*1), AX
	INCL    520(DI)(AX*4)
	MOVL    12(SP), AX
	MOVBLZX (R8)(AX*1), AX
	INCL    780(DI)(AX*4)
	MOVL    16(SP), AX
	MOVBLZX (R8)(AX*1), AX
	INCL    1040(DI)(AX*4)
	MOVL    20(SP), AX
	MOVBLZX (R8)(AX*1), AX
	INCL    1300(DI)(AX*4)
	MOVL    24(SP), AX
	MOVBLZX (R8)(AX*1), AX
	INCL    1560(DI)(AX*4)
	MOVL    28(SP), AX
	MOVBLZX (R8)(AX*1), AX
	INCL    1820(DI)(AX*4)
	ADDQ R10, SI
	DECQ CX
	JNE  rrow

	VADDPD  (R9), Y0, Y0
	VMOVUPD Y0, (R9)
	VADDPD  32(R9), Y1, Y1
	VMOVUPD Y1, 32(R9)
	LEAQ    (R9)(R11*1), AX
	VADDPD  (AX), Y2, Y2
	VMOVUPD Y2, (AX)
	VADDPD  32(AX), Y3, Y3
	VMOVUPD Y3, 32(AX)
	ADDQ    R11, AX
	VADDPD  (AX), Y4, Y4
	VMOVUPD Y4, (AX)
	VADDPD  32(AX), Y5, Y5
	VMOVUPD Y5, 32(AX)
	ADDQ    R11, AX
	VADDPD  (AX), Y6, Y6
	VMOVUPD Y6, (AX)
	VADDPD  32(AX), Y7, Y7
	VMOVUPD Y7, 32(AX)

	MOVQ    mxk+64(FP), AX
	VMOVDQU Y8, (AX)(R13*1)
	MOVQ    mnk+72(FP), AX
	VMOVDQU Y9, (AX)(R13*1)
	MOVQ    zeros+80(FP), AX
	VMOVDQU Y10, (AX)(R13*1)

	ADDQ $32, BX
	ADDQ $32, R12
	ADDQ $64, R9
	ADDQ $2080, DI
	ADDQ $32, R13
	DECQ DX
	JNE  rblock

rdone:
	VZEROUPPER
	RET
