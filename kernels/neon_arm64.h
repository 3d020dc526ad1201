// NEON instructions the Go arm64 assembler does not spell, as WORDs
// (encodings from the Arm ARM; register arguments are numbers 0–31, all
// vectors .4S unless the name says .16B).

// three registers: d = n op m
#define V3(op, d, n, m) WORD $((op) | ((m)<<16) | ((n)<<5) | (d))
#define VFADD(d, n, m) V3(0x4E20D400, d, n, m)
#define VFSUB(d, n, m) V3(0x4EA0D400, d, n, m)
#define VFMUL(d, n, m) V3(0x6E20DC00, d, n, m)
#define VFDIV(d, n, m) V3(0x6E20FC00, d, n, m)
#define VFMAX(d, n, m) V3(0x4E20F400, d, n, m)
#define VFMIN(d, n, m) V3(0x4EA0F400, d, n, m)
// d += n·m ; d −= n·m
#define VFMLA4(d, n, m) V3(0x4E20CC00, d, n, m)
#define VFMLS4(d, n, m) V3(0x4EA0CC00, d, n, m)
#define VIADD(d, n, m) V3(0x4EA08400, d, n, m)
// d = n > m (all ones or zero)
#define VFCMGT(d, n, m) V3(0x6EA0E400, d, n, m)
// d = d ? n : m, bitwise (.16B)
#define VBSL(d, n, m) V3(0x6E601C00, d, n, m)
#define VORR(d, n, m) V3(0x4EA01C00, d, n, m)
// d = n &^ m
#define VBIC(d, n, m) V3(0x4E601C00, d, n, m)
#define VMOVV(d, n) VORR(d, n, n)
#define VFADDP(d, n, m) V3(0x6E20D400, d, n, m)
#define VFMAXP(d, n, m) V3(0x6E20F400, d, n, m)

// two registers
#define V2(op, d, n) WORD $((op) | ((n)<<5) | (d))
#define VFRINTN(d, n) V2(0x4E218800, d, n)
#define VFCVTZS(d, n) V2(0x4EA1B800, d, n)
#define VSHL23(d, n) V2(0x4F375400, d, n)
// d = n > 0
#define VFCMGTZ(d, n) V2(0x4EA0C800, d, n)
// scalar s_d = n[0] + n[1] ; max
#define SFADDP(d, n) V2(0x7E30D800, d, n)
#define SFMAXP(d, n) V2(0x7E30F800, d, n)

// d += n · m[idx] (FMLA by element)
#define VFMLAE(d, n, m, idx) WORD $(0x4F801000 | (((idx)&1)<<21) | ((m)<<16) | (((idx)>>1)<<11) | ((n)<<5) | (d))
