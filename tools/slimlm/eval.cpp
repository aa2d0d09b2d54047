// `slimlm eval MODEL -f TEXT | --ids FILE [--ref MODEL] [--per-token] [--json]`: perplexity
// (llama.cpp protocol), KL divergence and top-1 agreement against a reference, per-token scores.
#include "common.h"
#include "core/error.h"
#include "core/text.h"
#include "eval/eval.h"
#include "model/model.h"
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace slimlm::cli {

namespace {
struct EvalOptions {
  std::string model, file, ids, ref, kv = "f32";
  int64_t ctx = 512, chunks = 0;
  int threads = 0;
  bool json = false, per_token = false, no_progress = false, exact = false;
};

void run_eval(const EvalOptions& o) {
  apply_threads(o.threads);
  const kernels::ExactScope exact = exact_scope(o.exact);
  if (o.file.empty() == o.ids.empty()) fail("give exactly one of -f TEXT_FILE or --ids IDS_FILE");
  check_model_path(o.model);
  auto m = load_model(o.model);
  std::unique_ptr<Model> ref;
  if (!o.ref.empty()) { check_model_path(o.ref); ref = load_model(o.ref); }
  std::vector<int32_t> tokens;
  if (!o.ids.empty()) {
    tokens = parse_ids(read_text_file(o.ids), o.ids);
    for (int32_t id : tokens)
      if (id >= m->hp.n_vocab) fail(o.ids, ": token id ", id, " is outside the vocabulary (", m->hp.n_vocab, ")");
  } else {
    if (!m->tok) fail(o.model, " has no tokenizer: evaluate token ids with --ids");
    const std::string text = read_text_file(o.file);
    if (!valid_utf8(text)) fail(o.file, ": not valid UTF-8 text");
    tokens = m->tok->encode(text, true, false);
  }
  if (o.per_token) {
    auto scores = eval::per_token(*m, tokens);
    if (o.json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& s : scores)
        j.push_back({{"id", s.id}, {"argmax", s.argmax}, {"max_logit", s.max_logit},
                     {"logprob_next", std::isnan(s.logprob_next) ? nlohmann::json(nullptr) : nlohmann::json(s.logprob_next)}});
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("pos id argmax max_logit logprob_next\n");
      for (size_t i = 0; i < scores.size(); ++i)
        std::printf("%zu %d %d %.6f %.6f\n", i, scores[i].id, scores[i].argmax, scores[i].max_logit, scores[i].logprob_next);
    }
    return;
  }
  eval::PplOptions po;
  po.ctx = o.ctx;
  po.max_chunks = o.chunks;
  po.progress = !o.no_progress;
  po.kv = parse_kv_type(o.kv);
  auto r = eval::perplexity(*m, tokens, po, ref.get());
  nlohmann::json j = {{"model", o.model}, {"text", o.file.empty() ? o.ids : o.file}, {"ctx", r.ctx},
                      {"n_tokens", r.n_tokens}, {"n_chunks", r.n_chunks}, {"n_scored", r.n_scored},
                      {"ppl", r.ppl}, {"ppl_err", r.ppl_err}, {"nll_mean", r.nll_mean},
                      {"protocol", "non-overlapping windows of ctx tokens, BOS-first if the model adds BOS, "
                                   "positions ctx/2..ctx-2 scored (llama.cpp perplexity)"}};
  if (r.has_ref)
    j.update({{"ref", o.ref}, {"ref_ppl", r.ref_ppl}, {"kld_mean", r.kld_mean}, {"kld_err", r.kld_err},
              {"kld_max", r.kld_max}, {"top1_agree", r.top1_agree}, {"max_abs_logit_diff", r.max_abs_logit_diff},
              {"max_diff_pos", r.max_diff_pos}});
  if (o.json) { std::printf("%s\n", j.dump(2).c_str()); return; }
  std::printf("perplexity %.4f +/- %.4f over %lld scored tokens (%lld windows of %lld, %lld tokens in file)\n",
              r.ppl, r.ppl_err, (long long)r.n_scored, (long long)r.n_chunks, (long long)r.ctx, (long long)r.n_tokens);
  if (r.has_ref)
    std::printf("reference perplexity %.4f; KL divergence mean %.6f +/- %.6f (max %.4f); top-1 agreement %.2f%%; "
                "largest logit difference %.4f%s\n",
                r.ref_ppl, r.kld_mean, r.kld_err, r.kld_max, 100 * r.top1_agree, r.max_abs_logit_diff,
                r.max_diff_pos >= 0 ? cat(" at token ", r.max_diff_pos).c_str() : " (identical logits)");
}
}  // namespace

void add_eval(CLI::App* sub) {
  static EvalOptions o;
  sub->footer("Examples:\n  slimlm eval models/SmolLM2-135M-Instruct.Q4_1.gguf -f ../shared/data/wikitext-2-raw/wiki.test.raw --ctx 512 --chunks 8\n"
              "  slimlm eval small.gguf -f wiki.test.raw --ref original.gguf --json\n"
              "  slimlm eval ../shared/data/stories260K/stories260K.bin --ids ids.txt --per-token");
  sub->add_option("model", o.model, "model file or folder")->required();
  sub->add_option("-f,--file", o.file, "text file to evaluate (UTF-8)");
  sub->add_option("--ids", o.ids, "file of whitespace-separated token ids instead of text");
  sub->add_option("--ref", o.ref, "reference model for KL divergence and top-1 agreement");
  sub->add_option("-c,--ctx", o.ctx, "window size in tokens")->check(CLI::Range(4, 1 << 20));
  sub->add_option("--chunks", o.chunks, "evaluate only the first N windows (0: all)")->check(CLI::Range(0, 1 << 30));
  sub->add_flag("--per-token", o.per_token, "teacher-forced argmax and log-prob of the next id at each position");
  sub->add_flag("--json", o.json, "machine-readable output on stdout");
  sub->add_flag("--no-progress", o.no_progress, "no progress bar on stderr");
  add_threads(sub, &o.threads);
  add_exact(sub, &o.exact);
  add_kv_type(sub, &o.kv);
  sub->callback([] { run_eval(o); });
}

}  // namespace slimlm::cli
