// Black-box distillation data (pipeline/teacher_data.h) on SmolLM2-135M: greedy samples are the
// runtime's own greedy generation from the same prompt (re-run here with a Session and argmax),
// the data is a function of the seed, each prompt style has its shape, bad options fail.
#include "core/error.h"
#include "core/text.h"
#include "model/forward.h"
#include "model/sampler.h"
#include "pipeline/teacher_data.h"
#include "test_util.h"
#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <functional>

using namespace slimlm;
using namespace slimlm::test;

namespace {
// A small corpus: one sentence a line.
std::string bb_corpus() {
  const std::string p = temp_path("bb-corpus.txt");
  std::ofstream(p) << "The old lighthouse keeper climbed the stairs every evening to light the lamp.\n"
                      "In the spring the river flooded the fields and the farmers moved their sheep uphill.\n"
                      "\n"
                      "She opened the letter slowly, afraid of what the bank had decided about the farm.\n"
                      "The committee voted to build a new school before the end of the year.\n";
  return p;
}

pipeline::TeacherDataOptions bb_options(pipeline::PromptStyle style, int64_t samples) {
  pipeline::TeacherDataOptions o;
  o.corpus = bb_corpus();
  o.style = style;
  o.samples = samples;
  o.prompt_tokens = 12;
  o.new_tokens = 10;
  o.progress = false;
  return o;
}

// Greedy generation written out here: prefill the prompt, then argmax and feed one token at a
// time until an end-of-generation token or n tokens.
std::vector<int32_t> bb_greedy(const Model& m, const std::vector<int32_t>& prompt, int64_t n, bool& stopped) {
  Session s(m, int64_t(prompt.size()) + n);
  std::vector<float> logits;
  s.forward(prompt.data(), int64_t(prompt.size()), int64_t(prompt.size()) - 1, logits);
  std::vector<int32_t> out;
  stopped = false;
  while (int64_t(out.size()) < n) {
    const int32_t id = Sampler::argmax(logits.data(), m.hp.n_vocab);
    if (m.tok->is_eog(id)) { stopped = true; break; }
    out.push_back(id);
    s.forward(&id, 1, 0, logits);
  }
  return out;
}
}  // namespace

TEST(TeacherData, GreedySamplesAreTheRuntimesGreedyGeneration) {
  SLIMLM_REQUIRE_FILE(model_path(kSmol));
  auto m = load_model(model_path(kSmol));
  for (auto style : {pipeline::PromptStyle::Continue, pipeline::PromptStyle::Instruct}) {
    const auto o = bb_options(style, 2);
    const pipeline::TeacherData d = pipeline::generate_teacher_data(*m, o);
    ASSERT_EQ(d.samples.size(), 2u);
    std::vector<int32_t> stream;
    int64_t generated = 0;
    for (const auto& s : d.samples) {
      bool stopped = false;
      EXPECT_EQ(s.continuation, bb_greedy(*m, s.prompt.ids, o.new_tokens, stopped));
      EXPECT_EQ(s.stopped, stopped);
      EXPECT_FALSE(s.continuation.empty());
      stream.insert(stream.end(), s.prompt.ids.begin(), s.prompt.ids.end());
      stream.insert(stream.end(), s.continuation.begin(), s.continuation.end());
      stream.push_back(m->tok->eos());
      generated += int64_t(s.continuation.size());
    }
    EXPECT_EQ(d.ids, stream);  // prompt + continuation + end-of-text, sample after sample
    EXPECT_EQ(d.generated, generated);
    EXPECT_GT(d.tokens_per_s, 0);
  }
}

TEST(TeacherData, SameSeedSameDataOtherSeedOtherData) {
  SLIMLM_REQUIRE_FILE(model_path(kSmol));
  auto m = load_model(model_path(kSmol));
  auto o = bb_options(pipeline::PromptStyle::Continue, 2);
  o.temperature = 1.0;
  o.text_out = temp_path("bb-samples.txt");
  const auto a = pipeline::generate_teacher_data(*m, o);
  const std::string text = read_text_file(o.text_out);
  const auto b = pipeline::generate_teacher_data(*m, o);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(read_text_file(o.text_out), text);
  EXPECT_NE(text.find("=== sample 2 (continue) ==="), std::string::npos);
  EXPECT_NE(text.find(m->tok->decode(a.samples[0].continuation)), std::string::npos);
  o.seed = 2;
  const auto c = pipeline::generate_teacher_data(*m, o);
  EXPECT_NE(a.ids, c.ids);
  // the same prompts with another seed: only the sampling differs
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(pipeline::teacher_prompts(*m, o)[i].ids, c.samples[i].prompt.ids);
  std::filesystem::remove(o.text_out);
}

TEST(TeacherData, EachStyleHasItsPromptShape) {
  SLIMLM_REQUIRE_FILE(model_path(kSmol));
  auto m = load_model(model_path(kSmol));
  const Tokenizer& tok = *m->tok;
  ASSERT_TRUE(tok.has_chat_template());
  const std::string corpus = read_text_file(bb_corpus());
  auto o = bb_options(pipeline::PromptStyle::Continue, 6);  // more samples than lines: passages repeat
  for (const auto& p : pipeline::teacher_prompts(*m, o)) {
    EXPECT_NE(corpus.find(p.text), std::string::npos) << p.text;  // a corpus passage as it is
    std::vector<int32_t> body(p.ids.begin() + (tok.add_bos() ? 1 : 0), p.ids.end());
    EXPECT_EQ(int64_t(body.size()), o.prompt_tokens);
    EXPECT_EQ(tok.decode(body), p.text);
  }
  const auto cont = pipeline::teacher_prompts(*m, o);
  o.style = pipeline::PromptStyle::Instruct;
  const auto inst = pipeline::teacher_prompts(*m, o);
  o.style = pipeline::PromptStyle::Cot;
  const auto cot = pipeline::teacher_prompts(*m, o);
  const char* verbs[] = {"Summarize the following text", "Explain the following text", "Continue the following text"};
  for (size_t i = 0; i < inst.size(); ++i) {
    for (const auto* styled : {&inst[i], &cot[i]}) {  // one user turn in the chat template
      const std::string& t = styled->text;
      const size_t from = t.find("<|im_start|>user\n") + 17, to = t.rfind("<|im_end|>");
      ASSERT_LT(from, to) << t;
      EXPECT_EQ(t, tok.apply_chat_template({{"user", t.substr(from, to - from)}}));
      EXPECT_NE(t.substr(from, to - from).find(cont[i].text), std::string::npos);  // the `continue` passage
      std::vector<int32_t> ids = tok.encode(t, false, true);
      if (tok.add_bos()) ids.insert(ids.begin(), tok.bos());
      EXPECT_EQ(styled->ids, ids);
    }
    EXPECT_NE(inst[i].text.find(verbs[i % 3]), std::string::npos) << inst[i].text;
    EXPECT_NE(cot[i].text.find("\n\nQuestion: "), std::string::npos);
    EXPECT_NE(cot[i].text.find("Let's think step by step.<|im_end|>"), std::string::npos) << cot[i].text;
  }
}

TEST(TeacherData, RefusesBadOptions) {
  SLIMLM_REQUIRE_FILE(model_path(kSmol));
  auto m = load_model(model_path(kSmol));
  const auto good = bb_options(pipeline::PromptStyle::Continue, 1);
  const std::vector<std::function<void(pipeline::TeacherDataOptions&)>> bad = {
      [](auto& o) { o.samples = 0; },
      [](auto& o) { o.new_tokens = -1; },
      [](auto& o) { o.prompt_tokens = 0; },
      [](auto& o) { o.temperature = -0.5; },
      [&](auto& o) { o.new_tokens = m->hp.n_ctx_train; },  // prompt + new tokens beyond the context
  };
  for (const auto& spoil : bad) {
    auto o = good;
    spoil(o);
    EXPECT_THROW(pipeline::generate_teacher_data(*m, o), Error);
  }
  EXPECT_THROW(pipeline::parse_prompt_style("chat"), Error);
  EXPECT_EQ(pipeline::parse_prompt_style("cot"), pipeline::PromptStyle::Cot);
  auto stories_model = load_model(stories());  // no tokenizer
  EXPECT_THROW(pipeline::generate_teacher_data(*stories_model, good), Error);
}
