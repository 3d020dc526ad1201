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
