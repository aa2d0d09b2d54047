// Google Benchmark: dense f16 vs 2:4 vs bitmap-sparse matmul on SmolLM2's projection shapes
// (576 -> 1536 and 1536 -> 576), decode (1 token) and a 64-token batch, bitmap at sparsities
// 0..95%. Weights are cycled through copies totalling > 64 MB so they come from memory, as in
// decoding a real model (a single 1.8 MB matrix would sit in cache). bench/sparse_bench.sh
// turns the results into the crossover (bench/results/sparse-crossover.json).
#include "core/dtype_custom.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include <benchmark/benchmark.h>
#include <random>

using namespace slimlm;

namespace {
// args: shape (0: 576 x 1536 rows, 1: 1536 x 576 rows), tokens, format (0 f16, 1 2:4, 2 bitmap), sparsity %
void BM_Sparse(benchmark::State& st) {
  const int64_t cols = st.range(0) == 0 ? 576 : 1536, rows = st.range(0) == 0 ? 1536 : 576;
  const int64_t ntok = st.range(1), fmt = st.range(2), pct = st.range(3);
  std::mt19937 rng(1);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> w(static_cast<size_t>(cols * rows));
  for (auto& v : w) v = d(rng);
  const int64_t zeros = fmt == 1 ? cols / 2 : cols * pct / 100;  // per row, exactly
  for (int64_t r = 0; r < rows; ++r) {
    float* row = w.data() + r * cols;
    if (fmt == 1) {  // 2 of every 4, positions random
      for (int64_t g = 0; g < cols; g += 4) {
        int drop[4] = {0, 1, 2, 3};
        std::shuffle(drop, drop + 4, rng);
        row[g + drop[0]] = row[g + drop[1]] = 0.f;
      }
    } else {
      std::vector<int64_t> idx(static_cast<size_t>(cols));
      for (int64_t c = 0; c < cols; ++c) idx[size_t(c)] = c;
      std::shuffle(idx.begin(), idx.end(), rng);
      for (int64_t i = 0; i < zeros; ++i) row[idx[size_t(i)]] = 0.f;
    }
  }
  const DType t = fmt == 0 ? DType::F16 : fmt == 1 ? nm_type(2, 4) : bitmap_type(std::max<int64_t>(1, cols - zeros));
  const Tensor one = Tensor::from_f32("w", {cols, rows}, w.data(), t);
  std::vector<Tensor> copies;  // distinct buffers: > 64 MB of weights in total
  const size_t n_copies = std::max<size_t>(2, (size_t(64) << 20) / std::max<size_t>(1, one.nbytes) + 1);
  for (size_t i = 0; i < n_copies; ++i) {
    auto buf = std::make_shared<std::vector<uint8_t>>(one.data, one.data + one.nbytes);
    Tensor c = one;
    c.data = buf->data();
    c.keep = buf;
    copies.push_back(c);
  }
  std::vector<float> x(size_t(cols * ntok)), y(size_t(rows * ntok));
  for (auto& v : x) v = d(rng);
  size_t i = 0;
  for (auto _ : st) {
    kernels::matmul(copies[i++ % n_copies], x.data(), cols, ntok, y.data(), rows);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetLabel(type_name(t));
  st.counters["bytes_per_weight"] = double(one.nbytes) / double(cols * rows);
}

void args(benchmark::internal::Benchmark* b) {
  for (int shape : {0, 1})
    for (int ntok : {1, 64}) {
      b->Args({shape, ntok, 0, 0});
      b->Args({shape, ntok, 1, 50});
      for (int pct : {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95}) b->Args({shape, ntok, 2, pct});
    }
}
}  // namespace

BENCHMARK(BM_Sparse)->Apply(args)->Unit(benchmark::kMicrosecond);
