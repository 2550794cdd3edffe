/* k_isa.h: LMN_CLONES, which gives a hot kernel of liblmn an AVX2 and an AVX-512 (x86-64-v4) version next to
 * the baseline one; the dynamic loader picks the best one the CPU has when the program starts (GCC's
 * target_clones, an ifunc). So liblmn is built for the x86-64 baseline, without -march=native, and runs on
 * any x86-64 machine while still using the wide units where they exist.
 *
 * Every version computes the same bits: the vector width LMN_VL of kernels.h is fixed when liblmn is
 * compiled (a clone keeps it and changes only the instructions, so horizontal sums add in the same order),
 * and liblmn is compiled without floating-point contraction (-std=c11, and -ffp-contract=off in the
 * Makefile), so no version fuses a multiply and an add that another rounds twice.
 *
 * Empty (one version) for other compilers and targets, when the build already targets AVX2 or better (say
 * EXTRA_CFLAGS=-march=native, which also widens LMN_VL), or with -DLMN_NO_CLONES. */
#ifndef LMN_K_ISA_H
#define LMN_K_ISA_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && \
    !defined(__AVX2__) && !defined(LMN_NO_CLONES)
#define LMN_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define LMN_CLONES
#endif

#endif
