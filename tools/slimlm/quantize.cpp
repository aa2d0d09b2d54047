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
#include "pipeline/calibration.h"
#include "quant/layerwise.h"
#include "quant/methods.h"
#include "quant/nonuniform.h"
#include "quant/outliers.h"
#include "quant/mixture.h"
#include <cstdio>
#include <filesystem>
#include <set>
#include <map>
#include <optional>
#include <unordered_map>
#include <nlohmann/json.hpp>

namespace slimlm::cli {

namespace {
struct QuantizeOptions {
  std::string model, out, method = "gptq", type, format = "slimlm";
  CalibFlags calib;
  int bits = 4;
  int64_t group = 128;
  bool sym = false, asym = false, act_order = false, json = false, no_progress = false, pure = false;
  double damp = 0.01, alpha = 0.5;
  double outliers = 0;          // percent of each block weight kept in f16 beside the quantized rest
  std::string outlier_score = "auto";
  int64_t sample_tokens = 512;
  int threads = 0;
};

// The storage type from --type, or from --bits/--group/--sym with --format gguf|slimlm.
bool is_smoothquant(const std::string& m) { return m == "smoothquant" || m == "smoothquant+gptq"; }

std::string pick_type(const QuantizeOptions& o) {
  if (o.method == "kmeans") {
    if (!o.type.empty() || o.format == "gguf") fail("--method kmeans writes per-row codebooks (slimlm type lut", o.bits, "), not --type/--format gguf");
    return cat("lut", o.bits);
  }
  if (o.method == "nf") {
    if (!o.type.empty() && !o.type.starts_with("nf")) fail("--method nf writes an NF grid, not --type ", o.type);
    if (o.format == "gguf") fail("llama.cpp has no NF grid: --method nf writes slimlm types");
    return o.type.empty() ? cat("nf", o.bits, "g", o.group) : o.type;
  }
  if (o.method == "w8a8" || is_smoothquant(o.method)) {
    if (!o.type.empty() && o.type != "w8a8") fail("--method ", o.method, " writes w8a8 weights, not --type ", o.type);
    return "w8a8";
  }
  if (o.type == "w8a8" && (o.method == "awq" || o.method == "awq+gptq"))
    fail("AWQ's per-group search does not fit per-channel w8a8 weights: use --method smoothquant");
  if (!o.type.empty()) return o.type;
  if (o.sym && o.asym) fail("--sym and --asym exclude each other");
  if (o.format == "gguf") {
    const char* t = nullptr;
    if (o.group == 32 && o.bits == 4) t = o.asym ? "q4_1" : "q4_0";
    if (o.group == 32 && o.bits == 5) t = o.asym ? "q5_1" : "q5_0";
    if (o.group == 32 && o.bits == 8 && !o.asym) t = "q8_0";
    if (!t) fail("no llama.cpp block type holds ", o.bits, "-bit groups of ", o.group, (o.asym ? " (asym)" : ""),
                 "; use --group 32 with 4, 5 or 8 bits, a K-quant type such as --type q4_K_M, or --format slimlm");
    return t;
  }
  if (o.format != "slimlm") fail("--format must be gguf or slimlm, not '", o.format, "'");
  return cat(o.sym ? "s" : "u", o.bits, "g", o.group);
}

// Which codec quantizes each block weight: one codec for all, or a llama.cpp file-type mixture
// (K-quant names always; q4_0 … q8_0 with --format gguf), which also sets the token embedding /
// output types and may leave a weight whose rows fit no block type in f16.
struct Plan {
  std::string name;
  std::optional<quant::Mixture> mix;
  std::unique_ptr<quant::Codec> single;
  std::map<DType, std::unique_ptr<quant::Codec>> by_type;
  std::unordered_map<const Tensor*, DType> type;  // mixture: the type of each block weight
  const quant::Codec* codec_for(const Tensor& t) const {
    if (!mix) return single.get();
    const auto it = by_type.find(type.at(&t));
    return it == by_type.end() ? nullptr : it->second.get();
  }
};

quant::TensorRole role_of(const Block& b, const Tensor* t) {
  using R = quant::TensorRole;
  if (t == &b.wq) return R::AttnQ;
  if (t == &b.wk) return R::AttnK;
  if (t == &b.wv) return R::AttnV;
  if (t == &b.wo) return R::AttnOut;
  if (t == &b.w_gate) return R::FfnGate;
  if (t == &b.w_up) return R::FfnUp;
  return R::FfnDown;
}

quant::MixModel mix_model(const Model& m) {
  return {int64_t(m.blocks.size()), m.hp.n_head_kv > 0 ? m.hp.n_head / m.hp.n_head_kv : 1, m.output.data == m.tok_embd.data};
}

Plan make_plan(const QuantizeOptions& o, const Model& m) {
  Plan p;
  p.name = pick_type(o);
  if (o.format != "gguf" && o.format != "slimlm") fail("--format must be gguf or slimlm, not '", o.format, "'");
  if (o.method == "kmeans") return p;  // one codebook per row, made in the block step
  auto mix = quant::find_mixture(p.name);
  if (mix && (quant::is_k_mixture_name(p.name) || o.format == "gguf")) p.mix = mix;
  if (o.pure && !p.mix) fail("--pure needs a llama.cpp file type (--type q4_K_M, or q4_0 … q8_0 with --format gguf)");
  if (!p.mix) {
    p.single = quant::make_codec(p.name);
    for (const Block& b : m.blocks)
      for (const Tensor* t : b.linears())
        if (!p.single->tail_ok() && t->cols() % p.single->fit_span() != 0)
          fail(t->name, ": rows of ", t->cols(), " do not fit ", p.single->name(), " blocks of ", p.single->fit_span());
    return p;
  }
  p.mix->pure = o.pure;
  p.name = p.mix->name + (o.pure ? " (pure)" : "");
  const quant::MixModel mm = mix_model(m);
  for (size_t l = 0; l < m.blocks.size(); ++l)
    for (const Tensor* t : m.blocks[l].linears()) {
      const DType ty = *quant::mixture_type(*p.mix, role_of(m.blocks[l], t), int64_t(l), t->cols(), mm);
      p.type[t] = ty;
      if (ty != DType::F16 && !p.by_type.count(ty)) p.by_type[ty] = quant::make_codec(type_name(ty));
    }
  return p;
}

// Token embedding and output of a mixture: round to nearest (llama.cpp quantizes them without
// calibration too); legacy types through the type table (the bits llama.cpp's reference writes).
void quantize_embeddings(Model& m, const quant::Mixture& mx) {
  const quant::MixModel mm = mix_model(m);
  auto requant = [&](Tensor& t, quant::TensorRole role) {
    if (t.empty()) return;
    const auto ty = quant::mixture_type(mx, role, 0, t.cols(), mm);
    if (!ty || *ty == t.type) return;
    const std::vector<float> f = t.to_f32();
    if (traits(*ty).from_f32) { t = Tensor::from_f32(t.name, t.ne, f.data(), *ty); return; }
    const auto c = quant::make_codec(type_name(*ty));
    t = quant::to_tensor(quant::rtn(f.data(), t.rows(), t.cols(), *c), *c, t);
  };
  requant(m.tok_embd, quant::TensorRole::TokenEmbd);
  if (mm.tied_embd) m.output = m.tok_embd;
  else requant(m.output, quant::TensorRole::Output);
}

void run_quantize(const QuantizeOptions& o) {
  apply_threads(o.threads);
  static const std::set<std::string> methods = {"rtn", "gptq", "awq", "awq+gptq", "w8a8", "smoothquant", "smoothquant+gptq", "kmeans", "nf"};
  if (!methods.count(o.method))
    fail("unknown --method '", o.method, "' (rtn, gptq, awq, awq+gptq, w8a8, smoothquant, smoothquant+gptq, kmeans, nf)");
  if (o.outliers < 0 || o.outliers >= 50) fail("--outliers is a percentage of each weight in [0, 50), not ", o.outliers);
  static const std::set<std::string> scores = {"auto", "magnitude", "hessian"};
  if (!scores.count(o.outlier_score)) fail("--outlier-score must be auto, magnitude or hessian, not '", o.outlier_score, "'");
  // Calibration statistics: for the calibrated methods, and for Hessian-scored outliers.
  const bool hessian_outliers = o.outliers > 0 && (o.outlier_score == "hessian" || (o.outlier_score == "auto" && o.method != "rtn" && o.method != "nf"));
  const bool calibrated = (o.method != "rtn" && o.method != "w8a8" && o.method != "nf") || hessian_outliers;
  check_model_path(o.model);
  check_output_folder(o.out);  // fail before the work when the output cannot be written
  pick_type(o);  // flag errors before loading
  auto m = load_model(o.model);
  const Plan plan = make_plan(o, *m);
  if (o.outliers > 0 && (plan.mix || o.format == "gguf"))
    fail("--outliers adds slimlm-only side tensors, which llama.cpp files (--format gguf, K-quant types) cannot hold");

  std::vector<std::vector<int32_t>> calib;
  if (calibrated) calib = pipeline::load_calibration(*m, o.calib.options());
  quant::Wants wants;
  wants.stats = calibrated;
  wants.hessian = o.method.ends_with("gptq");
  wants.sample_tokens = o.method == "awq" || o.method == "awq+gptq" ? o.sample_tokens : 0;

  quant::GptqOptions go;
  go.damp = o.damp; go.act_order = o.act_order;
  quant::AwqOptions ao;
  quant::SmoothOptions so;
  so.alpha = o.alpha;
  double gptq_err = 0;
  int64_t n_outliers = 0;
  std::vector<double> alphas;
  auto compress = [&](Model& mm, int64_t l, quant::BlockStats& st) {
    Block& b = mm.blocks[size_t(l)];
    quant::AwqBlock awq;  // AWQ's scaled weights and clips, or SmoothQuant's scaled weights
    const bool use_awq = o.method == "awq" || o.method == "awq+gptq", use_sq = is_smoothquant(o.method);
    if (use_awq) {
      ao.clip = o.method == "awq";  // with GPTQ rounding the clip search is replaced by GPTQ's own fits
      awq = quant::awq_block(mm, l, st, [&plan](const Tensor& t) { return plan.codec_for(t); }, ao);
      for (double a : awq.alpha) alphas.push_back(a);
    } else if (use_sq) {
      static_cast<quant::ScaledBlock&>(awq) = quant::smoothquant_block(mm, l, st, so);
    }
    const bool scaled = use_awq || use_sq;
    for (int s = 0; s < kLinearSites; ++s) {
      // Per-input-channel sensitivity H_jj = Σx_j² of the inputs the stored weights see (X/s when scaled).
      std::vector<float> sens;
      if (wants.stats) {
        const auto& ss = st[size_t(s)].sum_sq;
        sens.resize(ss.size());
        for (size_t j = 0; j < ss.size(); ++j) {
          const double sc = scaled && !awq.scale[s].empty() ? double(awq.scale[s][j]) : 1.0;
          sens[j] = float(ss[j] / (sc * sc));
        }
      }
      auto ws = quant::site_weights(b, LinearSite(s));
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
        std::shared_ptr<const CsrF16> side;
        if (o.outliers > 0) {  // dense-and-sparse: the top entries leave w before it is quantized
          const bool h = hessian_outliers && !sens.empty();
          side = std::make_shared<const CsrF16>(quant::split_outliers(w.data(), t.rows(), t.cols(), o.outliers / 100.0,
              h ? quant::OutlierScore::Hessian : quant::OutlierScore::Magnitude, h ? sens.data() : nullptr));
          n_outliers += side->nnz();
        }
        if (o.method == "kmeans") {  // SqueezeLLM: per-row codebook by sensitivity-weighted k-means
          auto buf = std::make_shared<std::vector<uint8_t>>(
              quant::codebook_quantize_matrix(w.data(), t.rows(), t.cols(), sens.data(), o.bits));
          Tensor q;
          q.name = t.name; q.ne = t.ne; q.type = custom_type({CustomKind::Codebook, o.bits, false, 0});
          q.data = buf->data(); q.nbytes = buf->size(); q.keep = buf;
          q.outliers = side;
          t = std::move(q);
          continue;
        }
        const quant::Codec* codec = plan.codec_for(t);
        if (!codec) { t = Tensor::from_f32(t.name, t.ne, w.data(), DType::F16); continue; }  // rows fit no block type
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
        t.outliers = side;
      }
    }
  };
  const quant::RunInfo info = quant::run_layerwise(*m, calib, wants, compress, !o.no_progress);
  if (plan.mix) quantize_embeddings(*m, *plan.mix);

  int64_t n_lin = 0;
  size_t lin_bytes = 0;
  std::map<std::string, int64_t> type_elems;  // elements per storage type, all matrices
  for (const Block& b : m->blocks)
    for (const Tensor* t : b.linears()) {
      n_lin += t->nelements();
      lin_bytes += t->nbytes;
      if (t->outliers) lin_bytes += size_t(t->outliers->nnz()) * 6 + size_t(t->outliers->rows + 1) * 4;  // f16 value + i32 column, row pointers
      type_elems[type_name(t->type)] += t->nelements();
    }
  type_elems[type_name(m->tok_embd.type)] += m->tok_embd.nelements();
  if (m->output.data != m->tok_embd.data && !m->output.empty()) type_elems[type_name(m->output.type)] += m->output.nelements();
  const double bpw_lin = 8.0 * double(lin_bytes) / double(n_lin);
  std::vector<std::pair<std::string, gguf::Value>> meta = {
      {"slimlm.quant.method", gguf::Value::of_str(o.method)},
      {"slimlm.quant.type", gguf::Value::of_str(plan.name)},
      {"slimlm.quant.calib", gguf::Value::of_str(calibrated ? o.calib.label() : "none")},
  };
  if (wants.hessian) meta.push_back({"slimlm.quant.act_order", gguf::Value::of_bool(o.act_order)});
  if (is_smoothquant(o.method)) meta.push_back({"slimlm.quant.alpha", gguf::Value::of_f32(float(o.alpha))});
  if (o.outliers > 0) meta.push_back({"slimlm.quant.outliers_percent", gguf::Value::of_f32(float(o.outliers))});
  if (plan.mix) meta.push_back({"general.file_type", gguf::Value::of_u32(plan.mix->file_type)});
  save_gguf_as_is(*m, o.out, meta);
  const double file_mb = double(std::filesystem::file_size(o.out)) / (1024.0 * 1024.0);
  const double all_bpw = 8.0 * double(std::filesystem::file_size(o.out)) / double(m->n_params());
  if (o.json) {
    nlohmann::json j = {{"model", o.model}, {"output", o.out}, {"method", o.method}, {"type", plan.name}, {"types", type_elems},
                        {"act_order", o.act_order}, {"calib_tokens", info.tokens}, {"seconds", info.seconds},
                        {"bpw_linear", bpw_lin}, {"bpw_file", all_bpw}, {"file_mb", file_mb},
                        {"peak_rss_mb", eval::peak_rss_mb()}};
    if (wants.hessian) j["gptq_err"] = gptq_err;
    if (!alphas.empty()) j["awq_alpha"] = alphas;
    if (is_smoothquant(o.method)) j["alpha"] = o.alpha;
    if (o.outliers > 0) { j["outliers_percent"] = o.outliers; j["outliers"] = n_outliers; j["outlier_score"] = hessian_outliers ? "hessian" : "magnitude"; }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("quantized %s -> %s\n  method %s, type %s, %.3f bits/weight in block linears, file %.1f MiB (%.2f bpw overall)\n"
                "  %.1f s, peak RSS %.0f MiB\n",
                o.model.c_str(), o.out.c_str(), o.method.c_str(), plan.name.c_str(), bpw_lin, file_mb, all_bpw,
                info.seconds, eval::peak_rss_mb());
  }
}
}  // namespace

void add_quantize(CLI::App& app) {
  static QuantizeOptions o;
  auto* sub = app.add_subcommand("quantize", "quantize a model's weights (RTN, GPTQ, AWQ, W8A8/SmoothQuant) and write GGUF");
  sub->footer("Examples:\n  slimlm quantize models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.w4g128.gguf --method gptq --bits 4 --group 128\n"
              "  slimlm quantize models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.q4_0.gguf --method gptq --bits 4 --group 32 --sym --format gguf\n"
              "  slimlm quantize models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.w8a8.gguf --method smoothquant --alpha 0.5\n"
              "  slimlm quantize models/smollm2-f32.gguf -o smol.q4_K_M.gguf --method gptq --type q4_K_M");
  sub->add_option("model", o.model, "input model file or folder")->required();
  sub->add_option("-o,--output", o.out, "output .gguf path")->required();
  sub->add_option("--method", o.method, "rtn, gptq, awq, awq+gptq (AWQ scales, GPTQ rounding); w8a8 (int8 weights per channel "
                  "and int8 activations per token), smoothquant, smoothquant+gptq; kmeans (per-row --bits codebook by "
                  "sensitivity-weighted k-means, SqueezeLLM); nf (NormalFloat grid, --bits/--group)");
  sub->add_option("--outliers", o.outliers, "percent of each block weight kept in f16 beside the quantized part (dense-and-sparse, "
                  "e.g. 0.5); slimlm runs these files, llama.cpp does not");
  sub->add_option("--outlier-score", o.outlier_score, "which weights are outliers: magnitude |w|, hessian w²·Σx² (calibrated), "
                  "auto (hessian for calibrated methods)");
  sub->add_option("--alpha", o.alpha, "SmoothQuant migration strength α in s_j = max|X_j|^α / max|W_j|^(1-α)")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--bits", o.bits, "bits per weight (2..8)")->check(CLI::Range(2, 8));
  sub->add_option("--group", o.group, "weights per group along a row (any size; the last group may be shorter)")->check(CLI::Range(1, 1 << 20));
  sub->add_flag("--sym", o.sym, "symmetric grid (no zero points)");
  sub->add_flag("--asym", o.asym, "asymmetric grid with integer zero points (default)");
  sub->add_option("--type", o.type, "storage type: q4_0 q4_1 q5_0 q5_1 q8_0, uBgG / sBgG (e.g. u3g64), nfBgG, w8a8, or a llama.cpp "
                  "K-quant mixture q2_K q3_K_S q3_K_M q3_K_L q4_K_S q4_K_M q5_K_S q5_K_M q6_K (q3_K/q4_K/q5_K: the _M ones)");
  sub->add_option("--format", o.format, "gguf: llama.cpp types, chosen per tensor as llama-quantize does (token embedding "
                  "and output included); slimlm: slimlm's types (default)");
  sub->add_flag("--pure", o.pure, "with a llama.cpp file type: every block weight gets the base type (llama-quantize --pure)");
  sub->add_flag("--act-order", o.act_order, "GPTQ: quantize columns by decreasing Hessian diagonal (static groups)");
  sub->add_option("--damp", o.damp, "GPTQ: dampening as a fraction of the mean Hessian diagonal")->check(CLI::Range(0.0, 10.0));
  add_calib_flags(sub, &o.calib);
  sub->add_flag("--json", o.json, "print a JSON summary on stdout");
  sub->add_flag("--no-progress", o.no_progress, "no progress bar");
  add_threads(sub, &o.threads);
  sub->callback([] { run_quantize(o); });
}

}  // namespace slimlm::cli
