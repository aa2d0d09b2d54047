// Training data written by a teacher, for black-box knowledge distillation: the teacher only
// generates text (no logits are shared) and the student trains on it with cross-entropy.
// Prompts come from passages of a corpus text, in one of three styles:
//   continue  the first prompt_tokens tokens of a passage; the teacher continues it
//   instruct  "Summarize / Explain / Continue the following text: <passage>"
//   cot       "<passage> Question: ...? Let's think step by step."
// instruct and cot prompts are wrapped in the teacher's chat template when it has one.
// Deterministic for a seed: the passages are picked by it and sample i is drawn with its own
// sampler seeded from (seed, i).
#pragma once
#include "model/model.h"
#include <cstdint>
#include <string>
#include <vector>

namespace slimlm::pipeline {

enum class PromptStyle { Continue, Instruct, Cot };
PromptStyle parse_prompt_style(const std::string& s);  // "continue", "instruct", "cot"; throws Error
const char* prompt_style_name(PromptStyle s);

struct TeacherDataOptions {
  std::string corpus;            // text file (empty: default_calibration_file())
  PromptStyle style = PromptStyle::Continue;
  int64_t samples = 64;
  int64_t prompt_tokens = 64;    // tokens of the passage in each prompt
  int64_t new_tokens = 128;      // at most this many generated tokens per sample
  double temperature = 0;        // 0: greedy; otherwise plain sampling (no top-k / top-p)
  uint64_t seed = 1;
  std::string text_out;          // also write the samples as text here (temporary file, renamed)
  bool progress = true;          // samples done and tokens/s on stderr
};

struct TeacherPrompt {
  std::string text;              // as given to the tokenizer (chat markup included)
  std::vector<int32_t> ids;
};

struct TeacherSample {
  TeacherPrompt prompt;
  std::vector<int32_t> continuation;  // the teacher's tokens after the prompt
  bool stopped = false;               // ended at an end-of-generation token
};

struct TeacherData {
  std::vector<TeacherSample> samples;
  // prompt + continuation of each sample, each followed by the end-of-text token: a
  // FinetuneJob's `tokens`.
  std::vector<int32_t> ids;
  int64_t generated = 0;         // continuation tokens, all samples
  double seconds = 0, tokens_per_s = 0;  // generation time; generated tokens per second
};

// Checks the options (one-line Error on bad values).
void validate(const TeacherDataOptions& o);
// The prompts alone (passages picked and styled as generate_teacher_data does).
std::vector<TeacherPrompt> teacher_prompts(const Model& teacher, const TeacherDataOptions& o);
// Runs the teacher on every prompt. Needs a teacher with a tokenizer.
TeacherData generate_teacher_data(const Model& teacher, const TeacherDataOptions& o);

}  // namespace slimlm::pipeline
