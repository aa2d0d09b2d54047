// Switches the kernels' exact path (dequantize, f32 accumulation) on or off for one scope.
#pragma once
#include "kernels/qdot.h"

namespace slimlm::test {
struct ExactGuard {
  bool was;
  explicit ExactGuard(bool on) : was(kernels::set_exact(on)) {}
  ~ExactGuard() { kernels::set_exact(was); }
  ExactGuard(const ExactGuard&) = delete;
  ExactGuard& operator=(const ExactGuard&) = delete;
};
}  // namespace slimlm::test
