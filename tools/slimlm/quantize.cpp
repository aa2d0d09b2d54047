// `slimlm quantize MODEL -o OUT.gguf --method M ...`: flags and summary of the quantize verb
// (the work is pipeline::quantize_model; methods and flags come from the registry).
#include "common.h"
#include <cstdio>

namespace slimlm::cli {

void add_quantize(CLI::App* sub) {
  add_compress_verb(sub, pipeline::Verb::Quantize,
      "  slimlm quantize models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.w4g128.gguf --method gptq --bits 4 --group 128\n"
      "  slimlm quantize models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.q4_0.gguf --method gptq --bits 4 --group 32 --sym --format gguf\n"
      "  slimlm quantize models/SmolLM2-135M-Instruct.Q4_1.gguf -o smol.w8a8.gguf --method smoothquant --alpha 0.5\n"
      "  slimlm quantize models/smollm2-f32.gguf -o smol.q4_K_M.gguf --method gptq --type q4_K_M",
      [](const pipeline::Job&, const nlohmann::json& j) {
        std::printf("quantized %s -> %s\n  method %s, type %s, %.3f bits/weight in block linears, file %.1f MiB (%.2f bpw overall)\n"
                    "  %.1f s, peak RSS %.0f MiB\n",
                    j["model"].get<std::string>().c_str(), j["output"].get<std::string>().c_str(),
                    j["method"].get<std::string>().c_str(), j["type"].get<std::string>().c_str(), j["bpw_linear"].get<double>(),
                    j["file_mb"].get<double>(), j["bpw_file"].get<double>(), j["seconds"].get<double>(), j["peak_rss_mb"].get<double>());
      });
}

}  // namespace slimlm::cli
