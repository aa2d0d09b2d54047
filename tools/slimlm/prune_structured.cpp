// `slimlm prune MODEL -o OUT.gguf --method heads|neurons|layers|flap|block-influence
// --sparsity S`: removes attention heads, FFN neurons or whole blocks and writes a smaller dense
// model (per-layer shapes in GGUF as arrays). S is the fraction of block-linear parameters.
#include "prune_structured.h"
#include "common.h"
#include "core/error.h"
#include "eval/eval.h"
#include "model/model.h"
#include "pipeline/calibration.h"
#include "prune/structured.h"
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace slimlm::cli {


int run_structured_prune(const StructuredPruneOptions& o) {
  apply_threads(o.threads);
  const std::string& me = o.method;
  if (me != "heads" && me != "neurons" && me != "layers" && me != "flap" && me != "block-influence")
    fail("unknown --method '", me, "' (heads, neurons, layers, flap, block-influence)");
  if (!(o.sparsity >= 0.0 && o.sparsity < 1.0)) fail("--sparsity must be in [0, 1), not ", o.sparsity);
  if (o.score != "magnitude" && o.score != "activation") fail("--score must be magnitude or activation, not '", o.score, "'");
  const DType type = type_from_name(o.type);
  if (!traits(type).from_f32) fail("cannot write weights of type ", o.type);
  check_model_path(o.model);
  check_output_folder(o.out);
  const auto t0 = std::chrono::steady_clock::now();
  auto m = load_model(o.model);
  const int64_t before = prune::block_linear_params(*m), params_before = m->n_params(), layers_before = m->hp.n_layer;
  const int64_t target = std::llround(o.sparsity * double(before));
  const bool blocks = me == "layers" || me == "block-influence";
  const int64_t n_blocks = blocks ? std::llround(o.sparsity * double(m->hp.n_layer)) : 0;
  if (blocks && n_blocks >= m->hp.n_layer) fail("sparsity ", o.sparsity, " would remove every block");
  const bool calibrated = (blocks && n_blocks > 0) || me == "flap" || ((me == "heads" || me == "neurons") && o.score == "activation");

  prune::CalibStats st;
  if (calibrated && target > 0 && !(blocks && n_blocks == 0)) {
    const auto calib = pipeline::load_calibration(*m, o.calib.options());
    st = prune::calibrate(*m, calib, std::max<int64_t>(1, n_blocks));
  }
  std::vector<int64_t> removed_blocks;
  if (target > 0 && !(blocks && n_blocks == 0)) {
    if (blocks) {
      removed_blocks = me == "layers" ? prune::pick_blocks_span(st, n_blocks) : prune::pick_blocks_influence(st, n_blocks);
      prune::drop_blocks(*m, removed_blocks);
    } else {
      std::vector<prune::LayerKeep> keep = prune::keep_all(*m);
      const prune::Score sc = o.score == "magnitude" ? prune::Score::Magnitude : prune::Score::Activation;
      const prune::CalibStats* sp = calibrated ? &st : nullptr;
      if (me == "heads") prune::plan_uniform_heads(*m, prune::head_scores(*m, sp, sc), target, keep);
      if (me == "neurons") prune::plan_uniform_neurons(*m, prune::neuron_scores(*m, sp, sc), target, keep);
      if (me == "flap") prune::plan_flap(*m, st, target, !o.no_bias, keep);
      prune::apply_keep(*m, keep);
    }
  }
  const int64_t after = prune::block_linear_params(*m);
  save_gguf(*m, o.out, type);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double achieved = 1.0 - double(after) / double(before);
  const HParams& hp = m->hp;
  std::vector<int64_t> heads, heads_kv, ff;
  for (int64_t l = 0; l < hp.n_layer; ++l) { heads.push_back(hp.n_head_at(l)); heads_kv.push_back(hp.n_head_kv_at(l)); ff.push_back(hp.n_ff_at(l)); }
  const double file_mb = double(std::filesystem::file_size(o.out)) / (1024.0 * 1024.0);
  if (o.json) {
    nlohmann::json j = {{"model", o.model}, {"output", o.out}, {"method", me}, {"sparsity", o.sparsity},
                        {"achieved", achieved}, {"block_linear_params_before", before}, {"block_linear_params_after", after},
                        {"params_before", params_before}, {"params_after", m->n_params()}, {"n_layer_before", layers_before},
                        {"n_layer", hp.n_layer}, {"n_head", heads}, {"n_head_kv", heads_kv}, {"n_ff", ff},
                        {"removed_blocks", removed_blocks}, {"calib_tokens", st.tokens}, {"type", o.type},
                        {"uniform_shapes", hp.uniform()}, {"file_mb", file_mb}, {"seconds", seconds},
                        {"peak_rss_mb", eval::peak_rss_mb()}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("pruned %s -> %s\n  method %s: %.1f%% of block-linear parameters removed (asked %.1f%%), %lld -> %lld layers, "
                "%.1fM -> %.1fM parameters, %s shapes, file %.1f MiB, %.1f s\n",
                o.model.c_str(), o.out.c_str(), me.c_str(), 100.0 * achieved, 100.0 * o.sparsity, (long long)layers_before,
                (long long)hp.n_layer, double(params_before) / 1e6, double(m->n_params()) / 1e6,
                hp.uniform() ? "uniform" : "per-layer", file_mb, seconds);
  }
  return 0;
}

}  // namespace slimlm::cli
