// Storing a model's block linears in the sparse formats (core/dtype_sparse.h) where their zeros
// allow it: the conversion behind `slimlm convert --sparse`. Makes no zeros itself (that is
// pruning, src/prune); it only changes how existing zeros are stored.
#pragma once
#include "model/model.h"
#include <string>

namespace slimlm {

// Measured crossover (bench/sparse_bench.sh -> bench/results/sparse-crossover.json, "combined"):
// from 60% zeros on, a 576x1536 plus a 1536x576 bitmap matmul take less time than dense f16 at
// decode and at 64 tokens (per shape: 90% / 60% at decode, 40% / 60% at 64 tokens).
constexpr double kBitmapMinSparsity = 0.6;

enum class SparseMode { NM, Bitmap, Auto };
struct SparseOptions {
  SparseMode mode = SparseMode::Auto;
  int keep = 2, m = 4;                      // NM (Auto tries 2:4)
  double min_sparsity = kBitmapMinSparsity;  // Bitmap and Auto
};
// Parses "2:4" / "4:8" (any N:M), "bitmap" or "auto"; throws Error otherwise.
SparseOptions parse_sparse_mode(const std::string& s);

struct SparseStats {
  int n_nm = 0, n_bitmap = 0, n_dense = 0;  // linears stored each way
  size_t linear_bytes_dense = 0, linear_bytes = 0;  // block linears as `type` vs as stored now
};

// Converts every matrix of `m` to `type` (convert_tensor) except block linears that qualify:
// NM when every group of M inputs of every row has at most N nonzeros, Bitmap when the share of
// zeros is at least min_sparsity (capacity: the tensor's largest row count); Auto tries N:M first.
SparseStats sparsify_model(Model& m, DType type, const SparseOptions& o);

}  // namespace slimlm
