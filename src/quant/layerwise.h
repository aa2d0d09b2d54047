// The layer-wise calibration loop shared by quantization and pruning (GPTQ/SparseGPT style):
// calibration sequences run through the model block by block; each block sees the outputs of
// the already-compressed blocks before it, and its linear inputs are summarised as statistics
// (SiteStats) that the methods consume.
#pragma once
#include "model/forward.h"
#include "model/model.h"
#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <vector>

namespace slimlm::quant {

// Statistics of one linear-input site over all calibration tokens.
struct SiteStats {
  int64_t k = 0;                  // input width
  int64_t count = 0;              // tokens seen
  std::vector<double> xtx;        // k x k, sum of x xᵀ (only when wanted)
  std::vector<double> sum_sq;     // per channel: sum of x²
  std::vector<double> sum;        // per channel: sum of x
  std::vector<double> sum_abs;    // per channel: sum of |x|
  std::vector<float> absmax;      // per channel: max |x|
  std::vector<float> sample;      // up to Wants::sample_tokens input rows (k floats each), evenly spaced
  int64_t n_sample = 0;
  double mean_abs(int64_t j) const { return count ? sum_abs[size_t(j)] / double(count) : 0.0; }
  double mean(int64_t j) const { return count ? sum[size_t(j)] / double(count) : 0.0; }
  // Sample variance of channel j over the tokens seen (FLAP's fluctuation).
  double variance(int64_t j) const {
    if (count < 2) return 0.0;
    const double s = sum[size_t(j)];
    return std::max(0.0, (sum_sq[size_t(j)] - s * s / double(count)) / double(count - 1));
  }
};
using BlockStats = std::array<SiteStats, kLinearSites>;

struct Wants {
  bool stats = true;              // false: no calibration pass (RTN)
  bool hessian = false;           // accumulate XᵀX
  int64_t sample_tokens = 0;      // keep this many input rows per site
};

// Collects what a Session's linear layers read into BlockStats: while it lives it is the
// session's observer, and the inputs of each layer between begin(l) and finish(l) are added
// (per channel, tokens in order, so the sums do not depend on the thread count). The one
// accumulation every calibrated method reads: run_layerwise and structured pruning's
// calibration (prune/structured.h) both collect through it.
class StatsCollector {
 public:
  // total_tokens: the calibration tokens in all, which spaces the kept sample rows evenly.
  StatsCollector(Session& s, const Wants& w, int64_t total_tokens);
  ~StatsCollector();                 // stops observing
  StatsCollector(const StatsCollector&) = delete;
  StatsCollector& operator=(const StatsCollector&) = delete;
  void begin(int64_t layer);         // fresh statistics for the layer's four sites
  BlockStats finish(int64_t layer);  // the layer's statistics (XᵀX completed); stops collecting it

 private:
  Session& s_;
  Wants w_;
  int64_t stride_;
  std::vector<BlockStats> layers_;
  std::vector<uint8_t> open_;
};

// For each block l in order: (1) if wants.stats, runs block l as it is on the current
// activations and collects BlockStats; (2) calls compress(m, l, stats), which replaces the
// block's weights; (3) runs the compressed block to make the next block's input.
using CompressFn = std::function<void(Model& m, int64_t layer, BlockStats& stats)>;
struct RunInfo { double seconds = 0; int64_t tokens = 0; };
RunInfo run_layerwise(Model& m, const std::vector<std::vector<int32_t>>& calib, const Wants& wants,
                      const CompressFn& compress, bool progress = true);

// The weights of block `l` that read each site (q/k/v read AttnIn, o AttnOut, gate/up FfnIn, down FfnDown).
std::vector<Tensor*> site_weights(Block& b, LinearSite s);

}  // namespace slimlm::quant
