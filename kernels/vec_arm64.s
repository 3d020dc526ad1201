//go:build arm64 && !purego

#include "textflag.h"
#include "neon_arm64.h"

// The NEON vector kernels, 4 lanes; see asmVec and, for the formulas and
// constants, vec.go. Lengths are multiples of 4 except for dot and scale.

// Constants, each in all 4 lanes, in the order the LOAD macros put them in
// registers: V20 127<<23 (the exponent bias), V21–V26 the exp polynomial's
// 1/2!..1/7!, V27 ln2 low, V28 ln2 high, V29 log2(e), V30 1, V31 expMin;
// V16 C1, V17 C2, V18 the sign bit, V19 K1; V13 K3, V14 16, V15 −16.
DATA vconst<>+0(SB)/4, $0x3f800000
DATA vconst<>+4(SB)/4, $0x3f800000
DATA vconst<>+8(SB)/4, $0x3f800000
DATA vconst<>+12(SB)/4, $0x3f800000
DATA vconst<>+16(SB)/4, $0x3f000000
DATA vconst<>+20(SB)/4, $0x3f000000
DATA vconst<>+24(SB)/4, $0x3f000000
DATA vconst<>+28(SB)/4, $0x3f000000
DATA vconst<>+32(SB)/4, $0x3e2aaaab
DATA vconst<>+36(SB)/4, $0x3e2aaaab
DATA vconst<>+40(SB)/4, $0x3e2aaaab
DATA vconst<>+44(SB)/4, $0x3e2aaaab
DATA vconst<>+48(SB)/4, $0x3d2aaaab
DATA vconst<>+52(SB)/4, $0x3d2aaaab
DATA vconst<>+56(SB)/4, $0x3d2aaaab
DATA vconst<>+60(SB)/4, $0x3d2aaaab
DATA vconst<>+64(SB)/4, $0x3c088889
DATA vconst<>+68(SB)/4, $0x3c088889
DATA vconst<>+72(SB)/4, $0x3c088889
DATA vconst<>+76(SB)/4, $0x3c088889
DATA vconst<>+80(SB)/4, $0x3ab60b61
DATA vconst<>+84(SB)/4, $0x3ab60b61
DATA vconst<>+88(SB)/4, $0x3ab60b61
DATA vconst<>+92(SB)/4, $0x3ab60b61
DATA vconst<>+96(SB)/4, $0x39500d01
DATA vconst<>+100(SB)/4, $0x39500d01
DATA vconst<>+104(SB)/4, $0x39500d01
DATA vconst<>+108(SB)/4, $0x39500d01
DATA vconst<>+112(SB)/4, $0xb95e8083
DATA vconst<>+116(SB)/4, $0xb95e8083
DATA vconst<>+120(SB)/4, $0xb95e8083
DATA vconst<>+124(SB)/4, $0xb95e8083
DATA vconst<>+128(SB)/4, $0x3f318000
DATA vconst<>+132(SB)/4, $0x3f318000
DATA vconst<>+136(SB)/4, $0x3f318000
DATA vconst<>+140(SB)/4, $0x3f318000
DATA vconst<>+144(SB)/4, $0x3fb8aa3b
DATA vconst<>+148(SB)/4, $0x3fb8aa3b
DATA vconst<>+152(SB)/4, $0x3fb8aa3b
DATA vconst<>+156(SB)/4, $0x3fb8aa3b
DATA vconst<>+160(SB)/4, $0x3f800000
DATA vconst<>+164(SB)/4, $0x3f800000
DATA vconst<>+168(SB)/4, $0x3f800000
DATA vconst<>+172(SB)/4, $0x3f800000
DATA vconst<>+176(SB)/4, $0xc2aeac4f
DATA vconst<>+180(SB)/4, $0xc2aeac4f
DATA vconst<>+184(SB)/4, $0xc2aeac4f
DATA vconst<>+188(SB)/4, $0xc2aeac4f
DATA vconst<>+192(SB)/4, $0xbfcc422a
DATA vconst<>+196(SB)/4, $0xbfcc422a
DATA vconst<>+200(SB)/4, $0xbfcc422a
DATA vconst<>+204(SB)/4, $0xbfcc422a
DATA vconst<>+208(SB)/4, $0xbd922279
DATA vconst<>+212(SB)/4, $0xbd922279
DATA vconst<>+216(SB)/4, $0xbd922279
DATA vconst<>+220(SB)/4, $0xbd922279
DATA vconst<>+224(SB)/4, $0x80000000
DATA vconst<>+228(SB)/4, $0x80000000
DATA vconst<>+232(SB)/4, $0x80000000
DATA vconst<>+236(SB)/4, $0x80000000
DATA vconst<>+240(SB)/4, $0x3f4c422a
DATA vconst<>+244(SB)/4, $0x3f4c422a
DATA vconst<>+248(SB)/4, $0x3f4c422a
DATA vconst<>+252(SB)/4, $0x3f4c422a
DATA vconst<>+256(SB)/4, $0x3ddb33b6
DATA vconst<>+260(SB)/4, $0x3ddb33b6
DATA vconst<>+264(SB)/4, $0x3ddb33b6
DATA vconst<>+268(SB)/4, $0x3ddb33b6
DATA vconst<>+272(SB)/4, $0x41800000
DATA vconst<>+276(SB)/4, $0x41800000
DATA vconst<>+280(SB)/4, $0x41800000
DATA vconst<>+284(SB)/4, $0x41800000
DATA vconst<>+288(SB)/4, $0xc1800000
DATA vconst<>+292(SB)/4, $0xc1800000
DATA vconst<>+296(SB)/4, $0xc1800000
DATA vconst<>+300(SB)/4, $0xc1800000
DATA vconst<>+304(SB)/4, $0x00000000
DATA vconst<>+308(SB)/4, $0x00000000
DATA vconst<>+312(SB)/4, $0x00000000
DATA vconst<>+316(SB)/4, $0x00000000
GLOBL vconst<>(SB), RODATA|NOPTR, $320

// LOADEXP loads the exp constants into V20–V31 (R9 scratch).
#define LOADEXP \
	MOVD $vconst<>(SB), R9 \
	VLD1.P 64(R9), [V20.S4, V21.S4, V22.S4, V23.S4] \
	VLD1.P 64(R9), [V24.S4, V25.S4, V26.S4, V27.S4] \
	VLD1.P 64(R9), [V28.S4, V29.S4, V30.S4, V31.S4]

// LOADGELU loads, after LOADEXP, the GELU constants into V13–V19.
#define LOADGELU \
	VLD1.P 64(R9), [V16.S4, V17.S4, V18.S4, V19.S4] \
	VLD1 (R9), [V13.S4, V14.S4, V15.S4]

// EXP4 sets R = e^V for V ≤ 0 (exactly 0 below expMin, NaN for NaN); N, T
// and E are scratch, V is kept.
#define EXP4(V, R, N, T, E) \
	VFMAX(T, V, 31) \
	VFMUL(N, T, 29) \
	VFRINTN(N, N) \
	VFMLS4(T, N, 28) \
	VFMLS4(T, N, 27) \
	VMOVV(E, 25) \
	VFMLA4(E, 26, T) \
	VMOVV(R, 24) \
	VFMLA4(R, E, T) \
	VMOVV(E, 23) \
	VFMLA4(E, R, T) \
	VMOVV(R, 22) \
	VFMLA4(R, E, T) \
	VMOVV(E, 21) \
	VFMLA4(E, R, T) \
	VMOVV(R, 30) \
	VFMLA4(R, E, T) \
	VMOVV(E, 30) \
	VFMLA4(E, R, T) \
	VFCVTZS(N, N) \
	VSHL23(N, N) \
	VIADD(N, N, 20) \
	VFMUL(R, E, N) \
	VFCMGT(T, 31, V) \
	VBIC(R, R, T)

// GELUV computes from x in V0: x² in V1, v in V3, e^−|v| in V5 (V2, V4,
// V6–V8 scratch).
#define GELUV \
	VFMUL(1, 0, 0) \
	VMOVV(2, 16) \
	VFMLA4(2, 1, 17) \
	VFMUL(3, 0, 2) \
	VORR(4, 3, 18) \
	EXP4(4, 5, 6, 7, 8)

// func geluNEON(dst, src *float32, n int)
TEXT ·geluNEON(SB), NOSPLIT, $0-24
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
	LOADEXP
	LOADGELU
gelu4:
	CBZ R2, geluDone
	VLD1.P 16(R1), [V0.S4]
	GELUV
	VFMUL(6, 0, 5)
	VFCMGTZ(7, 3)
	VBSL(7, 6, 0)
	VFADD(8, 5, 30)
	VFDIV(7, 7, 8)
	VST1.P [V7.S4], 16(R0)
	SUB $4, R2, R2
	B gelu4
geluDone:
	RET

// func geluGradNEON(dst, dout, x *float32, n int)
TEXT ·geluGradNEON(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD dout+8(FP), R1
	MOVD x+16(FP), R2
	MOVD n+24(FP), R3
	LOADEXP
	LOADGELU
geluGrad4:
	CBZ R3, geluGradDone
	VLD1.P 16(R2), [V0.S4]
	VFMIN(0, 0, 14)
	VFMAX(0, 0, 15)
	GELUV
	VFADD(6, 5, 30)
	VFDIV(6, 30, 6)
	VFMUL(7, 5, 6)
	VFCMGTZ(8, 3)
	VMOVV(9, 8)
	VBSL(9, 7, 6)
	VBSL(8, 6, 7)
	VMOVV(10, 19)
	VFMLA4(10, 1, 13)
	VFMUL(11, 0, 8)
	VFMUL(11, 11, 10)
	VFADD(12, 9, 9)
	VFMLA4(9, 12, 11)
	VLD1.P 16(R1), [V10.S4]
	VFMUL(9, 9, 10)
	VST1.P [V9.S4], 16(R0)
	SUB $4, R3, R3
	B geluGrad4
geluGradDone:
	RET

// func expSumNEON(dst, src *float32, n int, shift float32) float32
TEXT ·expSumNEON(SB), NOSPLIT, $0-36
	MOVD dst+0(FP), R0
	MOVD src+8(FP), R1
	MOVD n+16(FP), R2
	MOVWU shift+24(FP), R3
	VDUP R3, V12.S4
	LOADEXP
	VEOR V11.B16, V11.B16, V11.B16
expSum4:
	CBZ R2, expSumDone
	VLD1.P 16(R1), [V0.S4]
	VFSUB(0, 0, 12)
	EXP4(0, 1, 2, 3, 4)
	VST1.P [V1.S4], 16(R0)
	VFADD(11, 11, 1)
	SUB $4, R2, R2
	B expSum4
expSumDone:
	VFADDP(11, 11, 11)
	SFADDP(0, 11)
	FMOVS F0, ret+32(FP)
	RET

// func sumNEON(x *float32, n int) float32
TEXT ·sumNEON(SB), NOSPLIT, $0-20
	MOVD x+0(FP), R0
	MOVD n+8(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
sum4:
	CBZ R2, sumDone
	VLD1.P 16(R0), [V2.S4]
	VFADD(0, 0, 2)
	SUB $4, R2, R2
	B sum4
sumDone:
	VFADDP(0, 0, 0)
	SFADDP(0, 0)
	FMOVS F0, ret+16(FP)
	RET

// func maxNEON(x *float32, n int) float32
TEXT ·maxNEON(SB), NOSPLIT, $0-20
	MOVD x+0(FP), R0
	MOVD n+8(FP), R2
	VLD1 (R0), [V0.S4]
max4:
	CBZ R2, maxDone
	VLD1.P 16(R0), [V1.S4]
	VFMAX(0, 0, 1)
	SUB $4, R2, R2
	B max4
maxDone:
	VFMAXP(0, 0, 0)
	SFMAXP(0, 0)
	FMOVS F0, ret+16(FP)
	RET

// func sumSqDevNEON(x *float32, n int, mean float32) float32
TEXT ·sumSqDevNEON(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD n+8(FP), R2
	MOVWU mean+16(FP), R3
	VDUP R3, V4.S4
	VEOR V0.B16, V0.B16, V0.B16
ssd4:
	CBZ R2, ssdDone
	VLD1.P 16(R0), [V1.S4]
	VFSUB(1, 1, 4)
	VFMLA4(0, 1, 1)
	SUB $4, R2, R2
	B ssd4
ssdDone:
	VFADDP(0, 0, 0)
	SFADDP(0, 0)
	FMOVS F0, ret+24(FP)
	RET

// func normNEON(dst, x, gain, bias *float32, n int, mean, rstd float32)
TEXT ·normNEON(SB), NOSPLIT, $0-48
	MOVD dst+0(FP), R0
	MOVD x+8(FP), R1
	MOVD gain+16(FP), R2
	MOVD bias+24(FP), R3
	MOVD n+32(FP), R4
	MOVWU mean+40(FP), R5
	VDUP R5, V4.S4
	MOVWU rstd+44(FP), R5
	VDUP R5, V5.S4
norm4:
	CBZ R4, normDone
	VLD1.P 16(R1), [V0.S4]
	VLD1.P 16(R2), [V1.S4]
	VLD1.P 16(R3), [V2.S4]
	VFSUB(0, 0, 4)
	VFMUL(0, 0, 5)
	VFMLA4(2, 0, 1)
	VST1.P [V2.S4], 16(R0)
	SUB $4, R4, R4
	B norm4
normDone:
	RET

// func addNEON(dst, a, b *float32, n int)
TEXT ·addNEON(SB), NOSPLIT, $0-32
	MOVD dst+0(FP), R0
	MOVD a+8(FP), R1
	MOVD b+16(FP), R2
	MOVD n+24(FP), R3
add4:
	CBZ R3, addDone
	VLD1.P 16(R1), [V0.S4]
	VLD1.P 16(R2), [V1.S4]
	VFADD(0, 0, 1)
	VST1.P [V0.S4], 16(R0)
	SUB $4, R3, R3
	B add4
addDone:
	RET

// func softmaxGradNEON(grad, p *float32, n int, dot float32)
TEXT ·softmaxGradNEON(SB), NOSPLIT, $0-28
	MOVD grad+0(FP), R0
	MOVD p+8(FP), R1
	MOVD n+16(FP), R2
	MOVWU dot+24(FP), R3
	VDUP R3, V4.S4
smg4:
	CBZ R2, smgDone
	VLD1 (R0), [V0.S4]
	VLD1.P 16(R1), [V1.S4]
	VFSUB(0, 0, 4)
	VFMUL(0, 0, 1)
	VST1.P [V0.S4], 16(R0)
	SUB $4, R2, R2
	B smg4
smgDone:
	RET

// func lnGradSumsNEON(dout, gain, x *float32, n int, mean float32) (sumDy, sumDyXc float32)
TEXT ·lnGradSumsNEON(SB), NOSPLIT, $0-48
	MOVD dout+0(FP), R0
	MOVD gain+8(FP), R1
	MOVD x+16(FP), R2
	MOVD n+24(FP), R3
	MOVWU mean+32(FP), R4
	VDUP R4, V4.S4
	VEOR V10.B16, V10.B16, V10.B16
	VEOR V11.B16, V11.B16, V11.B16
lngs4:
	CBZ R3, lngsDone
	VLD1.P 16(R0), [V0.S4]
	VLD1.P 16(R1), [V1.S4]
	VLD1.P 16(R2), [V2.S4]
	VFMUL(0, 0, 1)
	VFSUB(2, 2, 4)
	VFADD(10, 10, 0)
	VFMLA4(11, 0, 2)
	SUB $4, R3, R3
	B lngs4
lngsDone:
	VFADDP(10, 10, 10)
	SFADDP(0, 10)
	FMOVS F0, sumDy+40(FP)
	VFADDP(11, 11, 11)
	SFADDP(0, 11)
	FMOVS F0, sumDyXc+44(FP)
	RET

// func lnGradApplyNEON(dx, dout, gain, x *float32, n int, mean, rstd, c, k float32)
TEXT ·lnGradApplyNEON(SB), NOSPLIT, $0-56
	MOVD dx+0(FP), R0
	MOVD dout+8(FP), R1
	MOVD gain+16(FP), R2
	MOVD x+24(FP), R3
	MOVD n+32(FP), R4
	MOVWU mean+40(FP), R5
	VDUP R5, V4.S4
	MOVWU rstd+44(FP), R5
	VDUP R5, V5.S4
	MOVWU c+48(FP), R5
	VDUP R5, V6.S4
	MOVWU k+52(FP), R5
	VDUP R5, V7.S4
lnga4:
	CBZ R4, lngaDone
	VLD1.P 16(R1), [V0.S4]
	VLD1.P 16(R2), [V1.S4]
	VLD1.P 16(R3), [V2.S4]
	VLD1 (R0), [V3.S4]
	VFMUL(0, 0, 1)
	VFSUB(2, 2, 4)
	VFADD(3, 3, 6)
	VFMLA4(3, 0, 5)
	VFMLA4(3, 2, 7)
	VST1.P [V3.S4], 16(R0)
	SUB $4, R4, R4
	B lnga4
lngaDone:
	RET

// func dotNEON(x, y *float32, n int) float32
TEXT ·dotNEON(SB), NOSPLIT, $0-28
	MOVD x+0(FP), R0
	MOVD y+8(FP), R1
	MOVD n+16(FP), R2
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
dot8:
	CMP $8, R2
	BLT dot4
	VLD1.P 32(R0), [V2.S4, V3.S4]
	VLD1.P 32(R1), [V4.S4, V5.S4]
	VFMLA4(0, 2, 4)
	VFMLA4(1, 3, 5)
	SUB $8, R2, R2
	B dot8
dot4:
	CMP $4, R2
	BLT dotReduce
	VLD1.P 16(R0), [V2.S4]
	VLD1.P 16(R1), [V4.S4]
	VFMLA4(0, 2, 4)
	SUB $4, R2, R2
dotReduce:
	VFADD(0, 0, 1)
	VFADDP(0, 0, 0)
	SFADDP(0, 0)
dot1:
	CBZ R2, dotDone
	FMOVS.P 4(R0), F2
	FMOVS.P 4(R1), F3
	FMULS F2, F3, F3
	FADDS F3, F0, F0
	SUB $1, R2, R2
	B dot1
dotDone:
	FMOVS F0, ret+24(FP)
	RET

// func scaleNEON(alpha float32, x *float32, n int)
TEXT ·scaleNEON(SB), NOSPLIT, $0-24
	MOVWU alpha+0(FP), R3
	VDUP R3, V16.S4
	MOVD x+8(FP), R0
	MOVD n+16(FP), R2
scale4:
	CMP $4, R2
	BLT scale1
	VLD1 (R0), [V0.S4]
	VFMUL(0, 0, 16)
	VST1.P [V0.S4], 16(R0)
	SUB $4, R2, R2
	B scale4
scale1:
	CBZ R2, scaleDone
	FMOVS (R0), F1
	FMULS F16, F1, F1
	FMOVS.P F1, 4(R0)
	SUB $1, R2, R2
	B scale1
scaleDone:
	RET
