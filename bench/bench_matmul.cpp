// Google Benchmark: matmul throughput per weight type (and w8a8), decode (1 token) and prefill (64
// tokens), on a SmolLM2-sized projection (576 -> 1536). Random weights: speed only.
#include "kernels/kernels.h"
#include "model/model.h"
#include "quant/codec.h"
#include "quant/methods.h"
#include <benchmark/benchmark.h>
#include <random>

using namespace slimlm;

static void BM_Matmul(benchmark::State& st) {
  const bool w8a8 = st.range(0) < 0;  // -1: slimlm's w8a8 (int8 weights per channel, int8 activations per token)
  const DType t = w8a8 ? w8a8_type() : DType(st.range(0));
  const int64_t cols = 576, rows = 1536, ntok = st.range(1);
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> w(static_cast<size_t>(cols * rows)), x(static_cast<size_t>(cols * ntok)), y(static_cast<size_t>(rows * ntok));
  for (auto& v : w) v = d(rng);
  for (auto& v : x) v = d(rng);
  Tensor W = w8a8 ? quant::to_tensor(quant::rtn(w.data(), rows, cols, *quant::w8a8_codec()), *quant::w8a8_codec(),
                                     quant::f32_view(w.data(), rows, cols))
                  : Tensor::from_f32("w", {cols, rows}, w.data(), t);
  for (auto _ : st) {
    kernels::matmul(W, x.data(), cols, ntok, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetLabel(type_name(t));
  st.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(cols * rows * ntok), benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}
BENCHMARK(BM_Matmul)->ArgsProduct({{int(DType::F32), int(DType::F16), int(DType::Q8_0), int(DType::Q4_0), int(DType::Q4_1), -1}, {1, 64}});
