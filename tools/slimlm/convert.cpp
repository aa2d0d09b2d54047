// `slimlm convert MODEL -o OUT.gguf --type f16 [--sparse 2:4|4:8|bitmap|auto]`: writes GGUF from
// any readable input (GGUF, llama2.c, Hugging Face folder) with matrix weights in
// f32/f16/bf16/q8_0/q4_0/...; --sparse stores block linears whose zeros fit a sparse format in it.
#include "common.h"
#include "core/dtype_custom.h"
#include "core/error.h"
#include "model/model.h"
#include "io/gguf.h"
#include "model/sparsify.h"
#include <cstdio>

namespace slimlm::cli {

void add_convert(CLI::App& app) {
  static std::string path, out, type = "f16", sparse;
  static int threads = 0;
  auto* sub = app.add_subcommand("convert", "write a model as GGUF with weights in another storage type");
  sub->footer("Example: slimlm convert ../shared/data/stories260K/stories260K.bin -o stories260K.f32.gguf --type f32\n"
              "         slimlm convert pruned.gguf -o pruned-2of4.gguf --type f16 --sparse 2:4");
  sub->add_option("model", path, "input model file or folder")->required();
  sub->add_option("-o,--output", out, "output .gguf path")->required();
  sub->add_option("--type", type, "weight type: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1");
  sub->add_option("--sparse", sparse,
                  "store block linears sparse (f16 values) where they fit: N:M (e.g. 2:4) when every group of M "
                  "inputs has <= N nonzeros; bitmap when sparsity >= the measured crossover; auto: N:M 2:4, else bitmap");
  add_threads(sub, &threads);
  sub->callback([] {
    apply_threads(threads);
    const DType t = type_from_name(type);
    if (!traits(t).from_f32) fail("cannot write weights of type ", type, " (writable: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1)");
    const SparseOptions so = sparse.empty() ? SparseOptions{} : parse_sparse_mode(sparse);
    check_model_path(path);
    auto m = load_model(path);
    if (sparse.empty()) {
      save_gguf(*m, out, t);
      std::fprintf(stderr, "wrote %s (%s)\n", out.c_str(), traits(t).name);
      return;
    }
    const SparseStats st = sparsify_model(*m, t, so);
    save_gguf_as_is(*m, out, {});
    std::fprintf(stderr, "wrote %s (%s): block linears %d N:M, %d bitmap, %d dense; %.2f MB instead of %.2f MB\n",
                 out.c_str(), traits(t).name, st.n_nm, st.n_bitmap, st.n_dense, double(st.linear_bytes) / 1e6,
                 double(st.linear_bytes_dense) / 1e6);
  });
}

}  // namespace slimlm::cli
