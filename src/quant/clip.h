// Clipping-range calibration under a Codec (min-max, percentile, MSE grid search) and for
// activations (TensorRT-style histogram KL), plus int8-style fake quantization of activation
// rows with a static (calibrated, per-tensor) or dynamic (per-token absmax) scale.
//
// Clip ratios are what Codec::fit takes: a ratio r in (0, 1] shrinks the codec's own range
// (uniform asym: [min(x,0), max(x,0)]·r; sym and NF grids: absmax·r; ggml's affine q4_1/q5_1
// shrink around the middle). They feed rtn_row's per-group `clip` array directly.
//
// MSE search (as in AWQ's auto_clip and llama.cpp's make_qx_quants, here on an explicit grid):
//     r* = argmin_{r in grid} Σ_i s_i (x_i − Q_r(x_i))²,   s_i = per-element importance (e.g. E[x_in²]).
// KL calibration (Migacz 2017, "8-bit Inference with TensorRT", GTC): a histogram of |x| with
// 2048 bins; for each candidate threshold i (in bins, from 2^(b-1) upward) the reference
// distribution P = hist[0:i] with the clipped tail mass added to its last bin, and Q = hist[0:i]
// merged into 2^(b-1) quantization levels and spread back over the non-empty bins of P;
//     T* = argmin_i KL(P ‖ Q) = Σ_j P_j log(P_j / Q_j),   threshold = i · bin_width.
#pragma once
#include "quant/codec.h"
#include <cstdint>
#include <vector>

namespace slimlm::quant {

// ---- weights: clip ratio per group ------------------------------------------------------

// The p-th percentile (p in [0, 100]) of x[0..n) with linear interpolation between order
// statistics, as numpy.percentile's default: h = (n-1)·p/100, a[⌊h⌋] + (h−⌊h⌋)(a[⌊h⌋+1] − a[⌊h⌋]).
float percentile(const float* x, int64_t n, double p);

// Ratio that clips a group to its p-th percentile: sym → P_p(|x|) / max|x|; asym → the larger of
// P_p(x)/max(x,0) and P_{100−p}(x)/min(x,0), so both percentiles stay inside the shrunken range.
// 1 for p = 100 (min-max) or an all-zero group; never below 1e-6.
float clip_percentile(const float* x, int64_t n, double p, bool sym);

// Candidate ratios max, max−step, ... down to min (inclusive up to 1e-9), each float(max − k·step)
// computed in double, so the default grid is exactly float(1.00), float(0.99), ..., float(0.50).
struct ClipGrid {
  double max = 1.0, min = 0.5, step = 0.01;
  std::vector<float> ratios() const;
};

// Σ_i s_i (x_i − Q(x_i))² of a round trip of x[0..n) (n <= c.group()) fitted with `clip`;
// importance == nullptr means s_i = 1. Accumulated in double.
double roundtrip_sse(const Codec& c, const float* x, int64_t n, float clip, const float* importance = nullptr);

// The grid ratio with the least roundtrip_sse (ties: the larger ratio, i.e. the first on the grid).
float clip_mse(const Codec& c, const float* x, int64_t n, const float* importance = nullptr, const ClipGrid& grid = {});

// clip_mse for every group of a row w[0..n) (importance indexed like w: per input channel);
// the result has ceil(n / c.group()) entries and is rtn_row's `clip` argument.
std::vector<float> clip_mse_row(const Codec& c, const float* w, int64_t n, const float* importance = nullptr,
                                const ClipGrid& grid = {});

// ---- activations: static ranges -----------------------------------------------------------

// Histogram of |x| over [0, amax) with a fixed number of bins, filled batch by batch. When a batch
// holds a larger |x| the range doubles (adjacent bins merge) until it fits: the range is the first
// non-zero batch's max|x| times a power of two (one batch: exactly max|x|). Bins are [k·w, (k+1)·w),
// the last one closed, so after a doubling the old top value counts one bin low.
class AbsHistogram {
 public:
  explicit AbsHistogram(int bins = 2048);  // bins: even, >= 2
  void add(const float* x, int64_t n);
  int bins() const { return int(counts_.size()); }
  float amax() const { return amax_; }     // upper edge of the last bin
  float max_seen() const { return max_seen_; }
  const std::vector<double>& counts() const { return counts_; }
 private:
  std::vector<double> counts_;
  float amax_ = 0, max_seen_ = 0;
};

// Threshold T (clip |x| to T) minimising KL(P ‖ Q) for a symmetric `bits`-bit grid (2^(b-1)
// levels per side; TensorRT: bits = 8, 128 levels). Returns max_seen() when the histogram has
// fewer bins than levels, and 0 for an empty or all-zero histogram.
float kl_threshold(const AbsHistogram& h, int bits = 8);
float kl_threshold(const float* x, int64_t n, int bits = 8, int bins = 2048);

// Scale of a symmetric b-bit grid clipping at `threshold`: threshold / (2^(b-1) − 1).
float act_scale(float threshold, int bits = 8);

// Quantize-dequantize in place on a symmetric b-bit grid: q = clamp(nearbyint(x/s), −qmax, qmax),
// x = s·q, qmax = 2^(b-1) − 1 (round half to even). scale > 0: static (calibrated, e.g.
// act_scale(kl_threshold(...))); scale == kDynamicScale: per call, s = max|x| / qmax (per token
// when called per row). Returns the scale used (0 leaves an all-zero row as it is).
constexpr float kDynamicScale = 0.0f;
float fake_quant_act(float* x, int64_t n, int bits, float scale = kDynamicScale);
// The same for n_tok rows of n values, row stride ld (OpenMP over rows; dynamic = per token).
void fake_quant_act_rows(float* x, int64_t n_tok, int64_t n, int64_t ld, int bits, float scale = kDynamicScale);

}  // namespace slimlm::quant
