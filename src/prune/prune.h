// Post-training pruning of the block linears over the layer-wise calibration pipeline:
// importance scores (magnitude, Wanda, RIA), SparseGPT's OBS reconstruction, OWL's per-layer
// sparsities, and prune_model, which runs a method over a whole model (the CLI's `slimlm prune`).
#pragma once
#include "model/model.h"
#include "prune/mask.h"
#include "quant/codec.h"
#include "quant/layerwise.h"
#include "quant/methods.h"
#include <cstdint>
#include <string>
#include <vector>

namespace slimlm::prune {

// What to remove: `sparsity` of each comparison group, or N:M when m > 0.
struct Pattern {
  double sparsity = 0.5;
  int n = 0, m = 0;
  bool nm() const { return m > 0; }
};
enum class Group { Row, Layer };  // comparison group of unstructured masks
// The keep-mask of a score matrix under `p` (N:M ignores the group).
Mask select_mask(const float* score, int64_t rows, int64_t cols, const Pattern& p, Group g);

// ---- importance scores (rows x cols, larger = keep) ----
// magnitude.cpp: |W_ij|.
std::vector<float> magnitude_scores(const float* w, int64_t n);
// Global magnitude over many tensors: the threshold t such that pruning every |w| < t plus the
// first `ties[i]` weights equal to t in tensor i (in order) removes exactly prune_count(s, total).
struct GlobalThreshold { float t = 0; std::vector<int64_t> ties; };
GlobalThreshold global_magnitude_threshold(const std::vector<const Tensor*>& ts, double sparsity);
// wanda.cpp: |W_ij| · ‖X_j‖₂ (‖X_j‖₂ = sqrt of the site's sum of squares of input j).
std::vector<float> wanda_scores(const float* w, int64_t rows, int64_t cols, const quant::SiteStats& st);
// ria.cpp: (|W_ij| / Σ_k |W_ik| + |W_ij| / Σ_k |W_kj|) · ‖X_j‖₂^a.
std::vector<float> ria_scores(const float* w, int64_t rows, int64_t cols, const quant::SiteStats& st, double a = 0.5);

// ---- SparseGPT (sparsegpt.cpp) ----
struct SparseGptOptions {
  double damp = 0.01;       // λ = damp · mean(diag H)
  int64_t block = 128;      // lazy batch, and the column block over which the mask is chosen
  const Mask* fixed = nullptr;          // use this mask instead of choosing one (tests: sequential OBS)
  const quant::Codec* codec = nullptr;  // joint quantization of the kept weights (GPTQ in the same sweep)
};
struct SparseGptResult {
  std::vector<float> w;     // reconstructed weights (dequantized when a codec is given), zeros where pruned
  Mask keep;
  quant::QMatrix q;         // codes and fits (only with a codec)
  double err = 0;           // OBS loss estimate Σ (w − q)² / 2[H⁻¹]_jj
  int64_t dead = 0;         // inputs never active in calibration
};
SparseGptResult sparsegpt(const float* w, int64_t rows, int64_t cols, const quant::SiteStats& st, const Pattern& p,
                          const SparseGptOptions& o = {});

// ---- OWL (owl.cpp) ----
// Layer outlier ratio D_l: the fraction of Wanda scores |W_ij|·‖X_j‖₂ over all of a block's
// linears that exceed m · their mean.
struct OutlierCount { int64_t outliers = 0, total = 0; };
OutlierCount count_outliers(const std::vector<std::vector<float>>& scores, double m);
// Per-layer sparsities s_l = S − 2λ·(d_l − mean d), d_l = (D_l − min D) / (max D − min D),
// so the s_l average S and span 2λ (clamped to [0, 0.99]).
std::vector<double> owl_sparsities(const std::vector<double>& ratios, double sparsity, double lambda);

// ---- DSnoT (dsnot.cpp): training-free mask refinement ----
struct DsnotOptions {
  int max_cycles = 50;  // swaps per row at most
  double tol = 0.0;     // stop a row once |ε| <= tol · its starting |ε|
};
struct DsnotReport { int64_t swaps = 0; double err_before = 0, err_after = 0; };  // Σ_rows |ε_i|
// Refines `keep` (rows x cols, the mask of w under pattern p) in place; the count per row and
// the N:M pattern are kept. Needs the layer's input means and norms (st.sum, st.sum_sq).
DsnotReport dsnot_refine(const float* w, int64_t rows, int64_t cols, const quant::SiteStats& st, const Pattern& p,
                         Mask& keep, const DsnotOptions& o = {});

// ---- a whole model ----
enum class Method { Magnitude, Wanda, Ria, SparseGpt };
const char* method_name(Method m);

struct PruneOptions {
  Method method = Method::Wanda;
  Pattern pattern;
  Group group = Group::Row;   // unstructured comparison group (magnitude and RIA: per layer by default in the CLI)
  bool global = false;        // magnitude: one threshold over all block linears of the model
  bool owl = false;           // per-layer sparsities from outlier ratios (a stats-only pass first)
  double owl_m = 5, owl_lambda = 0.08;
  SparseGptOptions sparsegpt;
  bool dsnot = false;         // refine magnitude / Wanda / RIA masks with DSnoT
  DsnotOptions dsnot_opt;
  DType store = DType::F16;   // storage type of the pruned linears (ignored with a SparseGPT codec)
  bool progress = true;
};
// Throws Error for an invalid combination (sparsity outside [0, 1), N > M, --owl with N:M, ...).
void validate(const PruneOptions& o);
bool needs_calibration(const PruneOptions& o);

struct LinearReport { std::string name; int64_t layer = 0, zeros = 0, n = 0; double target = 0; };
struct PruneReport {
  std::vector<LinearReport> linears;
  std::vector<double> layer_sparsity;   // target per layer (OWL) or S
  std::vector<double> outlier_ratio;    // OWL's D_l (empty without OWL)
  double seconds = 0, sparsegpt_err = 0;
  DsnotReport dsnot;                    // summed over all linears
  int64_t calib_tokens = 0;
  double sparsity() const;              // achieved: zeros / weights over all block linears
  double layer_achieved(int64_t l) const;
};
PruneReport prune_model(Model& m, const std::vector<std::vector<int32_t>>& calib, const PruneOptions& o);

}  // namespace slimlm::prune
