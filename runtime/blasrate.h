/* blasrate.h: measures this machine's GEMM rate, the denominator of MFU (model FLOPs per second / GEMM FLOPs
 * per second): OpenBLAS's sgemm with the thread count OpenBLAS uses at the time, or lmn_bgemm for bf16. */
#ifndef LMN_BLASRATE_H
#define LMN_BLASRATE_H

/* GFLOP/s of cblas_sgemm on square n x n matrices (2 n^3 FLOPs per call): one untimed warm-up call, then the
 * median of reps timed calls. Returns 0 when n is outside [1, 16384], reps < 1 or memory runs out. */
double lmn_measure_sgemm_gflops(int n, int reps);

/* GFLOP/s of lmn_bgemm (bf16, bgemm.h) on n x n matrices run by `threads` threads at once, each timing its
 * own calls as above: the sum of their rates (bf16 training runs one single-threaded GEMM per pool thread).
 * 0 on bad arguments or when memory runs out. */
double lmn_measure_bgemm_gflops(int n, int reps, int threads);

#endif
