// A weight tensor as stored (any storage type, core/dtype.h), the unit kernels multiply and
// loaders fill; and the rotary layout of a model's q/k rows, which the rope kernel follows.
#pragma once
#include "core/csr.h"
#include "core/dtype.h"
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace slimlm {

// A weight tensor in ggml order: ne[0] = row length (cols), ne[1] = rows. Data is either a view
// into a mapped file (kept alive by `keep`) or owned bytes.
struct Tensor {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> ne;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::shared_ptr<const void> keep;  // owner of `data`
  // Dense-and-sparse weights (quant/outliers.h): W = dequant(data) + outliers, a CSR matrix of
  // f16 entries kept out of the quantized part. kernels::matmul and to_f32 include it; GGUF
  // stores it as <name>.outl_* tensors next to the weight (io/gguf_csr.h).
  std::shared_ptr<const CsrF16> outliers;

  bool empty() const { return data == nullptr; }
  int64_t cols() const { return ne.empty() ? 0 : ne[0]; }
  int64_t rows() const { int64_t r = 1; for (size_t i = 1; i < ne.size(); ++i) r *= ne[i]; return r; }
  int64_t nelements() const { return cols() * rows(); }
  const uint8_t* row(int64_t r) const { return data + size_t(r) * row_bytes(type, cols()); }
  std::vector<float> to_f32() const;  // whole tensor, dequantized (outliers added)
  static Tensor from_f32(std::string name, std::vector<int64_t> ne, const float* src, DType type = DType::F32);
};

enum class RopeType { Norm, Neox };  // Norm rotates adjacent pairs (llama), Neox the two halves

}  // namespace slimlm
