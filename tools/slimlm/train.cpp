// `slimlm train MODEL [-o OUT.gguf] [--data TEXT | --ids FILE] ...` and `slimlm distill` (the same
// with --teacher): full fine-tuning, LoRA or knowledge distillation on the CPU training engine.
// With --black-box the teacher writes the training text from prompts (pipeline/teacher_data.h)
// and the student learns it with cross-entropy alone; the teacher's logits are not used.
// --feature-weight / --relation-weight add losses on the teacher's hidden states and attention
// relations (train/state_kd.h). The flags come from the registry (pipeline/registry.h); the work
// is pipeline::train_model.
#include "common.h"
#include <cstdio>

namespace slimlm::cli {

namespace {
void print_summary(const pipeline::Job& job, const nlohmann::json& j) {
  const pipeline::TrainJobOptions& o = job.train;
  if (j.contains("black_box")) {
    const auto& b = j["black_box"];
    std::printf("teacher wrote %lld %s samples: %lld tokens (%lld generated) in %.1f s (%.1f tokens/s)\n",
                b["samples"].get<long long>(), o.bb_style.c_str(), b["tokens"].get<long long>(),
                b["generated_tokens"].get<long long>(), b["seconds"].get<double>(), b["tokens_per_s"].get<double>());
  }
  std::printf("trained %s: %lld steps, %lld tokens in %.1f s (%.1f tokens/s), %lld parameters trained\n",
              j["model"].get<std::string>().c_str(), j["steps"].get<long long>(), j["tokens"].get<long long>(),
              j["seconds"].get<double>(), j["tokens_per_s"].get<double>(), j["params_trained"].get<long long>());
  if (j.contains("loss_first")) std::printf("  loss %.4f -> %.4f", j["loss_first"].get<double>(), j["loss_last"].get<double>());
  const auto& held = j["heldout"];
  if (held.size() >= 2)
    std::printf(", held-out %.4f -> %.4f", held.front()["loss"].get<double>(), held.back()["loss"].get<double>());
  std::printf("\n");
  if (j.contains("loss_parts") && held.size() >= 2) {
    const auto &a = held.front(), &b = held.back();
    std::printf("  held-out parts: logit %.4f -> %.4f, feature %.4f -> %.4f, relation %.4f -> %.4f\n",
                a["logit"].get<double>(), b["logit"].get<double>(), a["feature"].get<double>(), b["feature"].get<double>(),
                a["relation"].get<double>(), b["relation"].get<double>());
  }
  const std::string out = j["output"].get<std::string>();
  if (!out.empty()) std::printf("  wrote %s (%s)\n", out.c_str(), o.type_name.c_str());
}
}  // namespace

void add_train(CLI::App* sub) {
  add_compress_verb(sub, pipeline::Verb::Train,
      "  slimlm train models/SmolLM2-135M-Instruct.Q4_1.gguf --lora-rank 16 --steps 200 -o tuned.gguf --curve loss.svg",
      print_summary);
}

void add_distill(CLI::App* sub) {
  add_compress_verb(sub, pipeline::Verb::Distill,
      "  slimlm distill pruned.gguf --teacher models/SmolLM2-135M-Instruct.Q4_1.gguf --kd rkl --steps 200 -o recovered.gguf\n"
      "  slimlm distill pruned.gguf --teacher models/SmolLM2-135M-Instruct.Q4_1.gguf --black-box --bb-style instruct "
      "--bb-samples 128 --bb-text teacher.txt --steps 200 -o recovered.gguf\n"
      "  slimlm distill cut.gguf --teacher models/SmolLM2-135M-Instruct.Q4_1.gguf --feature-weight 1 --relation-weight 1 "
      "--relation-layers 11 --steps 200 -o recovered.gguf",
      print_summary);
}

}  // namespace slimlm::cli
