//go:build amd64 && !purego

#include "textflag.h"

// func dotAVX2(x, y *float32, n int) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
dot32:
	CMPQ CX, $32
	JLT  dot8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  dot32
dot8:
	CMPQ CX, $8
	JLT  dotreduce
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  dot8
dotreduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
dot1:
	TESTQ CX, CX
	JEQ   dotdone
	VMOVSS (SI), X4
	VFMADD231SS (DI), X4, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP  dot1
dotdone:
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func scaleAVX2(alpha float32, x *float32, n int)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-24
	VBROADCASTSS alpha+0(FP), Y0
	MOVQ x+8(FP), SI
	MOVQ n+16(FP), CX
scale32:
	CMPQ CX, $32
	JLT  scale8
	VMULPS (SI), Y0, Y1
	VMULPS 32(SI), Y0, Y2
	VMULPS 64(SI), Y0, Y3
	VMULPS 96(SI), Y0, Y4
	VMOVUPS Y1, (SI)
	VMOVUPS Y2, 32(SI)
	VMOVUPS Y3, 64(SI)
	VMOVUPS Y4, 96(SI)
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  scale32
scale8:
	CMPQ CX, $8
	JLT  scale1
	VMULPS (SI), Y0, Y1
	VMOVUPS Y1, (SI)
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  scale8
scale1:
	TESTQ CX, CX
	JEQ   scaledone
	VMULSS (SI), X0, X1
	VMOVSS X1, (SI)
	ADDQ $4, SI
	DECQ CX
	JMP  scale1
scaledone:
	VZEROUPPER
	RET


// Constants for the float32 exp, GELU and its gradient, each repeated
// in all 8 lanes (see vec.go for their meaning).
DATA vconst<>+0(SB)/4, $0x3fb8aa3b
DATA vconst<>+4(SB)/4, $0x3fb8aa3b
DATA vconst<>+8(SB)/4, $0x3fb8aa3b
DATA vconst<>+12(SB)/4, $0x3fb8aa3b
DATA vconst<>+16(SB)/4, $0x3fb8aa3b
DATA vconst<>+20(SB)/4, $0x3fb8aa3b
DATA vconst<>+24(SB)/4, $0x3fb8aa3b
DATA vconst<>+28(SB)/4, $0x3fb8aa3b
DATA vconst<>+32(SB)/4, $0x3f318000
DATA vconst<>+36(SB)/4, $0x3f318000
DATA vconst<>+40(SB)/4, $0x3f318000
DATA vconst<>+44(SB)/4, $0x3f318000
DATA vconst<>+48(SB)/4, $0x3f318000
DATA vconst<>+52(SB)/4, $0x3f318000
DATA vconst<>+56(SB)/4, $0x3f318000
DATA vconst<>+60(SB)/4, $0x3f318000
DATA vconst<>+64(SB)/4, $0xb95e8083
DATA vconst<>+68(SB)/4, $0xb95e8083
DATA vconst<>+72(SB)/4, $0xb95e8083
DATA vconst<>+76(SB)/4, $0xb95e8083
DATA vconst<>+80(SB)/4, $0xb95e8083
DATA vconst<>+84(SB)/4, $0xb95e8083
DATA vconst<>+88(SB)/4, $0xb95e8083
DATA vconst<>+92(SB)/4, $0xb95e8083
DATA vconst<>+96(SB)/4, $0x39500d01
DATA vconst<>+100(SB)/4, $0x39500d01
DATA vconst<>+104(SB)/4, $0x39500d01
DATA vconst<>+108(SB)/4, $0x39500d01
DATA vconst<>+112(SB)/4, $0x39500d01
DATA vconst<>+116(SB)/4, $0x39500d01
DATA vconst<>+120(SB)/4, $0x39500d01
DATA vconst<>+124(SB)/4, $0x39500d01
DATA vconst<>+128(SB)/4, $0x3ab60b61
DATA vconst<>+132(SB)/4, $0x3ab60b61
DATA vconst<>+136(SB)/4, $0x3ab60b61
DATA vconst<>+140(SB)/4, $0x3ab60b61
DATA vconst<>+144(SB)/4, $0x3ab60b61
DATA vconst<>+148(SB)/4, $0x3ab60b61
DATA vconst<>+152(SB)/4, $0x3ab60b61
DATA vconst<>+156(SB)/4, $0x3ab60b61
DATA vconst<>+160(SB)/4, $0x3c088889
DATA vconst<>+164(SB)/4, $0x3c088889
DATA vconst<>+168(SB)/4, $0x3c088889
DATA vconst<>+172(SB)/4, $0x3c088889
DATA vconst<>+176(SB)/4, $0x3c088889
DATA vconst<>+180(SB)/4, $0x3c088889
DATA vconst<>+184(SB)/4, $0x3c088889
DATA vconst<>+188(SB)/4, $0x3c088889
DATA vconst<>+192(SB)/4, $0x3d2aaaab
DATA vconst<>+196(SB)/4, $0x3d2aaaab
DATA vconst<>+200(SB)/4, $0x3d2aaaab
DATA vconst<>+204(SB)/4, $0x3d2aaaab
DATA vconst<>+208(SB)/4, $0x3d2aaaab
DATA vconst<>+212(SB)/4, $0x3d2aaaab
DATA vconst<>+216(SB)/4, $0x3d2aaaab
DATA vconst<>+220(SB)/4, $0x3d2aaaab
DATA vconst<>+224(SB)/4, $0x3e2aaaab
DATA vconst<>+228(SB)/4, $0x3e2aaaab
DATA vconst<>+232(SB)/4, $0x3e2aaaab
DATA vconst<>+236(SB)/4, $0x3e2aaaab
DATA vconst<>+240(SB)/4, $0x3e2aaaab
DATA vconst<>+244(SB)/4, $0x3e2aaaab
DATA vconst<>+248(SB)/4, $0x3e2aaaab
DATA vconst<>+252(SB)/4, $0x3e2aaaab
DATA vconst<>+256(SB)/4, $0x3f000000
DATA vconst<>+260(SB)/4, $0x3f000000
DATA vconst<>+264(SB)/4, $0x3f000000
DATA vconst<>+268(SB)/4, $0x3f000000
DATA vconst<>+272(SB)/4, $0x3f000000
DATA vconst<>+276(SB)/4, $0x3f000000
DATA vconst<>+280(SB)/4, $0x3f000000
DATA vconst<>+284(SB)/4, $0x3f000000
DATA vconst<>+288(SB)/4, $0xbfcc422a
DATA vconst<>+292(SB)/4, $0xbfcc422a
DATA vconst<>+296(SB)/4, $0xbfcc422a
DATA vconst<>+300(SB)/4, $0xbfcc422a
DATA vconst<>+304(SB)/4, $0xbfcc422a
DATA vconst<>+308(SB)/4, $0xbfcc422a
DATA vconst<>+312(SB)/4, $0xbfcc422a
DATA vconst<>+316(SB)/4, $0xbfcc422a
DATA vconst<>+320(SB)/4, $0xbd922279
DATA vconst<>+324(SB)/4, $0xbd922279
DATA vconst<>+328(SB)/4, $0xbd922279
DATA vconst<>+332(SB)/4, $0xbd922279
DATA vconst<>+336(SB)/4, $0xbd922279
DATA vconst<>+340(SB)/4, $0xbd922279
DATA vconst<>+344(SB)/4, $0xbd922279
DATA vconst<>+348(SB)/4, $0xbd922279
DATA vconst<>+352(SB)/4, $0x3f4c422a
DATA vconst<>+356(SB)/4, $0x3f4c422a
DATA vconst<>+360(SB)/4, $0x3f4c422a
DATA vconst<>+364(SB)/4, $0x3f4c422a
DATA vconst<>+368(SB)/4, $0x3f4c422a
DATA vconst<>+372(SB)/4, $0x3f4c422a
DATA vconst<>+376(SB)/4, $0x3f4c422a
DATA vconst<>+380(SB)/4, $0x3f4c422a
DATA vconst<>+384(SB)/4, $0x3ddb33b6
DATA vconst<>+388(SB)/4, $0x3ddb33b6
DATA vconst<>+392(SB)/4, $0x3ddb33b6
DATA vconst<>+396(SB)/4, $0x3ddb33b6
DATA vconst<>+400(SB)/4, $0x3ddb33b6
DATA vconst<>+404(SB)/4, $0x3ddb33b6
DATA vconst<>+408(SB)/4, $0x3ddb33b6
DATA vconst<>+412(SB)/4, $0x3ddb33b6
DATA vconst<>+416(SB)/4, $0xc2aeac4f
DATA vconst<>+420(SB)/4, $0xc2aeac4f
DATA vconst<>+424(SB)/4, $0xc2aeac4f
DATA vconst<>+428(SB)/4, $0xc2aeac4f
DATA vconst<>+432(SB)/4, $0xc2aeac4f
DATA vconst<>+436(SB)/4, $0xc2aeac4f
DATA vconst<>+440(SB)/4, $0xc2aeac4f
DATA vconst<>+444(SB)/4, $0xc2aeac4f
DATA vconst<>+448(SB)/4, $0x3f800000
DATA vconst<>+452(SB)/4, $0x3f800000
DATA vconst<>+456(SB)/4, $0x3f800000
DATA vconst<>+460(SB)/4, $0x3f800000
DATA vconst<>+464(SB)/4, $0x3f800000
DATA vconst<>+468(SB)/4, $0x3f800000
DATA vconst<>+472(SB)/4, $0x3f800000
DATA vconst<>+476(SB)/4, $0x3f800000
DATA vconst<>+480(SB)/4, $0x3f800000
DATA vconst<>+484(SB)/4, $0x3f800000
DATA vconst<>+488(SB)/4, $0x3f800000
DATA vconst<>+492(SB)/4, $0x3f800000
DATA vconst<>+496(SB)/4, $0x3f800000
DATA vconst<>+500(SB)/4, $0x3f800000
DATA vconst<>+504(SB)/4, $0x3f800000
DATA vconst<>+508(SB)/4, $0x3f800000
DATA vconst<>+512(SB)/4, $0x80000000
DATA vconst<>+516(SB)/4, $0x80000000
DATA vconst<>+520(SB)/4, $0x80000000
DATA vconst<>+524(SB)/4, $0x80000000
DATA vconst<>+528(SB)/4, $0x80000000
DATA vconst<>+532(SB)/4, $0x80000000
DATA vconst<>+536(SB)/4, $0x80000000
DATA vconst<>+540(SB)/4, $0x80000000
DATA vconst<>+544(SB)/4, $0x41800000
DATA vconst<>+548(SB)/4, $0x41800000
DATA vconst<>+552(SB)/4, $0x41800000
DATA vconst<>+556(SB)/4, $0x41800000
DATA vconst<>+560(SB)/4, $0x41800000
DATA vconst<>+564(SB)/4, $0x41800000
DATA vconst<>+568(SB)/4, $0x41800000
DATA vconst<>+572(SB)/4, $0x41800000
DATA vconst<>+576(SB)/4, $0xc1800000
DATA vconst<>+580(SB)/4, $0xc1800000
DATA vconst<>+584(SB)/4, $0xc1800000
DATA vconst<>+588(SB)/4, $0xc1800000
DATA vconst<>+592(SB)/4, $0xc1800000
DATA vconst<>+596(SB)/4, $0xc1800000
DATA vconst<>+600(SB)/4, $0xc1800000
DATA vconst<>+604(SB)/4, $0xc1800000
GLOBL vconst<>(SB), RODATA|NOPTR, $608

#define C_LOG2E vconst<>+0(SB)
#define C_LN2HI vconst<>+32(SB)
#define C_LN2LO vconst<>+64(SB)
#define C_P7 vconst<>+96(SB)
#define C_P6 vconst<>+128(SB)
#define C_P5 vconst<>+160(SB)
#define C_P4 vconst<>+192(SB)
#define C_P3 vconst<>+224(SB)
#define C_P2 vconst<>+256(SB)
#define C_C1 vconst<>+288(SB)
#define C_C2 vconst<>+320(SB)
#define C_K1 vconst<>+352(SB)
#define C_K3 vconst<>+384(SB)
#define C_MIN vconst<>+416(SB)
#define C_ONE vconst<>+448(SB)
#define C_BIAS vconst<>+480(SB)
#define C_XMAX vconst<>+544(SB)
#define C_XMIN vconst<>+576(SB)
#define C_SIGN vconst<>+512(SB)

// HSUM8 adds the 8 lanes of Y0 into the low lane of X0 (X1 scratch).
#define HSUM8 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS X1, X0, X0 \
	VMOVHLPS X0, X0, X1 \
	VADDPS X1, X0, X0 \
	VMOVSHDUP X0, X1 \
	VADDSS X1, X0, X0

// EXP8 sets E = e^V for V ≤ 0 (exactly 0 below C_MIN, NaN for NaN); N and T
// are scratch, V is kept. Needs Y15 = C_MIN and Y14 = 1.
#define EXP8(V, E, N, T) \
	VMAXPS V, Y15, T \
	VMULPS C_LOG2E, T, N \
	VROUNDPS $0, N, N \
	VFNMADD231PS C_LN2HI, N, T \
	VFNMADD231PS C_LN2LO, N, T \
	VMOVUPS C_P7, E \
	VFMADD213PS C_P6, T, E \
	VFMADD213PS C_P5, T, E \
	VFMADD213PS C_P4, T, E \
	VFMADD213PS C_P3, T, E \
	VFMADD213PS C_P2, T, E \
	VFMADD213PS Y14, T, E \
	VFMADD213PS Y14, T, E \
	VCVTPS2DQ N, N \
	VPSLLD $23, N, N \
	VPADDD C_BIAS, N, N \
	VMULPS N, E, E \
	VCMPPS $1, Y15, V, T \
	VANDNPS E, T, E

// LOADEXP sets up the registers EXP8 needs.
#define LOADEXP \
	VMOVUPS C_MIN, Y15 \
	VMOVUPS C_ONE, Y14

// GELUV computes from x in Y0: x² in Y1, v in Y3, e^−|v| in Y5 (Y2, Y4,
// Y6, Y7 scratch). Needs Y13 = sign mask besides EXP8's registers.
#define GELUV \
	VMULPS Y0, Y0, Y1 \
	VMOVUPS C_C2, Y2 \
	VFMADD213PS C_C1, Y1, Y2 \
	VMULPS Y0, Y2, Y3 \
	VORPS Y13, Y3, Y4 \
	EXP8(Y4, Y5, Y6, Y7)

// func geluAVX2(dst, src *float32, n int)
TEXT ·geluAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	LOADEXP
	VMOVUPS C_SIGN, Y13
gelu8:
	CMPQ CX, $8
	JLT  geludone
	VMOVUPS (SI), Y0
	GELUV
	VMULPS Y0, Y5, Y1
	VBLENDVPS Y3, Y0, Y1, Y1
	VADDPS Y14, Y5, Y5
	VDIVPS Y5, Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  gelu8
geludone:
	VZEROUPPER
	RET

// func geluGradAVX2(dst, dout, x *float32, n int)
TEXT ·geluGradAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ dout+8(FP), DX
	MOVQ x+16(FP), SI
	MOVQ n+24(FP), CX
	LOADEXP
	VMOVUPS C_SIGN, Y13
	VMOVUPS C_XMAX, Y8
	VMOVUPS C_XMIN, Y9
geluGrad8:
	CMPQ CX, $8
	JLT  geluGradDone
	VMOVUPS (SI), Y0
	VMINPS Y0, Y8, Y0 // clamp to ±16, keeping NaN: gelu' is 0 or 1 beyond
	VMAXPS Y0, Y9, Y0
	GELUV
	VADDPS Y14, Y5, Y6
	VDIVPS Y6, Y14, Y6
	VMULPS Y5, Y6, Y7
	VBLENDVPS Y3, Y6, Y7, Y2
	VBLENDVPS Y3, Y7, Y6, Y4
	VMOVUPS C_K3, Y5
	VFMADD213PS C_K1, Y1, Y5
	VMULPS Y0, Y4, Y4
	VMULPS Y5, Y4, Y4
	VADDPS Y2, Y2, Y6
	VFMADD213PS Y2, Y6, Y4
	VMULPS (DX), Y4, Y4
	VMOVUPS Y4, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  geluGrad8
geluGradDone:
	VZEROUPPER
	RET

// func expSumAVX2(dst, src *float32, n int, shift float32) float32
TEXT ·expSumAVX2(SB), NOSPLIT, $0-36
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS shift+24(FP), Y12
	LOADEXP
	VXORPS Y11, Y11, Y11
expSum8:
	CMPQ CX, $8
	JLT  expSumDone
	VMOVUPS (SI), Y0
	VSUBPS Y12, Y0, Y0
	EXP8(Y0, Y1, Y2, Y3)
	VMOVUPS Y1, (DI)
	VADDPS Y1, Y11, Y11
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  expSum8
expSumDone:
	VMOVAPS Y11, Y0
	HSUM8
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func sumAVX2(x *float32, n int) float32
TEXT ·sumAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y2, Y2, Y2
sum16:
	CMPQ CX, $16
	JLT  sum8
	VADDPS (SI), Y0, Y0
	VADDPS 32(SI), Y2, Y2
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  sum16
sum8:
	CMPQ CX, $8
	JLT  sumDone
	VADDPS (SI), Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  sum8
sumDone:
	VADDPS Y2, Y0, Y0
	HSUM8
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func maxAVX2(x *float32, n int) float32
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VMOVUPS (SI), Y0
	VXORPS Y3, Y3, Y3
max8:
	CMPQ CX, $8
	JLT  maxDone
	VMOVUPS (SI), Y1
	VCMPPS $3, Y1, Y1, Y2 // unordered: NaN lanes
	VORPS Y2, Y3, Y3
	VMAXPS Y1, Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  max8
maxDone:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VMAXPS X1, X0, X0
	VMOVSHDUP X0, X1
	VMAXSS X1, X0, X0
	VPTEST Y3, Y3
	JEQ  maxStore
	MOVL $0x7fc00000, AX // a NaN was seen: the max is NaN, as in Go
	VMOVD AX, X0
maxStore:
	VMOVSS X0, ret+16(FP)
	VZEROUPPER
	RET

// func sumSqDevAVX2(x *float32, n int, mean float32) float32
TEXT ·sumSqDevAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS mean+16(FP), Y4
	VXORPS Y0, Y0, Y0
	VXORPS Y2, Y2, Y2
ssd16:
	CMPQ CX, $16
	JLT  ssd8
	VMOVUPS (SI), Y1
	VMOVUPS 32(SI), Y3
	VSUBPS Y4, Y1, Y1
	VSUBPS Y4, Y3, Y3
	VFMADD231PS Y1, Y1, Y0
	VFMADD231PS Y3, Y3, Y2
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  ssd16
ssd8:
	CMPQ CX, $8
	JLT  ssdDone
	VMOVUPS (SI), Y1
	VSUBPS Y4, Y1, Y1
	VFMADD231PS Y1, Y1, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  ssd8
ssdDone:
	VADDPS Y2, Y0, Y0
	HSUM8
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func normAVX2(dst, x, gain, bias *float32, n int, mean, rstd float32)
TEXT ·normAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ gain+16(FP), DX
	MOVQ bias+24(FP), BX
	MOVQ n+32(FP), CX
	VBROADCASTSS mean+40(FP), Y4
	VBROADCASTSS rstd+44(FP), Y5
norm8:
	CMPQ CX, $8
	JLT  normDone
	VMOVUPS (SI), Y0
	VMOVUPS (DX), Y1
	VSUBPS Y4, Y0, Y0
	VMULPS Y5, Y0, Y0
	VFMADD213PS (BX), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, BX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  norm8
normDone:
	VZEROUPPER
	RET

// func addAVX2(dst, a, b *float32, n int)
TEXT ·addAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DX
	MOVQ n+24(FP), CX
add16:
	CMPQ CX, $16
	JLT  add8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VADDPS (DX), Y0, Y0
	VADDPS 32(DX), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  add16
add8:
	CMPQ CX, $8
	JLT  addDone
	VMOVUPS (SI), Y0
	VADDPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  add8
addDone:
	VZEROUPPER
	RET

// func softmaxGradAVX2(grad, p *float32, n int, dot float32)
TEXT ·softmaxGradAVX2(SB), NOSPLIT, $0-28
	MOVQ grad+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS dot+24(FP), Y4
smg8:
	CMPQ CX, $8
	JLT  smgDone
	VMOVUPS (DI), Y0
	VSUBPS Y4, Y0, Y0
	VMULPS (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  smg8
smgDone:
	VZEROUPPER
	RET

// func lnGradSumsAVX2(dout, gain, x *float32, n int, mean float32) (sumDy, sumDyXc float32)
TEXT ·lnGradSumsAVX2(SB), NOSPLIT, $0-48
	MOVQ dout+0(FP), DX
	MOVQ gain+8(FP), BX
	MOVQ x+16(FP), SI
	MOVQ n+24(FP), CX
	VBROADCASTSS mean+32(FP), Y4
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
lngs8:
	CMPQ CX, $8
	JLT  lngsDone
	VMOVUPS (DX), Y0
	VMULPS (BX), Y0, Y0
	VMOVUPS (SI), Y1
	VSUBPS Y4, Y1, Y1
	VADDPS Y0, Y10, Y10
	VFMADD231PS Y1, Y0, Y11
	ADDQ $32, DX
	ADDQ $32, BX
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  lngs8
lngsDone:
	VMOVAPS Y10, Y0
	HSUM8
	VMOVSS X0, sumDy+40(FP)
	VMOVAPS Y11, Y0
	HSUM8
	VMOVSS X0, sumDyXc+44(FP)
	VZEROUPPER
	RET

// func lnGradApplyAVX2(dx, dout, gain, x *float32, n int, mean, rstd, c, k float32)
TEXT ·lnGradApplyAVX2(SB), NOSPLIT, $0-56
	MOVQ dx+0(FP), DI
	MOVQ dout+8(FP), DX
	MOVQ gain+16(FP), BX
	MOVQ x+24(FP), SI
	MOVQ n+32(FP), CX
	VBROADCASTSS mean+40(FP), Y4
	VBROADCASTSS rstd+44(FP), Y5
	VBROADCASTSS c+48(FP), Y6
	VBROADCASTSS k+52(FP), Y7
lnga8:
	CMPQ CX, $8
	JLT  lngaDone
	VMOVUPS (DX), Y0
	VMULPS (BX), Y0, Y0
	VMOVUPS (SI), Y1
	VSUBPS Y4, Y1, Y1
	VADDPS (DI), Y6, Y2
	VFMADD231PS Y5, Y0, Y2
	VFMADD231PS Y7, Y1, Y2
	VMOVUPS Y2, (DI)
	ADDQ $32, DX
	ADDQ $32, BX
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  lnga8
lngaDone:
	VZEROUPPER
	RET
