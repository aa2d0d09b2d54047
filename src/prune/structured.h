// Structured pruning: removes whole attention heads (KV groups), FFN neurons or blocks so the
// model becomes physically smaller and dense (per-layer shapes, see HParams::head_l). Scores
// come from weight magnitudes, calibration activations, FLAP (flap.cpp) or block influence.
#pragma once
#include "model/model.h"
#include "quant/layerwise.h"
#include <cstdint>
#include <string>
#include <vector>

namespace slimlm::prune {

// What one layer keeps (original indices, ascending) and the biases to add to its output
// projections (FLAP's compensation; empty: none).
struct LayerKeep {
  std::vector<int64_t> q_heads, kv_heads, neurons;
  std::vector<float> bo, b_down;
};

// The prunable attention units of layer l: a whole KV group (its query heads) when the layer
// has more than one KV head, else single query heads (the shared KV head stays).
struct HeadUnit { std::vector<int64_t> q; int64_t kv = -1; };  // kv < 0: query heads only
std::vector<HeadUnit> head_units(const HParams& hp, int64_t l);
int64_t head_unit_params(const HParams& hp, const HeadUnit& u);  // weights removed with the unit
int64_t neuron_params(const HParams& hp);                        // 3 * n_embd (gate/up row, down column)

// Layer l keeps every head unit except `removed_units` (ascending indices into head_units).
void keep_heads_except(const HParams& hp, int64_t l, const std::vector<int64_t>& removed_units, LayerKeep& k);
// Indices of the r lowest scores (ties: lower index first), ascending; and the indices < n not in `removed`.
std::vector<int64_t> lowest(const std::vector<double>& score, int64_t r);
std::vector<int64_t> complement(const std::vector<int64_t>& removed, int64_t n);

// Keep-everything plan for every layer.
std::vector<LayerKeep> keep_all(const Model& m);
// Cuts every block down to `keep` (weights sliced; sliced columns become f32, sliced rows keep
// their type) and sets the per-layer shapes. Throws Error when a layer would lose every head
// or every neuron, or when the kept query heads do not form equal groups over the kept KV heads.
void apply_keep(Model& m, const std::vector<LayerKeep>& keep);
// Removes whole blocks (indices into m.blocks); the sliding-window flags follow the kept blocks.
void drop_blocks(Model& m, std::vector<int64_t> remove);

// Parameters of the seven block linears over all blocks.
int64_t block_linear_params(const Model& m);

// Calibration statistics of every layer on the unpruned model: the inputs of the output
// projection (o) and of down (the pipeline's per-channel statistics, quant::StatsCollector:
// count, sum, sum_sq, sum_abs, absmax), and the mean cosine similarity
// between the residual stream before block l and before block l + span (span 1: ShortGPT's
// block influence is 1 − cos; span n: Gromov et al.'s angular distance of an n-block run).
struct CalibStats {
  std::vector<quant::SiteStats> attn_out, ffn_down;  // per layer
  std::vector<double> cos1;       // per layer: mean cos(x_l, x_{l+1})
  std::vector<double> ang_span;   // per start layer: mean arccos(cos(x_l, x_{l+span})) / π
  int64_t span = 1, tokens = 0;
};
CalibStats calibrate(const Model& m, const std::vector<std::vector<int32_t>>& calib, int64_t span);

// Unit scores per layer: magnitude = squared norm of all the unit's weights; activation =
// Σ_j ‖W[:, j]‖² · E[x_j²] over the unit's input channels j of o / down (structured Wanda).
enum class Score { Magnitude, Activation, Fluctuation };
std::vector<std::vector<double>> head_scores(const Model& m, const CalibStats* st, Score s);
std::vector<std::vector<double>> neuron_scores(const Model& m, const CalibStats* st, Score s);

// The same fraction of units removed in every layer (uniform shapes: stock llama.cpp loads
// them), lowest scores first; `target` parameters to remove in total. Throws Error when the
// target needs every unit of a layer.
void plan_uniform_heads(const Model& m, const std::vector<std::vector<double>>& score, int64_t target, std::vector<LayerKeep>& keep);
void plan_uniform_neurons(const Model& m, const std::vector<std::vector<double>>& score, int64_t target, std::vector<LayerKeep>& keep);

// FLAP (flap.cpp): fluctuation scores standardized per module type, one global ranking of heads
// and neurons, removal until `target` parameters are gone (at least one unit per layer stays),
// and bias compensation of the removed channels.
void plan_flap(const Model& m, const CalibStats& st, int64_t target, bool compensate, std::vector<LayerKeep>& keep);
// Bias that replaces removed input channels of y = W x by their mean: b_i = Σ_{j removed} W_ij E[x_j]
// (w: rows x cols, row-major; returns `rows` values).
std::vector<float> bias_compensation(const float* w, int64_t rows, int64_t cols, const std::vector<int64_t>& removed,
                                     const quant::SiteStats& st);

// Whole blocks: the n least influential (ShortGPT) or the n-block run with the smallest angular
// distance between its input and output (Gromov et al. 2024).
std::vector<int64_t> pick_blocks_influence(const CalibStats& st, int64_t n);
std::vector<int64_t> pick_blocks_span(const CalibStats& st, int64_t n);

}  // namespace slimlm::prune
