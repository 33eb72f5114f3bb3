#include "textflag.h"

// Two lanes, interleaved: lane a in X1 (ABEF), X2 (CDGH) and its message
// schedule in X3-X6; lane b in X9, X10 and X11-X14. X0 is the round
// instructions' implicit operand, X7 and X15 temporaries, X8 the byte
// order mask. The state before each block is kept on the stack for the
// feed-forward addition.

// LOAD loads message words off(P) into M in the order the rounds take.
#define LOAD(P, off, M) \
	MOVOU off(P), M; \
	PSHUFB X8, M

// SCHED computes the next four message words into M0, which holds the
// words 16 back; M1, M2, M3 hold the words 12, 8 and 4 back.
#define SCHED(M0, M1, M2, M3, T) \
	SHA256MSG1 M1, M0; \
	MOVO M3, T; \
	PALIGNR $4, M2, T; \
	PADDD T, M0; \
	SHA256MSG2 M3, M0

// ROUNDS does four rounds on state S1, S2 with message words M and the
// constants at koff of the table.
#define ROUNDS(S1, S2, M, koff) \
	MOVO M, X0; \
	PADDD koff(AX), X0; \
	SHA256RNDS2 X0, S1, S2; \
	PSHUFD $0x0e, X0, X0; \
	SHA256RNDS2 X0, S2, S1

// IN turns the state at off(DI) into the round instructions' order.
#define IN(off, S1, S2, T) \
	MOVOU off(DI), S1; \
	MOVOU off+16(DI), S2; \
	PSHUFD $0xb1, S1, S1; \
	PSHUFD $0x1b, S2, S2; \
	MOVO S1, T; \
	PALIGNR $0x08, S2, S1; \
	PBLENDW $0xf0, T, S2

// OUT stores the state back at off(DI) in word order.
#define OUT(off, S1, S2, T) \
	PSHUFD $0x1b, S1, S1; \
	PSHUFD $0xb1, S2, S2; \
	MOVO S1, T; \
	PBLENDW $0xf0, S2, S1; \
	PALIGNR $0x08, T, S2; \
	MOVOU S1, off(DI); \
	MOVOU S2, off+16(DI)

// func blocks(state *[2][8]uint32, a, b *byte, n int)
TEXT ·blocks(SB), NOSPLIT, $64-32
	MOVQ state+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ n+24(FP), DX
	TESTQ DX, DX
	JEQ done
	SHLQ $6, DX
	ADDQ SI, DX
	IN(0, X1, X2, X7)
	IN(32, X9, X10, X15)
	MOVOU mask<>(SB), X8
	LEAQ k<>(SB), AX

loop:
	MOVOU X1, 0(SP)
	MOVOU X2, 16(SP)
	MOVOU X9, 32(SP)
	MOVOU X10, 48(SP)
	LOAD(SI, 0, X3)
	LOAD(BX, 0, X11)
	ROUNDS(X1, X2, X3, 0)
	ROUNDS(X9, X10, X11, 0)
	LOAD(SI, 16, X4)
	LOAD(BX, 16, X12)
	ROUNDS(X1, X2, X4, 16)
	ROUNDS(X9, X10, X12, 16)
	LOAD(SI, 32, X5)
	LOAD(BX, 32, X13)
	ROUNDS(X1, X2, X5, 32)
	ROUNDS(X9, X10, X13, 32)
	LOAD(SI, 48, X6)
	LOAD(BX, 48, X14)
	ROUNDS(X1, X2, X6, 48)
	ROUNDS(X9, X10, X14, 48)
	SCHED(X3, X4, X5, X6, X7)
	SCHED(X11, X12, X13, X14, X15)
	ROUNDS(X1, X2, X3, 64)
	ROUNDS(X9, X10, X11, 64)
	SCHED(X4, X5, X6, X3, X7)
	SCHED(X12, X13, X14, X11, X15)
	ROUNDS(X1, X2, X4, 80)
	ROUNDS(X9, X10, X12, 80)
	SCHED(X5, X6, X3, X4, X7)
	SCHED(X13, X14, X11, X12, X15)
	ROUNDS(X1, X2, X5, 96)
	ROUNDS(X9, X10, X13, 96)
	SCHED(X6, X3, X4, X5, X7)
	SCHED(X14, X11, X12, X13, X15)
	ROUNDS(X1, X2, X6, 112)
	ROUNDS(X9, X10, X14, 112)
	SCHED(X3, X4, X5, X6, X7)
	SCHED(X11, X12, X13, X14, X15)
	ROUNDS(X1, X2, X3, 128)
	ROUNDS(X9, X10, X11, 128)
	SCHED(X4, X5, X6, X3, X7)
	SCHED(X12, X13, X14, X11, X15)
	ROUNDS(X1, X2, X4, 144)
	ROUNDS(X9, X10, X12, 144)
	SCHED(X5, X6, X3, X4, X7)
	SCHED(X13, X14, X11, X12, X15)
	ROUNDS(X1, X2, X5, 160)
	ROUNDS(X9, X10, X13, 160)
	SCHED(X6, X3, X4, X5, X7)
	SCHED(X14, X11, X12, X13, X15)
	ROUNDS(X1, X2, X6, 176)
	ROUNDS(X9, X10, X14, 176)
	SCHED(X3, X4, X5, X6, X7)
	SCHED(X11, X12, X13, X14, X15)
	ROUNDS(X1, X2, X3, 192)
	ROUNDS(X9, X10, X11, 192)
	SCHED(X4, X5, X6, X3, X7)
	SCHED(X12, X13, X14, X11, X15)
	ROUNDS(X1, X2, X4, 208)
	ROUNDS(X9, X10, X12, 208)
	SCHED(X5, X6, X3, X4, X7)
	SCHED(X13, X14, X11, X12, X15)
	ROUNDS(X1, X2, X5, 224)
	ROUNDS(X9, X10, X13, 224)
	SCHED(X6, X3, X4, X5, X7)
	SCHED(X14, X11, X12, X13, X15)
	ROUNDS(X1, X2, X6, 240)
	ROUNDS(X9, X10, X14, 240)
	MOVOU 0(SP), X0
	PADDD X0, X1
	MOVOU 16(SP), X0
	PADDD X0, X2
	MOVOU 32(SP), X0
	PADDD X0, X9
	MOVOU 48(SP), X0
	PADDD X0, X10
	ADDQ $64, SI
	ADDQ $64, BX
	CMPQ SI, DX
	JNE loop

	OUT(0, X1, X2, X7)
	OUT(32, X9, X10, X15)

done:
	RET

// func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

DATA mask<>+0(SB)/8, $0x0405060700010203
DATA mask<>+8(SB)/8, $0x0c0d0e0f08090a0b
GLOBL mask<>(SB), RODATA|NOPTR, $16

DATA k<>+0(SB)/4, $0x428a2f98
DATA k<>+4(SB)/4, $0x71374491
DATA k<>+8(SB)/4, $0xb5c0fbcf
DATA k<>+12(SB)/4, $0xe9b5dba5
DATA k<>+16(SB)/4, $0x3956c25b
DATA k<>+20(SB)/4, $0x59f111f1
DATA k<>+24(SB)/4, $0x923f82a4
DATA k<>+28(SB)/4, $0xab1c5ed5
DATA k<>+32(SB)/4, $0xd807aa98
DATA k<>+36(SB)/4, $0x12835b01
DATA k<>+40(SB)/4, $0x243185be
DATA k<>+44(SB)/4, $0x550c7dc3
DATA k<>+48(SB)/4, $0x72be5d74
DATA k<>+52(SB)/4, $0x80deb1fe
DATA k<>+56(SB)/4, $0x9bdc06a7
DATA k<>+60(SB)/4, $0xc19bf174
DATA k<>+64(SB)/4, $0xe49b69c1
DATA k<>+68(SB)/4, $0xefbe4786
DATA k<>+72(SB)/4, $0x0fc19dc6
DATA k<>+76(SB)/4, $0x240ca1cc
DATA k<>+80(SB)/4, $0x2de92c6f
DATA k<>+84(SB)/4, $0x4a7484aa
DATA k<>+88(SB)/4, $0x5cb0a9dc
DATA k<>+92(SB)/4, $0x76f988da
DATA k<>+96(SB)/4, $0x983e5152
DATA k<>+100(SB)/4, $0xa831c66d
DATA k<>+104(SB)/4, $0xb00327c8
DATA k<>+108(SB)/4, $0xbf597fc7
DATA k<>+112(SB)/4, $0xc6e00bf3
DATA k<>+116(SB)/4, $0xd5a79147
DATA k<>+120(SB)/4, $0x06ca6351
DATA k<>+124(SB)/4, $0x14292967
DATA k<>+128(SB)/4, $0x27b70a85
DATA k<>+132(SB)/4, $0x2e1b2138
DATA k<>+136(SB)/4, $0x4d2c6dfc
DATA k<>+140(SB)/4, $0x53380d13
DATA k<>+144(SB)/4, $0x650a7354
DATA k<>+148(SB)/4, $0x766a0abb
DATA k<>+152(SB)/4, $0x81c2c92e
DATA k<>+156(SB)/4, $0x92722c85
DATA k<>+160(SB)/4, $0xa2bfe8a1
DATA k<>+164(SB)/4, $0xa81a664b
DATA k<>+168(SB)/4, $0xc24b8b70
DATA k<>+172(SB)/4, $0xc76c51a3
DATA k<>+176(SB)/4, $0xd192e819
DATA k<>+180(SB)/4, $0xd6990624
DATA k<>+184(SB)/4, $0xf40e3585
DATA k<>+188(SB)/4, $0x106aa070
DATA k<>+192(SB)/4, $0x19a4c116
DATA k<>+196(SB)/4, $0x1e376c08
DATA k<>+200(SB)/4, $0x2748774c
DATA k<>+204(SB)/4, $0x34b0bcb5
DATA k<>+208(SB)/4, $0x391c0cb3
DATA k<>+212(SB)/4, $0x4ed8aa4a
DATA k<>+216(SB)/4, $0x5b9cca4f
DATA k<>+220(SB)/4, $0x682e6ff3
DATA k<>+224(SB)/4, $0x748f82ee
DATA k<>+228(SB)/4, $0x78a5636f
DATA k<>+232(SB)/4, $0x84c87814
DATA k<>+236(SB)/4, $0x8cc70208
DATA k<>+240(SB)/4, $0x90befffa
DATA k<>+244(SB)/4, $0xa4506ceb
DATA k<>+248(SB)/4, $0xbef9a3f7
DATA k<>+252(SB)/4, $0xc67178f2
GLOBL k<>(SB), RODATA|NOPTR, $256
