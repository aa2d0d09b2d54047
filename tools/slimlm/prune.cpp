// `slimlm prune MODEL -o OUT.gguf --method magnitude|wanda|ria|sparsegpt --sparsity S [--nm N:M]`:
// post-training pruning of the seven block linears (not embeddings / output) over the layer-wise
// calibration pipeline; pruned weights are stored in --type (default f16, so zeros stay exact).
#include "common.h"
#include "prune_structured.h"
#include "core/error.h"
#include "eval/eval.h"
#include "io/gguf.h"
#include "model/model.h"
#include "prune/prune.h"
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace slimlm::cli {

namespace {
struct PruneFlags {
  std::string model, out, method = "wanda", nm, group, type = "f16", quant, score = "activation";
  double sparsity = 0.5, damp = 0.01, owl_m = 5, owl_lambda = 0.08;
  bool owl = false, global = false, json = false, no_progress = false, no_bias = false, dsnot = false;
  int dsnot_cycles = 50;
  CalibFlags calib;
  int threads = 0;
};

void parse_nm(const std::string& s, prune::Pattern& p) {
  int n = 0, m = 0;
  char tail = 0;
  if (std::sscanf(s.c_str(), "%d:%d%c", &n, &m, &tail) != 2) fail("--nm must look like 2:4, not '", s, "'");
  if (n <= 0 || m <= 0 || n > m) fail("--nm N:M needs 0 < N <= M, not ", s);
  if (m > 64) fail("--nm: M is at most 64, not ", m);
  p.n = n; p.m = m;
}

bool is_structured(const std::string& m) {
  return m == "heads" || m == "neurons" || m == "layers" || m == "flap" || m == "block-influence";
}

void run_prune(const PruneFlags& f) {
  if (is_structured(f.method)) {  // a physically smaller dense model (prune_structured.cpp)
    if (!f.nm.empty() || f.owl || f.global || !f.quant.empty() || f.dsnot)
      fail("--nm, --owl, --global, --dsnot and --quant apply to unstructured methods, not --method ", f.method);
    StructuredPruneOptions s;
    s.model = f.model; s.out = f.out; s.method = f.method; s.score = f.score; s.type = f.type;
    s.calib = f.calib; s.sparsity = f.sparsity; s.json = f.json; s.no_bias = f.no_bias; s.threads = f.threads;
    run_structured_prune(s);
    return;
  }
  apply_threads(f.threads);
  prune::PruneOptions o;
  o.method = prune::method_from_name(f.method);
  o.pattern.sparsity = f.sparsity;
  if (!f.nm.empty()) parse_nm(f.nm, o.pattern);
  o.owl = f.owl; o.global = f.global; o.owl_m = f.owl_m; o.owl_lambda = f.owl_lambda;
  o.dsnot = f.dsnot; o.dsnot_opt.max_cycles = f.dsnot_cycles;
  // Comparison groups as in each paper's code: Wanda per output row, magnitude and RIA per layer.
  o.group = o.method == prune::Method::Wanda ? prune::Group::Row : prune::Group::Layer;
  if (f.group == "row") o.group = prune::Group::Row;
  else if (f.group == "layer") o.group = prune::Group::Layer;
  else if (!f.group.empty()) fail("--group must be row or layer, not '", f.group, "'");
  o.sparsegpt.damp = f.damp;
  std::unique_ptr<quant::Codec> codec;
  if (!f.quant.empty()) codec = quant::make_codec(f.quant);
  o.sparsegpt.codec = codec.get();
  o.store = type_from_name(f.type);
  if (!traits(o.store).from_f32) fail("--type ", f.type, " cannot be written");
  o.progress = !f.no_progress;
  prune::validate(o);
  check_model_path(f.model);
  check_output_folder(f.out);

  auto m = load_model(f.model);
  for (const Block& b : m->blocks)
    for (const Tensor* t : b.linears()) {
      if (!codec && t->cols() % traits(o.store).block != 0)
        fail(t->name, ": rows of ", t->cols(), " do not fit ", f.type, " blocks of ", traits(o.store).block);
      if (codec && !codec->tail_ok() && t->cols() % codec->group() != 0)
        fail(t->name, ": rows of ", t->cols(), " do not fit ", codec->name(), " blocks of ", codec->group());
    }
  std::vector<std::vector<int32_t>> calib;
  if (prune::needs_calibration(o)) calib = pipeline::load_calibration(*m, f.calib.options());
  const prune::PruneReport rep = prune::prune_model(*m, calib, o);

  const std::string nm = o.pattern.nm() ? cat(o.pattern.n, ":", o.pattern.m) : "";
  std::vector<std::pair<std::string, gguf::Value>> meta = {
      {"slimlm.prune.method", gguf::Value::of_str(f.method)},
      {"slimlm.prune.sparsity", gguf::Value::of_f32(float(o.pattern.nm() ? 1.0 - double(o.pattern.n) / o.pattern.m : f.sparsity))},
      {"slimlm.prune.nm", gguf::Value::of_str(nm)},
      {"slimlm.prune.owl", gguf::Value::of_bool(f.owl)},
      {"slimlm.prune.dsnot", gguf::Value::of_bool(f.dsnot)},
      {"slimlm.prune.achieved", gguf::Value::of_f32(float(rep.sparsity()))},
      {"slimlm.prune.calib", gguf::Value::of_str(calib.empty() ? "none" : f.calib.label())},
  };
  if (codec) meta.push_back({"slimlm.quant.type", gguf::Value::of_str(codec->name())});
  save_gguf_as_is(*m, f.out, meta);

  if (f.json) {
    nlohmann::json layers = nlohmann::json::array(), linears = nlohmann::json::array();
    for (int64_t l = 0; l < m->hp.n_layer; ++l) {
      nlohmann::json j = {{"layer", l}, {"target", rep.layer_sparsity[size_t(l)]}, {"achieved", rep.layer_achieved(l)}};
      if (!rep.outlier_ratio.empty()) j["outlier_ratio"] = rep.outlier_ratio[size_t(l)];
      layers.push_back(j);
    }
    for (const auto& lr : rep.linears)
      linears.push_back({{"name", lr.name}, {"layer", lr.layer}, {"n", lr.n}, {"zeros", lr.zeros},
                         {"achieved", double(lr.zeros) / double(lr.n)}, {"target", lr.target}});
    nlohmann::json j = {{"model", f.model}, {"output", f.out}, {"method", f.method}, {"sparsity", f.sparsity},
                        {"nm", nm}, {"owl", f.owl}, {"global", f.global}, {"type", codec ? codec->name() : f.type},
                        {"achieved_sparsity", rep.sparsity()}, {"calib_tokens", rep.calib_tokens},
                        {"seconds", rep.seconds}, {"peak_rss_mb", eval::peak_rss_mb()}, {"layers", layers}, {"linears", linears}};
    if (o.method == prune::Method::SparseGpt) j["sparsegpt_err"] = rep.sparsegpt_err;
    if (f.dsnot) j["dsnot"] = {{"swaps", rep.dsnot.swaps}, {"expected_err_before", rep.dsnot.err_before}, {"expected_err_after", rep.dsnot.err_after}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("pruned %s -> %s\n  method %s%s%s, achieved sparsity %.4f of the block linears (stored as %s)\n"
                "  %.1f s, peak RSS %.0f MiB\n",
                f.model.c_str(), f.out.c_str(), f.method.c_str(), nm.empty() ? "" : (" " + nm).c_str(), f.owl ? " + OWL" : "",
                rep.sparsity(), codec ? codec->name().c_str() : f.type.c_str(), rep.seconds, eval::peak_rss_mb());
  }
}
}  // namespace

void add_prune(CLI::App& app) {
  static PruneFlags f;
  auto* sub = app.add_subcommand("prune", "prune a model's block linears (magnitude, Wanda, RIA, SparseGPT; N:M; OWL) and write GGUF");
  sub->footer("Examples:\n  slimlm prune models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.wanda50.gguf --method wanda --sparsity 0.5\n"
              "  slimlm prune models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.sgpt24.gguf --method sparsegpt --nm 2:4\n"
              "  slimlm prune models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.owl70.gguf --method wanda --sparsity 0.7 --owl\n"
              "  slimlm prune models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.flap40.gguf --method flap --sparsity 0.4");
  sub->add_option("model", f.model, "input model file or folder")->required();
  sub->add_option("-o,--output", f.out, "output .gguf path")->required();
  sub->add_option("--method", f.method, "unstructured: magnitude, wanda (default), ria, sparsegpt; structured (a smaller dense "
                  "model): heads (KV groups), neurons (FFN), flap (heads + neurons, bias compensation), block-influence "
                  "(ShortGPT), layers (contiguous blocks, Gromov et al.)");
  sub->add_option("--sparsity", f.sparsity, "fraction of weights removed, in [0, 1) (default 0.5)");
  sub->add_option("--nm", f.nm, "N:M semi-structured sparsity instead, e.g. 2:4 (N kept of every M inputs)");
  sub->add_flag("--dsnot", f.dsnot, "DSnoT: refine the mask without training (swap pruned/kept weights of a row to cut its expected output error)");
  sub->add_option("--dsnot-cycles", f.dsnot_cycles, "DSnoT: swaps per row at most (default 50)");
  sub->add_flag("--owl", f.owl, "OWL: per-layer sparsities from outlier ratios (mean stays --sparsity)");
  sub->add_option("--owl-m", f.owl_m, "OWL: outlier threshold as a multiple of the mean score (default 5)");
  sub->add_option("--owl-lambda", f.owl_lambda, "OWL: layer sparsities span 2·lambda around --sparsity (default 0.08)");
  sub->add_flag("--global", f.global, "magnitude: one threshold over all block linears of the model");
  sub->add_option("--group", f.group, "comparison group of unstructured masks: row or layer (default: row for wanda, layer otherwise)");
  sub->add_option("--quant", f.quant, "sparsegpt: quantize the kept weights in the same pass (e.g. u4g128, q4_0)");
  sub->add_option("--damp", f.damp, "sparsegpt: dampening as a fraction of the mean Hessian diagonal")->check(CLI::Range(0.0, 10.0));
  sub->add_option("--score", f.score, "heads/neurons: magnitude (weights only) or activation (default)");
  sub->add_flag("--no-bias", f.no_bias, "flap: no bias compensation");
  sub->add_option("--type", f.type, "storage type of the pruned linears: f16 (default), f32, bf16, q8_0, ...");
  add_calib_flags(sub, &f.calib);
  sub->add_flag("--json", f.json, "print a JSON summary on stdout");
  sub->add_flag("--no-progress", f.no_progress, "no progress bar");
  add_threads(sub, &f.threads);
  sub->callback([] { run_prune(f); });
}

}  // namespace slimlm::cli
