// FLAP: An et al. 2024, "Fluctuation-based Adaptive Structured Pruning for Large Language
// Models" (AAAI). For an output projection y = W x (o or down) and input channel j:
//   fluctuation  S_j = Var_n[x_{n,j}] · ‖W[:, j]‖²                         (eq. 4, sample variance)
//   head / neuron score = Σ_j over its channels; standardized per module type over all layers
//   Ŝ = (S − mean(S)) / std(S)                                              (eq. 6, "AL-AM")
// Units are removed globally in order of Ŝ until the parameter budget is met; the removed
// channels' mean contribution becomes a bias: b = Σ_{j removed} W[:, j] · E[x_j]   (eq. 8).
#include "core/error.h"
#include "prune/structured.h"
#include <algorithm>
#include <cmath>
#include <tuple>

namespace slimlm::prune {

std::vector<float> bias_compensation(const float* w, int64_t rows, int64_t cols, const std::vector<int64_t>& removed,
                                     const quant::SiteStats& st) {
  if (st.k != cols) fail("bias compensation: statistics of ", st.k, " channels for ", cols, " columns");
  std::vector<double> b(size_t(rows), 0.0);
  for (int64_t j : removed) {
    const double mu = st.mean(j);
    for (int64_t i = 0; i < rows; ++i) b[size_t(i)] += double(w[i * cols + j]) * mu;
  }
  return std::vector<float>(b.begin(), b.end());
}

namespace {
void standardize(std::vector<std::vector<double>>& s) {
  double n = 0, sum = 0, sq = 0;
  for (const auto& v : s)
    for (double x : v) { n += 1; sum += x; sq += x * x; }
  if (n < 2) return;
  const double mean = sum / n, sd = std::sqrt(std::max(0.0, (sq - sum * sum / n) / (n - 1)));
  for (auto& v : s)
    for (double& x : v) x = sd > 0 ? (x - mean) / sd : 0.0;
}
}  // namespace

void plan_flap(const Model& m, const CalibStats& st, int64_t target, bool compensate, std::vector<LayerKeep>& keep) {
  const HParams& hp = m.hp;
  const int64_t L = hp.n_layer, D = hp.head_dim, E = hp.n_embd;
  std::vector<std::vector<double>> hs = head_scores(m, &st, Score::Fluctuation);
  std::vector<std::vector<double>> ns = neuron_scores(m, &st, Score::Fluctuation);
  standardize(hs);
  standardize(ns);
  // One ranking of every unit: (score, layer, is_neuron, index).
  std::vector<std::tuple<double, int64_t, int, int64_t>> all;
  for (int64_t l = 0; l < L; ++l) {
    for (size_t u = 0; u < hs[size_t(l)].size(); ++u) all.emplace_back(hs[size_t(l)][u], l, 0, int64_t(u));
    for (size_t j = 0; j < ns[size_t(l)].size(); ++j) all.emplace_back(ns[size_t(l)][j], l, 1, int64_t(j));
  }
  std::sort(all.begin(), all.end());
  std::vector<std::vector<int64_t>> rm_heads(static_cast<size_t>(L)), rm_neurons(static_cast<size_t>(L));
  std::vector<int64_t> heads_left(static_cast<size_t>(L)), neurons_left(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    heads_left[size_t(l)] = int64_t(hs[size_t(l)].size());
    neurons_left[size_t(l)] = hp.n_ff_at(l);
  }
  int64_t removed = 0;
  for (const auto& [score, l, is_neuron, idx] : all) {
    if (removed >= target) break;
    if (is_neuron) {
      if (neurons_left[size_t(l)] == 1) continue;  // a layer keeps at least one neuron and one head
      --neurons_left[size_t(l)];
      rm_neurons[size_t(l)].push_back(idx);
      removed += neuron_params(hp);
    } else {
      if (heads_left[size_t(l)] == 1) continue;
      --heads_left[size_t(l)];
      rm_heads[size_t(l)].push_back(idx);
      removed += head_unit_params(hp, head_units(hp, l)[size_t(idx)]);
    }
  }
  if (removed < target) fail("FLAP cannot remove ", target, " parameters while keeping a head and a neuron in every layer");
  for (int64_t l = 0; l < L; ++l) {
    auto& rh = rm_heads[size_t(l)];
    auto& rn = rm_neurons[size_t(l)];
    std::sort(rh.begin(), rh.end());
    std::sort(rn.begin(), rn.end());
    LayerKeep& k = keep[size_t(l)];
    keep_heads_except(hp, l, rh, k);
    k.neurons = complement(rn, hp.n_ff_at(l));
    if (!compensate) continue;
    const Block& b = m.blocks[size_t(l)];
    std::vector<int64_t> cols;  // o's input channels of the removed query heads
    const auto units = head_units(hp, l);
    for (int64_t u : rh)
      for (int64_t h : units[size_t(u)].q)
        for (int64_t i = h * D; i < (h + 1) * D; ++i) cols.push_back(i);
    if (!cols.empty()) k.bo = bias_compensation(b.wo.to_f32().data(), E, b.wo.cols(), cols, st.attn_out[size_t(l)]);
    if (!rn.empty()) k.b_down = bias_compensation(b.w_down.to_f32().data(), E, b.w_down.cols(), rn, st.ffn_down[size_t(l)]);
  }
}

}  // namespace slimlm::prune
