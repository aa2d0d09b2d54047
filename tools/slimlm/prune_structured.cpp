// `slimlm prune-structured MODEL -o OUT.gguf --method heads|neurons|layers|flap|block-influence
// --sparsity S`: removes attention heads, FFN neurons or whole blocks and writes a smaller dense
// model (per-layer shapes in GGUF as arrays). S is the fraction of block-linear parameters.
#include "prune_structured.h"
#include "common.h"
#include "core/error.h"
#include "eval/eval.h"
#include "model/model.h"
#include "pipeline/layerwise.h"
#include "prune/structured.h"
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace slimlm::cli {

namespace {
std::string calib_text(const StructuredPruneOptions& o) {
  if (!o.calib.empty()) return o.calib;
  for (const char* p : {"../shared/data/brown/brown.txt", "/work/shared/data/brown/brown.txt"})
    if (std::filesystem::exists(p)) return p;
  fail("no calibration text found: pass --calib FILE");
}
}  // namespace

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
  {
    const auto dir = std::filesystem::path(o.out).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir)) fail(o.out, ": folder ", dir.string(), " does not exist");
  }
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
    pipeline::CalibOptions co;
    co.ids_file = o.calib_ids;
    if (co.ids_file.empty()) co.file = calib_text(o);
    co.samples = o.samples; co.len = o.len; co.seed = o.seed;
    const auto calib = pipeline::load_calibration(*m, co);
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

void add_structured_prune_options(CLI::App* sub, StructuredPruneOptions& o) {
  sub->add_option("model", o.model, "input model file or folder")->required();
  sub->add_option("-o,--output", o.out, "output .gguf path")->required();
  sub->add_option("--method", o.method,
                  "heads (KV groups, uniform per layer), neurons (FFN, uniform), flap (heads + neurons, global, "
                  "bias compensation), block-influence (ShortGPT), layers (contiguous blocks, Gromov et al.)");
  sub->add_option("--sparsity", o.sparsity, "fraction of block-linear parameters to remove, in [0, 1)");
  sub->add_option("--score", o.score, "heads/neurons: magnitude (weights only) or activation (default)");
  sub->add_flag("--no-bias", o.no_bias, "flap: no bias compensation");
  sub->add_option("--type", o.type, "weight type of the output (default f16)");
  sub->add_option("--calib", o.calib, "calibration text (default ../shared/data/brown/brown.txt)");
  sub->add_option("--calib-ids", o.calib_ids, "calibration token ids (whitespace-separated) instead of text");
  sub->add_option("--calib-samples", o.samples, "calibration sequences")->check(CLI::Range(1, 100000));
  sub->add_option("--calib-len", o.len, "tokens per calibration sequence")->check(CLI::Range(2, 1 << 16));
  sub->add_option("--seed", o.seed, "seed for picking calibration sequences");
  sub->add_flag("--json", o.json, "print a JSON summary on stdout");
  add_threads(sub, &o.threads);
}

void add_prune_structured(CLI::App& app) {
  static StructuredPruneOptions o;
  auto* sub = app.add_subcommand("prune-structured", "remove heads, neurons or blocks: a smaller dense model");
  sub->footer("Examples:\n  slimlm prune-structured models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.flap40.gguf --method flap --sparsity 0.4\n"
              "  slimlm prune-structured models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.bi20.gguf --method block-influence --sparsity 0.2");
  add_structured_prune_options(sub, o);
  sub->callback([] { run_structured_prune(o); });
}

}  // namespace slimlm::cli
