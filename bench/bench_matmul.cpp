// Google Benchmark: matmul throughput per weight type, decode (1 token) and prefill (64
// tokens), on a SmolLM2-sized projection (576 -> 1536). Random weights: speed only.
#include "kernels/kernels.h"
#include "model/model.h"
#include <benchmark/benchmark.h>
#include <random>

using namespace slimlm;

static void BM_Matmul(benchmark::State& st) {
  const DType t = DType(st.range(0));
  const int64_t cols = 576, rows = 1536, ntok = st.range(1);
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> w(static_cast<size_t>(cols * rows)), x(static_cast<size_t>(cols * ntok)), y(static_cast<size_t>(rows * ntok));
  for (auto& v : w) v = d(rng);
  for (auto& v : x) v = d(rng);
  Tensor W = Tensor::from_f32("w", {cols, rows}, w.data(), t);
  for (auto _ : st) {
    kernels::matmul(W, x.data(), cols, ntok, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetLabel(traits(t).name);
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(cols * rows * ntok), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Matmul)->ArgsProduct({{int(DType::F32), int(DType::F16), int(DType::Q8_0), int(DType::Q4_0), int(DType::Q4_1)}, {1, 64}});
