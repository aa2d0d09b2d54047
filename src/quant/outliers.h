// Dense-and-sparse decomposition W = D + S: the few weights that would stretch the quantization
// range (or matter most to the loss) leave the dense matrix D before it is quantized and are kept
// in 16 bits in a row-sorted CSR side matrix S; y = Q(D)·x + S·x at inference.
//
// CsrF16 weights (SqueezeLLM, Kim et al. 2023, "Dense-and-CsrF16 Quantization"; SpQR, Dettmers
// et al. 2023, "unstructured outliers"): keep the top fraction of weights by a score, one of
//     |w_ij|                (magnitude, SqueezeLLM's outliers),
//     |w_ij|·‖x_j‖₂         (activation-aware magnitude, as Wanda's score),
//     w_ij²·H_jj            (sensitivity with the diagonal of H = XᵀX, SqueezeLLM's Fisher-weighted
//                            sensitivity / the numerator of SpQR's OBS error w²/[H⁻¹]_jj).
// Outlier input channels (LLM.int8(), Dettmers et al. 2022, "mixed-precision decomposition"): columns j whose
// activation magnitude max_t |x_tj| exceeds a threshold (6.0 in the paper) stay in 16 bits whole:
//     X·Wᵀ = Σ_{j ∈ O} x_j w_jᵀ (f16) + Σ_{j ∉ O} x_j w_jᵀ (quantized).
// Both produce the same CSR side matrix (core/csr.h; stored in GGUF by io/gguf_csr.h). Entries
// moved to S are stored as f16; D keeps the f16 rounding residual w − f16(w) there, so D + S
// equals W exactly before D is quantized.
#pragma once
#include "core/csr.h"
#include <cstdint>
#include <vector>

namespace slimlm::quant {

enum class OutlierScore {
  Magnitude,  // |w_ij|                              (channel stats unused)
  ActNorm,    // |w_ij| · c_j, c_j = ‖x_j‖₂           (channel stats required)
  Hessian,    // w_ij² · c_j,  c_j = H_jj = Σ_t x_tj²  (channel stats required)
};

// How many entries a fraction keeps: ⌊frac·total⌋, computed with a 1e-12 relative tolerance so a
// decimal fraction gives the count it spells (0.29 of 100 → 29, 0.005 of 1000 → 5). frac in [0, 1].
int64_t outlier_count(int64_t total, double frac);

// Moves the outlier_count(rows·cols, frac) highest-scoring entries of the row-major matrix w
// (rows x cols) into the returned side matrix (f16) and leaves w − f16(w) in w at those positions.
// Ties at the threshold score go to the lower flat index (row-major), so the result is deterministic.
CsrF16 split_outliers(float* w, int64_t rows, int64_t cols, double frac, OutlierScore score = OutlierScore::Magnitude,
                      const float* channel_stats = nullptr);

// LLM.int8(): the input channels j with act_absmax[j] > threshold, ascending.
std::vector<int32_t> outlier_channels(const float* act_absmax, int64_t cols, float threshold = 6.0f);
// Moves whole columns (any order, duplicates ignored) of w into a side matrix, as split_outliers does.
CsrF16 split_columns(float* w, int64_t rows, int64_t cols, const std::vector<int32_t>& channels);

}  // namespace slimlm::quant
