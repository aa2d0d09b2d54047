// `slimlm quantize MODEL -o OUT.gguf --method rtn|gptq|awq|awq+gptq --bits B --group G`, and
// W8A8 (`--method w8a8|smoothquant|smoothquant+gptq --alpha A`): post-training quantization of
// every block linear over the layer-wise calibration pipeline; writes GGUF (standard llama.cpp
// block types with --format gguf, else slimlm types).
#include "common.h"
#include "core/dtype_custom.h"
#include "core/error.h"
#include "eval/eval.h"
#include "io/gguf.h"
#include "model/model.h"
#include "pipeline/layerwise.h"
#include "quant/methods.h"
#include <cstdio>
#include <filesystem>
#include <set>
#include <nlohmann/json.hpp>

namespace slimlm::cli {

namespace {
struct QuantizeOptions {
  std::string model, out, method = "gptq", type, format = "slimlm";
  CalibFlags calib;
  int bits = 4;
  int64_t group = 128;
  bool sym = false, asym = false, act_order = false, json = false, no_progress = false;
  double damp = 0.01, alpha = 0.5;
  int64_t sample_tokens = 512;
  int threads = 0;
};

// The storage type from --type, or from --bits/--group/--sym with --format gguf|slimlm.
bool is_smoothquant(const std::string& m) { return m == "smoothquant" || m == "smoothquant+gptq"; }

std::unique_ptr<quant::Codec> pick_codec(const QuantizeOptions& o) {
  if (o.method == "w8a8" || is_smoothquant(o.method)) {
    if (!o.type.empty() && o.type != "w8a8") fail("--method ", o.method, " writes w8a8 weights, not --type ", o.type);
    return quant::w8a8_codec();
  }
  if (o.type == "w8a8" && (o.method == "awq" || o.method == "awq+gptq"))
    fail("AWQ's per-group search does not fit per-channel w8a8 weights: use --method smoothquant");
  if (!o.type.empty()) return quant::make_codec(o.type);
  if (o.sym && o.asym) fail("--sym and --asym exclude each other");
  if (o.format == "gguf") {
    const char* t = nullptr;
    if (o.group == 32 && o.bits == 4) t = o.asym ? "q4_1" : "q4_0";
    if (o.group == 32 && o.bits == 5) t = o.asym ? "q5_1" : "q5_0";
    if (o.group == 32 && o.bits == 8 && !o.asym) t = "q8_0";
    if (!t) fail("no llama.cpp block type holds ", o.bits, "-bit groups of ", o.group, (o.asym ? " (asym)" : ""),
                 "; use --group 32 with 4, 5 or 8 bits, or --format slimlm");
    return quant::make_codec(t);
  }
  if (o.format != "slimlm") fail("--format must be gguf or slimlm, not '", o.format, "'");
  return quant::make_codec(cat(o.sym ? "s" : "u", o.bits, "g", o.group));
}

void run_quantize(const QuantizeOptions& o) {
  apply_threads(o.threads);
  const bool calibrated = o.method != "rtn" && o.method != "w8a8";
  static const std::set<std::string> methods = {"rtn", "gptq", "awq", "awq+gptq", "w8a8", "smoothquant", "smoothquant+gptq"};
  if (!methods.count(o.method))
    fail("unknown --method '", o.method, "' (rtn, gptq, awq, awq+gptq, w8a8, smoothquant, smoothquant+gptq)");
  const auto codec = pick_codec(o);
  check_model_path(o.model);
  check_output_folder(o.out);  // fail before the work when the output cannot be written
  auto m = load_model(o.model);
  for (const Block& b : m->blocks)
    for (const Tensor* t : b.linears())
      if (!codec->tail_ok() && t->cols() % codec->group() != 0)
        fail(t->name, ": rows of ", t->cols(), " do not fit ", codec->name(), " blocks of ", codec->group());

  std::vector<std::vector<int32_t>> calib;
  if (calibrated) calib = pipeline::load_calibration(*m, o.calib.options());
  pipeline::Wants wants;
  wants.stats = calibrated;
  wants.hessian = o.method.ends_with("gptq");
  wants.sample_tokens = o.method == "awq" || o.method == "awq+gptq" ? o.sample_tokens : 0;

  quant::GptqOptions go;
  go.damp = o.damp; go.act_order = o.act_order;
  quant::AwqOptions ao;
  quant::SmoothOptions so;
  so.alpha = o.alpha;
  double gptq_err = 0;
  std::vector<double> alphas;
  auto compress = [&](Model& mm, int64_t l, pipeline::BlockStats& st) {
    Block& b = mm.blocks[size_t(l)];
    quant::AwqBlock awq;  // AWQ's scaled weights and clips, or SmoothQuant's scaled weights
    const bool use_awq = o.method == "awq" || o.method == "awq+gptq", use_sq = is_smoothquant(o.method);
    if (use_awq) {
      ao.clip = o.method == "awq";  // with GPTQ rounding the clip search is replaced by GPTQ's own fits
      awq = quant::awq_block(mm, l, st, *codec, ao);
      for (double a : awq.alpha) alphas.push_back(a);
    } else if (use_sq) {
      static_cast<quant::ScaledBlock&>(awq) = quant::smoothquant_block(mm, l, st, so);
    }
    const bool scaled = use_awq || use_sq;
    for (int s = 0; s < kLinearSites; ++s) {
      auto ws = pipeline::site_weights(b, LinearSite(s));
      if (wants.hessian && scaled && !awq.scale[s].empty()) {  // inputs are X / s now: H' = S⁻¹ H S⁻¹
        auto& H = st[size_t(s)].xtx;
        const auto& sc = awq.scale[s];
        const int64_t k = st[size_t(s)].k;
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j) H[size_t(i * k + j)] /= double(sc[size_t(i)]) * sc[size_t(j)];
      }
      for (size_t i = 0; i < ws.size(); ++i) {
        Tensor& t = *ws[i];
        std::vector<float> w = scaled ? std::move(awq.w[s][i]) : t.to_f32();
        quant::QMatrix q;
        if (wants.hessian) {
          quant::GptqReport rep;
          q = quant::gptq(w.data(), t.rows(), t.cols(), st[size_t(s)], *codec, go, &rep);
          gptq_err += rep.err;
        } else {
          const std::vector<float>* clip = use_awq && !awq.clip[s][i].empty() ? &awq.clip[s][i] : nullptr;
          q = quant::rtn(w.data(), t.rows(), t.cols(), *codec, clip);
        }
        t = quant::to_tensor(q, *codec, t);
      }
    }
  };
  const pipeline::RunInfo info = pipeline::run_layerwise(*m, calib, wants, compress, !o.no_progress);

  int64_t n_lin = 0;
  size_t lin_bytes = 0;
  for (const Block& b : m->blocks)
    for (const Tensor* t : b.linears()) { n_lin += t->nelements(); lin_bytes += t->nbytes; }
  const double bpw_lin = 8.0 * double(lin_bytes) / double(n_lin);
  std::vector<std::pair<std::string, gguf::Value>> meta = {
      {"slimlm.quant.method", gguf::Value::of_str(o.method)},
      {"slimlm.quant.type", gguf::Value::of_str(codec->name())},
      {"slimlm.quant.calib", gguf::Value::of_str(calibrated ? o.calib.label() : "none")},
  };
  if (wants.hessian) meta.push_back({"slimlm.quant.act_order", gguf::Value::of_bool(o.act_order)});
  if (is_smoothquant(o.method)) meta.push_back({"slimlm.quant.alpha", gguf::Value::of_f32(float(o.alpha))});
  save_gguf_as_is(*m, o.out, meta);
  const double file_mb = double(std::filesystem::file_size(o.out)) / (1024.0 * 1024.0);
  const double all_bpw = 8.0 * double(std::filesystem::file_size(o.out)) / double(m->n_params());
  if (o.json) {
    nlohmann::json j = {{"model", o.model}, {"output", o.out}, {"method", o.method}, {"type", codec->name()},
                        {"act_order", o.act_order}, {"calib_tokens", info.tokens}, {"seconds", info.seconds},
                        {"bpw_linear", bpw_lin}, {"bpw_file", all_bpw}, {"file_mb", file_mb},
                        {"peak_rss_mb", eval::peak_rss_mb()}};
    if (wants.hessian) j["gptq_err"] = gptq_err;
    if (!alphas.empty()) j["awq_alpha"] = alphas;
    if (is_smoothquant(o.method)) j["alpha"] = o.alpha;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("quantized %s -> %s\n  method %s, type %s, %.3f bits/weight in block linears, file %.1f MiB (%.2f bpw overall)\n"
                "  %.1f s, peak RSS %.0f MiB\n",
                o.model.c_str(), o.out.c_str(), o.method.c_str(), codec->name().c_str(), bpw_lin, file_mb, all_bpw,
                info.seconds, eval::peak_rss_mb());
  }
}
}  // namespace

void add_quantize(CLI::App& app) {
  static QuantizeOptions o;
  auto* sub = app.add_subcommand("quantize", "quantize a model's weights (RTN, GPTQ, AWQ, W8A8/SmoothQuant) and write GGUF");
  sub->footer("Examples:\n  slimlm quantize models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.w4g128.gguf --method gptq --bits 4 --group 128\n"
              "  slimlm quantize models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.q4_0.gguf --method gptq --bits 4 --group 32 --sym --format gguf\n"
              "  slimlm quantize models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.w8a8.gguf --method smoothquant --alpha 0.5");
  sub->add_option("model", o.model, "input model file or folder")->required();
  sub->add_option("-o,--output", o.out, "output .gguf path")->required();
  sub->add_option("--method", o.method, "rtn, gptq, awq, awq+gptq (AWQ scales, GPTQ rounding); w8a8 (int8 weights per channel "
                  "and int8 activations per token), smoothquant, smoothquant+gptq");
  sub->add_option("--alpha", o.alpha, "SmoothQuant migration strength α in s_j = max|X_j|^α / max|W_j|^(1-α)")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--bits", o.bits, "bits per weight (2..8)")->check(CLI::Range(2, 8));
  sub->add_option("--group", o.group, "weights per group along a row (any size; the last group may be shorter)")->check(CLI::Range(1, 1 << 20));
  sub->add_flag("--sym", o.sym, "symmetric grid (no zero points)");
  sub->add_flag("--asym", o.asym, "asymmetric grid with integer zero points (default)");
  sub->add_option("--type", o.type, "storage type directly: q4_0 q4_1 q5_0 q5_1 q8_0, uBgG / sBgG (e.g. u3g64), or w8a8");
  sub->add_option("--format", o.format, "gguf: a llama.cpp block type (must match bits/group); slimlm: slimlm's types (default)");
  sub->add_flag("--act-order", o.act_order, "GPTQ: quantize columns by decreasing Hessian diagonal (static groups)");
  sub->add_option("--damp", o.damp, "GPTQ: dampening as a fraction of the mean Hessian diagonal")->check(CLI::Range(0.0, 10.0));
  add_calib_flags(sub, &o.calib);
  sub->add_flag("--json", o.json, "print a JSON summary on stdout");
  sub->add_flag("--no-progress", o.no_progress, "no progress bar");
  add_threads(sub, &o.threads);
  sub->callback([] { run_quantize(o); });
}

}  // namespace slimlm::cli
