#include "pipeline/registry.h"
#include "core/error.h"
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace slimlm::pipeline {

namespace {
using F = Family;
using M = MethodId;
using T = ParamType;

const std::vector<MethodInfo> kMethods = {
    // name, id, family, help, calibrated, hessian, awq, smooth
    {"rtn", M::Rtn, F::Quantize, "round to nearest"},
    {"gptq", M::Gptq, F::Quantize, "GPTQ rounding with calibration Hessians", true, true},
    {"awq", M::Awq, F::Quantize, "AWQ activation-aware scales and clip search", true, false, true},
    {"awq+gptq", M::AwqGptq, F::Quantize, "AWQ scales, GPTQ rounding", true, true, true},
    {"w8a8", M::W8a8, F::Quantize, "int8 weights per channel and int8 activations per token"},
    {"smoothquant", M::SmoothQuant, F::Quantize, "W8A8 after SmoothQuant's scales (--alpha)", true, false, false, true},
    {"smoothquant+gptq", M::SmoothQuantGptq, F::Quantize, "SmoothQuant scales, GPTQ rounding", true, true, false, true},
    {"kmeans", M::Kmeans, F::Quantize, "per-row --bits codebook by sensitivity-weighted k-means (SqueezeLLM)", true},
    {"nf", M::Nf, F::Quantize, "NormalFloat grid (--bits/--group)"},
    {"qat", M::Qat, F::Quantize, "quantization-aware training: block-wise reconstruction of weights and step sizes "
     "(EfficientQAT's Block-AP), then step sizes end to end by distillation from the original (--qat-e2e-steps)", true},
    {"magnitude", M::Magnitude, F::PruneUnstructured, "unstructured, |W|"},
    {"wanda", M::Wanda, F::PruneUnstructured, "unstructured, |W|·‖X‖"},
    {"ria", M::Ria, F::PruneUnstructured, "unstructured, relative importance and activations"},
    {"sparsegpt", M::SparseGpt, F::PruneUnstructured, "unstructured, OBS reconstruction"},
    {"heads", M::Heads, F::PruneStructured, "structured (a smaller dense model): attention heads (KV groups)"},
    {"neurons", M::Neurons, F::PruneStructured, "structured: FFN neurons"},
    {"layers", M::Layers, F::PruneStructured, "structured: contiguous blocks (Gromov et al.)"},
    {"flap", M::Flap, F::PruneStructured, "structured: heads + neurons with bias compensation"},
    {"block-influence", M::BlockInfluence, F::PruneStructured, "structured: least influential blocks (ShortGPT)"},
    {"convert", M::Convert, F::Convert, "rewrite the weights in another storage type"},
};

// Calibration and run flags shared by quantize and prune.
std::vector<ParamInfo> calib_params(std::vector<ParamInfo> p) {
  p.push_back({"calib", T::Text, "", "calibration text (default: data/calibration.txt shipped with slimlm; the environment variable SLIMLM_DATA names another folder)"});
  p.push_back({"calib-ids", T::Text, "", "calibration token ids (whitespace-separated) instead of text"});
  p.push_back({"calib-samples", T::Int, "64", "calibration sequences", 1, 100000});
  p.push_back({"calib-len", T::Int, "256", "tokens per calibration sequence", 2, 1 << 16});
  p.push_back({"seed", T::Int, "1", "seed for picking calibration sequences"});
  p.push_back({"no-progress", T::Flag, "", "no progress bar"});
  p.push_back({"threads", T::Int, "0", "worker threads (0: all cores)", 1, 1024});
  return p;
}

// The train and distill verbs' parameters (one list: distill is train with a teacher). Values
// the training code checks itself (learning rate, distillation loss, black-box options) carry
// no range here, so its messages name them.
std::vector<ParamInfo> train_params() {
  return {
      {"data", T::Text, "", "training text, or the prompts' corpus with --black-box (default: the calibration text shipped with slimlm)"},
      {"ids", T::Text, "", "or a file of token ids (whitespace-separated)"},
      {"seq", T::Int, "256", "tokens per sequence", 2, 65536},
      {"steps", T::Int, "100", "optimizer steps", 1, 1e7},
      {"accum", T::Int, "1", "sequences per step", 1, 4096},
      {"lr", T::Float, "1e-4", "peak learning rate, in (0, 1]"},
      {"warmup", T::Int, "0", "warm-up steps", 0, 1e7},
      {"wd", T::Float, "0", "AdamW weight decay on matrices", 0, 1},
      {"clip", T::Float, "1", "global gradient-norm clip (0: none)", 0, 1e9},
      {"seed", T::Int, "1", "order of the sequences and the black-box passages and sampling"},
      {"heldout", T::Float, "0.05", "held-out fraction of the sequences", 0, 1, true},
      {"heldout-max", T::Int, "16", "held-out sequences evaluated, at most", 1, 1 << 30},
      {"eval-every", T::Int, "0", "held-out loss every N steps (0: at the start and the end)", 0, 1e7},
      {"lora-rank", T::Int, "", "train LoRA adapters of this rank on a frozen base (default: full fine-tuning)", 1, 4096},
      {"lora-alpha", T::Float, "", "LoRA alpha (default 2 x rank)", 0, 1e6, true},
      {"lora-targets", T::Text, "q,k,v,o,gate,up,down", "linears with adapters, comma-separated"},
      {"teacher", T::Text, "", "distil from this model (same vocabulary; in a recipe, distill defaults to the recipe's source model)"},
      {"kd", T::Text, "fkl", "distillation loss: fkl, rkl, jsd, skl or srkl"},
      {"temperature", T::Float, "1", "distillation temperature, in (0, 100]"},
      {"kd-beta", T::Float, "0.5", "JSD beta / skew alpha, in (0, 1)"},
      {"ce-weight", T::Float, "0", "weight of next-token cross-entropy in the mix", 0, 1},
      {"on-policy", T::Float, "0", "on-policy distillation (GKD): the fraction of training sequences the student writes "
       "itself after a prompt from the data, in [0, 1]"},
      {"on-policy-prompt", T::Int, "16", "data tokens kept as the prompt of an on-policy sequence, in [1, seq)"},
      {"on-policy-temp", T::Float, "1", "the student's sampling temperature on on-policy sequences (0: greedy), in [0, 100]"},
      {"feature-weight", T::Float, "0", "feature distillation weight: MSE of hidden states", 0, 1e6},
      {"relation-weight", T::Float, "0", "relation distillation weight: MiniLM Q-Q/K-K/V-V KL", 0, 1e6},
      {"feature-layers", T::Text, "", "student layers for feature distillation, as i or i:teacher_layer, comma-separated "
       "(default: all, uniform map)"},
      {"relation-layers", T::Text, "", "student layers for relation distillation, as i or i:teacher_layer, comma-separated "
       "(default: the last)"},
      {"relation-heads", T::Int, "0", "relation heads; 0: the gcd of the paired layers' KV head counts", 0, 4096},
      {"feature-proj", T::Flag, "", "learn a feature projection even when the widths are equal"},
      {"black-box", T::Flag, "", "black-box distillation: train on text the teacher generates (no logits)"},
      {"bb-style", T::Text, "continue", "black-box prompts: continue, instruct or cot"},
      {"bb-samples", T::Int, "64", "black-box samples the teacher writes, in [1, 10000000]"},
      {"bb-prompt-tokens", T::Int, "64", "corpus tokens in each prompt, in [1, 1048576]"},
      {"bb-new-tokens", T::Int, "128", "tokens the teacher writes per sample, at most, in [1, 1048576]"},
      {"bb-temperature", T::Float, "0", "teacher sampling temperature (0: greedy), in [0, 100]"},
      {"bb-text", T::Text, "", "also write the teacher's samples as text here"},
      {"checkpoint", T::Text, "", "checkpoint file (written at the end and every --checkpoint-every)"},
      {"checkpoint-every", T::Int, "0", "steps between checkpoints", 0, 1e7},
      {"resume", T::Text, "", "continue from this checkpoint"},
      {"curve", T::Text, "", "write the loss curves as an SVG plot"},
      {"type", T::Text, "f32", "storage type of the written matrices: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1"},
      {"no-progress", T::Flag, "", "no progress bar"},
      {"threads", T::Int, "0", "worker threads (0: all cores)", 1, 1024},
  };
}

const std::vector<VerbInfo>& verb_table() {
  static const std::vector<VerbInfo> v = {
      {"quantize", Verb::Quantize, "quantize a model's weights (RTN, GPTQ, AWQ, W8A8/SmoothQuant) and write GGUF",
       calib_params({
           {"method", T::Method, "gptq", ""},
           {"outliers", T::Float, "0", "percent of each block weight kept in f16 beside the quantized part "
            "(dense-and-sparse, e.g. 0.5); slimlm runs these files, llama.cpp does not", 0, 50, true},
           {"outlier-score", T::Choice, "auto", "which weights are outliers: magnitude |w|, hessian w²·Σx² "
            "(calibrated), auto (hessian for calibrated methods)", 0, -1, false, "auto|magnitude|hessian"},
           {"alpha", T::Float, "0.5", "SmoothQuant migration strength α in s_j = max|X_j|^α / max|W_j|^(1-α)", 0, 1},
           {"bits", T::Int, "4", "bits per weight", 2, 8},
           {"group", T::Int, "128", "weights per group along a row (any size; the last group may be shorter)", 1, 1 << 20},
           {"sym", T::Flag, "", "symmetric grid (no zero points)"},
           {"asym", T::Flag, "", "asymmetric grid with integer zero points (default)"},
           {"type", T::Text, "", "storage type: q4_0 q4_1 q5_0 q5_1 q8_0, uBgG / sBgG (e.g. u3g64), nfBgG, w8a8, or a "
            "llama.cpp K-quant mixture q2_K q3_K_S q3_K_M q3_K_L q4_K_S q4_K_M q5_K_S q5_K_M q6_K (q3_K/q4_K/q5_K: the _M ones)"},
           {"format", T::Choice, "slimlm", "gguf: llama.cpp types, chosen per tensor as llama-quantize does (token "
            "embedding and output included); slimlm: slimlm's types", 0, -1, false, "gguf|slimlm"},
           {"pure", T::Flag, "", "with a llama.cpp file type: every block weight gets the base type (llama-quantize --pure)"},
           {"act-order", T::Flag, "", "GPTQ: quantize columns by decreasing Hessian diagonal (static groups)"},
           {"damp", T::Float, "0.01", "GPTQ: dampening as a fraction of the mean Hessian diagonal", 0, 10},
           {"qat-epochs", T::Int, "2", "QAT: passes over the calibration sequences per block (Block-AP)", 0, 1000},
           {"qat-lr", T::Float, "5e-4", "QAT: Block-AP learning rate of the weights", 0, 1, true},
           {"qat-scale-lr", T::Float, "2e-3", "QAT: Block-AP learning rate of the step sizes and zero points", 0, 1, true},
           {"qat-e2e-steps", T::Int, "0", "QAT: end-to-end steps on the step sizes (one calibration sequence each)", 0, 1e7},
           {"qat-e2e-lr", T::Float, "2e-5", "QAT: end-to-end learning rate of the step sizes", 0, 1, true},
       })},
      {"prune", Verb::Prune, "prune a model's block linears (magnitude, Wanda, RIA, SparseGPT; N:M; OWL) and write GGUF",
       calib_params({
           {"method", T::Method, "wanda", ""},
           {"sparsity", T::Float, "0.5", "fraction of weights removed", 0, 1, true},
           {"nm", T::Text, "", "N:M semi-structured sparsity instead, e.g. 2:4 (N kept of every M inputs)"},
           {"dsnot", T::Flag, "", "DSnoT: refine the mask without training (swap pruned/kept weights of a row to cut "
            "its expected output error)"},
           {"dsnot-cycles", T::Int, "50", "DSnoT: swaps per row at most"},
           {"owl", T::Flag, "", "OWL: per-layer sparsities from outlier ratios (mean stays --sparsity)"},
           {"owl-m", T::Float, "5", "OWL: outlier threshold as a multiple of the mean score"},
           {"owl-lambda", T::Float, "0.08", "OWL: layer sparsities span 2·lambda around --sparsity"},
           {"global", T::Flag, "", "magnitude: one threshold over all block linears of the model"},
           {"group", T::Choice, "", "comparison group of unstructured masks (default: row for wanda, layer otherwise)",
            0, -1, false, "row|layer"},
           {"quant", T::Text, "", "sparsegpt: quantize the kept weights in the same pass (e.g. u4g128, q4_0)"},
           {"damp", T::Float, "0.01", "sparsegpt: dampening as a fraction of the mean Hessian diagonal", 0, 10},
           {"score", T::Choice, "activation", "heads/neurons: magnitude (weights only) or activation", 0, -1, false,
            "magnitude|activation"},
           {"no-bias", T::Flag, "", "flap: no bias compensation"},
           {"type", T::Text, "f16", "storage type of the pruned linears: f16, f32, bf16, q8_0, ..."},
       })},
      {"convert", Verb::Convert, "write a model as GGUF with weights in another storage type",
       {
           {"type", T::Text, "f16", "weight type: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1"},
           {"sparse", T::Text, "", "store block linears sparse (f16 values) where they fit: N:M (e.g. 2:4) when every "
            "group of M inputs has <= N nonzeros; bitmap when sparsity >= the measured crossover; auto: N:M 2:4, else bitmap"},
           {"threads", T::Int, "0", "worker threads (0: all cores)", 1, 1024},
       }},
      {"train", Verb::Train, "fine-tune on a text (full or LoRA) on the CPU, with held-out loss, checkpoints, a loss plot",
       train_params()},
      {"distill", Verb::Distill, "train a student against a teacher's logits (forward/reverse KL, JSD, skew KL), hidden "
       "states and attention relations, or its generated text (--black-box)", train_params()},
  };
  return v;
}

bool in_verb(const MethodInfo& m, Verb v) {
  switch (v) {
    case Verb::Quantize: return m.family == F::Quantize;
    case Verb::Prune: return m.family == F::PruneUnstructured || m.family == F::PruneStructured;
    case Verb::Convert: return m.family == F::Convert;
    case Verb::Train: case Verb::Distill: return false;
  }
  return false;
}

std::string join(const std::vector<std::string>& items, const char* sep, const char* last_sep) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i == 0 ? "" : i + 1 == items.size() ? last_sep : sep) + items[i];
  return s;
}

// 1048576 rather than 1.04858e+06.
std::string number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string((long long)v);
  return cat(v);
}

std::vector<std::string> split_choices(const char* choices) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* c = choices; *c; ++c) {
    if (*c == '|') { out.push_back(cur); cur.clear(); } else { cur += *c; }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}
}  // namespace

const std::vector<VerbInfo>& verbs() { return verb_table(); }

const VerbInfo& verb_info(Verb v) {
  for (const VerbInfo& i : verb_table())
    if (i.verb == v) return i;
  fail("internal: verb missing from the registry");
}

const VerbInfo* find_verb(const std::string& name) {
  for (const VerbInfo& i : verb_table())
    if (name == i.name) return &i;
  return nullptr;
}

std::string verb_list() {
  std::vector<std::string> names;
  for (const VerbInfo& i : verb_table()) names.push_back(i.name);
  return join(names, ", ", ", ");
}

bool trains(Verb v) { return v == Verb::Train || v == Verb::Distill; }

const std::vector<MethodInfo>& methods() { return kMethods; }

std::vector<const MethodInfo*> methods_of(Verb v) {
  std::vector<const MethodInfo*> out;
  for (const MethodInfo& m : kMethods)
    if (in_verb(m, v)) out.push_back(&m);
  return out;
}

const MethodInfo& method_info(MethodId id) {
  for (const MethodInfo& m : kMethods)
    if (m.id == id) return m;
  fail("internal: method missing from the registry");
}

const MethodInfo& method_named(Verb v, const std::string& name) {
  for (const MethodInfo* m : methods_of(v))
    if (name == m->name) return *m;
  fail("unknown --method '", name, "' (", method_list(v), ")");
}

std::string method_list(Verb v) {
  std::vector<std::string> names;
  for (const MethodInfo* m : methods_of(v)) names.push_back(m->name);
  return join(names, ", ", ", ");
}

std::string method_help(Verb v) {
  std::vector<std::string> parts;
  for (const MethodInfo* m : methods_of(v)) parts.push_back(cat(m->name, ": ", m->help));
  return join(parts, "; ", "; ");
}

const ParamInfo* find_param(Verb v, const std::string& name) {
  for (const ParamInfo& p : verb_info(v).params)
    if (name == p.name) return &p;
  return nullptr;
}

std::string param_help(Verb v, const ParamInfo& p) {
  std::vector<std::string> notes;
  if (p.type == T::Choice) notes.push_back("one of " + join(split_choices(p.choices), ", ", ", "));
  if ((p.type == T::Int || p.type == T::Float) && p.lo <= p.hi)
    notes.push_back(cat("range [", number(p.lo), ", ", number(p.hi), p.hi_open ? ")" : "]"));
  if (*p.def && p.type != T::Flag) notes.push_back(cat("default ", p.def));
  const std::string h = p.type == T::Method ? method_help(v) : std::string(p.help);
  return notes.empty() ? h : cat(h, " (", join(notes, ", ", ", "), ")");
}

Args::Args(Verb v, Params given) : verb_(v), given_(std::move(given)) {
  for (const auto& [k, val] : given_)
    if (!find_param(v, k)) {
      std::vector<std::string> names;
      for (const ParamInfo& p : verb_info(v).params) names.push_back(cat("--", p.name));
      fail(verb_info(v).name, ": unknown flag '--", k, "' (", join(names, ", ", ", "), ")");
    }
}

const ParamInfo& Args::info(const std::string& name, ParamType t) const {
  const ParamInfo* p = find_param(verb_, name);
  if (!p || !(p->type == t || (t == T::Text && p->type == T::Choice)))
    fail("internal: ", verb_info(verb_).name, " has no parameter --", name, " of that type");
  return *p;
}

std::string Args::raw(const ParamInfo& p) const {
  const auto it = given_.find(p.name);
  return it == given_.end() ? std::string(p.def) : it->second;
}

void Args::check_range(const ParamInfo& p, double v) const {
  if (p.lo > p.hi || !given(p.name)) return;
  if (!(v >= p.lo && (p.hi_open ? v < p.hi : v <= p.hi)))
    fail("--", p.name, " must be in [", number(p.lo), ", ", number(p.hi), p.hi_open ? ")" : "]", ", not ", raw(p));
}

const MethodInfo& Args::method() const {
  if (verb_ == Verb::Convert) return method_info(MethodId::Convert);
  if (trains(verb_)) fail("internal: ", verb_info(verb_).name, " has no --method");
  return method_named(verb_, raw(info("method", T::Method)));
}

bool Args::flag(const std::string& name) const {
  const std::string v = raw(info(name, T::Flag));
  if (v.empty() || v == "false") return false;
  if (v == "true") return true;
  fail("--", name, " is a flag (true or false), not '", v, "'");
}

int64_t Args::integer(const std::string& name) const {
  const ParamInfo& p = info(name, T::Int);
  const std::string v = raw(p);
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno) fail("--", name, " must be an integer, not '", v, "'");
  check_range(p, double(x));
  return x;
}

uint64_t Args::unsigned_integer(const std::string& name) const {
  const ParamInfo& p = info(name, T::Int);
  const std::string v = raw(p);
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || *end || errno) fail("--", name, " must be a non-negative integer, not '", v, "'");
  return x;
}

double Args::real(const std::string& name) const {
  const ParamInfo& p = info(name, T::Float);
  const std::string v = raw(p);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end) fail("--", name, " must be a number, not '", v, "'");
  check_range(p, x);
  return x;
}

std::string Args::text(const std::string& name) const {
  const ParamInfo& p = info(name, T::Text);
  const std::string v = raw(p);
  if (p.type == T::Choice && !v.empty()) {
    const std::vector<std::string> ok = split_choices(p.choices);
    bool found = false;
    for (const auto& c : ok) found |= c == v;
    if (!found) fail("--", name, " must be ", join(ok, ", ", " or "), ", not '", v, "'");
  }
  return v;
}

}  // namespace slimlm::pipeline
