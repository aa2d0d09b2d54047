// prune_model: one pruning method over every block linear of a model, on the layer-wise
// pipeline (each block is pruned with statistics of the already-pruned blocks' outputs).
// With OWL a stats-only pass over the dense model first measures each block's outlier ratio.
#include "core/error.h"
#include "prune/prune.h"
#include <chrono>

namespace slimlm::prune {

const char* method_name(Method m) {
  switch (m) {
    case Method::Magnitude: return "magnitude";
    case Method::Wanda: return "wanda";
    case Method::Ria: return "ria";
    case Method::SparseGpt: return "sparsegpt";
  }
  return "?";
}

void validate(const PruneOptions& o) {
  const Pattern& p = o.pattern;
  if (p.nm()) {
    if (p.n <= 0 || p.m <= 0 || p.n > p.m) fail("--nm N:M needs 0 < N <= M, not ", p.n, ":", p.m);
  } else if (!(p.sparsity >= 0 && p.sparsity < 1)) {
    fail("--sparsity must be in [0, 1), not ", p.sparsity);
  }
  if (p.m < 0 || (p.m == 0 && p.n != 0)) fail("--nm N:M needs 0 < N <= M, not ", p.n, ":", p.m);
  if (o.owl && p.nm()) fail("--owl sets per-layer sparsities and does not combine with --nm");
  if (o.global && o.method != Method::Magnitude) fail("--global is for --method magnitude only");
  if (o.global && (p.nm() || o.owl)) fail("--global does not combine with --nm or --owl");
  if (o.sparsegpt.codec && o.method != Method::SparseGpt) fail("joint quantization (--quant) is for --method sparsegpt only");
  if (!(o.owl_m > 0) || !(o.owl_lambda >= 0)) fail("OWL needs M > 0 and lambda >= 0");
  if (o.dsnot && o.method == Method::SparseGpt) fail("--dsnot refines magnitude / wanda / ria masks; SparseGPT already reconstructs the weights");
  if (o.dsnot && o.global) fail("--dsnot does not combine with --global");
  if (o.dsnot && o.dsnot_opt.max_cycles < 0) fail("--dsnot-cycles must be >= 0");
}

bool needs_calibration(const PruneOptions& o) { return o.method != Method::Magnitude || o.owl || o.dsnot; }

double PruneReport::sparsity() const {
  int64_t z = 0, n = 0;
  for (const auto& l : linears) { z += l.zeros; n += l.n; }
  return n ? double(z) / double(n) : 0.0;
}

double PruneReport::layer_achieved(int64_t layer) const {
  int64_t z = 0, n = 0;
  for (const auto& l : linears)
    if (l.layer == layer) { z += l.zeros; n += l.n; }
  return n ? double(z) / double(n) : 0.0;
}

namespace {
// OWL's first pass: the outlier ratio of every block, from the dense model's activations.
std::vector<double> outlier_ratios(Model& m, const std::vector<std::vector<int32_t>>& calib, const PruneOptions& o) {
  std::vector<double> ratios(size_t(m.hp.n_layer), 0.0);
  quant::Wants wants;
  auto measure = [&](Model& mm, int64_t l, quant::BlockStats& st) {
    std::vector<std::vector<float>> scores;
    for (int s = 0; s < kLinearSites; ++s)
      for (Tensor* t : quant::site_weights(mm.blocks[size_t(l)], LinearSite(s))) {
        const std::vector<float> w = t->to_f32();
        scores.push_back(wanda_scores(w.data(), t->rows(), t->cols(), st[size_t(s)]));
      }
    const OutlierCount c = count_outliers(scores, o.owl_m);
    ratios[size_t(l)] = c.total ? double(c.outliers) / double(c.total) : 0.0;
  };
  quant::run_layerwise(m, calib, wants, measure, o.progress);
  return ratios;
}
}  // namespace

PruneReport prune_model(Model& m, const std::vector<std::vector<int32_t>>& calib, const PruneOptions& o) {
  validate(o);
  const auto t0 = std::chrono::steady_clock::now();
  PruneReport rep;
  rep.layer_sparsity.assign(size_t(m.hp.n_layer), o.pattern.sparsity);
  if (o.owl) {
    rep.outlier_ratio = outlier_ratios(m, calib, o);
    rep.layer_sparsity = owl_sparsities(rep.outlier_ratio, o.pattern.sparsity, o.owl_lambda);
  }
  GlobalThreshold global;
  if (o.global) {
    std::vector<const Tensor*> ts;
    for (const Block& b : m.blocks)
      for (const Tensor* t : b.linears()) ts.push_back(t);
    global = global_magnitude_threshold(ts, o.pattern.sparsity);
  }
  quant::Wants wants;
  wants.stats = o.method != Method::Magnitude || o.dsnot;
  wants.hessian = o.method == Method::SparseGpt;
  auto compress = [&](Model& mm, int64_t l, quant::BlockStats& st) {
    Pattern p = o.pattern;
    p.sparsity = rep.layer_sparsity[size_t(l)];
    int64_t index = l * 7;  // site_weights visits the linears in Block::linears() order
    for (int s = 0; s < kLinearSites; ++s)
      for (Tensor* t : quant::site_weights(mm.blocks[size_t(l)], LinearSite(s))) {
        const int64_t rows = t->rows(), cols = t->cols();
        std::vector<float> w = t->to_f32();
        const quant::SiteStats& ss = st[size_t(s)];
        if (o.method == Method::SparseGpt) {
          SparseGptResult r = sparsegpt(w.data(), rows, cols, ss, p, o.sparsegpt);
          rep.sparsegpt_err += r.err;
          if (o.sparsegpt.codec) *t = quant::to_tensor(r.q, *o.sparsegpt.codec, *t);
          w = std::move(r.w);
        } else {
          Mask keep;
          if (o.method == Method::Magnitude) {
            const std::vector<float> sc = magnitude_scores(w.data(), rows * cols);
            keep = o.global ? mask_threshold(sc.data(), rows * cols, global.t, global.ties[size_t(index)])
                            : select_mask(sc.data(), rows, cols, p, o.group);
          } else {
            const std::vector<float> sc = o.method == Method::Wanda ? wanda_scores(w.data(), rows, cols, ss)
                                                                   : ria_scores(w.data(), rows, cols, ss);
            keep = select_mask(sc.data(), rows, cols, p, o.group);
          }
          if (o.dsnot) {
            const DsnotReport d = dsnot_refine(w.data(), rows, cols, ss, p, keep, o.dsnot_opt);
            rep.dsnot.swaps += d.swaps;
            rep.dsnot.err_before += d.err_before;
            rep.dsnot.err_after += d.err_after;
          }
          apply_mask(w.data(), keep);
        }
        if (!(o.method == Method::SparseGpt && o.sparsegpt.codec)) *t = Tensor::from_f32(t->name, t->ne, w.data(), o.store);
        const std::vector<float> stored = t->to_f32();
        LinearReport lr;
        lr.name = t->name; lr.layer = l; lr.n = rows * cols;
        lr.zeros = count_zeros(stored.data(), lr.n);
        lr.target = p.nm() ? 1.0 - double(p.n) / double(p.m) : p.sparsity;
        rep.linears.push_back(lr);
        ++index;
      }
  };
  const quant::RunInfo info = quant::run_layerwise(m, calib, wants, compress, o.progress);
  rep.calib_tokens = info.tokens;
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace slimlm::prune
