// `slimlm convert MODEL -o OUT.gguf --type f16`: writes GGUF from any readable input
// (GGUF, llama2.c, Hugging Face folder) with matrix weights in f32/f16/bf16/q8_0/q4_0/...
#include "common.h"
#include "core/error.h"
#include "model/model.h"
#include <cstdio>

namespace slimlm::cli {

void add_convert(CLI::App& app) {
  static std::string path, out, type = "f16";
  static int threads = 0;
  auto* sub = app.add_subcommand("convert", "write a model as GGUF with weights in another storage type");
  sub->footer("Example: slimlm convert ../shared/data/stories260K/stories260K.bin -o stories260K.f32.gguf --type f32");
  sub->add_option("model", path, "input model file or folder")->required();
  sub->add_option("-o,--output", out, "output .gguf path")->required();
  sub->add_option("--type", type, "weight type: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1");
  add_threads(sub, &threads);
  sub->callback([] {
    apply_threads(threads);
    const DType t = type_from_name(type);
    if (!traits(t).from_f32) fail("cannot write weights of type ", type, " (writable: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1)");
    check_model_path(path);
    auto m = load_model(path);
    save_gguf(*m, out, t);
    std::fprintf(stderr, "wrote %s (%s)\n", out.c_str(), traits(t).name);
  });
}

}  // namespace slimlm::cli
