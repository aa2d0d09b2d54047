// Non-uniform weight grids: the NF (normal-float) codec with per-group absmax scales, and
// per-row codebooks fitted by sensitivity-weighted 1-D k-means (SqueezeLLM), written in
// slimlm's Grid and Codebook layouts (core/dtype_custom.h).
//
// NF (QLoRA, Dettmers et al. 2023, "4-bit NormalFloat Quantization"): per group of `group` weights
//     s = absmax(x)·clip (stored f16),   q_i = argmin_k |x_i/s − nf_grid(b)[k]|,   x̂_i = s·nf_grid(b)[q_i].
// Codebook (SqueezeLLM, Kim et al. 2023, "Sensitivity-Based Non-uniform Quantization": the
// weighted k-means objective with the diagonal Fisher approximation of the loss): per
// output row w, 2^b centroids c minimising the sensitivity-weighted error
//     min_c Σ_j s_j (w_j − c[q_j])²,   s_j = e.g. H_jj = Σ_t x_tj² (diag of XᵀX) or the Fisher diagonal,
// in 1-D. SqueezeLLM runs Lloyd's algorithm (sklearn KMeans); here the deterministic init is by
// default the exact optimum (in 1-D the optimal clusters are contiguous runs of the sorted values,
// so dynamic programming finds it: Wang & Song 2011, Ckmeans.1d.dp,
//     D_m(i) = min_{j<=i} D_{m−1}(j) + cost(j, i),  cost = weighted SSE of the sorted run [j, i),
// the optimal j is monotone in i, so each of the 2^b layers takes O(n log n) by divide and conquer),
// or the weighted quantiles; then a fixed number of Lloyd iterations (assign to the nearest
// centroid, move each centroid to its cluster's weighted mean; an empty cluster re-seeds on the
// worst-served value), which polish the DP result against rounding and improve a quantile init.
// Centroids are stored as f16 and the codes re-assigned to the stored values.
#pragma once
#include "quant/codec.h"
#include <cstdint>
#include <memory>
#include <vector>

namespace slimlm::quant {

// Grid codec "nf<b>g<group>" (bits 2..8). GroupFit::scale = f16(absmax·clip); zero is unused.
std::unique_ptr<Codec> nf_codec(int bits, int64_t group);

enum class KmeansInit {
  Optimal,    // exact weighted 1-D k-means by dynamic programming (O(2^b · n log n) per row)
  Quantiles,  // weighted quantiles at (k + 1/2) / 2^b (Lloyd from here is a local method)
};

struct KmeansOptions {
  int iters = 30;             // Lloyd iterations (stops early once no code changes)
  KmeansInit init = KmeansInit::Optimal;
  bool f16_centroids = true;  // round centroids to f16 (the stored precision) and re-assign codes
};

struct KmeansResult {
  std::vector<uint8_t> codes;      // n codes in [0, 2^bits)
  std::vector<float> centroids;    // 2^bits values, sorted ascending (duplicates when n < 2^bits)
  double objective = 0;            // Σ_j s_j (w_j − centroids[codes_j])²
};

// Sensitivity-weighted 1-D k-means of one row w[0..n) with 2^bits centroids. weight == nullptr
// or an all-zero weight vector means unit weights; negative weights are an Error.
KmeansResult kmeans_row(const float* w, const float* weight, int64_t n, int bits, const KmeansOptions& opt = {});

// The centroids kmeans_row starts its Lloyd iterations from (sorted; 2^bits of them).
std::vector<float> kmeans_init(const float* w, const float* weight, int64_t n, int bits,
                               KmeansInit init = KmeansInit::Optimal);

// Σ_j s_j (w_j − c[q_j])² with q_j the nearest of the sorted centroids c (ties: the lower one).
double codebook_objective(const float* w, const float* weight, int64_t n, const std::vector<float>& centroids);

// Writes a row in the Codebook layout (2^bits f16 centroids | packed codes); dst holds
// row_bytes(custom_type({Codebook, bits}), n) bytes. Centroids are rounded to f16 here.
void encode_codebook_row(const KmeansResult& r, int bits, int64_t n, uint8_t* dst);

// A Codec for one row's fixed codebook (e.g. from kmeans_row, for GPTQ-style error feedback on a
// per-row LUT): group() is the whole row (any n up to 2^30), fit() ignores its input, code() is
// the nearest centroid, value() the centroid as stored (f16), encode_row writes LUT + codes.
std::unique_ptr<Codec> codebook_codec(int bits, const std::vector<float>& centroids);

// k-means every row of a rows x n matrix (OpenMP over rows), sensitivity per input channel
// (n values, shared by all rows; nullptr = unit). Returns the encoded matrix
// (row_bytes(lut<bits>, n) per row); deq, when given, receives the dequantized rows x n values.
std::vector<uint8_t> codebook_quantize_matrix(const float* w, int64_t rows, int64_t n, const float* sensitivity,
                                              int bits, std::vector<float>* deq = nullptr, const KmeansOptions& opt = {});

}  // namespace slimlm::quant
