#include "pipeline/quantize.h"
#include "core/csr.h"
#include "core/dtype_custom.h"
#include "core/error.h"
#include "eval/eval.h"
#include "quant/layerwise.h"
#include "quant/methods.h"
#include "quant/mixture.h"
#include "quant/nonuniform.h"
#include "quant/outliers.h"
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

namespace slimlm::pipeline {

QuantizeOptions quantize_options(const Args& a) {
  QuantizeOptions o;
  o.method = &a.method();
  o.type = a.text("type");
  o.format = a.text("format");
  o.calib = calib_options(a);
  o.bits = int(a.integer("bits"));
  o.group = a.integer("group");
  o.sym = a.flag("sym");
  o.asym = a.flag("asym");
  o.act_order = a.flag("act-order");
  o.pure = a.flag("pure");
  o.progress = !a.flag("no-progress");
  o.damp = a.real("damp");
  o.alpha = a.real("alpha");
  o.outliers = a.real("outliers");
  o.outlier_score = a.text("outlier-score");
  o.threads = a.integer("threads");
  o.qat.epochs = a.integer("qat-epochs");
  o.qat.lr_weights = a.real("qat-lr");
  o.qat.lr_scales = a.real("qat-scale-lr");
  o.qat.e2e_steps = a.integer("qat-e2e-steps");
  o.qat.e2e_lr = a.real("qat-e2e-lr");
  o.qat.seed = a.unsigned_integer("seed");
  o.qat.progress = o.progress;
  return o;
}

namespace {
using M = MethodId;

// The llama.cpp block type of --format gguf for --bits/--group/--asym.
std::string gguf_block_type(const QuantizeOptions& o) {
  const char* t = nullptr;
  if (o.group == 32 && o.bits == 4) t = o.asym ? "q4_1" : "q4_0";
  if (o.group == 32 && o.bits == 5) t = o.asym ? "q5_1" : "q5_0";
  if (o.group == 32 && o.bits == 8 && !o.asym) t = "q8_0";
  if (!t) fail("no llama.cpp block type holds ", o.bits, "-bit groups of ", o.group, (o.asym ? " (asym)" : ""),
               "; use --group 32 with 4, 5 or 8 bits, a K-quant type such as --type q4_K_M, or --format slimlm");
  return t;
}
}  // namespace

std::string pick_type(const QuantizeOptions& o) {
  const MethodInfo& me = *o.method;
  if (me.id == M::Kmeans) {
    if (!o.type.empty() || o.format == "gguf") fail("--method kmeans writes per-row codebooks (slimlm type lut", o.bits, "), not --type/--format gguf");
    return cat("lut", o.bits);
  }
  if (me.id == M::Nf) {
    if (!o.type.empty() && !o.type.starts_with("nf")) fail("--method nf writes an NF grid, not --type ", o.type);
    if (o.format == "gguf") fail("llama.cpp has no NF grid: --method nf writes slimlm types");
    return o.type.empty() ? cat("nf", o.bits, "g", o.group) : o.type;
  }
  if (me.id == M::W8a8 || me.smooth) {
    if (!o.type.empty() && o.type != "w8a8") fail("--method ", me.name, " writes w8a8 weights, not --type ", o.type);
    return "w8a8";
  }
  if (o.type == "w8a8" && me.awq) fail("AWQ's per-group search does not fit per-channel w8a8 weights: use --method smoothquant");
  if (!o.type.empty()) return o.type;
  if (o.sym && o.asym) fail("--sym and --asym exclude each other");
  if (o.format == "gguf") return gguf_block_type(o);
  return cat(o.sym ? "s" : "u", o.bits, "g", o.group);
}

namespace {
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
  if (o.method->id == M::Kmeans) return p;  // one codebook per row, made in the block step
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

// The per-block step of the layer-wise pipeline: scales (AWQ / SmoothQuant), outliers, then
// rounding (GPTQ, RTN, k-means codebooks) of every linear of the block.
struct BlockQuantizer {
  BlockQuantizer(const QuantizeOptions& opts, const Plan& p) : o(opts), plan(p) {}
  const QuantizeOptions& o;
  const Plan& plan;
  quant::Wants wants;
  bool hessian_outliers = false;
  quant::GptqOptions go;
  quant::AwqOptions ao;
  quant::SmoothOptions so;
  double gptq_err = 0;
  int64_t n_outliers = 0;
  std::vector<double> alphas;

  void operator()(Model& m, int64_t l, quant::BlockStats& st);
  quant::AwqBlock scale(Model& m, int64_t l, const quant::BlockStats& st);
  std::vector<float> sensitivity(const quant::SiteStats& ss, const std::vector<float>& scale) const;
  void quantize_weight(Tensor& t, std::vector<float> w, const quant::SiteStats& ss, const std::vector<float>& sens,
                       const std::vector<float>* clip);
};

// AWQ's scaled weights and clips, SmoothQuant's scaled weights, or nothing (no scaling).
quant::AwqBlock BlockQuantizer::scale(Model& m, int64_t l, const quant::BlockStats& st) {
  quant::AwqBlock awq;
  if (o.method->awq) {
    ao.clip = !o.method->hessian;  // with GPTQ rounding the clip search is replaced by GPTQ's own fits
    awq = quant::awq_block(m, l, st, [this](const Tensor& t) { return plan.codec_for(t); }, ao);
    for (double a : awq.alpha) alphas.push_back(a);
  } else if (o.method->smooth) {
    static_cast<quant::ScaledBlock&>(awq) = quant::smoothquant_block(m, l, st, so);
  }
  return awq;
}

// Per-input-channel sensitivity H_jj = Σx_j² of the inputs the stored weights see (X/s when scaled).
std::vector<float> BlockQuantizer::sensitivity(const quant::SiteStats& ss, const std::vector<float>& scale) const {
  std::vector<float> sens;
  if (!wants.stats) return sens;
  sens.resize(ss.sum_sq.size());
  for (size_t j = 0; j < ss.sum_sq.size(); ++j) {
    const double sc = scale.empty() ? 1.0 : double(scale[j]);
    sens[j] = float(ss.sum_sq[j] / (sc * sc));
  }
  return sens;
}

// Inputs are X / s after scaling: H' = S⁻¹ H S⁻¹.
void rescale_hessian(quant::SiteStats& ss, const std::vector<float>& sc) {
  auto& H = ss.xtx;
  const int64_t k = ss.k;
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) H[size_t(i * k + j)] /= double(sc[size_t(i)]) * sc[size_t(j)];
}

void BlockQuantizer::quantize_weight(Tensor& t, std::vector<float> w, const quant::SiteStats& ss, const std::vector<float>& sens,
                                     const std::vector<float>* clip) {
  std::shared_ptr<const CsrF16> side;
  if (o.outliers > 0) {  // dense-and-sparse: the top entries leave w before it is quantized
    const bool h = hessian_outliers && !sens.empty();
    side = std::make_shared<const CsrF16>(quant::split_outliers(w.data(), t.rows(), t.cols(), o.outliers / 100.0,
        h ? quant::OutlierScore::Hessian : quant::OutlierScore::Magnitude, h ? sens.data() : nullptr));
    n_outliers += side->nnz();
  }
  if (o.method->id == M::Kmeans) {  // SqueezeLLM: per-row codebook by sensitivity-weighted k-means
    auto buf = std::make_shared<std::vector<uint8_t>>(quant::codebook_quantize_matrix(w.data(), t.rows(), t.cols(), sens.data(), o.bits));
    Tensor q;
    q.name = t.name; q.ne = t.ne; q.type = custom_type({CustomKind::Codebook, o.bits, false, 0});
    q.data = buf->data(); q.nbytes = buf->size(); q.keep = buf;
    q.outliers = side;
    t = std::move(q);
    return;
  }
  const quant::Codec* codec = plan.codec_for(t);
  if (!codec) { t = Tensor::from_f32(t.name, t.ne, w.data(), DType::F16); return; }  // rows fit no block type
  quant::QMatrix q;
  if (wants.hessian) {
    quant::GptqReport rep;
    q = quant::gptq(w.data(), t.rows(), t.cols(), ss, *codec, go, &rep);
    gptq_err += rep.err;
  } else {
    q = quant::rtn(w.data(), t.rows(), t.cols(), *codec, clip);
  }
  t = quant::to_tensor(q, *codec, t);
  t.outliers = side;
}

void BlockQuantizer::operator()(Model& m, int64_t l, quant::BlockStats& st) {
  Block& b = m.blocks[size_t(l)];
  quant::AwqBlock awq = scale(m, l, st);
  const bool scaled = o.method->awq || o.method->smooth;
  for (int s = 0; s < kLinearSites; ++s) {
    const std::vector<float> none;
    const std::vector<float>& sc = scaled ? awq.scale[s] : none;
    const std::vector<float> sens = sensitivity(st[size_t(s)], sc);
    auto ws = quant::site_weights(b, LinearSite(s));
    if (wants.hessian && !sc.empty()) rescale_hessian(st[size_t(s)], sc);
    for (size_t i = 0; i < ws.size(); ++i) {
      const std::vector<float>* clip = o.method->awq && !o.method->hessian && !awq.clip[s][i].empty() ? &awq.clip[s][i] : nullptr;
      quantize_weight(*ws[i], scaled ? std::move(awq.w[s][i]) : ws[i]->to_f32(), st[size_t(s)], sens, clip);
    }
  }
}

// Bits per weight of the block linears (outliers included) and elements per storage type.
struct Sizes {
  double bpw_linear = 0;
  std::map<std::string, int64_t> type_elems;
};

Sizes sizes(const Model& m) {
  Sizes s;
  int64_t n_lin = 0;
  size_t lin_bytes = 0;
  for (const Block& b : m.blocks)
    for (const Tensor* t : b.linears()) {
      n_lin += t->nelements();
      lin_bytes += t->nbytes;
      if (t->outliers) lin_bytes += size_t(t->outliers->nnz()) * 6 + size_t(t->outliers->rows + 1) * 4;  // f16 value + i32 column, row pointers
      s.type_elems[type_name(t->type)] += t->nelements();
    }
  s.type_elems[type_name(m.tok_embd.type)] += m.tok_embd.nelements();
  if (m.output.data != m.tok_embd.data && !m.output.empty()) s.type_elems[type_name(m.output.type)] += m.output.nelements();
  s.bpw_linear = 8.0 * double(lin_bytes) / double(n_lin);
  return s;
}

Compressed summarize(const Model& m, const QuantizeOptions& o, const Plan& plan, const BlockQuantizer& bq,
                     const quant::RunInfo& info, const std::string& calib) {
  const Sizes sz = sizes(m);
  const MethodInfo& me = *o.method;
  Compressed c;
  c.meta = {{"slimlm.quant.method", gguf::Value::of_str(me.name)},
            {"slimlm.quant.type", gguf::Value::of_str(plan.name)},
            {"slimlm.quant.calib", gguf::Value::of_str(calib)}};
  if (bq.wants.hessian) c.meta.push_back({"slimlm.quant.act_order", gguf::Value::of_bool(o.act_order)});
  if (me.smooth) c.meta.push_back({"slimlm.quant.alpha", gguf::Value::of_f32(float(o.alpha))});
  if (o.outliers > 0) c.meta.push_back({"slimlm.quant.outliers_percent", gguf::Value::of_f32(float(o.outliers))});
  if (plan.mix) c.meta.push_back({"general.file_type", gguf::Value::of_u32(plan.mix->file_type)});
  nlohmann::json& j = c.summary;
  j = {{"method", me.name}, {"type", plan.name}, {"types", sz.type_elems}, {"act_order", o.act_order},
       {"calib_tokens", info.tokens}, {"seconds", info.seconds}, {"bpw_linear", sz.bpw_linear}};
  if (bq.wants.hessian) j["gptq_err"] = bq.gptq_err;
  if (!bq.alphas.empty()) j["awq_alpha"] = bq.alphas;
  if (me.smooth) j["alpha"] = o.alpha;
  if (o.outliers > 0) {
    j["outliers_percent"] = o.outliers;
    j["outliers"] = bq.n_outliers;
    j["outlier_score"] = bq.hessian_outliers ? "hessian" : "magnitude";
  }
  return c;
}
}  // namespace

namespace {
// --method qat: one uniform codec for every block linear, trained on the calibration text.
Compressed quantize_qat(Model& m, const QuantizeOptions& o, const Plan& plan) {
  if (!plan.single) fail("--method qat writes one uniform type (uNgG, sNgG, q4_0 … q8_0), not the mixture ", plan.name);
  if (o.outliers > 0) fail("--method qat does not keep outliers");
  CalibOptions co = o.calib;
  const auto calib = load_calib(m, co);
  quant::QatOptions qo = o.qat;
  qo.type = plan.name;
  const quant::QatReport rep = quant::qat(m, calib, qo);
  Compressed c;
  c.meta = {{"slimlm.quant.method", gguf::Value::of_str("qat")},
            {"slimlm.quant.type", gguf::Value::of_str(plan.name)},
            {"slimlm.quant.calib", gguf::Value::of_str(calib_label(co))}};
  c.summary = {{"method", "qat"}, {"type", plan.name}, {"types", sizes(m).type_elems}, {"bpw_linear", sizes(m).bpw_linear},
               {"calib_tokens", int64_t(calib.size() * calib[0].size())}, {"seconds", rep.seconds_block + rep.seconds_e2e},
               {"seconds_block", rep.seconds_block}, {"seconds_e2e", rep.seconds_e2e}, {"mse_rtn", rep.mse_rtn},
               {"mse_qat", rep.mse_qat}, {"e2e_loss", rep.e2e_loss}};
  return c;
}
}  // namespace

Compressed quantize_model(Model& m, const QuantizeOptions& o) {
  const ThreadScope threads(o.threads);
  const Plan plan = make_plan(o, m);
  if (o.method->id == M::Qat) return quantize_qat(m, o, plan);
  if (o.outliers > 0 && (plan.mix || o.format == "gguf"))
    fail("--outliers adds slimlm-only side tensors, which llama.cpp files (--format gguf, K-quant types) cannot hold");
  BlockQuantizer bq(o, plan);
  const MethodInfo& me = *o.method;
  // Calibration statistics: for the calibrated methods, and for Hessian-scored outliers.
  bq.hessian_outliers = o.outliers > 0 && (o.outlier_score == "hessian" ||
                                           (o.outlier_score == "auto" && me.id != M::Rtn && me.id != M::Nf));
  const bool calibrated = me.calibrated || bq.hessian_outliers;
  CalibOptions co = o.calib;
  std::vector<std::vector<int32_t>> calib;
  if (calibrated) calib = load_calib(m, co);
  bq.wants.stats = calibrated;
  bq.wants.hessian = me.hessian;
  bq.wants.sample_tokens = me.awq ? o.sample_tokens : 0;
  bq.go.damp = o.damp;
  bq.go.act_order = o.act_order;
  bq.so.alpha = o.alpha;
  const quant::RunInfo info = quant::run_layerwise(m, calib, bq.wants, std::ref(bq), o.progress);
  if (plan.mix) quantize_embeddings(m, *plan.mix);
  return summarize(m, o, plan, bq, info, calibrated ? calib_label(co) : "none");
}

}  // namespace slimlm::pipeline
