// `slimlm generate MODEL -p TEXT | --prompt-ids IDS [--chat | -i]`: streaming text generation.
#include "common.h"
#include "core/error.h"
#include "core/text.h"
#include "model/forward.h"
#include "model/model.h"
#include "model/sampler.h"
#include <chrono>
#include <cstdio>
#include <iostream>

namespace slimlm::cli {

namespace {
struct GenOptions {
  std::string model, prompt, prompt_ids, system, kv = "f32";
  int n = 128, threads = 0, ctx = 0;
  bool print_ids = false, chat = false, interactive = false, show_prompt = false, exact = false;
  SamplerParams sp;
};

// Generates up to o.n tokens after `tokens` (already in the session when fed=true), streaming
// text to stdout. Returns the generated ids.
std::vector<int32_t> run(Session& s, Sampler& smp, std::vector<int32_t>& history, std::vector<int32_t> feed,
                         const GenOptions& o) {
  const Model& m = s.model();
  std::vector<float> logits;
  std::vector<int32_t> out;
  std::string pending;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < o.n; ++i) {
    if (s.pos() + int64_t(feed.size()) > s.n_ctx()) { std::fprintf(stderr, "\n[context full]\n"); break; }
    const int32_t id = decode_step(s, smp, feed, history, logits);
    if (id < 0) break;
    out.push_back(id);
    if (o.print_ids) {
      std::printf("%s%d", out.size() > 1 ? " " : "", id);
    } else if (m.tok) {
      pending += m.tok->token_to_piece(id);
      const size_t k = complete_utf8_prefix(pending);
      std::fwrite(pending.data(), 1, k, stdout);
      pending.erase(0, k);
    }
    std::fflush(stdout);
  }
  if (!pending.empty()) std::fwrite(pending.data(), 1, pending.size(), stdout);
  std::printf("\n");
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "[%zu tokens, %.1f tokens/s]\n", out.size(), double(out.size()) / dt);
  return out;
}

void generate(const GenOptions& o) {
  apply_threads(o.threads);
  const kernels::ExactScope exact = exact_scope(o.exact);
  check_model_path(o.model);
  if (!o.prompt.empty() && !valid_utf8(o.prompt)) fail("the prompt is not valid UTF-8");
  if (!o.prompt.empty() && !o.prompt_ids.empty()) fail("give either --prompt or --prompt-ids, not both");
  if (o.n < 0) fail("-n must be >= 0");
  auto m = load_model(o.model);
  if (!m->tok && (o.prompt_ids.empty() || o.chat || o.interactive))
    fail(o.model, " has no tokenizer: use --prompt-ids and --print-ids");
  const int64_t ctx = o.ctx > 0 ? o.ctx : std::min<int64_t>(m->hp.n_ctx_train, 4096);
  Session s(*m, ctx, parse_kv_type(o.kv));
  Sampler smp(o.sp);
  std::vector<int32_t> history;
  if (o.interactive) {
    std::vector<ChatMessage> msgs;
    if (!o.system.empty()) msgs.push_back({"system", o.system});
    std::string line;
    std::fprintf(stderr, "chat with %s (empty line or Ctrl-D ends)\n> ", o.model.c_str());
    while (std::getline(std::cin, line) && !line.empty()) {
      if (!valid_utf8(line)) { std::fprintf(stderr, "input is not valid UTF-8\n> "); continue; }
      msgs.push_back({"user", line});
      // Re-feeds the whole conversation each turn: simple and exact for small models.
      std::vector<int32_t> ids = m->tok->encode(m->tok->apply_chat_template(msgs), true, true);
      s.reset();
      history = ids;
      std::vector<int32_t> reply = run(s, smp, history, ids, o);
      msgs.push_back({"assistant", m->tok->decode(reply)});
      std::fprintf(stderr, "> ");
    }
    return;
  }
  std::vector<int32_t> ids;
  if (!o.prompt_ids.empty()) {
    ids = parse_ids(o.prompt_ids, "--prompt-ids");
  } else {
    std::string text = o.prompt;
    if (o.chat) {
      std::vector<ChatMessage> msgs;
      if (!o.system.empty()) msgs.push_back({"system", o.system});
      msgs.push_back({"user", o.prompt});
      text = m->tok->apply_chat_template(msgs);
    }
    ids = m->tok->encode(text, true, o.chat);
    if (ids.empty()) ids.push_back(m->tok->bos() >= 0 ? m->tok->bos() : 0);
    if (o.show_prompt) std::fwrite(o.prompt.data(), 1, o.prompt.size(), stdout);
  }
  for (int32_t id : ids)
    if (id < 0 || id >= m->hp.n_vocab) fail("prompt token id ", id, " is outside the vocabulary (", m->hp.n_vocab, ")");
  if (int64_t(ids.size()) >= ctx) fail("the prompt has ", ids.size(), " tokens; the context holds ", ctx, " (raise --ctx)");
  history = ids;
  run(s, smp, history, ids, o);
}
}  // namespace

void add_generate(CLI::App* sub) {
  static GenOptions o;
  sub->footer("Examples:\n  slimlm generate models/SmolLM2-135M-Instruct.Q4_1.gguf --chat -p 'What is the capital of France?'\n"
              "  slimlm generate ../shared/data/stories260K/stories260K.bin --prompt-ids 1 -n 256 --temp 0 --print-ids");
  sub->add_option("model", o.model, "model file or folder")->required();
  sub->add_option("-p,--prompt", o.prompt, "prompt text");
  sub->add_option("--prompt-ids", o.prompt_ids, "prompt as token ids, e.g. 1,2,3");
  sub->add_flag("--chat", o.chat, "wrap the prompt in the model's chat template (one turn)");
  sub->add_flag("-i,--interactive", o.interactive, "multi-turn chat on stdin");
  sub->add_option("--system", o.system, "system message for --chat / -i");
  sub->add_option("-n,--n-predict", o.n, "tokens to generate")->check(CLI::Range(0, 1 << 20));
  sub->add_option("--temp", o.sp.temp, "temperature (0: greedy)")->check(CLI::Range(0.0, 100.0));
  sub->add_option("--top-k", o.sp.top_k, "top-k (0: off)")->check(CLI::Range(0, 1 << 24));
  sub->add_option("--top-p", o.sp.top_p, "top-p (1: off)")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--min-p", o.sp.min_p, "min-p (0: off)")->check(CLI::Range(0.0, 1.0));
  sub->add_option("--repeat-penalty", o.sp.repeat_penalty, "repetition penalty (1: off)")->check(CLI::Range(0.01, 100.0));
  sub->add_option("--repeat-last-n", o.sp.repeat_last_n, "tokens the penalty looks back over")->check(CLI::Range(0, 1 << 20));
  sub->add_option("--seed", o.sp.seed, "random seed");
  sub->add_option("-c,--ctx", o.ctx, "context size (default: min(training context, 4096))")->check(CLI::Range(1, 1 << 20));
  sub->add_flag("--print-ids", o.print_ids, "print generated token ids (space-separated) instead of text");
  sub->add_flag("--show-prompt", o.show_prompt, "echo the prompt before the generated text");
  add_threads(sub, &o.threads);
  add_exact(sub, &o.exact);
  add_kv_type(sub, &o.kv);
  sub->callback([] { generate(o); });
}

}  // namespace slimlm::cli
