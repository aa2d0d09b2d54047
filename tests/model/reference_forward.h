// An independent float64 implementation of the llama/gemma3 forward pass, written straight
// from the math with no shared kernels (only weight dequantization): the truth the optimized
// runtime is tested against.
#pragma once
#include "model/model.h"
#include <vector>

namespace slimlm::test {
// Logits (n x vocab, double) for `ids` at positions 0..n-1.
std::vector<double> reference_logits(const Model& m, const std::vector<int32_t>& ids);
}
