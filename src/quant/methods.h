// Post-training weight quantization methods over the layer-wise pipeline: RTN (baseline),
// GPTQ (quant/gptq.cpp) and AWQ (quant/awq.cpp). Each turns f32 weights plus calibration
// statistics into codes and group fits of a Codec, and a Tensor stored in the codec's format.
#pragma once
#include "model/model.h"
#include "quant/layerwise.h"
#include "quant/codec.h"
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace slimlm::quant {

// A quantized matrix: per-row codes/fits (RowQuant.deq is the dequantized row).
struct QMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<RowQuant> r;
  std::vector<float> deq() const;  // rows x cols
};
// Stores a quantized matrix as an owned Tensor in the codec's format (name/shape of `like`).
Tensor to_tensor(const QMatrix& q, const Codec& c, const Tensor& like);
// Borrowed f32 view of a rows x cols buffer (for kernels::matmul).
Tensor f32_view(const float* data, int64_t rows, int64_t cols);

// RTN: every group fitted by min-max (times clip[r * n_groups + g] when given) and rounded.
QMatrix rtn(const float* w, int64_t rows, int64_t cols, const Codec& c, const std::vector<float>* clip = nullptr);

// GPTQ (Frantar et al. 2022), lazy-batch Cholesky form.
struct GptqOptions {
  double damp = 0.01;        // λ = damp · mean(diag H)
  bool act_order = false;    // columns in order of decreasing H_jj; group fits then come from the
                             // original weights ("static groups"), so groups stay contiguous
  int64_t block = 128;       // lazy-batch width (rounded to a multiple of the group size)
};
struct GptqReport { double err = 0; int64_t dead = 0; };
QMatrix gptq(const float* w, int64_t rows, int64_t cols, const SiteStats& st, const Codec& c,
             const GptqOptions& o, GptqReport* rep = nullptr);

// Per-input-channel scaling (quant/scaling.cpp), shared by AWQ and SmoothQuant: a block's
// weights as f32 copies by site (site_weights order) and the scales applied to them.
struct ScaledBlock {
  std::vector<std::vector<float>> w[kLinearSites];
  std::vector<float> scale[kLinearSites];   // s per input channel (empty: not scaled)
};
ScaledBlock f32_weights(Block& b);
// Whether s (one per o input channel, n_head·head_dim) is equal across the query heads that
// share a kv head — the condition for folding o's scales into v's rows exactly.
bool tied_across_kv_groups(const HParams& hp, const std::vector<float>& s);
// W ← W·diag(s) for the weights in sb.w reading `site`, and diag(s)⁻¹ folded into the producer
// of the site's input: attn_norm / ffn_norm (in b), or up's / v's rows in sb.w (bv in b). The
// block's function is unchanged in exact arithmetic. AttnOut needs tied_across_kv_groups(s).
void apply_input_scales(Block& b, const HParams& hp, ScaledBlock& sb, LinearSite site, const std::vector<float>& s);

// AWQ (Lin et al. 2024): per-input-channel scales s = mean|x|^α (α by grid search on the
// block's calibration sample) folded into the preceding norm / linear, then a per-group clip
// search; the block's weights are returned as f32 (scaled) for the final rounding step.
struct AwqOptions {
  int grid = 20;             // α ∈ {0, 1/grid, ..., (grid-1)/grid}
  bool clip = true;          // search per-group clip ratios (not for q/k, as in the paper)
  int clip_grid = 10;        // ratios 1, 1 - 0.5/clip_grid, ..., 0.5 + 0.5/clip_grid
  int64_t clip_tokens = 128; // calibration rows used by the clip search
};
struct AwqBlock : ScaledBlock {  // w: f32 weights after scaling
  std::vector<std::vector<float>> clip[kLinearSites];   // per weight: rows x n_groups clip ratios (empty: 1)
  double alpha[kLinearSites] = {-1, -1, -1, -1};         // chosen α (-1: site not scaled)
};
AwqBlock awq_block(Model& m, int64_t layer, const BlockStats& st, const Codec& c, const AwqOptions& o);
// The same with a codec per weight (a llama.cpp-style type mixture); nullptr: the weight is not
// quantized (kept in f16), so it adds no error to the α search and gets no clip search.
using CodecFor = std::function<const Codec*(const Tensor&)>;
AwqBlock awq_block(Model& m, int64_t layer, const BlockStats& st, const CodecFor& codec_for, const AwqOptions& o);

// SmoothQuant (Xiao et al. 2023): s_j = max|X_j|^α / max|W_j|^(1−α) per input channel from the
// calibration absmax, applied with apply_input_scales; the weights are returned as f32 for the
// int8 rounding (w8a8_codec). o's scales are tied across each kv head's query heads (GQA).
struct SmoothOptions {
  double alpha = 0.5;                                 // migration strength
  bool site[kLinearSites] = {true, true, true, true}; // sites to smooth (q/k/v, o, gate/up, down)
};
std::vector<float> smooth_scales(const std::vector<float>& x_absmax, const std::vector<float>& w_absmax, double alpha);
ScaledBlock smoothquant_block(Model& m, int64_t layer, const BlockStats& st, const SmoothOptions& o);

}  // namespace slimlm::quant
