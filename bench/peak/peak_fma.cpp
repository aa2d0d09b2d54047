// Peak f32 FMA rate of this machine: each thread runs 12 independent chains of 8-lane AVX2 FMAs
// (enough to cover the FMA latency on current x86 cores) for about a second. Prints JSON:
// {"threads", "gflops"} with 2 flops per FMA lane. Built and run by bench/train_throughput.sh.
#include <immintrin.h>
#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : omp_get_max_threads();
  const long iters = 2000000000L / 12;  // about 3 s per thread at 100 GFLOP/s
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      // twelve named registers (an array would be kept in memory, one FMA chain through it)
      const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
      const float t0 = float(omp_get_thread_num());
      __m256 a0 = _mm256_set1_ps(t0), a1 = _mm256_set1_ps(t0 + 1), a2 = _mm256_set1_ps(t0 + 2),
             a3 = _mm256_set1_ps(t0 + 3), a4 = _mm256_set1_ps(t0 + 4), a5 = _mm256_set1_ps(t0 + 5),
             a6 = _mm256_set1_ps(t0 + 6), a7 = _mm256_set1_ps(t0 + 7), a8 = _mm256_set1_ps(t0 + 8),
             a9 = _mm256_set1_ps(t0 + 9), a10 = _mm256_set1_ps(t0 + 10), a11 = _mm256_set1_ps(t0 + 11);
      for (long it = 0; it < iters; ++it) {
        a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c); a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c); a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c); a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c); a10 = _mm256_fmadd_ps(a10, m, c); a11 = _mm256_fmadd_ps(a11, m, c);
      }
      float out[8];
      a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                         _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
      a0 = _mm256_add_ps(a0, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
      _mm256_storeu_ps(out, a0);
      sink += out[0];
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gflops = double(threads) * double(iters) * 12 * 8 * 2 / s / 1e9;
    if (gflops > best) best = gflops;
    if (sink == 12345.f) std::printf(" ");  // keeps the chains alive
  }
  std::printf("{\"threads\": %d, \"gflops\": %.2f}\n", threads, best);
}
