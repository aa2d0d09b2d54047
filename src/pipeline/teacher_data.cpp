#include "pipeline/teacher_data.h"
#include "core/error.h"
#include "core/mmap.h"
#include "core/progress.h"
#include "core/text.h"
#include "model/forward.h"
#include "model/sampler.h"
#include "pipeline/job.h"
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>

namespace slimlm::pipeline {

namespace {
const char* const kInstructions[] = {
    "Summarize the following text in one or two sentences.",
    "Explain the following text in simple words.",
    "Continue the following text.",
};
const char* const kQuestions[] = {
    "What is the main point of this text?",
    "What is likely to happen next, and why?",
    "Who or what is this text about, and what do we learn about them?",
};

// Offsets of the corpus lines that start with text, in a seeded random order.
std::vector<size_t> passage_starts(const std::string& text, uint64_t seed) {
  std::vector<size_t> starts;
  for (size_t p = 0; p < text.size(); ++p)
    if ((p == 0 || text[p - 1] == '\n') && !std::isspace(static_cast<unsigned char>(text[p]))) starts.push_back(p);
  std::mt19937_64 rng(seed);
  std::shuffle(starts.begin(), starts.end(), rng);
  return starts;
}

// The first n tokens of the corpus from `start` (fewer at the end of the text).
std::vector<int32_t> passage(const Tokenizer& tok, const std::string& text, size_t start, int64_t n) {
  const size_t bytes = static_cast<size_t>(std::min<int64_t>(n, 1 << 20)) * 16 + 64;
  std::vector<int32_t> ids = tok.encode(text.substr(start, bytes), false, false);
  if (int64_t(ids.size()) > n) ids.resize(static_cast<size_t>(n));
  return ids;
}

std::vector<int32_t> with_bos(const Tokenizer& tok, std::vector<int32_t> ids) {
  if (tok.add_bos() && tok.bos() >= 0) ids.insert(ids.begin(), tok.bos());
  return ids;
}

// An instruct or cot prompt around the passage text; in the chat template when there is one.
TeacherPrompt styled(const Tokenizer& tok, PromptStyle style, const std::string& text, size_t i) {
  const bool chat = tok.has_chat_template();
  std::string user;
  if (style == PromptStyle::Instruct) {
    user = std::string(kInstructions[i % std::size(kInstructions)]) + "\n\n" + text;
    if (!chat) user = "### Instruction:\n" + user + "\n\n### Response:\n";
  } else {
    user = text + "\n\nQuestion: " + kQuestions[i % std::size(kQuestions)] + "\n";
    user += chat ? "Let's think step by step." : "Answer: Let's think step by step.";
  }
  TeacherPrompt p;
  p.text = chat ? tok.apply_chat_template({{"user", user}}) : user;
  p.ids = with_bos(tok, tok.encode(p.text, false, chat));
  return p;
}

SamplerParams sampler_params(const TeacherDataOptions& o, int64_t i) {
  SamplerParams sp;
  sp.temp = float(o.temperature);
  sp.top_k = 0;
  sp.top_p = 1;
  sp.min_p = 0;
  sp.repeat_penalty = 1;
  sp.seed = o.seed ^ (uint64_t(i + 1) * 0x9E3779B97F4A7C15ull);
  return sp;
}

// The teacher's continuation of one prompt (the session is reused across samples).
TeacherSample run_sample(Session& s, TeacherPrompt p, const TeacherDataOptions& o, int64_t i) {
  s.reset();
  Sampler smp(sampler_params(o, i));
  std::vector<int32_t> feed = p.ids, history = p.ids;
  std::vector<float> logits;
  TeacherSample r;
  r.prompt = std::move(p);
  while (int64_t(r.continuation.size()) < o.new_tokens) {
    const int32_t id = decode_step(s, smp, feed, history, logits);
    if (id < 0) { r.stopped = true; break; }
    r.continuation.push_back(id);
  }
  return r;
}

void write_text(const Tokenizer& tok, const TeacherData& d, const TeacherDataOptions& o) {
  AtomicFile f(o.text_out);
  for (size_t i = 0; i < d.samples.size(); ++i) {
    const TeacherSample& s = d.samples[i];
    const std::string block = "=== sample " + std::to_string(i + 1) + " (" + prompt_style_name(o.style) + ") ===\n" +
                              s.prompt.text + "\n--- teacher ---\n" + tok.decode(s.continuation) +
                              (s.stopped ? "\n[end of generation]" : "") + "\n\n";
    f.write(block.data(), block.size());
  }
  f.commit();
}

const Tokenizer& tokenizer_of(const Model& teacher) {
  if (!teacher.tok) fail("black-box distillation needs a teacher with a tokenizer; this one (", teacher.format, ") has none");
  return *teacher.tok;
}
}  // namespace

PromptStyle parse_prompt_style(const std::string& s) {
  if (s == "continue") return PromptStyle::Continue;
  if (s == "instruct") return PromptStyle::Instruct;
  if (s == "cot") return PromptStyle::Cot;
  fail("unknown prompt style '", s, "' (continue, instruct or cot)");
}

const char* prompt_style_name(PromptStyle s) {
  return s == PromptStyle::Continue ? "continue" : s == PromptStyle::Instruct ? "instruct" : "cot";
}

void validate(const TeacherDataOptions& o) {
  if (o.samples < 1 || o.samples > 10'000'000) fail("teacher samples ", o.samples, " is out of range [1, 10000000]");
  if (o.prompt_tokens < 1 || o.prompt_tokens > 1 << 20) fail("prompt tokens ", o.prompt_tokens, " is out of range [1, 1048576]");
  if (o.new_tokens < 1 || o.new_tokens > 1 << 20) fail("new tokens ", o.new_tokens, " is out of range [1, 1048576]");
  if (!(o.temperature >= 0 && o.temperature <= 100)) fail("teacher temperature ", o.temperature, " is out of range [0, 100]");
}

std::vector<TeacherPrompt> teacher_prompts(const Model& teacher, const TeacherDataOptions& o) {
  validate(o);
  const Tokenizer& tok = tokenizer_of(teacher);
  const std::string file = o.corpus.empty() ? default_calibration_file() : o.corpus;
  const std::string text = read_text_file(file);
  const std::vector<size_t> starts = passage_starts(text, o.seed);
  if (starts.empty()) fail(file, ": no text to take prompts from");
  std::vector<TeacherPrompt> out;
  for (int64_t i = 0; i < o.samples; ++i) {
    std::vector<int32_t> ids = passage(tok, text, starts[static_cast<size_t>(i) % starts.size()], o.prompt_tokens);
    std::string body = tok.decode(ids);
    body.resize(complete_utf8_prefix(body));  // the cut may split a character
    if (o.style == PromptStyle::Continue) out.push_back({body, with_bos(tok, std::move(ids))});
    else out.push_back(styled(tok, o.style, body, static_cast<size_t>(i)));
  }
  return out;
}

TeacherData generate_teacher_data(const Model& teacher, const TeacherDataOptions& o) {
  std::vector<TeacherPrompt> prompts = teacher_prompts(teacher, o);
  const Tokenizer& tok = *teacher.tok;
  size_t longest = 0;
  for (const auto& p : prompts) longest = std::max(longest, p.ids.size());
  const int64_t ctx = int64_t(longest) + o.new_tokens;
  if (ctx > teacher.hp.n_ctx_train)
    fail("prompts of up to ", longest, " tokens plus ", o.new_tokens, " new tokens exceed the teacher's context (",
         teacher.hp.n_ctx_train, ")");
  Session s(teacher, ctx);
  TeacherData d;
  Progress bar("teacher", o.samples, o.progress);
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < o.samples; ++i) {
    d.samples.push_back(run_sample(s, std::move(prompts[static_cast<size_t>(i)]), o, i));
    const TeacherSample& x = d.samples.back();
    d.ids.insert(d.ids.end(), x.prompt.ids.begin(), x.prompt.ids.end());
    d.ids.insert(d.ids.end(), x.continuation.begin(), x.continuation.end());
    if (tok.eos() >= 0) d.ids.push_back(tok.eos());
    d.generated += int64_t(x.continuation.size());
    d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    d.tokens_per_s = double(d.generated) / std::max(d.seconds, 1e-9);
    char extra[64];
    std::snprintf(extra, sizeof extra, "%lld tokens, %.0f tok/s", (long long)d.generated, d.tokens_per_s);
    bar.update(i + 1, extra);
  }
  bar.finish();
  if (!o.text_out.empty()) write_text(tok, d, o);
  return d;
}

}  // namespace slimlm::pipeline
