// Architecture registry: one row per family (llama, gemma3, qwen2, ...) saying which forward
// variant it uses and how its hyper-parameters and tensor names read in GGUF. Unknown
// architectures are refused with a message listing the known ones.
#pragma once
#include "model/model.h"
#include <string>

namespace slimlm {

struct ArchInfo {
  const char* name;
  RopeType rope;
  Activation act;
  bool qk_norm, post_norms, embed_scale, qkv_bias;
  int swa_pattern;  // every swa_pattern-th layer is global; 0: no sliding window
};

const ArchInfo& arch_info(const std::string& name);  // throws Error for unknown families
std::string known_archs();

// Fills hp from GGUF metadata "<arch>.*" keys.
void read_hparams(const gguf::File& f, HParams& hp);
// Checks shapes of every weight against hp; throws Error naming the first bad tensor.
void validate_shapes(const Model& m);

}  // namespace slimlm
