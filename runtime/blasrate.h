/* blasrate.h: measures this machine's OpenBLAS single-precision GEMM rate, the denominator of MFU
 * (model FLOPs per second / sgemm FLOPs per second), with the thread count OpenBLAS uses at the time. */
#ifndef LMN_BLASRATE_H
#define LMN_BLASRATE_H

/* GFLOP/s of cblas_sgemm on square n x n matrices (2 n^3 FLOPs per call): one untimed warm-up call, then the
 * median of reps timed calls. Returns 0 when n is outside [1, 16384], reps < 1 or memory runs out. */
double lmn_measure_sgemm_gflops(int n, int reps);

#endif
