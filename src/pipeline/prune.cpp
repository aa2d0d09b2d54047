#include "pipeline/prune.h"
#include "core/error.h"
#include "eval/eval.h"
#include "prune/structured.h"
#include <chrono>
#include <cmath>
#include <cstdio>

namespace slimlm::pipeline {

namespace {
using M = MethodId;

void parse_nm(const std::string& s, prune::Pattern& p) {
  int n = 0, m = 0;
  char tail = 0;
  if (std::sscanf(s.c_str(), "%d:%d%c", &n, &m, &tail) != 2) fail("--nm must look like 2:4, not '", s, "'");
  if (n <= 0 || m <= 0 || n > m) fail("--nm N:M needs 0 < N <= M, not ", s);
  if (m > 64) fail("--nm: M is at most 64, not ", m);
  p.n = n; p.m = m;
}

prune::Method unstructured_method(MethodId id) {
  switch (id) {
    case M::Magnitude: return prune::Method::Magnitude;
    case M::Wanda: return prune::Method::Wanda;
    case M::Ria: return prune::Method::Ria;
    case M::SparseGpt: return prune::Method::SparseGpt;
    default: fail("internal: not an unstructured pruning method");
  }
}

// The unstructured options (validated); `o.codec` keeps --quant's codec alive.
void unstructured_options(const Args& a, PruneJobOptions& o) {
  prune::PruneOptions& u = o.unstructured;
  u.method = unstructured_method(o.method->id);
  u.pattern.sparsity = o.sparsity;
  if (!o.nm.empty()) parse_nm(o.nm, u.pattern);
  u.owl = o.owl; u.global = a.flag("global"); u.owl_m = a.real("owl-m"); u.owl_lambda = a.real("owl-lambda");
  u.dsnot = o.dsnot; u.dsnot_opt.max_cycles = int(a.integer("dsnot-cycles"));
  // Comparison groups as in each paper's code: Wanda per output row, magnitude and RIA per layer.
  const std::string group = a.text("group");
  u.group = group.empty() ? (u.method == prune::Method::Wanda ? prune::Group::Row : prune::Group::Layer)
                          : group == "row" ? prune::Group::Row : prune::Group::Layer;
  u.sparsegpt.damp = a.real("damp");
  const std::string quant = a.text("quant");
  if (!quant.empty()) o.codec = quant::make_codec(quant);
  u.sparsegpt.codec = o.codec.get();
  u.store = type_from_name(o.type);
  if (!traits(u.store).from_f32) fail("--type ", o.type, " cannot be written");
  u.progress = !a.flag("no-progress");
  prune::validate(u);
}
}  // namespace

PruneJobOptions prune_options(const Args& a) {
  PruneJobOptions o;
  o.method = &a.method();
  o.type = a.text("type");
  o.nm = a.text("nm");
  o.score = a.text("score");
  o.sparsity = a.real("sparsity");
  o.owl = a.flag("owl");
  o.dsnot = a.flag("dsnot");
  o.no_bias = a.flag("no-bias");
  o.calib = calib_options(a);
  o.threads = a.integer("threads");
  if (o.method->family == Family::PruneUnstructured) {
    unstructured_options(a, o);
    return o;
  }
  if (!o.nm.empty() || o.owl || a.flag("global") || !a.text("quant").empty() || o.dsnot)
    fail("--nm, --owl, --global, --dsnot and --quant apply to unstructured methods, not --method ", o.method->name);
  if (!traits(type_from_name(o.type)).from_f32) fail("cannot write weights of type ", o.type);
  return o;
}

namespace {
Compressed prune_unstructured(Model& m, const PruneJobOptions& o) {
  const prune::PruneOptions& u = o.unstructured;
  const quant::Codec* codec = o.codec.get();
  for (const Block& b : m.blocks)
    for (const Tensor* t : b.linears()) {
      if (!codec && t->cols() % traits(u.store).block != 0)
        fail(t->name, ": rows of ", t->cols(), " do not fit ", o.type, " blocks of ", traits(u.store).block);
      if (codec && !codec->tail_ok() && t->cols() % codec->group() != 0)
        fail(t->name, ": rows of ", t->cols(), " do not fit ", codec->name(), " blocks of ", codec->group());
    }
  CalibOptions co = o.calib;
  std::vector<std::vector<int32_t>> calib;
  if (prune::needs_calibration(u)) calib = load_calib(m, co);
  const prune::PruneReport rep = prune::prune_model(m, calib, u);

  const std::string nm = u.pattern.nm() ? cat(u.pattern.n, ":", u.pattern.m) : "";
  Compressed c;
  c.meta = {
      {"slimlm.prune.method", gguf::Value::of_str(o.method->name)},
      {"slimlm.prune.sparsity", gguf::Value::of_f32(float(u.pattern.nm() ? 1.0 - double(u.pattern.n) / u.pattern.m : o.sparsity))},
      {"slimlm.prune.nm", gguf::Value::of_str(nm)},
      {"slimlm.prune.owl", gguf::Value::of_bool(o.owl)},
      {"slimlm.prune.dsnot", gguf::Value::of_bool(o.dsnot)},
      {"slimlm.prune.achieved", gguf::Value::of_f32(float(rep.sparsity()))},
      {"slimlm.prune.calib", gguf::Value::of_str(calib.empty() ? "none" : calib_label(co))},
  };
  if (codec) c.meta.push_back({"slimlm.quant.type", gguf::Value::of_str(codec->name())});
  nlohmann::json layers = nlohmann::json::array(), linears = nlohmann::json::array();
  for (int64_t l = 0; l < m.hp.n_layer; ++l) {
    nlohmann::json j = {{"layer", l}, {"target", rep.layer_sparsity[size_t(l)]}, {"achieved", rep.layer_achieved(l)}};
    if (!rep.outlier_ratio.empty()) j["outlier_ratio"] = rep.outlier_ratio[size_t(l)];
    layers.push_back(j);
  }
  for (const auto& lr : rep.linears)
    linears.push_back({{"name", lr.name}, {"layer", lr.layer}, {"n", lr.n}, {"zeros", lr.zeros},
                       {"achieved", double(lr.zeros) / double(lr.n)}, {"target", lr.target}});
  c.summary = {{"method", o.method->name}, {"sparsity", o.sparsity}, {"nm", nm}, {"owl", o.owl}, {"global", u.global},
               {"type", codec ? codec->name() : o.type}, {"achieved_sparsity", rep.sparsity()},
               {"calib_tokens", rep.calib_tokens}, {"seconds", rep.seconds}, {"layers", layers}, {"linears", linears}};
  if (u.method == prune::Method::SparseGpt) c.summary["sparsegpt_err"] = rep.sparsegpt_err;
  if (o.dsnot)
    c.summary["dsnot"] = {{"swaps", rep.dsnot.swaps}, {"expected_err_before", rep.dsnot.err_before},
                          {"expected_err_after", rep.dsnot.err_after}};
  return c;
}

// Heads / neurons / FLAP reshape the layers; layers / block-influence drop whole blocks.
std::vector<int64_t> prune_structured_units(Model& m, const PruneJobOptions& o, int64_t target, int64_t n_blocks,
                                            prune::CalibStats& st) {
  const MethodId id = o.method->id;
  const bool blocks = id == M::Layers || id == M::BlockInfluence;
  const bool calibrated = blocks || id == M::Flap || o.score == "activation";
  if (target <= 0 || (blocks && n_blocks == 0)) return {};
  if (calibrated) {
    CalibOptions co = o.calib;
    st = prune::calibrate(m, load_calib(m, co), std::max<int64_t>(1, n_blocks));
  }
  if (blocks) {
    std::vector<int64_t> removed = id == M::Layers ? prune::pick_blocks_span(st, n_blocks) : prune::pick_blocks_influence(st, n_blocks);
    prune::drop_blocks(m, removed);
    return removed;
  }
  std::vector<prune::LayerKeep> keep = prune::keep_all(m);
  const prune::Score sc = o.score == "magnitude" ? prune::Score::Magnitude : prune::Score::Activation;
  const prune::CalibStats* sp = calibrated ? &st : nullptr;
  if (id == M::Heads) prune::plan_uniform_heads(m, prune::head_scores(m, sp, sc), target, keep);
  if (id == M::Neurons) prune::plan_uniform_neurons(m, prune::neuron_scores(m, sp, sc), target, keep);
  if (id == M::Flap) prune::plan_flap(m, st, target, !o.no_bias, keep);
  prune::apply_keep(m, keep);
  return {};
}

Compressed prune_structured(Model& m, const PruneJobOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t before = prune::block_linear_params(m), params_before = m.n_params(), layers_before = m.hp.n_layer;
  const int64_t target = std::llround(o.sparsity * double(before));
  const bool blocks = o.method->id == M::Layers || o.method->id == M::BlockInfluence;
  const int64_t n_blocks = blocks ? std::llround(o.sparsity * double(m.hp.n_layer)) : 0;
  if (blocks && n_blocks >= m.hp.n_layer) fail("sparsity ", o.sparsity, " would remove every block");
  prune::CalibStats st;
  const std::vector<int64_t> removed_blocks = prune_structured_units(m, o, target, n_blocks, st);
  const int64_t after = prune::block_linear_params(m);
  const HParams& hp = m.hp;
  std::vector<int64_t> heads, heads_kv, ff;
  for (int64_t l = 0; l < hp.n_layer; ++l) { heads.push_back(hp.n_head_at(l)); heads_kv.push_back(hp.n_head_kv_at(l)); ff.push_back(hp.n_ff_at(l)); }
  Compressed c;
  c.convert_to = type_from_name(o.type);
  c.summary = {{"method", o.method->name}, {"sparsity", o.sparsity}, {"achieved", 1.0 - double(after) / double(before)},
               {"block_linear_params_before", before}, {"block_linear_params_after", after},
               {"params_before", params_before}, {"params_after", m.n_params()}, {"n_layer_before", layers_before},
               {"n_layer", hp.n_layer}, {"n_head", heads}, {"n_head_kv", heads_kv}, {"n_ff", ff},
               {"removed_blocks", removed_blocks}, {"calib_tokens", st.tokens}, {"type", o.type},
               {"uniform_shapes", hp.uniform()},
               {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
  return c;
}
}  // namespace

Compressed prune_model(Model& m, const PruneJobOptions& o) {
  const ThreadScope threads(o.threads);
  return o.method->family == Family::PruneStructured ? prune_structured(m, o) : prune_unstructured(m, o);
}

}  // namespace slimlm::pipeline
