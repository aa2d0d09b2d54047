// `slimlm convert MODEL -o OUT.gguf --type f16 [--sparse 2:4|4:8|bitmap|auto]`: writes GGUF from
// any readable input (GGUF, llama2.c, Hugging Face folder) with matrix weights in
// f32/f16/bf16/q8_0/q4_0/...; --sparse stores block linears whose zeros fit a sparse format in it.
#include "common.h"
#include <cstdio>

namespace slimlm::cli {

void add_convert(CLI::App* sub) {
  add_compress_verb(sub, pipeline::Verb::Convert,
      "  slimlm convert ../shared/data/stories260K/stories260K.bin -o stories260K.f32.gguf --type f32\n"
      "  slimlm convert pruned.gguf -o pruned-2of4.gguf --type f16 --sparse 2:4",
      [](const pipeline::Job&, const nlohmann::json& j) {
        const std::string out = j["output"].get<std::string>(), type = j["type"].get<std::string>();
        if (!j.contains("sparse")) { std::fprintf(stderr, "wrote %s (%s)\n", out.c_str(), type.c_str()); return; }
        const auto& s = j["sparse"];
        std::fprintf(stderr, "wrote %s (%s): block linears %d N:M, %d bitmap, %d dense; %.2f MB instead of %.2f MB\n",
                     out.c_str(), type.c_str(), s["nm"].get<int>(), s["bitmap"].get<int>(), s["dense"].get<int>(),
                     s["linear_bytes"].get<double>() / 1e6, s["linear_bytes_dense"].get<double>() / 1e6);
      });
}

}  // namespace slimlm::cli
